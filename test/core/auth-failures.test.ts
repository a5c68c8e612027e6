import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseStateStore, resolveAuthFailures } from '../../src/config-auth.js';
import { buildConfig } from '../../src/config.js';
import { banKey, FailureWindow } from '../../src/core/auth-failures.js';

describe('banKey: the bucket a client address counts in', () => {
  it.each([
    ['192.0.2.7', 64, '192.0.2.7'],
    ['::ffff:192.0.2.7', 64, '192.0.2.7'],
    ['::FFFF:192.0.2.7', 64, '192.0.2.7'],
    ['::ffff:c000:207', 64, '192.0.2.7'],
    ['0:0:0:0:0:ffff:c000:0207', 64, '192.0.2.7'],
    ['2001:db8:1:2:3:4:5:6', 64, '2001:db8:1:2::/64'],
    ['2001:DB8:1:2::9', 64, '2001:db8:1:2::/64'],
    ['2001:db8:1:2:ffff:ffff:ffff:ffff', 64, '2001:db8:1:2::/64'],
    ['2001:db8:1:3::1', 64, '2001:db8:1:3::/64'],
    ['2001:db8:1:2ff::1', 56, '2001:db8:1:200::/56'],
    ['2001:db8:1:2::9', 48, '2001:db8:1::/48'],
    ['2001:db8:1:2:3:4:5:6', 128, '2001:db8:1:2:3:4:5:6/128'],
    ['2001:db8::1:2:3:4', 127, '2001:db8::1:2:3:4/127'],
    ['2001:db8::1:2:3:5', 127, '2001:db8::1:2:3:4/127'],
    ['::1', 64, '::/64'],
    ['fe80::1', 64, 'fe80::/64'],
    ['1:2:3:4:5:6:1.2.3.4', 128, '1:2:3:4:5:6:102:304/128'],
  ])('%s /%i → %s', (addr, prefix, key) => {
    expect(banKey(addr, prefix)).toBe(key);
  });

  it('clients without an IP address are never counted', () => {
    for (const a of ['stdin', 'unknown', 'unix', 'local', '']) expect(banKey(a, 64)).toBeNull();
  });

  it('property: every address of one /64 has one key, another /64 another', () => {
    const word = fc.integer({ min: 0, max: 0xffff });
    fc.assert(
      fc.property(fc.array(word, { minLength: 8, maxLength: 8 }), fc.array(word, { minLength: 4, maxLength: 4 }), (w, low) => {
        if (w.slice(0, 5).every((x) => x === 0) && w[5] === 0xffff) return; // v4-mapped: IPv4
        const a = w.map((x) => x.toString(16)).join(':');
        const b = [...w.slice(0, 4), ...low].map((x) => x.toString(16)).join(':');
        expect(banKey(a, 64)).toBe(banKey(b, 64));
        const c = [...w.slice(0, 3), (w[3]! + 1) & 0xffff, ...low].map((x) => x.toString(16)).join(':');
        expect(banKey(c, 64)).not.toBe(banKey(a, 64));
      }),
    );
  });
});

describe('FailureWindow: a sliding window per key, on fake time', () => {
  const S = 1000;
  it('N failures within the window ban for banTime, then the ban is over', () => {
    const w = new FailureWindow(3, 600 * S, 900 * S, 100);
    expect(w.failed('a', 0)).toEqual({ count: 1, banned: false });
    expect(w.failed('a', 10 * S)).toEqual({ count: 2, banned: false });
    expect(w.banned('a', 11 * S)).toBe(false);
    expect(w.failed('a', 20 * S)).toEqual({ count: 3, banned: true });
    expect(w.banned('a', 20 * S)).toBe(true);
    expect(w.banned('a', 20 * S + 900 * S - 1)).toBe(true);
    expect(w.banned('b', 20 * S)).toBe(false);
    expect(w.banned('a', 20 * S + 900 * S)).toBe(false);
    // The ban forgot the failures that made it: the next ban needs N new ones.
    expect(w.failed('a', 921 * S)).toEqual({ count: 1, banned: false });
  });

  it('the window slides: a failure older than the window no longer counts', () => {
    const w = new FailureWindow(3, 600 * S, 900 * S, 100);
    w.failed('a', 0);
    w.failed('a', 300 * S);
    // At 600 s the first is exactly window old: out.
    expect(w.failed('a', 600 * S)).toEqual({ count: 2, banned: false });
    expect(w.failed('a', 650 * S)).toEqual({ count: 3, banned: true });
  });

  it('a key whose failures are out of the window is forgotten (the map does not keep it)', () => {
    const w = new FailureWindow(3, 600 * S, 900 * S, 100);
    w.failed('a', 0);
    expect(w.size).toBe(1);
    expect(w.banned('a', 600 * S)).toBe(false);
    expect(w.size).toBe(0);
  });

  it('bounded: at most maxAddresses keys, the least recently touched forgotten first', () => {
    const w = new FailureWindow(2, 600 * S, 900 * S, 3);
    w.failed('a', 0);
    w.failed('b', 1);
    w.failed('c', 2);
    w.failed('a', 3); // a is now the newest: b is the oldest
    w.failed('d', 4);
    expect(w.size).toBe(3);
    expect(w.banned('a', 5)).toBe(true);
    // b was evicted: its one failure is gone.
    expect(w.failed('b', 6)).toEqual({ count: 1, banned: false });
    expect(w.size).toBe(3);
  });

  it('property: never more keys than the cap, never more times than the limit', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.integer({ min: 0, max: 50 }), fc.integer({ min: 0, max: 5000 })), { maxLength: 300 }), (events) => {
        const w = new FailureWindow(4, 1000, 2000, 10);
        let now = 0;
        for (const [k, dt] of events) {
          now += dt;
          const r = w.failed(`k${k}`, now);
          expect(r.count).toBeLessThanOrEqual(4);
          expect(r.banned).toBe(r.count === 4);
          expect(w.size).toBeLessThanOrEqual(10);
        }
      }),
    );
  });
});

describe('config: maxAuthFailures and the state store', () => {
  it('unset: nothing is counted; the defaults fill in when set', () => {
    expect(buildConfig(null, {}, { exec: 'cat' }).authFailures).toBeNull();
    const c = buildConfig(null, { maxAuthFailures: 3 }, { exec: 'cat' });
    expect(c.authFailures).toEqual({ limit: 3, windowMs: 600_000, banMs: 900_000, prefix6: 64, timeoutMs: 1000, store: { type: 'memory', maxAddresses: 100_000 } });
  });

  it('every key from a file', () => {
    const c = buildConfig(
      { maxAuthFailures: 5, authFailureWindow: 60, banTime: 120, banPrefix6: 48, stateStore: 'redis://127.0.0.1:6380/2', stateStoreTimeout: 2 },
      {},
      { exec: 'cat' },
    );
    expect(c.authFailures).toEqual({ limit: 5, windowMs: 60_000, banMs: 120_000, prefix6: 48, timeoutMs: 2000, store: { type: 'redis', host: '127.0.0.1', port: 6380, db: 2, url: 'redis://127.0.0.1:6380/2' } });
  });

  it('redis URLs', () => {
    expect(parseStateStore('redis://localhost', 1)).toMatchObject({ host: 'localhost', port: 6379, db: 0, url: 'redis://localhost:6379/0' });
    expect(parseStateStore('redis://[::1]:7000/3', 1)).toMatchObject({ host: '::1', port: 7000, db: 3, url: 'redis://[::1]:7000/3' });
    for (const bad of ['redis://', 'rediss://h:1', 'redis://h:0', 'redis://h:70000', 'redis://h:1/x', 'redis://:pw@h:1', 'redis://[::1', 'redis://[x]:1', 'redis://h h:1', 'memory2', 'redis://h:1/']) {
      expect(() => parseStateStore(bad, 1), bad).toThrow(expect.objectContaining({ code: 'PW_ERR_CONFIG_VALUE' }));
    }
  });

  it('a bad store is refused even without maxAuthFailures; ranges are checked', () => {
    expect(() => resolveAuthFailures({ stateStore: 'mysql://x', stateStoreMaxAddresses: 1, maxAuthFailures: null })).toThrow(expect.objectContaining({ code: 'PW_ERR_CONFIG_VALUE' }));
    expect(() => buildConfig(null, { maxAuthFailures: 0 }, { exec: 'cat' })).toThrow(expect.objectContaining({ code: 'PW_ERR_CONFIG_VALUE' }));
    expect(() => buildConfig(null, { banPrefix6: 129 }, { exec: 'cat' })).toThrow(expect.objectContaining({ code: 'PW_ERR_CONFIG_VALUE' }));
  });
});
