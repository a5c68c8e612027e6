import { closeSync, openSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AuthFailureSettings, FailureCount, StateStoreSpec } from '../core/auth-failures.js';
import type { Logger } from '../log/logger.js';
import { nodeCrypto } from './lazy-modules.js';
import type { StateStore } from './auth-gate.js';
import { RespClient, RespFailure } from './resp-client.js';

/**
 * stateStore = "redis://host:port[/db]": the failure counts in one Redis
 * that every wrapper process shares (each inetd process, each instance on
 * each machine). Loaded by auth-gate.ts only for a Redis store.
 *
 * Per bucket two keys, both with a TTL so that nothing outlives its window
 * or ban: `protowrap:fail:<bucket>`, a sorted set of failure times (a
 * sliding window: scored by Redis's own clock, so machines with different
 * clocks agree), and `protowrap:ban:<bucket>`, set with PX banTime once the
 * count reaches maxAuthFailures (the set is then deleted: at most
 * maxAuthFailures members). One Lua script does it atomically.
 */

const FAIL_SCRIPT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = tonumber(ARGV[1])
redis.call('ZADD', KEYS[1], now, ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local n = redis.call('ZCARD', KEYS[1])
if n >= tonumber(ARGV[2]) then
  redis.call('SET', KEYS[2], n, 'PX', tonumber(ARGV[3]))
  redis.call('DEL', KEYS[1])
else
  redis.call('PEXPIRE', KEYS[1], window)
end
return n
`;

export const KEY_PREFIX = 'protowrap:';

export class RedisStateStore implements StateStore {
  private readonly client: RespClient;
  private readonly outage: OutageNotice;
  /** Makes each failure a member of its own: pid, a counter and random bits (other machines have the same pids). */
  private seq = 0;

  constructor(
    private readonly s: AuthFailureSettings,
    spec: Extract<StateStoreSpec, { type: 'redis' }>,
    log: Logger,
    /** inetd mode: one process per session, so an outage is remembered in a marker file (see OutageNotice). */
    inetd: boolean,
  ) {
    this.client = new RespClient({ host: spec.host, port: spec.port, db: spec.db, timeoutMs: s.timeoutMs });
    this.outage = new OutageNotice(`state store ${spec.url}`, log, inetd ? outageMarker(spec.url) : null);
  }

  async banned(key: string): Promise<boolean> {
    return (await this.run(['EXISTS', `${KEY_PREFIX}ban:${key}`])) === 1;
  }

  async failed(key: string): Promise<FailureCount> {
    const member = `${process.pid}.${++this.seq}.${Math.random().toString(36).slice(2, 10)}`;
    const s = this.s;
    const n = await this.run(['EVAL', FAIL_SCRIPT, 2, `${KEY_PREFIX}fail:${key}`, `${KEY_PREFIX}ban:${key}`, s.windowMs, s.limit, s.banMs, member]);
    if (typeof n !== 'number') throw new RespFailure('protocol', 'the failure script returned no count');
    return { count: n, banned: n >= s.limit };
  }

  close(): void {
    this.client.close();
  }

  private async run(args: readonly (string | number)[]): Promise<string | number | null> {
    try {
      const v = await this.client.command(args);
      this.outage.up();
      return v;
    } catch (e) {
      this.outage.down(e instanceof RespFailure ? `${e.kind}: ${e.message}` : String(e));
      throw e;
    }
  }
}

/**
 * Logs an outage of the store once, and a line when it is back. Standalone:
 * once per process. inetd mode (a process per session): a marker file,
 * created with O_EXCL by the process that logs the outage and removed by
 * the first that reaches the store again (which logs that), so that a
 * Redis that is down is logged once, not once per connection.
 */
export class OutageNotice {
  private isDown = false;

  constructor(
    private readonly what: string,
    private readonly log: Logger,
    private readonly marker: string | null,
  ) {}

  down(reason: string): void {
    if (this.isDown) return;
    this.isDown = true;
    if (!this.claim()) return;
    this.log.log('err', `${this.what} unavailable (${reason}): failing open, failed logins are not counted and no client is refused until it is back`);
  }

  up(): void {
    if (this.marker === null) {
      if (!this.isDown) return;
      this.isDown = false;
      this.log.log('notice', `${this.what} reachable again: failed logins are counted`);
      return;
    }
    this.isDown = false;
    try {
      unlinkSync(this.marker);
    } catch {
      return; // ENOENT: no outage noted (or another process noted its end)
    }
    this.log.log('notice', `${this.what} reachable again: failed logins are counted`);
  }

  /** True when this process is the one to log the outage. */
  private claim(): boolean {
    if (this.marker === null) return true;
    try {
      closeSync(openSync(this.marker, 'wx', 0o600));
      return true;
    } catch (e) {
      // EEXIST: another process logged it. Anything else (no writable temp dir): log it here.
      return (e as NodeJS.ErrnoException).code !== 'EEXIST';
    }
  }
}

/** The marker of one store's outage: per user (the temp dir is shared) and per store URL. */
export function outageMarker(url: string): string {
  const uid = process.getuid?.() ?? 0;
  const h = nodeCrypto().createHash('sha256').update(url).digest('hex').slice(0, 16);
  return join(tmpdir(), `protowrap-${uid}-state-${h}.down`);
}
