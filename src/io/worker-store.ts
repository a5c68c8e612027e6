import type { AuthFailureSettings, FailureCount } from '../core/auth-failures.js';
import type { Logger } from '../log/logger.js';
import { MemoryStateStore, type StateStore } from './auth-gate.js';

/**
 * stateStore = "memory" with workers: the counts live in the primary (one
 * MemoryStateStore per distinct setting), so that failed logins spread over
 * the workers by round robin ban the client on every worker. A worker asks
 * over the cluster's IPC channel and waits at most stateStoreTimeout, like
 * the Redis store: a primary that does not answer means no ban (fail open).
 */

/** A request from a worker. */
interface StoreRequest {
  readonly pw: 'store';
  readonly id: number;
  readonly op: 'banned' | 'failed';
  readonly settings: AuthFailureSettings;
  readonly key: string;
}

/** The primary's answer. */
interface StoreReply {
  readonly pw: 'store';
  readonly id: number;
  readonly banned?: boolean;
  readonly count?: FailureCount;
}

/** Most questions a worker has waiting on the primary; past it one fails open at once. */
export const MAX_PENDING_STORE_REQUESTS = 4096;

/** The IPC channel of a worker (process.send and its 'message' events). */
export interface IpcChannel {
  send(msg: unknown): boolean;
  on(event: 'message', f: (msg: unknown) => void): void;
}

interface Waiting {
  readonly resolve: (r: StoreReply) => void;
  readonly timer: NodeJS.Timeout;
}

/** The questions waiting on one channel (a worker has one: process), shared by its stores. */
const waitingOn = new WeakMap<IpcChannel, Map<number, Waiting>>();
let nextId = 1;

function waitingFor(channel: IpcChannel): Map<number, Waiting> {
  let pending = waitingOn.get(channel);
  if (!pending) {
    const mine = new Map<number, Waiting>();
    channel.on('message', (m) => {
      const r = m as StoreReply;
      if (r?.pw !== 'store') return;
      const p = mine.get(r.id);
      if (!p) return;
      mine.delete(r.id);
      clearTimeout(p.timer);
      p.resolve(r);
    });
    waitingOn.set(channel, mine);
    pending = mine;
  }
  return pending;
}

/** A worker's StateStore: each question goes to the primary. */
export class WorkerStateStore implements StateStore {
  private readonly pending: Map<number, Waiting>;
  /** The outage is logged once, and its end once. */
  private down = false;

  constructor(
    private readonly settings: AuthFailureSettings,
    private readonly log: Logger,
    private readonly channel: IpcChannel,
  ) {
    this.pending = waitingFor(channel);
  }

  async banned(key: string): Promise<boolean> {
    return (await this.ask('banned', key)).banned === true;
  }

  async failed(key: string): Promise<FailureCount> {
    const c = (await this.ask('failed', key)).count;
    if (!c) throw new Error('no count in the answer');
    return c;
  }

  close(): void {}

  private ask(op: StoreRequest['op'], key: string): Promise<StoreReply> {
    const pending = this.pending;
    if (pending.size >= MAX_PENDING_STORE_REQUESTS) return Promise.reject(this.outage(`${pending.size} questions waiting`));
    const id = nextId++;
    return new Promise<StoreReply>((resolve, reject) => {
      const timer = setTimeout(() => {
        pending.delete(id);
        reject(this.outage(`no answer within ${this.settings.timeoutMs} ms (stateStoreTimeout)`));
      }, this.settings.timeoutMs);
      pending.set(id, {
        timer,
        resolve: (r) => {
          if (this.down) {
            this.down = false;
            this.log.log('notice', 'state store memory (primary) answers again');
          }
          resolve(r);
        },
      });
      const req: StoreRequest = { pw: 'store', id, op, settings: this.settings, key };
      let sent = false;
      try {
        sent = this.channel.send(req);
      } catch {
        sent = false;
      }
      // send() returns false when the channel's queue is backed up: the message still goes.
      if (!sent && !process.connected) {
        pending.delete(id);
        clearTimeout(timer);
        reject(this.outage('the channel to the primary is closed'));
      }
    });
  }

  private outage(why: string): Error {
    if (!this.down) {
      this.down = true;
      this.log.log('err', `state store memory (primary) unavailable, failed logins not counted: ${why}`);
    }
    return new Error(why);
  }
}

/** Most distinct settings the primary keeps a store for (a reload may change them; the oldest goes). */
const MAX_STORES = 64;

/**
 * The primary's side: answers every worker's questions from one
 * MemoryStateStore per setting, kept across reloads while the setting stays.
 */
export class PrimaryStores {
  private readonly stores = new Map<string, MemoryStateStore>();

  /** Answers one message of a worker, if it is a store question; false otherwise. */
  handle(msg: unknown, reply: (r: StoreReply) => void): boolean {
    const q = msg as StoreRequest;
    if (q?.pw !== 'store' || typeof q.key !== 'string' || typeof q.id !== 'number') return false;
    const store = this.storeFor(q.settings);
    const answer =
      q.op === 'banned' ? store.banned(q.key).then((banned) => ({ pw: 'store' as const, id: q.id, banned })) : store.failed(q.key).then((count) => ({ pw: 'store' as const, id: q.id, count }));
    void answer.then(reply);
    return true;
  }

  private storeFor(s: AuthFailureSettings): MemoryStateStore {
    const k = JSON.stringify(s);
    let st = this.stores.get(k);
    if (!st) {
      if (this.stores.size >= MAX_STORES) this.stores.delete(this.stores.keys().next().value!);
      const maxAddresses = s.store.type === 'memory' ? s.store.maxAddresses : 1;
      st = new MemoryStateStore(s, maxAddresses);
      this.stores.set(k, st);
    }
    return st;
  }
}
