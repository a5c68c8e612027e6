import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tcpClient } from '../helpers/client.js';
import { startDovecot, type Dovecot } from '../helpers/dovecot.js';
import { socketActivated } from '../helpers/socket-activate.js';
import { runPiped, waitFor, WRAPPER } from '../helpers/wrapper.js';

/** --check on single and multi-service files, and a multi-service file under a superserver (--service). */

function run(args: readonly string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [WRAPPER, ...args], { stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8', timeout: 20_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function file(text: string): string {
  const f = join(mkdtempSync(join(tmpdir(), 'pw-check-')), 'c.toml');
  writeFileSync(f, text);
  return f;
}

/** The key rows of --check: key → [value, source]. */
function rows(block: string): Map<string, [string, string]> {
  const out = new Map<string, [string, string]>();
  let inKeys = false;
  for (const line of block.split('\n')) {
    if (/^key +value +source$/.test(line)) inKeys = true;
    else if (line === '') inKeys = false;
    else if (inKeys) {
      const m = /^(\S+) +(.+?) +(default|file|service|flag)$/.exec(line);
      if (!m) throw new Error(`not a key row: ${JSON.stringify(line)}`);
      out.set(m[1]!, [m[2]!, m[3]!]);
    }
  }
  return out;
}

const SERVICES = `maxViolations = 3
[[service]]
name = "pop"
protocol = "pop3"
listen = "127.0.0.1:1110"
connect = "127.0.0.1:110"
maxLoginAttempts = 2

[[service]]
name = "mx"
protocol = "smtp"
listen = "systemd:smtp"
exec = "/usr/sbin/sendmail -bs"
maxViolations = 1
`;

describe('--check', () => {
  it('prints every key with its value and its source (default, file, flag), exit 0', () => {
    const f = file('destType = "ip"\ndestAddr = "127.0.0.1"\ndestPort = 25\nprotocol = "smtp"\nmaxViolations = 4\n');
    const r = run(['-f', f, '--check', '--idle-timeout', '9', '--max-rcpt', '7']);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const k = rows(r.stdout);
    expect(k.get('protocol')).toEqual(['"smtp"', 'file']);
    expect(k.get('destPort')).toEqual(['25', 'file']);
    expect(k.get('maxViolations')).toEqual(['4', 'file']);
    expect(k.get('idleTimeout')).toEqual(['9', 'flag']);
    expect(k.get('maxRcpt')).toEqual(['7', 'flag']);
    expect(k.get('shutdownGrace')).toEqual(['30', 'default']);
    // A key the protocol resolves is shown with the value in force.
    expect(k.get('maxLineLength')).toEqual(['510', 'default']);
    expect(k.get('syslogFacility')).toEqual(['"mail"', 'default']);
    expect(r.stdout).toMatch(/^server +tcp:127\.0\.0\.1:25$/m);
    expect(r.stdout).toMatch(/^config file +\S+c\.toml$/m);
  });

  it('a multi-service file: one block per service, keys from the top level (file), the table (service) and flags', () => {
    const r = run(['-f', file(SERVICES), '--check', '--session-timeout', '99']);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^services +pop, mx$/m);
    const [, pop, mx] = r.stdout.split(/^\[service (?:pop|mx)\]$/m) as [string, string, string];
    expect(pop).toMatch(/^mode +standalone, listening on 127\.0\.0\.1:1110$/m);
    expect(mx).toMatch(/^mode +standalone, on the socket systemd passes as smtp$/m);
    expect(mx).toMatch(/^server +exec:\/usr\/sbin\/sendmail -bs/m);
    const p = rows(pop);
    const m = rows(mx);
    expect(p.get('maxViolations')).toEqual(['3', 'file']);
    expect(m.get('maxViolations')).toEqual(['1', 'service']);
    expect(p.get('maxLoginAttempts')).toEqual(['2', 'service']);
    // SMTP has maxLoginAttempts too, at its default: a service's table is its own.
    expect(m.get('maxLoginAttempts')).toEqual(['3', 'default']);
    expect(p.get('sessionTimeout')).toEqual(['99', 'flag']);
    expect(m.get('listen')).toEqual(['"systemd:smtp"', 'service']);
    expect(p.get('connect')).toEqual(['"127.0.0.1:110"', 'service']);
  });

  it.each([
    ['a bad key at the top level', 'maxLineLenght = 3\ndestType = "pipe"\npipeCmd = "cat"\n', /^protowrap: maxLineLenght: unknown key/],
    ['a bad key in a service table', SERVICES.replace('maxViolations = 1', 'maxViolatons = 1'), /^protowrap: service mx: maxViolatons: unknown key for protocol smtp/],
    ['a bad value in a service table', SERVICES.replace('maxLoginAttempts = 2', 'maxLoginAttempts = "2"'), /^protowrap: service pop: maxLoginAttempts: expected an integer/],
    ['a bad top-level key of a multi-service file', `bogus = 1\n${SERVICES}`, /^protowrap: bogus: unknown key/],
    ['shutdownGrace out of range', 'shutdownGrace = 3601\ndestType = "pipe"\npipeCmd = "cat"\n', /^protowrap: shutdownGrace: expected 0\.\.3600/],
  ])('%s: one line naming it, exit 78', (_what, text, re) => {
    const r = run(['-f', file(text), '--check']);
    expect(r.status).toBe(78);
    expect(r.stdout).toBe('');
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(re);
  });

  it('--service without a multi-service file, or with a flag destination but no --service: usage errors (64)', () => {
    expect(run(['--exec', 'cat', '--service', 'x', '--check']).status).toBe(64);
    expect(run(['-f', file(SERVICES), '--connect', 'a:1', '--check']).status).toBe(64);
  });
});

describe('a multi-service file, one service piped in by hand', () => {
  it('--service NAME runs it on stdin/stdout; its lines name it', async () => {
    const f = file(`${SERVICES}\n[[service]]\nname = "echo"\nlisten = "7"\nexec = "cat"\n`);
    const r = await runPiped(['-f', f, '--service', 'echo'], 'hello\nworld\n');
    expect(r.code).toBe(0);
    expect(r.stdout.toString('latin1')).toBe('hello\nworld\n');
    expect(r.stderr).toMatch(/session close client=stdin protocol=generic service=echo end=done bytes_in=12 bytes_out=12/);
  });
});

describe('a multi-service file under a superserver (systemd-socket-activate --inetd -a)', () => {
  let dovecot: Dovecot;
  beforeAll(async () => {
    dovecot = await startDovecot();
  }, 30_000);
  afterAll(async () => {
    await dovecot?.stop();
  });

  it('--service NAME runs that one service on the client socket; without it: exit 78, the client gets nothing', async () => {
    const f = file(SERVICES.replace('connect = "127.0.0.1:110"', `connect = "127.0.0.1:${dovecot.pop3Port}"`));
    const picked = await socketActivated(['--log-stderr', '-f', f, '--service', 'pop']);
    try {
      const c = await tcpClient(picked.port);
      await c.waitFor('+OK');
      c.sock.write('USER alice\r\nPASS secret\r\nQUIT\r\n');
      await c.eof;
      c.sock.end();
      expect(c.received().toString('latin1')).toMatch(/\+OK Logged in\.\r\n\+OK Logging out\.\r\n$/);
      await waitFor(() => /session close client=127\.0\.0\.1 protocol=pop3 service=pop end=done/.test(picked.logs()), 'the session close line');
    } finally {
      await picked.stop();
    }
    const all = await socketActivated(['--log-stderr', '-f', f]);
    try {
      const c = await tcpClient(all.port);
      // systemd-socket-activate reports its child's exit status.
      await waitFor(() => /Child \d+ died with code 78/.test(all.logs()), 'the wrapper to exit 78');
      expect(all.logs()).toMatch(/protowrap: --service: a multi-service file under inetd \(a client socket on stdin\) needs --service NAME/);
      expect(c.received().length).toBe(0);
      c.sock.destroy();
    } finally {
      await all.stop();
    }
  }, 60_000);
});
