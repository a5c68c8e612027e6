import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { connect } from 'node:net';
import { startStandalone, waitFor, WRAPPER } from '../helpers/wrapper.js';

/** Runs the wrapper over pipes; the client writes `input` and reads its stdout slowly. */
function slowReader(args: readonly string[], input: Buffer, readDelayMs: number): Promise<{ out: number; err: string; code: number | null }> {
  return new Promise((res, rej) => {
    const child = spawn(process.execPath, [WRAPPER, '--log-stderr', '--log-level', '2', ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = 0;
    let err = '';
    child.stdout.on('data', (b: Buffer) => {
      out += b.length;
      child.stdout.pause();
      setTimeout(() => child.stdout.resume(), readDelayMs);
    });
    child.stderr.on('data', (b: Buffer) => (err += b.toString('latin1')));
    child.stdin.on('error', () => {});
    child.stdin.end(input);
    const t = setTimeout(() => {
      child.kill('SIGKILL');
      rej(new Error(`wrapper did not exit in time: ${err}`));
    }, 30_000);
    child.on('close', (code) => {
      clearTimeout(t);
      res({ out, err, code });
    });
  });
}

describe('core review: bytes, half-close, exits', () => {
  it('a spawned server that exits without reading its input still has all its output delivered (no loss on EPIPE)', async () => {
    // The server writes 1 MB and exits without reading stdin; the client keeps sending (EPIPE on the
    // server's stdin) and reads slowly, so much of the server's output is still in flight at EPIPE.
    const server = `${process.execPath} -e "process.stdout.write(Buffer.alloc(1000000, 121), () => process.exit(0))"`;
    const input = Buffer.from('a'.repeat(99) + '\n').toString().repeat(300_000);
    const r = await slowReader(['--exec', server], Buffer.from(input), 5);
    expect(r.err).toContain("EPIPE");
    expect(r.code).toBe(0);
    expect(r.out).toBe(1_000_000);
  }, 60_000);

  it('SIGTERM in inetd mode stops the whole spawned server, also what its shell started (no orphans)', async () => {
    const marker = `${40 + Math.floor(Math.random() * 1000) / 1000}`;
    const child = spawn(process.execPath, [WRAPPER, '--log-stderr', '--exec', `sh -c 'sleep ${marker}; :'`], { stdio: ['pipe', 'pipe', 'pipe'] });
    let err = '';
    child.stderr.on('data', (b: Buffer) => (err += b.toString('latin1')));
    child.stdout.resume();
    const closed = new Promise<number | null>((r) => child.on('close', (code) => r(code)));
    const alive = () => execFileSync('ps', ['-eo', 'stat=,args=']).toString().split('\n').filter((l) => l.includes(`sleep ${marker}`) && !l.startsWith('Z') && !l.includes('sh -c'));
    const deadline = Date.now() + 10_000;
    while (!(err.includes('session open') && alive().length > 0)) {
      if (Date.now() > deadline) throw new Error(`no session: ${err}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    child.kill('SIGTERM');
    expect(await closed).toBe(0);
    await new Promise((r) => setTimeout(r, 200));
    expect(alive()).toEqual([]);
  }, 30_000);

  it.each([
    ['a TOML float for an integer key', 'destPort = 25.0', 'destPort'],
    ['a float in exponent form', 'destPort = 25\nmaxLineLength = 1e3', 'maxLineLength'],
    ['an integer past 2^53', 'destPort = 99999999999999999999', 'destPort'],
    ['an empty destAddr', 'destPort = 25\ndestAddr = ""', 'destAddr'],
    ['an empty listenAddr', 'destPort = 25\nstandalone = true\nlistenPort = 1234\nlistenAddr = ""', 'listenAddr'],
    ['a NUL in destAddr (the resolver would stop at it)', 'destPort = 25\ndestAddr = "127.0.0.1\\u0000.evil"', 'destAddr'],
    ['a NUL in a pattern list', 'destPort = 25\ndenyList = ["a\\u0000b"]', 'denyList'],
  ])('config: %s is refused naming the key, exit 78', (_what, toml, key) => {
    const dir = mkdtempSync(join(tmpdir(), 'pw-review-'));
    const file = join(dir, 'c.toml');
    const base = toml.includes('destAddr') ? 'destType = "ip"\n' : 'destType = "ip"\ndestAddr = "127.0.0.1"\n';
    writeFileSync(file, base + toml + '\n');
    let code = 0;
    let err = '';
    try {
      execFileSync(process.execPath, [WRAPPER, '-f', file, '--check'], { stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (e) {
      code = (e as { status: number }).status;
      err = String((e as { stderr: Buffer }).stderr);
    }
    expect(code).toBe(78);
    expect(err).toContain(`${key}:`);
  });

  it('config: integers in TOML (hex, underscores) still work', () => {
    const dir = mkdtempSync(join(tmpdir(), 'pw-review-'));
    const file = join(dir, 'c.toml');
    writeFileSync(file, 'destType = "ip"\ndestAddr = "127.0.0.1"\ndestPort = 0x19\nmaxLineLength = 2_000\n');
    const out = execFileSync(process.execPath, [WRAPPER, '-f', file, '--check']).toString();
    expect(out).toContain('tcp:127.0.0.1:25');
    expect(out).toMatch(/maxLineLength\s+2000/);
  });

  it('SIGTERM while the server is still being reached ends the wrapper at once, not after the connect timeout', async () => {
    // A listener whose accept queue is full: SYNs are dropped, connect() hangs (python3 stdlib).
    const py = spawn('python3', ['-c', [
      'import socket, sys, time',
      'ls = socket.socket(); ls.bind(("127.0.0.1", 0)); ls.listen(0)',
      'port = ls.getsockname()[1]; held = []',
      'for i in range(4):',
      '    s = socket.socket(); s.setblocking(False); held.append(s)',
      '    try: s.connect(("127.0.0.1", port))',
      '    except BlockingIOError: pass',
      'time.sleep(0.3); print(port, flush=True); time.sleep(60)',
    ].join('\n')], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      const port = await new Promise<string>((r) => py.stdout.once('data', (b: Buffer) => r(b.toString().trim())));
      const child = spawn(process.execPath, [WRAPPER, '--log-stderr', '--connect', `127.0.0.1:${port}`], { stdio: ['pipe', 'pipe', 'pipe'] });
      let err = '';
      child.stderr.on('data', (b: Buffer) => (err += b.toString('latin1')));
      const closed = new Promise<number | null>((r) => child.on('close', (code) => r(code)));
      await new Promise((r) => setTimeout(r, 700));
      expect(err).not.toContain('session open');
      const t0 = Date.now();
      child.kill('SIGTERM');
      expect(await closed).toBe(0);
      expect(Date.now() - t0).toBeLessThan(2000);
      expect(err).toContain('end=shutdown');
    } finally {
      py.kill();
    }
  }, 30_000);

  it('standalone: a session that ended by a client reset keeps end=client_error when SIGTERM comes while its server is reaped', async () => {
    // `sleep` never reads its stdin, so the finished session waits for it to be stopped (1 s).
    const w = await startStandalone(['--log-level', '2', '--exec', 'sleep 30']);
    try {
      const c = connect({ port: w.port, host: '127.0.0.1' });
      await new Promise<void>((r) => c.once('connect', () => r()));
      await waitFor(() => w.logs().includes('session open'), 'session open');
      c.resetAndDestroy();
      await waitFor(() => w.logs().includes('client error'), 'client error');
    } finally {
      await w.stop();
    }
    expect(w.logs()).toMatch(/session close .* end=client_error/);
    expect(w.logs()).not.toMatch(/end=shutdown/);
  }, 30_000);
});
