import { banKey, FailureWindow, type AuthFailureSettings, type FailureCount } from '../core/auth-failures.js';
import type { LogFields } from '../log/event.js';
import type { Logger } from '../log/logger.js';
import type { IpcChannel } from './worker-store.js';

/**
 * Where the failure counts live (stateStore). "memory": this process
 * (standalone mode, all its sessions); "redis://…": one Redis that every
 * process and every machine share (redis-store.ts, loaded only then).
 * A store that cannot answer rejects: the gate then fails open.
 */
export interface StateStore {
  /** Is this bucket banned now? */
  banned(key: string): Promise<boolean>;
  /** One failed login of this bucket. */
  failed(key: string): Promise<FailureCount>;
  /** Lets go of connections. */
  close(): void;
}

/** stateStore = "memory": a FailureWindow on this process's clock. */
export class MemoryStateStore implements StateStore {
  private readonly window: FailureWindow;
  constructor(
    s: AuthFailureSettings,
    maxAddresses: number,
    private readonly now: () => number = Date.now,
  ) {
    this.window = new FailureWindow(s.limit, s.windowMs, s.banMs, maxAddresses);
  }
  banned(key: string): Promise<boolean> {
    return Promise.resolve(this.window.banned(key, this.now()));
  }
  failed(key: string): Promise<FailureCount> {
    return Promise.resolve(this.window.failed(key, this.now()));
  }
  close(): void {}
}

/**
 * The ban gate the shell asks before it dials the server, and tells of each
 * failed login (maxAuthFailures). It never blocks a session beyond the
 * store's bound and never fails one: a store that does not answer means no
 * ban (fail open); the store itself logs the outage, once.
 */
export class AuthGate {
  /** Failures being written: an inetd process waits for them (bounded by the store) before it exits. */
  private readonly inFlight = new Set<Promise<void>>();

  constructor(
    readonly settings: AuthFailureSettings,
    private readonly store: StateStore,
    private readonly log: Logger,
  ) {}

  /** True when the client's bucket is banned: its connection is refused before the server is dialled. */
  async isBanned(address: string): Promise<boolean> {
    const key = banKey(address, this.settings.prefix6);
    if (key === null) return false;
    try {
      return await this.store.banned(key);
    } catch {
      return false;
    }
  }

  /** A failed login of this client (tag: the session's fields, client, protocol and session id). */
  failed(address: string, tag: LogFields): void {
    const key = banKey(address, this.settings.prefix6);
    if (key === null) return;
    const p = this.store.failed(key).then(
      (r) => {
        if (r.banned) {
          const s = this.settings;
          this.log.event('warning', 'banning', { ...tag, reason: `${r.count} failed logins within ${s.windowMs / 1000} s (maxAuthFailures)`, detail: `key=${key}`, message: `new connections refused for ${s.banMs / 1000} s` });
        }
      },
      () => {},
    );
    this.inFlight.add(p);
    void p.finally(() => this.inFlight.delete(p));
  }

  /** Resolves when the failures being written are written (or failed: each is bounded by the store's timeout). */
  async settle(): Promise<void> {
    await Promise.all([...this.inFlight]);
  }

  /** settle(), then the store is closed. */
  async close(): Promise<void> {
    await this.settle();
    this.store.close();
  }
}

/**
 * The gate for these settings; the Redis client is loaded only when the
 * store is Redis. primary: a worker's channel to the cluster primary, which
 * holds the memory store for every worker (worker-store.ts); null: this
 * process holds it.
 */
export async function openAuthGate(s: AuthFailureSettings, log: Logger, inetd: boolean, primary: IpcChannel | null = null): Promise<AuthGate> {
  const spec = s.store;
  switch (spec.type) {
    case 'memory': {
      if (!primary) return new AuthGate(s, new MemoryStateStore(s, spec.maxAddresses), log);
      const { WorkerStateStore } = await import('./worker-store.js');
      return new AuthGate(s, new WorkerStateStore(s, log, primary), log);
    }
    case 'redis': {
      const { RedisStateStore } = await import('./redis-store.js');
      return new AuthGate(s, new RedisStateStore(s, spec, log, inetd), log);
    }
    default: {
      const never: never = spec;
      throw new Error(`unknown state store ${JSON.stringify(never)}`);
    }
  }
}
