import { spawn } from 'node:child_process';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tcpClient } from '../helpers/client.js';
import { startRecorder, type Recorder } from '../helpers/recorder.js';
import { runPiped, startStandalone, waitFor, WRAPPER } from '../helpers/wrapper.js';

function vmRss(pid: number): number {
  try {
    const s = readFileSync(`/proc/${pid}/status`, 'utf8');
    return Number(/VmRSS:\s+(\d+)/.exec(s)?.[1] ?? 0) * 1024;
  } catch {
    return 0;
  }
}

describe('session shell: relay, half-close, limits', () => {
  let rec: Recorder;
  beforeAll(async () => {
    rec = await startRecorder({ banner: '+OK ready\r\n' });
  });
  afterAll(() => rec.close());

  it('standalone: half-close delivers everything accepted, then the server answer after EOF reaches the client', async () => {
    // A server that answers only once the client side is closed: proves half-close in both directions.
    const got: Buffer[] = [];
    const srv = createServer({ allowHalfOpen: true }, (s: Socket) => {
      s.on('data', (b) => got.push(b));
      s.on('end', () => s.end(`got ${Buffer.concat(got).length} bytes\r\n`));
    });
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
    const w = await startStandalone(['--connect', `127.0.0.1:${(srv.address() as AddressInfo).port}`]);
    try {
      const c = await tcpClient(w.port);
      c.sock.end('one\r\ntwo\r\n');
      await c.closed;
      expect(Buffer.concat(got).toString()).toBe('one\r\ntwo\r\n');
      expect(c.received().toString()).toBe('got 10 bytes\r\n');
    } finally {
      await w.stop();
      srv.close();
    }
  });

  it('standalone: lines arrive byte for byte and in order for any chunking (property, real sockets)', async () => {
    // Lines starting with BAD are refused; every other line must arrive unchanged and in order,
    // also when refused and accepted lines share one chunk (accepted runs are written coalesced).
    const w = await startStandalone(['--connect', `127.0.0.1:${rec.port}`, '--max-line-length', '64', '--deny', '^BAD', '--max-violations', '1000']);
    try {
      await fc.assert(
        fc.asyncProperty(
          fc.array(fc.tuple(fc.oneof(fc.stringMatching(/^[ -~]{0,60}$/), fc.constant('BAD line')), fc.constantFrom('\r\n', '\n')), { minLength: 1, maxLength: 20 }),
          fc.array(fc.nat(2000), { maxLength: 6 }),
          async (lines, cuts) => {
            const input = Buffer.from(lines.map(([t, e]) => t + e).join(''), 'latin1');
            const expected = Buffer.from(lines.filter(([t]) => !t.startsWith('BAD')).map(([t, e]) => t + e).join(''), 'latin1');
            const before = rec.received().length;
            const c = await tcpClient(w.port);
            let prev = 0;
            for (const cut of [...cuts.map((x) => x % (input.length + 1))].sort((a, b) => a - b)) {
              c.sock.write(input.subarray(prev, Math.max(prev, cut)));
              prev = Math.max(prev, cut);
              await new Promise((r) => setTimeout(r, 1));
            }
            c.sock.end(input.subarray(prev));
            await c.closed;
            await waitFor(() => rec.received().length > before, 'recorder connection');
            await waitFor(() => rec.received()[before]!.length >= expected.length, 'all bytes', 5000).catch(() => {});
            expect(rec.received()[before]!.toString('latin1')).toBe(expected.toString('latin1'));
          },
        ),
        { numRuns: 15 },
      );
    } finally {
      await w.stop();
    }
  });

  it('after --max-violations refused lines the connection is closed and nothing more is forwarded', async () => {
    const r = await runPiped(['--connect', `127.0.0.1:${rec.port}`, '--max-violations', '2', '--deny', '^BAD'], 'ok1\r\nBAD\r\nok2\r\nBAD\r\nok3\r\n');
    expect(r.code).toBe(0);
    await waitFor(() => rec.received().some((b) => b.toString().startsWith('ok1')), 'recorder data');
    const got = rec.received().find((b) => b.toString().startsWith('ok1'))!.toString();
    expect(got).toBe('ok1\r\nok2\r\n');
    expect(r.stderr).toMatch(/closing client=stdin protocol=generic session=[0-9a-f]{12}: 2 refused lines/);
    expect(r.stderr).toMatch(/end=too_many_violations/);
  });

  it('--log-format json: every stderr line is one JSON object with the stable fields, the same session id on each; text and JSON say the same', async () => {
    const args = ['--exec', 'cat', '--log-level', '1', '--max-violations', '2'];
    const input = 'ok1\r\nbad\0one\r\nok2\r\nbad\0two\r\n';
    const json = await runPiped([...args, '--log-format', 'json'], input);
    const text = await runPiped(args, input);
    expect(json.stdout.toString()).toBe('ok1\r\nok2\r\n');
    expect(text.stdout.toString()).toBe('ok1\r\nok2\r\n');
    const lines = json.stderr.split('\n').filter((l) => l !== '');
    const events = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    for (const e of events) {
      expect(Object.keys(e).slice(0, 4)).toEqual(['time', 'severity', 'event', 'session']);
      expect(new Date(e['time'] as string).toISOString()).toBe(e['time']);
      expect(e).toMatchObject({ session: events[0]!['session'], client: 'stdin', protocol: 'generic' });
    }
    expect(events[0]!['session']).toMatch(/^[0-9a-f]{12}$/);
    expect(events.map((e) => e['event'])).toEqual(['session_open', 'refused', 'refused', 'closing', 'server_exited', 'session_close']);
    expect(events.filter((e) => e['event'] === 'refused').map((e) => e['line'])).toEqual(['bad\\x00one', 'bad\\x00two']);
    expect(events.find((e) => e['event'] === 'session_close')).toMatchObject({ end: 'too_many_violations', refused: 2 });
    // The text form has a line for each event, with the same session id on every one.
    const textLines = text.stderr.split('\n').filter((l) => l !== '');
    expect(textLines.length).toBe(lines.length);
    const ids = new Set(textLines.map((l) => / session=([0-9a-f]{12})(?::|$)/.exec(l)?.[1]));
    expect(ids.size).toBe(1);
    expect([...ids][0]).toMatch(/^[0-9a-f]{12}$/);
    expect(textLines.filter((l) => l.includes(' refused client=stdin ')).map((l) => / line="([^"]*)"/.exec(l)?.[1])).toEqual(['bad\\x00one', 'bad\\x00two']);
  });

  it('idle timeout closes both sides', async () => {
    const child = spawn(process.execPath, [WRAPPER, '--log-stderr', '--exec', 'sleep 30', '--idle-timeout', '1'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let err = '';
    child.stderr.on('data', (b) => (err += b));
    const code = await new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
    expect(code).toBe(0);
    expect(err).toMatch(/closing client=stdin protocol=generic session=[0-9a-f]{12}: idle for 1 s/);
    expect(err).toMatch(/end=idle_timeout/);
    child.stdin.destroy();
  });

  it('session timeout closes a busy session', async () => {
    const child = spawn(process.execPath, [WRAPPER, '--log-stderr', '--exec', 'cat', '--session-timeout', '1', '--idle-timeout', '60'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let err = '';
    child.stderr.on('data', (b) => (err += b));
    child.stdout.resume();
    // A tick between the wrapper closing its stdin and its exit event writes to a closed pipe.
    child.stdin.on('error', () => {});
    const tick = setInterval(() => child.stdin.write('keepalive\r\n'), 100);
    const code = await new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
    clearInterval(tick);
    expect(code).toBe(0);
    expect(err).toMatch(/end=session_timeout/);
  });

  it('a spawned server\'s stderr goes to the log, never to the client', async () => {
    const r = await runPiped(['--exec', `sh -c 'echo secret-diag >&2; echo banner'`], '');
    expect(r.stdout.toString()).toBe('banner\n');
    expect(r.stderr).toMatch(/server stderr client=stdin protocol=generic session=[0-9a-f]{12}: secret-diag/);
  });

  it('IPv6: listens on ::1 and dials a server on ::1; a unix socket server works too', async () => {
    const srv6 = createServer((s) => s.end('v6 hello\r\n'));
    await new Promise<void>((r) => srv6.listen(0, '::1', () => r()));
    const dir = mkdtempSync(join(tmpdir(), 'pw-unix-'));
    const path = join(dir, 's.sock');
    const srvU = createServer((s) => s.end('unix hello\r\n'));
    await new Promise<void>((r) => srvU.listen(path, () => r()));
    try {
      const a = await runPiped(['--connect', `[::1]:${(srv6.address() as AddressInfo).port}`], '');
      expect(a.stdout.toString()).toBe('v6 hello\r\n');
      const b = await runPiped(['--connect', `unix:${path}`], '');
      expect(b.stdout.toString()).toBe('unix hello\r\n');
    } finally {
      srv6.close();
      srvU.close();
    }
  });

  it('standalone: the client address is in every log line, v4-mapped shown as IPv4', async () => {
    const w = await startStandalone(['--connect', `127.0.0.1:${rec.port}`, '--deny', '^X']);
    try {
      const c = await tcpClient(w.port);
      await c.waitFor('+OK ready');
      c.sock.end('X\r\n');
      await c.closed;
      await waitFor(() => w.logs().includes('session close'), 'session close');
      const lines = w.logs().split('\n').filter((l) => /session|refused/.test(l));
      expect(lines.length).toBeGreaterThanOrEqual(3);
      for (const l of lines) expect(l).toContain('client=127.0.0.1 ');
    } finally {
      await w.stop();
    }
  });

  it('standalone: maxConnections bounds concurrent sessions', async () => {
    // maxConnections is a config-file key; use a file.
    const { writeFileSync } = await import('node:fs');
    const dir = mkdtempSync(join(tmpdir(), 'pw-max-'));
    writeFileSync(join(dir, 'c.toml'), 'maxConnections = 2\n');
    const w2 = await startStandalone(['-f', join(dir, 'c.toml'), '--connect', `127.0.0.1:${rec.port}`]);
    try {
      const a = await tcpClient(w2.port);
      const b = await tcpClient(w2.port);
      await a.waitFor('+OK');
      await b.waitFor('+OK');
      const c = await tcpClient(w2.port);
      await c.eof;
      expect(c.received().length).toBe(0);
      expect(w2.logs()).toMatch(/refused connection client=127\.0\.0\.1: 2 sessions open \(maxConnections\)/);
      a.sock.destroy();
      b.sock.destroy();
    } finally {
      await w2.stop();
    }
  });
});

describe('backpressure: memory stays flat', () => {
  it('a server flood to a client that does not read does not grow the wrapper', async () => {
    // The server writes 200 MB as fast as it can; the client reads nothing for a while.
    const chunk = Buffer.alloc(64 * 1024, 0x61);
    let sent = 0;
    const srv = createServer((s) => {
      const pump = () => {
        while (sent < 200 * 1024 * 1024) {
          sent += chunk.length;
          if (!s.write(chunk)) return void s.once('drain', pump);
        }
        s.end();
      };
      pump();
      s.on('error', () => {});
    });
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
    const w = await startStandalone(['--connect', `127.0.0.1:${(srv.address() as AddressInfo).port}`]);
    try {
      const c = await tcpClient(w.port);
      c.sock.pause();
      await new Promise((r) => setTimeout(r, 1500));
      const rss = vmRss(w.child.pid!);
      // Without backpressure the wrapper would have buffered the whole flood.
      expect(sent).toBeLessThan(50 * 1024 * 1024);
      expect(rss).toBeLessThan(150 * 1024 * 1024);
      c.sock.destroy();
    } finally {
      await w.stop();
      srv.close();
    }
  });

  it('a client flood to a server that does not read does not grow the wrapper', async () => {
    const socks: Socket[] = [];
    const srv = createServer((s) => {
      socks.push(s);
      s.pause();
    });
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
    const w = await startStandalone(['--connect', `127.0.0.1:${(srv.address() as AddressInfo).port}`]);
    try {
      const c = await tcpClient(w.port);
      const line = Buffer.from('x'.repeat(1000) + '\r\n');
      const block = Buffer.concat(Array.from({ length: 64 }, () => line));
      let written = 0;
      const deadline = Date.now() + 1500;
      while (Date.now() < deadline && written < 200 * 1024 * 1024) {
        if (c.sock.write(block)) written += block.length;
        else {
          written += block.length;
          await Promise.race([new Promise((r) => c.sock.once('drain', r)), new Promise((r) => setTimeout(r, 200))]);
        }
      }
      const rss = vmRss(w.child.pid!);
      expect(c.sock.writableLength).toBeGreaterThan(0); // the client is the one left holding the bytes
      expect(rss).toBeLessThan(150 * 1024 * 1024);
      c.sock.destroy();
    } finally {
      await w.stop();
      for (const s of socks) s.destroy();
      srv.close();
    }
  });
});
