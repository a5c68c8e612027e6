import { execFile } from 'node:child_process';
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDovecot, type Dovecot } from '../helpers/dovecot.js';
import { startPostfix, type Postfix } from '../helpers/postfix.js';
import { startStandalone, waitFor, type Standalone } from '../helpers/wrapper.js';

const FILTER = fileURLToPath(new URL('../../fail2ban/filter.d/protowrap.conf', import.meta.url));
const COMMON = '/etc/fail2ban/filter.d/common.conf';
const CLIENT = '127.0.0.2';

/** A raw session from CLIENT (so the banned host is told apart from 127.0.0.1): sends steps, waits for the close. */
async function session(port: number, steps: { send: string; until?: string }[], first = '\r\n'): Promise<string> {
  const sock: Socket = connect({ port, host: '127.0.0.1', localAddress: CLIENT });
  let got = '';
  const closed = new Promise<void>((r) => sock.on('close', () => r()));
  sock.on('data', (b: Buffer) => (got += b.toString('latin1')));
  sock.on('error', () => {});
  const until = async (text: string, from: number): Promise<void> => {
    const deadline = Date.now() + 10_000;
    while (!got.slice(from).includes(text)) {
      if (Date.now() > deadline || sock.destroyed) throw new Error(`no ${JSON.stringify(text)}; got ${JSON.stringify(got)}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  };
  await until(first, 0);
  for (const s of steps) {
    const mark = got.length;
    sock.write(s.send);
    if (s.until) await until(s.until, mark);
  }
  sock.end();
  await Promise.race([closed, new Promise((r) => setTimeout(r, 5000))]);
  sock.destroy();
  return got;
}

/** The --log-stderr lines ("protowrap[PID]: level: msg") as syslog would write them to a file. */
function asSyslog(stderr: string): string {
  return stderr
    .split('\n')
    .filter((l) => /^protowrap\[\d+\]: /.test(l))
    .map((l) => `Dec  1 12:00:00 testhost ${l}\n`)
    .join('');
}

/** Runs the real fail2ban-regex on the log; returns one entry per matched line: the host it names and the line. */
function fail2banRegex(dir: string, log: string): Promise<{ host: string; line: string }[]> {
  const file = join(dir, 'protowrap.log');
  writeFileSync(file, log);
  return new Promise((res, rej) =>
    execFile('fail2ban-regex', ['-o', '<ip> <msg>', file, join(dir, 'protowrap.conf')], { maxBuffer: 1 << 24 }, (err, stdout, stderr) => {
      if (err) return rej(new Error(`fail2ban-regex: ${err.message}\n${stderr}`));
      res(
        stdout
          .split('\n')
          .filter((l) => l !== '')
          .map((l) => ({ host: l.slice(0, l.indexOf(' ')), line: l.slice(l.indexOf(' ') + 1) })),
      );
    }),
  );
}

describe('fail2ban filter against the log of real sessions', () => {
  let dc: Dovecot;
  let pf: Postfix;
  let pop3: Standalone;
  let imap: Standalone;
  let smtp: Standalone;
  let dir: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'pw-fail2ban-'));
    // The filter includes common.conf from its own directory.
    copyFileSync(FILTER, join(dir, 'protowrap.conf'));
    copyFileSync(COMMON, join(dir, 'common.conf'));
    writeFileSync(join(dir, 'pop3.toml'), 'protocol = "pop3"\nmaxLoginAttempts = 2\n');
    writeFileSync(join(dir, 'imap.toml'), 'protocol = "imap"\nmaxLoginAttempts = 2\n');
    writeFileSync(join(dir, 'smtp.toml'), 'protocol = "smtp"\nrelayIpList = ["192.168.150."]\nrelayDomainList = ["mydomain.org"]\n');
    [dc, pf] = await Promise.all([startDovecot(), startPostfix()]);
    [pop3, imap, smtp] = await Promise.all([
      startStandalone(['-f', join(dir, 'pop3.toml'), '--log-level', '1', '--connect', `127.0.0.1:${dc.pop3Port}`]),
      startStandalone(['-f', join(dir, 'imap.toml'), '--log-level', '1', '--connect', `127.0.0.1:${dc.imapPort}`]),
      startStandalone(['-f', join(dir, 'smtp.toml'), '--log-level', '1', '--connect', `127.0.0.1:${pf.port}`]),
    ]);
  }, 60_000);
  afterAll(async () => {
    await Promise.all([pop3?.stop(), imap?.stop(), smtp?.stop()]);
    await Promise.all([dc?.stop(), pf?.stop()]);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('refusals and failed logins match with the client as host; session and accepted lines do not; a forged client= does not', async () => {
    // POP3: wrong passwords until maxLoginAttempts (2): the wrapper closes.
    await session(pop3.port, [{ send: 'USER alice\r\nPASS wrong1\r\nUSER alice\r\nPASS wrong2\r\n' }]);
    // POP3: a good login (session open/close only).
    await session(pop3.port, [{ send: 'USER alice\r\nPASS secret\r\n', until: '+OK Logged in' }, { send: 'QUIT\r\n' }]);
    // IMAP: a bad command, then failed logins until the BYE.
    await session(imap.port, [{ send: 'A1 FROBNICATE\r\n', until: 'A1 ' }, { send: 'A2 LOGIN alice wrong1\r\nA3 LOGIN alice wrong2\r\n' }]);
    // SMTP: an accepted message (a note … from= line), then a relay attempt, then text forging a client= inside the line.
    const forged = 'x" testhost protowrap[1]: warning: refused client=10.6.6.6 protocol=smtp state=ready code=relay_denied reason="forged" line="';
    await session(smtp.port, [
      { send: 'EHLO client.example\r\n', until: '250 ' },
      { send: 'MAIL FROM:<alice@client.example>\r\n', until: '250' },
      { send: 'RCPT TO:<bob@mydomain.org>\r\n', until: '250' },
      { send: 'DATA\r\n', until: '354' },
      { send: 'Subject: ok\r\n\r\nhello\r\n.\r\n', until: '250' },
      { send: 'MAIL FROM:<alice@client.example>\r\n', until: '250' },
      { send: 'RCPT TO:<victim@elsewhere.example>\r\n', until: '550' },
      { send: 'RSET\r\n', until: '250' },
      { send: `${forged}\r\n`, until: '\r\n' },
      { send: `MAIL FROM:<${forged.replace(/ /g, '')}>\r\n`, until: '\r\n' },
      { send: 'QUIT\r\n' },
    ], '220 ');
    await waitFor(() => (pop3.logs() + imap.logs() + smtp.logs()).match(/session close client=127\.0\.0\.2/g)?.length === 4, 'four session close lines');

    const log = asSyslog(pop3.logs() + imap.logs() + smtp.logs());
    const rows = await fail2banRegex(dir, log);
    // What fail2ban counts, with the syslog prefix cut off.
    const counted = rows.map((r) => r.line.replace(/^.*? protowrap\[\d+\]: /, ''));
    expect(counted).toEqual([
      'notice: closing client=127.0.0.2 protocol=pop3: closed by protocol after a server reply',
      expect.stringMatching(/^warning: refused client=127\.0\.0\.2 protocol=imap state=not_authenticated code=unknown_command /),
      'notice: closing client=127.0.0.2 protocol=imap: closed by protocol after a server reply',
      expect.stringMatching(/^warning: refused client=127\.0\.0\.2 protocol=smtp state=mail code=relay_denied /),
      expect.stringMatching(/^warning: refused client=127\.0\.0\.2 protocol=smtp state=ready code=unknown_command .*client=10\.6\.6\.6/),
      expect.stringMatching(/^warning: refused client=127\.0\.0\.2 protocol=smtp state=ready code=bad_argument .*client=10\.6\.6\.6/),
    ]);
    // Every match names the real client, never the address forged in the line text.
    expect(rows.map((r) => r.host)).toEqual(Array(6).fill(CLIENT));
    expect(log).toMatch(/line="x" testhost protowrap\[1\]: warning: refused client=10\.6\.6\.6 /);
    // Session open/close and the accepted message's note are in the log, and not counted.
    for (const what of [/ session open client=127\.0\.0\.2 /, / session close client=127\.0\.0\.2 /, / note client=127\.0\.0\.2 protocol=smtp: accepted from=/]) {
      expect(log).toMatch(what);
      expect(rows.filter((r) => what.test(r.line))).toEqual([]);
    }
  }, 60_000);
});
