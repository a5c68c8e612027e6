import { availableParallelism } from 'node:os';
import { describe, expect, it } from 'vitest';
import { buildConfig } from '../../src/config.js';
import { buildServices } from '../../src/services.js';
import type { AuthFailureSettings } from '../../src/core/auth-failures.js';
import { Logger, type LogSink } from '../../src/log/logger.js';
import { MAX_PENDING_STORE_REQUESTS, PrimaryStores, WorkerStateStore, type IpcChannel } from '../../src/io/worker-store.js';

const exec = { exec: 'cat' };

describe('workers (config)', () => {
  it('a count from TOML (an integer) or a flag (a string), auto = the cores; 1 by default', () => {
    expect(buildConfig(null, {}, exec).workers).toBe(1);
    expect(buildConfig({ workers: 3 }, {}, exec).workers).toBe(3);
    expect(buildConfig(null, { workers: '2' }, exec).workers).toBe(2);
    expect(buildConfig(null, { workers: 'auto' }, exec).workers).toBe(Math.min(64, availableParallelism()));
    expect(buildConfig({ workers: 8 }, { workers: '1' }, exec).workers).toBe(1);
  });

  it('--check shows auto with the count it resolved to', () => {
    const n = Math.min(64, availableParallelism());
    expect(buildConfig(null, { workers: 'auto' }, exec).effective.find((e) => e.key === 'workers')).toEqual({ key: 'workers', value: `auto (${n})`, source: 'flag' });
    expect(buildConfig({ workers: 2 }, {}, exec).effective.find((e) => e.key === 'workers')).toEqual({ key: 'workers', value: '2', source: 'file' });
  });

  it.each([0, 65, '02', 'many', '', -1, 1.5])('workers = %j is refused, naming the key', (w) => {
    expect(() => buildConfig({ workers: w }, {}, exec)).toThrow(/workers/);
  });

  it('one per process: the top level of a multi-service file, not a service table', () => {
    const top = buildServices({ workers: 2, service: [{ name: 'a', listen: '1110', exec: 'cat' }] }, {}, {});
    expect(top.services[0]!.workers).toBe(2);
    expect(() => buildServices({ service: [{ name: 'a', listen: '1110', exec: 'cat', workers: 2 }] }, {}, {})).toThrow(/workers.*top level/);
  });
});

const settings = (timeoutMs: number): AuthFailureSettings => ({ limit: 2, windowMs: 60_000, banMs: 60_000, prefix6: 64, store: { type: 'memory', maxAddresses: 100 }, timeoutMs });

function recordingLog(): { log: Logger; lines: string[] } {
  const lines: string[] = [];
  const sink: LogSink = { write: (sev, m) => lines.push(`${sev}: ${m}`), flush: () => Promise.resolve() };
  return { log: new Logger([sink], 1), lines };
}

/** A worker's channel wired to a PrimaryStores, as cluster's IPC would (answers come later, asynchronously). */
function wired(primary: PrimaryStores, deliver = true): IpcChannel & { sent: unknown[] } {
  const handlers: ((m: unknown) => void)[] = [];
  const sent: unknown[] = [];
  return {
    sent,
    send(msg) {
      sent.push(msg);
      if (deliver) primary.handle(JSON.parse(JSON.stringify(msg)), (r) => setImmediate(() => handlers.forEach((h) => h(JSON.parse(JSON.stringify(r))))));
      return true;
    },
    on(_e, f) {
      handlers.push(f);
    },
  };
}

describe('the memory store shared through the primary', () => {
  it('failures from two workers count in one window: the second bans the address for both', async () => {
    const primary = new PrimaryStores();
    const { log } = recordingLog();
    const a = new WorkerStateStore(settings(1000), log, wired(primary));
    const b = new WorkerStateStore(settings(1000), log, wired(primary));
    expect(await a.failed('192.0.2.1')).toMatchObject({ count: 1, banned: false });
    expect(await b.banned('192.0.2.1')).toBe(false);
    expect(await b.failed('192.0.2.1')).toMatchObject({ count: 2, banned: true });
    expect(await a.banned('192.0.2.1')).toBe(true);
    expect(await a.banned('192.0.2.2')).toBe(false);
    // Other settings: another count.
    const other = new WorkerStateStore({ ...settings(1000), limit: 5 }, log, wired(primary));
    expect(await other.banned('192.0.2.1')).toBe(false);
  });

  it('a primary that does not answer: rejected after stateStoreTimeout (the gate fails open), logged once', async () => {
    const { log, lines } = recordingLog();
    const s = new WorkerStateStore(settings(50), log, wired(new PrimaryStores(), false));
    await expect(s.banned('192.0.2.1')).rejects.toThrow(/within 50 ms/);
    await expect(s.failed('192.0.2.1')).rejects.toThrow(/within 50 ms/);
    expect(lines.filter((l) => l.includes('state store memory (primary) unavailable'))).toHaveLength(1);
  });

  it(`at most ${MAX_PENDING_STORE_REQUESTS} questions wait: the next is refused at once`, async () => {
    const { log } = recordingLog();
    const ch = wired(new PrimaryStores(), false);
    const s = new WorkerStateStore(settings(60_000), log, ch);
    const waiting = Array.from({ length: MAX_PENDING_STORE_REQUESTS }, () => s.banned('192.0.2.1').catch(() => 'timeout'));
    await expect(s.banned('192.0.2.1')).rejects.toThrow(/questions waiting/);
    expect(ch.sent).toHaveLength(MAX_PENDING_STORE_REQUESTS);
    void waiting;
  });
});
