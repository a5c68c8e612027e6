import { existsSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuthFailureSettings } from '../../src/core/auth-failures.js';
import { AuthGate } from '../../src/io/auth-gate.js';
import { OutageNotice, outageMarker, RedisStateStore } from '../../src/io/redis-store.js';
import { encodeCommand, parseReply, RespClient, RespFailure } from '../../src/io/resp-client.js';
import { Logger, MemorySink } from '../../src/log/logger.js';
import { redisCli, silentListener, startRedis, type Redis } from '../helpers/redis.js';
import { freePort, waitFor } from '../helpers/wrapper.js';

/**
 * The Redis store against a real redis-server: the hand-written RESP client,
 * the sliding-window script and its TTLs, two stores sharing one count, and
 * failing open (Redis down, killed, silent). Only a reply no real Redis
 * sends (oversized, malformed) comes from a fake listener.
 */

const settings = (over: Partial<AuthFailureSettings> = {}, port = 6379): AuthFailureSettings => ({
  limit: 3,
  windowMs: 600_000,
  banMs: 900_000,
  prefix6: 64,
  timeoutMs: 1000,
  store: { type: 'redis', host: '127.0.0.1', port, db: 0, url: `redis://127.0.0.1:${port}/0` },
  ...over,
});

function storeFor(s: AuthFailureSettings, inetd = false) {
  const sink = new MemorySink();
  const log = new Logger([sink], 1);
  if (s.store.type !== 'redis') throw new Error('redis only');
  const store = new RedisStateStore(s, s.store, log, inetd);
  return { store, sink, gate: new AuthGate(s, store, log) };
}

const lines = (sink: MemorySink, re: RegExp) => sink.lines.filter((l) => re.test(l.message));

describe('RESP replies: parsed whole, at every split', () => {
  const replies = Buffer.from('+OK\r\n-ERR wrong\r\n:42\r\n:-1\r\n$5\r\nhe\r\no\r\n$-1\r\n$0\r\n\r\n', 'latin1');
  const want = [
    { value: 'OK', error: null },
    { value: null, error: 'ERR wrong' },
    { value: 42, error: null },
    { value: -1, error: null },
    { value: 'he\r\no', error: null },
    { value: null, error: null },
    { value: '', error: null },
  ];
  it('every prefix parses to the complete replies in it and no more', () => {
    for (let cut = 0; cut <= replies.length; cut++) {
      const part = replies.subarray(0, cut);
      const got: unknown[] = [];
      let pos = 0;
      for (let r = parseReply(part, pos); r; r = parseReply(part, pos)) {
        got.push({ value: r.value, error: r.error });
        pos = r.next;
      }
      expect(want.slice(0, got.length)).toEqual(got);
      if (cut === replies.length) expect(got).toEqual(want);
    }
  });
  it('what is no reply this client reads throws', () => {
    for (const bad of ['*1\r\n:1\r\n', ':12a\r\n', '$-2\r\n', '$1\r\nab\r\n', '?\r\n', ':\r\n']) {
      expect(() => parseReply(Buffer.from(bad), 0), bad).toThrow();
    }
  });
  it('commands are arrays of bulk strings (binary-safe)', () => {
    expect(encodeCommand(['SET', 'k', 'a b\r\n', 7]).toString()).toBe('*4\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\na b\r\n\r\n$1\r\n7\r\n');
  });
});

describe('with a real redis-server', () => {
  let redis: Redis;
  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    await redis?.stop();
  });

  it('RespClient: strings, integers, nil, an error reply (the connection stays), pipelined in order', async () => {
    const c = new RespClient({ host: '127.0.0.1', port: redis.port, db: 0, timeoutMs: 5000 });
    try {
      const all = await Promise.all([c.command(['PING']), c.command(['SET', 'resp:k', 'v\r\nx']), c.command(['GET', 'resp:k']), c.command(['GET', 'resp:none']), c.command(['INCR', 'resp:n'])]);
      expect(all).toEqual(['PONG', 'OK', 'v\r\nx', null, 1]);
      await expect(c.command(['NOSUCHCOMMAND'])).rejects.toMatchObject({ kind: 'reply' });
      expect(await c.command(['INCR', 'resp:n'])).toBe(2);
    } finally {
      c.close();
    }
  });

  it('RespClient: /db selects the database; a database Redis does not have fails every command', async () => {
    const c3 = new RespClient({ host: '127.0.0.1', port: redis.port, db: 3, timeoutMs: 5000 });
    const c0 = new RespClient({ host: '127.0.0.1', port: redis.port, db: 0, timeoutMs: 5000 });
    const bad = new RespClient({ host: '127.0.0.1', port: redis.port, db: 99, timeoutMs: 5000 });
    try {
      await c3.command(['SET', 'resp:db', 'three']);
      expect(await c0.command(['GET', 'resp:db'])).toBeNull();
      expect(await redisCli(redis.port, '-n', '3', 'GET', 'resp:db')).toBe('three');
      await expect(bad.command(['PING'])).rejects.toMatchObject({ kind: 'connection' });
    } finally {
      c3.close();
      c0.close();
      bad.close();
    }
  });

  it('the store: N failures ban; both keys carry a TTL no longer than window and ban; the fail set is gone after the ban', async () => {
    const { store } = storeFor(settings({}, redis.port));
    try {
      expect(await store.failed('192.0.2.1')).toEqual({ count: 1, banned: false });
      const failTtl = Number(await redisCli(redis.port, 'PTTL', 'protowrap:fail:192.0.2.1'));
      expect(failTtl).toBeGreaterThan(0);
      expect(failTtl).toBeLessThanOrEqual(600_000);
      expect(await store.banned('192.0.2.1')).toBe(false);
      expect(await store.failed('192.0.2.1')).toEqual({ count: 2, banned: false });
      expect(await store.failed('192.0.2.1')).toEqual({ count: 3, banned: true });
      expect(await store.banned('192.0.2.1')).toBe(true);
      expect(await store.banned('192.0.2.2')).toBe(false);
      const banTtl = Number(await redisCli(redis.port, 'PTTL', 'protowrap:ban:192.0.2.1'));
      expect(banTtl).toBeGreaterThan(0);
      expect(banTtl).toBeLessThanOrEqual(900_000);
      expect(await redisCli(redis.port, 'EXISTS', 'protowrap:fail:192.0.2.1')).toBe('0');
    } finally {
      store.close();
    }
  });

  it('two stores (two processes, two machines) add up to one count', async () => {
    const a = storeFor(settings({}, redis.port)).store;
    const b = storeFor(settings({}, redis.port)).store;
    try {
      await a.failed('2001:db8::/64');
      await b.failed('2001:db8::/64');
      expect(await a.banned('2001:db8::/64')).toBe(false);
      expect(await b.failed('2001:db8::/64')).toEqual({ count: 3, banned: true });
      expect(await a.banned('2001:db8::/64')).toBe(true);
    } finally {
      a.close();
      b.close();
    }
  });

  it('the window slides on Redis time: a failure older than the window does not count', async () => {
    const { store } = storeFor(settings({ windowMs: 1000 }, redis.port));
    try {
      await store.failed('192.0.2.3');
      await store.failed('192.0.2.3');
      // Waiting longer than the window only makes the old failures older.
      await new Promise((r) => setTimeout(r, 1300));
      expect(await store.failed('192.0.2.3')).toEqual({ count: 1, banned: false });
    } finally {
      store.close();
    }
  });

  it('a ban ends by its TTL', async () => {
    const { store } = storeFor(settings({ limit: 1, banMs: 300 }, redis.port));
    try {
      expect(await store.failed('192.0.2.4')).toEqual({ count: 1, banned: true });
      await new Promise((r) => setTimeout(r, 600));
      expect(await store.banned('192.0.2.4')).toBe(false);
    } finally {
      store.close();
    }
  });

  it('Redis killed mid-run: fail open, one log line for the outage however many questions, one when it is back', async () => {
    const { gate, sink, store } = storeFor(settings({}, redis.port));
    try {
      await store.failed('192.0.2.5');
      await redis.kill();
      for (let i = 0; i < 5; i++) {
        expect(await gate.isBanned('192.0.2.5')).toBe(false);
        gate.failed('192.0.2.5', { client: '192.0.2.5', protocol: 'pop3' });
      }
      await gate.settle();
      expect(lines(sink, /unavailable/)).toHaveLength(1);
      expect(lines(sink, /unavailable/)[0]).toMatchObject({ severity: 'err' });
      expect(lines(sink, /unavailable/)[0]!.message).toMatch(/^state store redis:\/\/127\.0\.0\.1:\d+\/0 unavailable \(connection: [^)]+\): failing open/);
      await redis.start();
      expect(await gate.isBanned('192.0.2.5')).toBe(false);
      expect(lines(sink, /reachable again/)).toHaveLength(1);
      expect(lines(sink, /unavailable/)).toHaveLength(1);
    } finally {
      store.close();
    }
  });
});

describe('a Redis that never answers, or answers what no Redis sends', () => {
  it('each question fails after the timeout (fail open), one log line; the connection is dialled again afterwards', async () => {
    const silent = await silentListener();
    const s = settings({ timeoutMs: 300 }, silent.port);
    const { gate, sink, store } = storeFor(s);
    try {
      expect(await gate.isBanned('192.0.2.6')).toBe(false);
      expect(await gate.isBanned('192.0.2.6')).toBe(false);
      expect(silent.received()).toContain('EXISTS');
      // The second question dialled again (the first connection was dropped at its timeout).
      await waitFor(() => silent.connections() === 2, 'a second connection');
      expect(lines(sink, /unavailable/)).toHaveLength(1);
      expect(lines(sink, /unavailable/)[0]!.message).toContain('(timeout: no reply within 300 ms)');
    } finally {
      store.close();
      await silent.stop();
    }
  });

  it('bounded: at most maxPending commands wait; more fail at once', async () => {
    const silent = await silentListener();
    const c = new RespClient({ host: '127.0.0.1', port: silent.port, db: 0, timeoutMs: 10_000, maxPending: 4 });
    try {
      const waiting = [1, 2, 3, 4].map(() => c.command(['PING']));
      await expect(c.command(['PING'])).rejects.toMatchObject({ kind: 'busy' });
      c.close();
      for (const w of waiting) await expect(w).rejects.toBeInstanceOf(RespFailure);
    } finally {
      await silent.stop();
    }
  });

  it('bounded: a reply longer than maxReplyBytes drops the connection', async () => {
    const server: Server = createServer((s) => {
      s.on('error', () => {});
      s.once('data', () => s.write(`$1000000\r\n${'x'.repeat(70_000)}`));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const port = (server.address() as { port: number }).port;
    const c = new RespClient({ host: '127.0.0.1', port, db: 0, timeoutMs: 10_000 });
    try {
      await expect(c.command(['GET', 'x'])).rejects.toMatchObject({ kind: 'protocol', message: 'reply longer than 65536 bytes' });
    } finally {
      c.close();
      await new Promise((r) => server.close(r));
    }
  });

  it('Redis down from the start: ECONNREFUSED at once, no wait', async () => {
    const port = await freePort();
    const { gate, sink, store } = storeFor(settings({ timeoutMs: 30_000 }, port));
    try {
      // A refused connection fails the question at once (ECONNREFUSED, not the 30 s timeout).
      expect(await gate.isBanned('192.0.2.7')).toBe(false);
      expect(lines(sink, /unavailable \(connection: ECONNREFUSED\)/)).toHaveLength(1);
    } finally {
      store.close();
    }
  });
});

describe('OutageNotice in inetd mode: one marker file, one line per outage across processes', () => {
  it('the first process logs the outage, the others not; the first to reach the store again logs that', () => {
    const marker = outageMarker(`redis://test-${process.pid}-${Date.now()}:1/0`);
    rmSync(marker, { force: true });
    const sinks = [new MemorySink(), new MemorySink(), new MemorySink()];
    const notes = sinks.map((s) => new OutageNotice('state store X', new Logger([s], 1), marker));
    try {
      notes[0]!.down('connection: ECONNREFUSED');
      notes[1]!.down('connection: ECONNREFUSED');
      notes[2]!.down('connection: ECONNREFUSED');
      expect(sinks.map((s) => s.lines.length)).toEqual([1, 0, 0]);
      expect(existsSync(marker)).toBe(true);
      notes[1]!.up();
      notes[2]!.up();
      notes[0]!.up();
      expect(sinks.map((s) => s.lines.length)).toEqual([1, 1, 0]);
      expect(sinks[1]!.lines[0]!.message).toBe('state store X reachable again: failed logins are counted');
      expect(existsSync(marker)).toBe(false);
    } finally {
      rmSync(marker, { force: true });
    }
  });
});
