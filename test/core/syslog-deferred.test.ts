import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { MemorySink, type LogSink, type Severity } from '../../src/log/logger.js';
import { DeferredSink, MAX_QUEUED_LOG_LINES, OPEN_DELAY_MS } from '../../src/log/syslog.js';

/** A sink whose flush settles only when the test says so, to see who waits for it. */
class SlowSink extends MemorySink {
  private release: (() => void) | null = null;
  flushes = 0;
  override flush(): Promise<void> {
    this.flushes++;
    return new Promise((r) => (this.release = r));
  }
  done(): void {
    this.release?.();
  }
}

describe('DeferredSink: syslog opened off the start-up path', () => {
  let opens: number;
  let inner: MemorySink;
  const open = (sink: MemorySink = new MemorySink()) => () => {
    opens++;
    inner = sink;
    return sink as LogSink;
  };
  const msgs = (s: MemorySink) => s.lines.map((l) => `${l.severity} ${l.message}`);

  beforeEach(() => {
    opens = 0;
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('opens the real sink OPEN_DELAY_MS after the first line, not before, once, with the lines in order', () => {
    const d = new DeferredSink(open());
    d.write('info', 'one');
    d.write('warning', 'two');
    vi.advanceTimersByTime(OPEN_DELAY_MS - 1);
    expect(opens).toBe(0);
    expect(d.isOpen).toBe(false);
    d.write('err', 'three');
    vi.advanceTimersByTime(1);
    expect(opens).toBe(1);
    expect(msgs(inner)).toEqual(['info one', 'warning two', 'err three']);
    d.write('debug', 'four');
    vi.advanceTimersByTime(10 * OPEN_DELAY_MS);
    expect(opens).toBe(1);
    expect(msgs(inner)).toEqual(['info one', 'warning two', 'err three', 'debug four']);
  });

  it('never opens syslog when nothing was logged, not even on flush', async () => {
    const d = new DeferredSink(open());
    await d.flush();
    vi.advanceTimersByTime(10 * OPEN_DELAY_MS);
    expect(opens).toBe(0);
  });

  it('flush before the delay (a configuration error, then exit) opens at once and waits for the real flush', async () => {
    const slow = new SlowSink();
    const d = new DeferredSink(open(slow));
    d.write('err', 'config: unknown key maxLineLenght');
    let flushed = false;
    const f = d.flush().then(() => (flushed = true));
    expect(opens).toBe(1);
    expect(msgs(slow)).toEqual(['err config: unknown key maxLineLenght']);
    await Promise.resolve();
    expect(flushed).toBe(false);
    slow.done();
    await f;
    expect(flushed).toBe(true);
    // The timer armed by the first line does not open a second sink.
    vi.advanceTimersByTime(10 * OPEN_DELAY_MS);
    expect(opens).toBe(1);
  });

  it('bounds the queue: past MAX_QUEUED_LOG_LINES lines are counted, dropped, and the count logged after the kept ones', () => {
    const d = new DeferredSink(open());
    const extra = 7;
    for (let i = 0; i < MAX_QUEUED_LOG_LINES + extra; i++) d.write('info', `line ${i}`);
    vi.advanceTimersByTime(OPEN_DELAY_MS);
    expect(inner.lines).toHaveLength(MAX_QUEUED_LOG_LINES + 1);
    expect(inner.lines[0]!.message).toBe('line 0');
    expect(inner.lines[MAX_QUEUED_LOG_LINES - 1]!.message).toBe(`line ${MAX_QUEUED_LOG_LINES - 1}`);
    expect(inner.lines.at(-1)).toEqual({ severity: 'warning' as Severity, message: `${extra} log lines dropped: syslog too slow` });
  });

  it('the timer does not keep the process alive (main flushes before every exit)', () => {
    vi.useRealTimers();
    const spy = vi.spyOn(globalThis, 'setTimeout');
    try {
      const d = new DeferredSink(open());
      d.write('info', 'x');
      const t = spy.mock.results[0]!.value as NodeJS.Timeout;
      expect(t.hasRef()).toBe(false);
      clearTimeout(t);
    } finally {
      spy.mockRestore();
    }
  });
});
