import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { SessionTimers, type PhaseExpiry } from '../../src/io/session-timers.js';

const PHASES = { headMs: 20_000, idleMs: 75_000, minBodyRate: 100, windowMs: 10_000 };

describe('session phase deadlines (fake timers)', () => {
  let bytes = 0;
  let fired: PhaseExpiry[] = [];
  let t: SessionTimers;
  beforeEach(() => {
    vi.useFakeTimers();
    bytes = 0;
    fired = [];
    t = new SessionTimers(600_000, 3_600_000, PHASES, () => bytes);
    t.arm(() => {}, () => {}, (p) => fired.push(p));
  });
  afterEach(() => {
    t.clear();
    vi.useRealTimers();
  });

  it('head: fires once the whole head took longer than headerTimeout, not before', () => {
    t.phase('head');
    vi.advanceTimersByTime(19_999);
    expect(fired).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(fired).toEqual(['head']);
  });

  it('a phase change stops the previous deadline', () => {
    t.phase('head');
    vi.advanceTimersByTime(19_000);
    t.phase('busy');
    vi.advanceTimersByTime(100_000);
    expect(fired).toEqual([]);
    t.phase('idle');
    vi.advanceTimersByTime(75_000);
    expect(fired).toEqual(['idle']);
  });

  it('the same phase again does not restart its deadline', () => {
    t.phase('head');
    vi.advanceTimersByTime(15_000);
    t.phase('head');
    vi.advanceTimersByTime(5_000);
    expect(fired).toEqual(['head']);
  });

  it('body: a window at the rate passes, a slower one fires', () => {
    t.phase('body');
    bytes += 1000;
    vi.advanceTimersByTime(10_000);
    expect(fired).toEqual([]);
    bytes += 999;
    vi.advanceTimersByTime(10_000);
    expect(fired).toEqual(['body']);
  });

  it('body: a window in which the wrapper stopped reading (a slow server) owes nothing', () => {
    t.phase('body');
    t.excuse();
    vi.advanceTimersByTime(10_000);
    expect(fired).toEqual([]);
    vi.advanceTimersByTime(10_000);
    expect(fired).toEqual(['body']);
  });

  it('without phase timers (every other protocol) nothing fires', () => {
    const plain = new SessionTimers(600_000, 3_600_000);
    const seen: string[] = [];
    plain.arm(() => {}, () => {}, (p) => seen.push(p));
    plain.phase('head');
    vi.advanceTimersByTime(500_000);
    plain.clear();
    expect(seen).toEqual([]);
  });
});

describe('idle and total waits (one timer, fake timers)', () => {
  let got: string[] = [];
  let t: SessionTimers;
  beforeEach(() => {
    vi.useFakeTimers();
    got = [];
  });
  afterEach(() => {
    t.clear();
    vi.useRealTimers();
  });
  const start = (idleMs: number, sessionMs: number) => {
    t = new SessionTimers(idleMs, sessionMs);
    t.arm((quiet) => got.push(`idle ${quiet}`), () => got.push('session'));
  };
  /** Nothing has fired ms - 1 later; `what` fires on the next millisecond. */
  const firesAfter = (ms: number, what: string) => {
    vi.advanceTimersByTime(ms - 1);
    expect(got).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(got).toEqual([what]);
  };
  /** A client that sends something every 500 ms, n times. */
  const busy = (n: number) => {
    for (let i = 0; i < n; i++) {
      vi.advanceTimersByTime(500);
      t.touch();
    }
  };

  it('a quiet session ends at the idle timeout, to the millisecond', () => {
    start(1000, 10_000);
    firesAfter(1000, 'idle 1000');
  });

  it('activity moves the idle deadline: quiet is counted from the last byte', () => {
    start(1000, 10_000);
    vi.advanceTimersByTime(600);
    t.touch();
    firesAfter(1000, 'idle 1000');
  });

  it('a busy session ends at the session timeout, however active', () => {
    start(1000, 5000);
    busy(9);
    firesAfter(500, 'session');
  });

  it('a session timeout shorter than the idle one fires first on a quiet session', () => {
    start(10_000, 3000);
    firesAfter(3000, 'session');
  });

  it('a step of the wall clock (NTP, a resumed VM) moves neither deadline: both count elapsed time', () => {
    start(1000, 30_000);
    for (const step of [3_600_000, -7_200_000]) {
      vi.advanceTimersByTime(500);
      t.touch();
      vi.setSystemTime(Date.now() + step);
    }
    busy(57);
    firesAfter(500, 'session');
  });

  it('one Timeout per session, not two', () => {
    start(1000, 5000);
    expect(vi.getTimerCount()).toBe(1);
    t.clear();
    expect(vi.getTimerCount()).toBe(0);
  });
});
