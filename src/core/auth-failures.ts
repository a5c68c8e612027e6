import { addressBytes } from './ip.js';

/**
 * Failed logins counted per client address across sessions (maxAuthFailures):
 * the pure parts. Which bucket an address counts in (banKey), and the sliding
 * window of one process (FailureWindow), fed the time by its caller so that
 * tests run on fake time. No socket, timer or log here.
 */

/** The validated settings (config.ts builds them; null there when maxAuthFailures is unset). */
export interface AuthFailureSettings {
  /** Failed logins within windowMs that ban a client (maxAuthFailures). */
  readonly limit: number;
  readonly windowMs: number;
  readonly banMs: number;
  /** IPv6 clients count per this prefix (banPrefix6): one host has a whole /64. */
  readonly prefix6: number;
  readonly store: StateStoreSpec;
  /** How long one store operation may take before the session goes on without it (fail open). */
  readonly timeoutMs: number;
}

export type StateStoreSpec =
  | { readonly type: 'memory'; readonly maxAddresses: number }
  | { readonly type: 'redis'; readonly host: string; readonly port: number; readonly db: number; readonly url: string };

/**
 * The bucket an address counts in: an IPv4 address as it is (v4-mapped IPv6
 * as IPv4), an IPv6 address cut to its first prefix6 bits and written as
 * `2001:db8:0:1::/64`. null for a client without an IP address (a pipe, a
 * unix socket): it is never counted, nor banned.
 */
export function banKey(address: string, prefix6: number): string | null {
  // addressBytes gives ::ffff:a.b.c.d (and its hex form ::ffff:c000:207) as the IPv4 client.
  const b = addressBytes(address.toLowerCase());
  if (!b) return null;
  if (b.length === 4) return `${b[0]}.${b[1]}.${b[2]}.${b[3]}`;
  const words: number[] = [];
  for (let i = 0; i < 8; i++) {
    const keep = Math.max(0, Math.min(16, prefix6 - i * 16));
    const w = (b[2 * i]! << 8) | b[2 * i + 1]!;
    words.push(keep === 0 ? 0 : w & ((0xffff << (16 - keep)) & 0xffff));
  }
  return `${compressV6(words)}/${prefix6}`;
}

/** RFC 5952 text: the longest run of two or more zero words as `::`. */
function compressV6(w: readonly number[]): string {
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (w[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && w[j] === 0) j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = w.map((x) => x.toString(16));
  if (best < 0) return hex.join(':');
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`;
}

/** What recording one failed login did. */
export interface FailureCount {
  /** Failures inside the window, this one included (the count that reached the limit when banned). */
  readonly count: number;
  /** This failure reached the limit: the client is banned from now on for banMs. */
  readonly banned: boolean;
}

interface Entry {
  /** Times (ms) of the failures inside the window, oldest first; at most limit - 1 of them are kept. */
  times: number[];
  /** The ban ends at this time (ms); 0: not banned. */
  bannedUntil: number;
}

/**
 * One process's memory of failed logins (stateStore = "memory"): per key, the
 * failure times inside a sliding window, and the end of a ban. Bounded: at
 * most maxAddresses keys (a flood of addresses, e.g. IPv4 spoofed through a
 * trusted proxy, cannot grow it), the key whose last failure is oldest evicted first;
 * per key at most limit times (reaching the limit bans and forgets them). A
 * key whose failures and ban are over is dropped when next touched.
 */
export class FailureWindow {
  /** Insertion order is touch order (a touched key is re-inserted): the first key is the oldest. */
  private readonly entries = new Map<string, Entry>();

  constructor(
    private readonly limit: number,
    private readonly windowMs: number,
    private readonly banMs: number,
    private readonly maxAddresses: number,
  ) {}

  get size(): number {
    return this.entries.size;
  }

  /** Is key banned at time now? */
  banned(key: string, now: number): boolean {
    const e = this.entries.get(key);
    if (!e) return false;
    if (e.bannedUntil > now) return true;
    this.prune(key, e, now);
    return false;
  }

  /** Records a failed login of key at time now. */
  failed(key: string, now: number): FailureCount {
    const e = this.entries.get(key) ?? { times: [], bannedUntil: 0 };
    // A failure during a ban (a session that was already open) counts toward the next one.
    const from = now - this.windowMs;
    let drop = 0;
    while (drop < e.times.length && e.times[drop]! <= from) drop++;
    if (drop > 0) e.times.splice(0, drop);
    e.times.push(now);
    const count = e.times.length;
    const banned = count >= this.limit;
    if (banned) {
      e.bannedUntil = now + this.banMs;
      e.times = [];
    }
    this.touch(key, e);
    return { count, banned };
  }

  private touch(key: string, e: Entry): void {
    this.entries.delete(key);
    this.entries.set(key, e);
    while (this.entries.size > this.maxAddresses) {
      const oldest = this.entries.keys().next().value as string;
      this.entries.delete(oldest);
    }
  }

  /** Forgets key when nothing of it is left at now (failures out of the window, ban over). */
  private prune(key: string, e: Entry, now: number): void {
    const last = e.times.length > 0 ? e.times[e.times.length - 1]! : -Infinity;
    if (e.bannedUntil <= now && last <= now - this.windowMs) this.entries.delete(key);
  }
}
