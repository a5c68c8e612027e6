import { mkdtempSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tcpClient, type TestClient } from '../helpers/client.js';
import { startDovecot, type Dovecot } from '../helpers/dovecot.js';
import { freePort, startStandalone, waitFor } from '../helpers/wrapper.js';

/**
 * Standalone mode's signals against the real Dovecot: SIGHUP re-reads the
 * whole configuration (new sessions get it, open ones keep theirs; a file
 * that does not validate is logged and the old configuration stays), and
 * SIGTERM stops accepting, lets sessions finish for shutdownGrace, then
 * closes the rest with the protocol's shutdown reply and exits 0.
 */

let dovecot: Dovecot;

beforeAll(async () => {
  dovecot = await startDovecot();
}, 30_000);

afterAll(async () => {
  await dovecot?.stop();
});

function tempFile(text: string): string {
  const file = join(mkdtempSync(join(tmpdir(), 'pw-signals-')), 'c.toml');
  writeFileSync(file, text);
  return file;
}

/** Count of a pattern in what the client received. */
const count = (c: TestClient, re: RegExp) => (c.received().toString('latin1').match(re) ?? []).length;

async function greeted(port: number): Promise<TestClient> {
  const c = await tcpClient(port);
  await c.waitFor('+OK');
  return c;
}

/** A USER line of 60 bytes: within maxLineLength 100, past 40. */
const LONG_USER = `USER ${'a'.repeat(55)}\r\n`;

function refusedTooLong(logs: string): number {
  return (logs.match(/refused client=\S+ protocol=pop3 state=\S+ code=line_too_long/g) ?? []).length;
}

function connectRefused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.destroy();
      resolve(false);
    });
    s.once('error', (e: NodeJS.ErrnoException) => resolve(e.code === 'ECONNREFUSED'));
  });
}

describe('SIGHUP: the whole configuration is read again', () => {
  it('a changed option takes effect for a new session; an open one keeps the old; a broken file is logged and the old one stays', async () => {
    const base = `protocol = "pop3"\ndestType = "ip"\ndestAddr = "127.0.0.1"\ndestPort = ${dovecot.pop3Port}\n`;
    const file = tempFile(`${base}maxLineLength = 100\n`);
    const w = await startStandalone(['-f', file]);
    try {
      const old = await greeted(w.port);
      writeFileSync(file, `${base}maxLineLength = 40\n`);
      w.child.kill('SIGHUP');
      await waitFor(() => w.logs().includes('configuration reloaded'), 'the reload');

      // The new session: the 60-byte line is past 40, refused by the wrapper.
      const fresh = await greeted(w.port);
      fresh.sock.write(LONG_USER);
      await waitFor(() => count(fresh, /-ERR/g) === 1, 'the refusal');
      await waitFor(() => refusedTooLong(w.logs()) === 1, 'the refusal in the log');
      // The old session: still 100, so Dovecot gets the line and answers it.
      old.sock.write(LONG_USER);
      await waitFor(() => count(old, /\+OK/g) === 2, "Dovecot's answer to USER");
      expect(refusedTooLong(w.logs())).toBe(1);

      // A file that does not validate: logged, naming the key; the last good configuration stays.
      writeFileSync(file, `${base}maxLineLength = 40\nmaxLineLenght = 400\n`);
      w.child.kill('SIGHUP');
      await waitFor(() => w.logs().includes('configuration not reloaded, the old one stays: maxLineLenght: unknown key'), 'the failed reload');
      const third = await greeted(w.port);
      third.sock.write(LONG_USER);
      await waitFor(() => refusedTooLong(w.logs()) === 2, 'the second refusal');
      expect(w.child.exitCode).toBeNull();
      for (const c of [old, fresh, third]) c.sock.end();
    } finally {
      await w.stop();
    }
  }, 60_000);

  it('a multi-service file: a service added on SIGHUP is listened on, one removed stops listening', async () => {
    const [p1, p2] = [await freePort(), await freePort()];
    const svc = (name: string, port: number) => `[[service]]\nname = "${name}"\nprotocol = "pop3"\nlisten = "127.0.0.1:${port}"\nconnect = "127.0.0.1:${dovecot.pop3Port}"\nshutdownGrace = 1\n`;
    const file = tempFile(svc('one', p1));
    const { spawn } = await import('node:child_process');
    const { WRAPPER } = await import('../helpers/wrapper.js');
    const child = spawn(process.execPath, [WRAPPER, '--log-stderr', '-f', file], { stdio: ['ignore', 'ignore', 'pipe'] });
    let logs = '';
    child.stderr!.on('data', (b: Buffer) => (logs += b.toString('latin1')));
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    try {
      await waitFor(() => logs.includes('service=one'), 'service one listening');
      // A session of service one, open across the reload that removes the service.
      const kept = await greeted(p1);
      kept.sock.write('USER alice\r\n');
      await waitFor(() => count(kept, /\+OK/g) === 2, 'the USER reply');
      writeFileSync(file, svc('two', p2));
      child.kill('SIGHUP');
      await waitFor(() => logs.includes('configuration reloaded services=two'), 'the reload');
      const c = await greeted(p2);
      c.sock.write('QUIT\r\n');
      await c.eof;
      c.sock.end();
      expect(await connectRefused(p1)).toBe(true);
      expect(logs).toMatch(/closing listener protocol=pop3 service=one: no longer in the configuration/);
      expect(logs).toMatch(/listening on 127\.0\.0\.1:\d+ protocol=pop3 .*service=two/);
      await waitFor(() => /session close client=127\.0\.0\.1 protocol=pop3 service=two end=done/.test(logs), 'the session close of service two');

      // A reload whose new address is taken changes nothing: service two goes on, one stays closed.
      const { createServer } = await import('node:net');
      const squatter = createServer();
      const p3 = await new Promise<number>((r) => squatter.listen(0, '127.0.0.1', () => r((squatter.address() as { port: number }).port)));
      try {
        writeFileSync(file, svc('one', p1) + svc('two', p2) + svc('three', p3));
        child.kill('SIGHUP');
        await waitFor(() => logs.includes(`configuration not reloaded, the old one stays: cannot listen on 127.0.0.1:${p3} service=three`), 'the failed reload');
      } finally {
        squatter.close();
      }
      expect(await connectRefused(p1)).toBe(true);
      const again = await greeted(p2);
      again.sock.write('QUIT\r\n');
      await again.eof;
      again.sock.end();
      // The removed service's session goes on, past its shutdownGrace: a reload never cuts a session.
      await new Promise((r) => setTimeout(r, 1500));
      kept.sock.write('PASS secret\r\nSTAT\r\nQUIT\r\n');
      await kept.eof;
      kept.sock.end();
      expect(kept.received().toString('latin1')).toMatch(/\+OK Logged in\.\r\n\+OK \d+ \d+\r\n\+OK Logging out\.\r\n$/);
      await waitFor(() => /session close client=127\.0\.0\.1 protocol=pop3 service=one end=done/.test(logs), 'the session close of service one');
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
      await exited;
    }
  }, 60_000);
});

describe('SIGTERM: stop accepting, a grace for open sessions, then the shutdown reply', () => {
  it('a session that finishes within shutdownGrace ends normally; one still open after it gets -ERR; exit 0', async () => {
    const w = await startStandalone(['-p', 'pop3', '--connect', `127.0.0.1:${dovecot.pop3Port}`, '--shutdown-grace', '5']);
    const exited = new Promise<number | null>((r) => w.child.once('exit', (code) => r(code)));
    const quick = await greeted(w.port);
    const slow = await greeted(w.port);
    quick.sock.write('USER alice\r\n');
    await waitFor(() => count(quick, /\+OK/g) === 2, 'the USER reply');
    w.child.kill('SIGTERM');
    await waitFor(() => w.logs().includes('2 sessions open: they may finish for 5 s (shutdownGrace)'), 'the grace');
    // No new connection is taken during the grace.
    expect(await connectRefused(w.port)).toBe(true);
    // The quick one goes on with Dovecot and ends as usual.
    quick.sock.write('PASS secret\r\nQUIT\r\n');
    await quick.eof;
    quick.sock.end();
    expect(quick.received().toString('latin1')).toMatch(/\+OK Logged in\.\r\n\+OK Logging out\.\r\n$/);
    // The slow one gets POP3's shutdown reply once the grace is over.
    await slow.eof;
    expect(slow.received().toString('latin1')).toMatch(/^\+OK [^\r\n]*\r\n-ERR server shutting down\r\n$/);
    slow.sock.end();
    expect(await exited).toBe(0);
    expect(w.logs()).toMatch(/session close client=127\.0\.0\.1 protocol=pop3 end=done/);
    expect(w.logs()).toMatch(/session close client=127\.0\.0\.1 protocol=pop3 end=shutdown/);
  }, 60_000);

  it('a second SIGTERM ends the grace at once', async () => {
    const w = await startStandalone(['-p', 'pop3', '--connect', `127.0.0.1:${dovecot.pop3Port}`, '--shutdown-grace', '3600']);
    const exited = new Promise<number | null>((r) => w.child.once('exit', (code) => r(code)));
    const c = await greeted(w.port);
    w.child.kill('SIGTERM');
    await waitFor(() => w.logs().includes('(shutdownGrace)'), 'the grace');
    w.child.kill('SIGTERM');
    await c.eof;
    c.sock.end();
    expect(c.received().toString('latin1')).toMatch(/\r\n-ERR server shutting down\r\n$/);
    expect(await exited).toBe(0);
  }, 60_000);
});
