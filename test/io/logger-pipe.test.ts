import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MemorySink } from '../../src/log/logger.js';
import { LOG_BATCH_MS, LoggerPipeSink, MAX_PIPED_LOG_BYTES, PROBATION_MS } from '../../src/log/logger-pipe.js';

/**
 * The daemon's log pipe to logger(1) (src/log/logger-pipe.ts), with a stand-in
 * for logger(1) that records what it reads, or one that never reads, or one
 * that dies: what reaches it, in order and bounded, and where lines go when
 * it is gone. The real logger(1) into a real rsyslogd: test/e2e/syslog.test.ts.
 */
describe('LoggerPipeSink', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'pw-logpipe-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const until = async (cond: () => boolean, what: string) => {
    for (const end = Date.now() + 5000; !cond(); ) {
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  };

  it('writes every line with its <PRI> (facility * 8 + severity), in order, one line each; flush waits for the reader', async () => {
    const out = join(dir, 'out');
    let child!: import('node:child_process').ChildProcess;
    const sink = new LoggerPipeSink('mail', () => null, () => (child = spawn('sh', ['-c', `cat > '${out}'`], { stdio: ['pipe', 'ignore', 'ignore'] })));
    await new Promise((r) => child.once('spawn', r));
    sink.write('info', 'session open client=1.2.3.4');
    sink.write('warning', 'refused code=x');
    sink.write('err', 'two\nlines');
    for (let i = 0; i < 1000; i++) sink.write('debug', `line ${i}`);
    await sink.flush();
    const lines = readFileSync(out, 'latin1').split('\n');
    expect(lines.slice(0, 3)).toEqual(['<22>session open client=1.2.3.4', '<20>refused code=x', '<19>two lines']);
    expect(lines.slice(3, 1003)).toEqual(Array.from({ length: 1000 }, (_, i) => `<23>line ${i}`));
    expect(lines.slice(1003)).toEqual(['']);
  });

  it('lines of separate turns within LOG_BATCH_MS share one write; a lone line waits LOG_BATCH_MS at most', async () => {
    const out = join(dir, 'chunks');
    // A stand-in that notes the size of every read, once it is reading.
    const reader = `const fs = require('fs'); process.stdin.on('data', (d) => fs.appendFileSync(${JSON.stringify(out)}, d.length + '\\n')); process.stdout.write('ready\\n');`;
    let child!: import('node:child_process').ChildProcess;
    const sink = new LoggerPipeSink('daemon', () => null, () => (child = spawn(process.execPath, ['-e', reader], { stdio: ['pipe', 'pipe', 'ignore'] })));
    await new Promise((r) => child.stdout!.once('data', r));
    const line = 'z'.repeat(40);
    for (let i = 0; i < 20; i++) {
      sink.write('info', `${i} ${line}`);
      await new Promise((r) => setImmediate(r));
    }
    await until(() => existsSync(out) && readFileSync(out, 'latin1').split('\n').filter(Boolean).map(Number).reduce((a, b) => a + b, 0) >= 20 * 47, 'the 20 lines');
    const reads = readFileSync(out, 'latin1').split('\n').filter(Boolean);
    // One write for the batch (a reader may still split it); line by line it would be 20.
    expect(reads.length).toBeLessThanOrEqual(2);
    const t0 = Date.now();
    sink.write('info', 'alone');
    await until(() => readFileSync(out, 'latin1').split('\n').filter(Boolean).length > reads.length, 'the lone line');
    expect(Date.now() - t0).toBeLessThan(LOG_BATCH_MS + 200);
    // A warning (a refusal) or an error does not wait: it leaves at once, with what waited before it.
    sink.write('info', 'waits');
    expect(child.stdin!.writableCorked).toBe(1);
    sink.write('warning', 'refused');
    expect(child.stdin!.writableCorked).toBe(0);
    await sink.flush();
  });

  it('a reader that takes nothing: memory stays bounded, the rest is counted and dropped', async () => {
    const child = spawn('sleep', ['30'], { stdio: ['pipe', 'ignore', 'ignore'] });
    const instead = new MemorySink();
    const sink = new LoggerPipeSink('daemon', () => instead, () => child);
    const line = 'x'.repeat(200);
    for (let i = 0; i < 20_000; i++) sink.write('info', line);
    // 4 MB offered; what waits is the pipe's own buffer plus at most the bound and one line.
    expect(child.stdin!.writableLength).toBeLessThan(MAX_PIPED_LOG_BYTES + 300);
    child.kill('SIGKILL');
    await until(() => instead.lines.length > 0, 'the replacement');
    // Killed within PROBATION_MS of its start: the kept lines (at most 1000) go to syslog(3) again, then the count.
    expect(instead.lines[0]).toEqual({ severity: 'warning', message: 'logger(1) exited (SIGKILL) right after it started: logging through syslog(3) now; the last 1000 lines again' });
    expect(instead.lines.slice(1, 1001).every((l) => l.message === line)).toBe(true);
    expect(instead.lines[1001]!.message).toMatch(/^\d+ log lines dropped: syslog too slow$/);
    sink.write('notice', 'after');
    expect(instead.lines.at(-1)).toEqual({ severity: 'notice', message: 'after' });
    await sink.flush();
  });

  it('a reader that is slow for a while: once it drains, the count of dropped lines is logged after the kept ones', async () => {
    const out = join(dir, 'out');
    const sink = new LoggerPipeSink('daemon', () => null, () => spawn('sh', ['-c', `sleep 0.5; cat > '${out}'`], { stdio: ['pipe', 'ignore', 'ignore'] }));
    const line = 'y'.repeat(200);
    const n = 20_000;
    for (let i = 0; i < n; i++) sink.write('info', `${i} ${line}`);
    await until(() => existsSync(out) && readFileSync(out, 'latin1').includes('dropped'), 'the count');
    await sink.flush();
    const lines = readFileSync(out, 'latin1').split('\n').filter((l) => l !== '');
    const last = lines.at(-1)!;
    const m = /^<28>(\d+) log lines dropped: syslog too slow$/.exec(last);
    expect(m).not.toBeNull();
    const kept = lines.slice(0, -1);
    // The kept ones are the first ones, in order; kept + dropped = offered.
    expect(kept.map((l) => Number(l.slice(4, l.indexOf(' '))))).toEqual(Array.from({ length: kept.length }, (_, i) => i));
    expect(kept.length + Number(m![1])).toBe(n);
    expect(kept.length).toBeLessThan(n);
  });

  it('logger(1) dies: the next lines go to syslog(3), the first of them says so', async () => {
    const out = join(dir, 'out');
    const child = spawn('sh', ['-c', `cat > '${out}'`], { stdio: ['pipe', 'ignore', 'ignore'] });
    const instead = new MemorySink();
    const sink = new LoggerPipeSink('daemon', () => instead, () => child);
    sink.write('info', 'before');
    await until(() => existsSync(out) && readFileSync(out, 'latin1').includes('before'), 'the first line');
    // Past its probation: what it had is not sent again.
    await new Promise((r) => setTimeout(r, PROBATION_MS + 100));
    child.kill('SIGTERM');
    await until(() => instead.lines.length > 0, 'the replacement');
    sink.write('info', 'after');
    expect(instead.lines.map((l) => l.message)).toEqual(['logger(1) exited (SIGTERM); lines still in its pipe may be lost: logging through syslog(3) now', 'after']);
  });

  it('logger(1) exits right after it started (a logger without these options): no line is lost, the kept ones go to syslog(3)', async () => {
    const instead = new MemorySink();
    // Reads nothing, exits 1 at once, as a logger refusing --prio-prefix would.
    const sink = new LoggerPipeSink('daemon', () => instead, () => spawn('sh', ['-c', 'sleep 0.2; exit 1'], { stdio: ['pipe', 'ignore', 'ignore'] }));
    sink.write('notice', 'listening on 127.0.0.1:25');
    await new Promise((r) => setTimeout(r, 50));
    sink.write('info', 'session open');
    await until(() => instead.lines.length > 0, 'the replacement');
    sink.write('info', 'later');
    expect(instead.lines.map((l) => l.message)).toEqual([
      'logger(1) exited (exit 1) right after it started: logging through syslog(3) now; the last 2 lines again',
      'listening on 127.0.0.1:25',
      'session open',
      'later',
    ]);
  });

  it('logger(1) not on PATH, or no /bin/sh: every line through syslog(3), from the first; flush does not wait', async () => {
    for (const start of [() => 'logger(1) not found on PATH', () => spawn('/nonexistent/sh', [], { stdio: ['pipe', 'ignore', 'ignore'] })]) {
      const instead = new MemorySink();
      const sink = new LoggerPipeSink('daemon', () => instead, start);
      sink.write('err', 'cannot listen on 127.0.0.1:25');
      const t0 = Date.now();
      await sink.flush();
      expect(Date.now() - t0).toBeLessThan(1000);
      expect(instead.lines.map((l) => l.message).slice(-1)).toEqual(['cannot listen on 127.0.0.1:25']);
      expect(instead.lines[0]!.message).toMatch(/^logger\(1\) (not found on PATH|could not run \(ENOENT\)): logging through syslog\(3\) now/);
    }
  });

  it('a flush while syslog is too slow: the count of dropped lines is still written, last', async () => {
    const out = join(dir, 'out');
    let child!: import('node:child_process').ChildProcess;
    const sink = new LoggerPipeSink('daemon', () => null, () => (child = spawn('sh', ['-c', `sleep 0.3; cat > '${out}'`], { stdio: ['pipe', 'ignore', 'ignore'] })));
    await new Promise((r) => child.once('spawn', r));
    for (let i = 0; i < 5000; i++) sink.write('info', 'w'.repeat(200));
    await sink.flush();
    const lines = readFileSync(out, 'latin1').split('\n').filter(Boolean);
    expect(lines.at(-1)).toMatch(/^<28>\d+ log lines dropped: syslog too slow$/);
  });

  it('abandon(): a logger(1) stuck on syslog is killed, not left behind', async () => {
    const sink = new LoggerPipeSink('daemon', () => null);
    const child = (sink as unknown as { child: import('node:child_process').ChildProcess }).child;
    await new Promise((r) => child.once('spawn', r));
    sink.abandon();
    await until(() => child.signalCode === 'SIGKILL', 'the kill');
  });

  it('logger(1) cannot start: syslog(3) from the first line', async () => {
    const instead = new MemorySink();
    const sink = new LoggerPipeSink('daemon', () => instead, () => spawn('/nonexistent/logger', [], { stdio: ['pipe', 'ignore', 'ignore'] }));
    await until(() => instead.lines.length > 0, 'the replacement');
    sink.write('info', 'one');
    expect(instead.lines.map((l) => l.message)).toEqual(['logger(1) could not run (ENOENT): logging through syslog(3) now', 'one']);
  });

  it('the real logger(1) ignores SIGTERM: a unit stop that signals every process leaves it to finish the daemon\'s last lines', async () => {
    const instead = new MemorySink();
    const sink = new LoggerPipeSink('daemon', () => instead);
    const child = (sink as unknown as { child: import('node:child_process').ChildProcess }).child;
    await new Promise((r) => child.once('spawn', r));
    // sh has exec'd logger by the time it reads: give it a moment, then signal it as systemd would.
    await new Promise((r) => setTimeout(r, 200));
    child.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 200));
    expect(child.exitCode).toBeNull();
    expect(child.signalCode).toBeNull();
    expect(instead.lines).toEqual([]);
    await sink.flush();
    expect(child.exitCode !== null || child.signalCode !== null).toBe(true);
  });
});
