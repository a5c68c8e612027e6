import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tcpClient, type TestClient } from '../helpers/client.js';
import { startDovecot, type Dovecot } from '../helpers/dovecot.js';
import { pop3Login } from '../helpers/pop3-login.js';
import { runPiped, startStandalone, waitFor, WRAPPER, type Standalone } from '../helpers/wrapper.js';
import { socketActivatedDaemon } from '../helpers/socket-activate.js';
import { RESTART_WINDOW_MS } from '../../src/io/cluster-primary.js';

/**
 * --workers 2 in front of the real Dovecot (POP3): the primary forks two
 * workers sharing the listener (node:cluster, round robin). Which process
 * served a session is the pid of its log lines (--log-stderr writes
 * `protowrap[PID]:` as syslog does). Dovecot gets each client's address in
 * a PROXY header (haproxy = yes), so that clients dialling from 127.0.0.x
 * count as different addresses for the bans.
 */

let dc: Dovecot;
beforeAll(async () => {
  dc = await startDovecot({ haproxy: true });
}, 30_000);
afterAll(async () => {
  await dc?.stop();
});

const base = () => ['-p', 'pop3', '--connect', `127.0.0.1:${dc.pop3Port}`, '--proxy-to-server', 'v2', '--workers', '2'];

/** Starts the wrapper and waits for the primary's line naming both workers; returns their pids. */
async function startWorkers(args: readonly string[]): Promise<{ w: Standalone; pids: string[] }> {
  const w = await startStandalone(args);
  await waitFor(() => /workers ready: \d+ \d+/.test(w.logs()), `both workers: ${w.logs()}`, 20_000);
  const pids = /2 workers ready: (\d+) (\d+)/.exec(w.logs())!.slice(1, 3);
  expect(w.logs()).toContain(`protowrap[${w.child.pid}]: notice: 2 workers ready`);
  return { w, pids };
}

/** The pids of the log lines that match. */
function pidsOf(logs: string, re: RegExp): string[] {
  return logs
    .split('\n')
    .filter((l) => re.test(l))
    .map((l) => /^protowrap\[(\d+)\]/.exec(l)?.[1] ?? '?');
}

function exited(w: Standalone): Promise<number | null> {
  return new Promise((r) => (w.child.exitCode !== null ? r(w.child.exitCode) : w.child.once('exit', (code) => r(code))));
}

async function greeted(port: number): Promise<TestClient> {
  const c = await tcpClient(port);
  await c.waitFor('+OK', 20_000);
  return c;
}

describe('--workers 2 (real Dovecot)', () => {
  it('both workers serve sessions, the primary none; a killed worker is replaced (both pids logged) and service goes on', async () => {
    const { w, pids } = await startWorkers(base());
    try {
      for (let i = 0; i < 8; i++) expect(await pop3Login(w.port, 'secret')).toContain('+OK Logged in');
      await waitFor(() => pidsOf(w.logs(), /session close /).length === 8, 'the 8 session lines');
      const served = pidsOf(w.logs(), /session open /);
      expect(served).toHaveLength(8);
      expect(new Set(served)).toEqual(new Set(pids));

      process.kill(Number(pids[0]), 'SIGKILL');
      await waitFor(() => new RegExp(`worker ${pids[0]} exited \\(signal SIGKILL\\), replaced by \\d+`).test(w.logs()), `the replacement: ${w.logs()}`);
      const fresh = new RegExp(`worker ${pids[0]} exited \\(signal SIGKILL\\), replaced by (\\d+)`).exec(w.logs())![1]!;
      expect(pidsOf(w.logs(), /exited \(signal SIGKILL\), replaced by/)).toEqual([String(w.child.pid)]);
      await waitFor(() => w.logs().includes(`protowrap[${fresh}]: notice: listening on`), 'the new worker listening');
      const before = pidsOf(w.logs(), /session open /).length;
      for (let i = 0; i < 6; i++) expect(await pop3Login(w.port, 'secret')).toContain('+OK Logged in');
      await waitFor(() => pidsOf(w.logs(), /session open /).length === before + 6, 'the 6 new sessions');
      const after = pidsOf(w.logs(), /session open /).slice(before);
      expect(new Set(after)).toEqual(new Set([pids[1], fresh]));
    } finally {
      await w.stop();
    }
  }, 90_000);

  it('SIGHUP: the primary validates, both workers reload (new sessions on either get the change); a broken file is logged once, the old one stays everywhere', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'pw-workers-')), 'c.toml');
    const conf = (extra: string) => `protocol = "pop3"\ndestType = "ip"\ndestAddr = "127.0.0.1"\ndestPort = ${dc.pop3Port}\nproxyToServer = "v2"\nworkers = 2\n${extra}`;
    writeFileSync(file, conf('maxLineLength = 100\n'));
    const { w, pids } = await startWorkers(['-f', file]);
    const longUser = `USER ${'a'.repeat(55)}\r\n`;
    try {
      writeFileSync(file, conf('maxLineLength = 40\n'));
      w.child.kill('SIGHUP');
      await waitFor(() => pidsOf(w.logs(), /notice: configuration reloaded/).length === 2, `both reloads: ${w.logs()}`);
      expect(new Set(pidsOf(w.logs(), /notice: configuration reloaded/))).toEqual(new Set(pids));
      for (let i = 0; i < 4; i++) {
        const c = await greeted(w.port);
        c.sock.write(longUser);
        await c.waitFor('-ERR', 20_000);
        c.sock.destroy();
      }
      await waitFor(() => pidsOf(w.logs(), /code=line_too_long/).length === 4, 'the 4 refusals');
      expect(new Set(pidsOf(w.logs(), /code=line_too_long/))).toEqual(new Set(pids));

      writeFileSync(file, conf('maxLineLength = "x"\n'));
      w.child.kill('SIGHUP');
      await waitFor(() => w.logs().includes('configuration not reloaded, the old one stays'), 'the failed reload');
      expect(pidsOf(w.logs(), /configuration not reloaded/)).toEqual([String(w.child.pid)]);
      // Still 40 on both workers: 4 more sessions, 4 more refusals.
      for (let i = 0; i < 4; i++) {
        const c = await greeted(w.port);
        c.sock.write(longUser);
        await c.waitFor('-ERR', 20_000);
        c.sock.destroy();
      }
      await waitFor(() => pidsOf(w.logs(), /code=line_too_long/).length === 8, 'the 8 refusals');
      expect(pidsOf(w.logs(), /notice: configuration reloaded/)).toHaveLength(2);
    } finally {
      await w.stop();
    }
  }, 90_000);

  it('SIGTERM: every worker gives its open session the grace (it ends with its QUIT), then the primary exits 0', async () => {
    const { w, pids } = await startWorkers([...base(), '--shutdown-grace', '60']);
    const a = await greeted(w.port);
    const b = await greeted(w.port);
    await waitFor(() => pidsOf(w.logs(), /session open /).length === 2, 'two sessions');
    expect(new Set(pidsOf(w.logs(), /session open /))).toEqual(new Set(pids));
    const code = exited(w);
    w.child.kill('SIGTERM');
    await waitFor(() => pidsOf(w.logs(), /1 sessions open: they may finish for 60 s/).length === 2, `the grace in both workers: ${w.logs()}`);
    for (const c of [a, b]) {
      c.sock.write('QUIT\r\n');
      await c.waitFor('+OK Logging out', 20_000);
      c.sock.end();
    }
    expect(await code).toBe(0);
    for (const pid of pids) expect(w.logs()).toContain(`worker ${pid} exited (code 0)`);
    expect(w.logs()).not.toContain('replaced by');
  }, 90_000);

  it('maxConnections is split: 2 over 2 workers is 1 session each, the third connection is refused', async () => {
    const { w } = await startWorkers([...base(), '--max-connections', '2']);
    try {
      const a = await greeted(w.port);
      const b = await greeted(w.port);
      const c = await tcpClient(w.port);
      await c.eof;
      expect(c.received().length).toBe(0);
      expect(w.logs()).toMatch(/refused connection client=127\.0\.0\.1: 1 sessions open in this worker \(maxConnections 2 over 2 workers\)/);
      c.sock.destroy();
      a.sock.destroy();
      b.sock.destroy();
    } finally {
      await w.stop();
    }
  }, 90_000);

  it('bans are shared (memory store in the primary): failures spread over both workers ban the client on both', async () => {
    const { w, pids } = await startWorkers([...base(), '--max-auth-failures', '3']);
    try {
      for (let i = 0; i < 3; i++) expect(await pop3Login(w.port, 'wrong', { from: '127.0.0.7' })).toContain('-ERR [AUTH]');
      await waitFor(() => w.logs().includes('banning client=127.0.0.7'), `the ban: ${w.logs()}`);
      expect(new Set(pidsOf(w.logs(), /login failed client=127\.0\.0\.7 /))).toEqual(new Set(pids));
      for (let i = 0; i < 4; i++) expect(await pop3Login(w.port, 'secret', { from: '127.0.0.7' })).toBe('-ERR [SYS/TEMP] service temporarily unavailable\r\n');
      expect(new Set(pidsOf(w.logs(), /refused connection client=127\.0\.0\.7 protocol=pop3 code=banned/))).toEqual(new Set(pids));
      // Another address is served.
      expect(await pop3Login(w.port, 'secret', { from: '127.0.0.8' })).toContain('+OK Logged in');
    } finally {
      await w.stop();
    }
  }, 90_000);

  it(`crash loop: after 2 replacements within ${RESTART_WINDOW_MS / 1000} s a dead worker is not replaced; with none left the primary exits 70`, async () => {
    const { w, pids } = await startWorkers(base());
    const code = exited(w);
    const replacedBy = (pid: string) => new RegExp(`worker ${pid} exited \\(signal SIGKILL\\), replaced by (\\d+)`).exec(w.logs())?.[1];
    try {
      // Each kill follows the replacement line at once: the three fall well within the window.
      process.kill(Number(pids[0]), 'SIGKILL');
      await waitFor(() => replacedBy(pids[0]!) !== undefined, `the first replacement: ${w.logs()}`);
      const second = replacedBy(pids[0]!)!;
      process.kill(Number(second), 'SIGKILL');
      await waitFor(() => replacedBy(second) !== undefined, `the second replacement: ${w.logs()}`);
      const third = replacedBy(second)!;
      process.kill(Number(third), 'SIGKILL');
      await waitFor(() => w.logs().includes(`worker ${third} exited (signal SIGKILL), not replaced: 2 replacements within 10 s; 1 workers left`), `no third replacement: ${w.logs()}`);
      // The other worker still serves.
      expect(await pop3Login(w.port, 'secret')).toContain('+OK Logged in');
      process.kill(Number(pids[1]), 'SIGKILL');
      expect(await code).toBe(70);
      expect(w.logs()).toContain('no worker left: exiting');
    } finally {
      await w.stop();
    }
  }, 90_000);

  it('a primary killed (-9): its workers notice the closed channel and shut down, an open session gets its grace', async () => {
    const { w, pids } = await startWorkers([...base(), '--shutdown-grace', '60']);
    const gone = (pid: string) => {
      try {
        process.kill(Number(pid), 0);
        return false;
      } catch {
        return true;
      }
    };
    try {
      const open = await greeted(w.port);
      w.child.kill('SIGKILL');
      await waitFor(() => pidsOf(w.logs(), /notice: shutting down/).length === 2, `both workers shutting down: ${w.logs()}`, 20_000);
      expect(new Set(pidsOf(w.logs(), /notice: shutting down/))).toEqual(new Set(pids));
      await waitFor(() => w.logs().includes('1 sessions open: they may finish for 60 s'), 'the grace');
      // The session still reaches Dovecot and ends with its own QUIT.
      open.sock.write('QUIT\r\n');
      await open.waitFor('+OK Logging out', 20_000);
      open.sock.end();
      await waitFor(() => pids.every(gone), `both workers gone: ${w.logs()}`, 20_000);
    } finally {
      for (const pid of pids) if (!gone(pid)) process.kill(Number(pid), 'SIGKILL');
    }
  }, 60_000);

  it('a listen address that is taken: the start fails with 69, no worker is left behind', async () => {
    const taken = createServer().listen(0, '127.0.0.1');
    await new Promise((r) => taken.once('listening', r));
    const port = (taken.address() as AddressInfo).port;
    try {
      const child = spawn(process.execPath, [WRAPPER, '--log-stderr', '--listen', `127.0.0.1:${port}`, ...base()], { stdio: ['ignore', 'ignore', 'pipe'] });
      let err = '';
      child.stderr.on('data', (b: Buffer) => (err += b.toString('latin1')));
      const code = await new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
      expect(code).toBe(69);
      expect(err).toMatch(/cannot listen on 127\.0\.0\.1:\d+: .*EADDRINUSE/);
      expect(err).toMatch(/worker \d+ exited \(code 69\) before it was ready/);
      // Every worker is gone once the primary is.
      for (const pid of pidsOf(err, /cannot listen/)) expect(() => process.kill(Number(pid), 0)).toThrow();
    } finally {
      taken.close();
    }
  }, 60_000);

  it('systemd Accept=no: both workers serve the passed socket; SIGTERM exits 0', async () => {
    const d = await socketActivatedDaemon(['--log-stderr', ...base()]);
    try {
      const port = d.ports[0]!;
      for (let i = 0; i < 6; i++) expect(await pop3Login(port, 'secret')).toContain('+OK Logged in');
      await waitFor(() => pidsOf(d.logs(), /session close /).length === 6, `6 sessions: ${d.logs()}`);
      const ready = /protowrap\[(\d+)\]: notice: 2 workers ready: (\d+) (\d+)/.exec(d.logs())!;
      expect(new Set(pidsOf(d.logs(), /session open /))).toEqual(new Set([ready[2], ready[3]]));
      expect(pidsOf(d.logs(), /listening on 127\.0\.0\.1:\d+ \(systemd socket fd 3\)/)).toHaveLength(2);
      d.signal('SIGTERM');
      expect(await d.exited).toBe(0);
    } finally {
      await d.stop();
    }
  }, 60_000);

  it('in inetd mode (a session piped in) workers > 1 is a configuration error (78)', async () => {
    const r = await runPiped(['-p', 'pop3', '--connect', `127.0.0.1:${dc.pop3Port}`, '--workers', '2'], 'QUIT\r\n');
    expect(r.code).toBe(78);
    expect(r.stderr).toContain('workers: more than 1 needs standalone mode');
    expect(r.stdout.length).toBe(0);
    const bad = await runPiped(['-p', 'pop3', '--connect', `127.0.0.1:${dc.pop3Port}`, '--workers', '0'], '');
    expect(bad.code).toBe(78);
    expect(bad.stderr).toContain('workers');
  });
});
