import { execFile, spawn } from 'node:child_process';
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDovecot, type Dovecot } from '../helpers/dovecot.js';
import { freePort, waitFor, WRAPPER } from '../helpers/wrapper.js';

/**
 * The fail2ban filter on the lines of a multi-service process, where each
 * line names its service (service=NAME after protocol=… in a session's
 * lines, at the end of a listener's): the real fail2ban-regex still finds
 * the client, and a maxConnections refusal still does not count.
 */

const FILTER = fileURLToPath(new URL('../../fail2ban/filter.d/protowrap.conf', import.meta.url));
const COMMON = '/etc/fail2ban/filter.d/common.conf';
const CLIENT = '127.0.0.2';

function open(port: number): Promise<{ sock: Socket; got: () => string; closed: Promise<void> }> {
  return new Promise((resolve, reject) => {
    const sock = connect({ port, host: '127.0.0.1', localAddress: CLIENT });
    let got = '';
    const closed = new Promise<void>((r) => sock.on('close', () => r()));
    sock.on('data', (b: Buffer) => (got += b.toString('latin1')));
    sock.once('error', reject);
    sock.once('connect', () => resolve({ sock, got: () => got, closed }));
  });
}

let dc: Dovecot;
let dir: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'pw-fail2ban-svc-'));
  copyFileSync(FILTER, join(dir, 'protowrap.conf'));
  copyFileSync(COMMON, join(dir, 'common.conf'));
  dc = await startDovecot();
}, 30_000);

afterAll(async () => {
  await dc?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('fail2ban filter and service=NAME', () => {
  it('counts the refusals and closes of each service with the client as host; not maxConnections, not sessions', async () => {
    const [popPort, imapPort] = [await freePort(), await freePort()];
    const file = join(dir, 'services.toml');
    writeFileSync(
      file,
      [
        'maxLoginAttempts = 2',
        '[[service]]',
        'name = "pop"',
        'protocol = "pop3"',
        `listen = "127.0.0.1:${popPort}"`,
        `connect = "127.0.0.1:${dc.pop3Port}"`,
        'maxConnections = 1',
        '[[service]]',
        'name = "imap4"',
        'protocol = "imap"',
        `listen = "127.0.0.1:${imapPort}"`,
        `connect = "127.0.0.1:${dc.imapPort}"`,
        '',
      ].join('\n'),
    );
    const child = spawn(process.execPath, [WRAPPER, '--log-stderr', '--shutdown-grace', '0', '-f', file], { stdio: ['ignore', 'ignore', 'pipe'] });
    let logs = '';
    child.stderr!.on('data', (b: Buffer) => (logs += b.toString('latin1')));
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    try {
      await waitFor(() => (logs.match(/listening on/g) ?? []).length === 2, 'both listeners');
      // POP3: wrong passwords until maxLoginAttempts; meanwhile a second connection is one too many.
      const p = await open(popPort);
      await waitFor(() => p.got().includes('+OK'), 'the POP3 greeting');
      const extra = await open(popPort);
      await extra.closed;
      p.sock.write('USER alice\r\nPASS wrong1\r\nUSER alice\r\nPASS wrong2\r\n');
      await p.closed;
      // IMAP: a bad command, then a good login (session lines only).
      const i = await open(imapPort);
      await waitFor(() => i.got().includes('* OK'), 'the IMAP greeting');
      i.sock.write('A1 FROBNICATE\r\n');
      await waitFor(() => i.got().includes('A1 BAD'), 'the refusal');
      i.sock.write('A2 LOGIN alice secret\r\nA3 LOGOUT\r\n');
      await waitFor(() => i.got().includes('A3 OK'), 'the logout');
      i.sock.end();
      await i.closed;
      await waitFor(() => (logs.match(/session close client=127\.0\.0\.2/g) ?? []).length === 2, 'two session close lines');

      const log = logs
        .split('\n')
        .filter((l) => /^protowrap\[\d+\]: /.test(l))
        .map((l) => `Dec  1 12:00:00 testhost ${l}\n`)
        .join('');
      expect(log).toMatch(/refused connection client=127\.0\.0\.2 service=pop: 1 sessions open \(maxConnections\)\n/);
      const logFile = join(dir, 'protowrap.log');
      writeFileSync(logFile, log);
      const out = await new Promise<string>((res, rej) =>
        execFile('fail2ban-regex', ['-o', '<ip> <msg>', logFile, join(dir, 'protowrap.conf')], { maxBuffer: 1 << 24 }, (err, stdout, stderr) => (err ? rej(new Error(`${err.message}\n${stderr}`)) : res(stdout))),
      );
      const rows = out.split('\n').filter((l) => l !== '').map((l) => ({ host: l.slice(0, l.indexOf(' ')), line: l.slice(l.indexOf(' ') + 1).replace(/^.*? protowrap\[\d+\]: /, '') }));
      expect(rows.map((r) => r.line)).toEqual([
        // Each failed login counts (the close at maxLoginAttempts does not: its failures are counted already).
        expect.stringMatching(/^warning: login failed client=127\.0\.0\.2 protocol=pop3 service=pop state=authorization user="alice" session=[0-9a-f]{12}$/),
        expect.stringMatching(/^warning: login failed client=127\.0\.0\.2 protocol=pop3 service=pop state=authorization user="alice" session=[0-9a-f]{12}$/),
        expect.stringMatching(/^warning: refused client=127\.0\.0\.2 protocol=imap service=imap4 state=not_authenticated code=unknown_command /),
      ]);
      expect(rows.map((r) => r.host)).toEqual([CLIENT, CLIENT, CLIENT]);
    } finally {
      child.kill('SIGTERM');
      await exited;
    }
  }, 60_000);
});
