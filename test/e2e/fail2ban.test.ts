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

/** JSON lines from --log-stderr (the object alone) as syslog writes them: "protowrap[PID]: {…}". */
function jsonAsSyslog(stderr: string, pid: number): string {
  return stderr
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => `Dec  1 12:00:00 testhost protowrap[${pid}]: ${l}\n`)
    .join('');
}

/** base64 of a SASL PLAIN response. */
const plain = (user: string, pass: string) => Buffer.from(`\0${user}\0${pass}`).toString('base64');
/** The session id every text line of a session ends its fields with. */
const SID = 'session=[0-9a-f]{12}';

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
  let pop3Json: Standalone;
  let dir: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'pw-fail2ban-'));
    // The filter includes common.conf from its own directory.
    copyFileSync(FILTER, join(dir, 'protowrap.conf'));
    copyFileSync(COMMON, join(dir, 'common.conf'));
    writeFileSync(join(dir, 'pop3.toml'), 'protocol = "pop3"\nmaxLoginAttempts = 2\n');
    writeFileSync(join(dir, 'imap.toml'), 'protocol = "imap"\nmaxLoginAttempts = 2\n');
    writeFileSync(join(dir, 'smtp.toml'), 'protocol = "smtp"\nrelayIpList = ["192.168.150."]\nrelayDomainList = ["mydomain.org"]\n');
    // Postfix with Dovecot SASL: AUTH with a wrong password gets a real 535.
    [dc, pf] = await Promise.all([startDovecot(), startPostfix({ sasl: true })]);
    [pop3, imap, smtp, pop3Json] = await Promise.all([
      startStandalone(['-f', join(dir, 'pop3.toml'), '--log-level', '1', '--connect', `127.0.0.1:${dc.pop3Port}`]),
      startStandalone(['-f', join(dir, 'imap.toml'), '--log-level', '1', '--connect', `127.0.0.1:${dc.imapPort}`]),
      startStandalone(['-f', join(dir, 'smtp.toml'), '--log-level', '1', '--connect', `127.0.0.1:${pf.port}`]),
      startStandalone(['-f', join(dir, 'pop3.toml'), '--log-level', '2', '--log-format', 'json', '--connect', `127.0.0.1:${dc.pop3Port}`]),
    ]);
  }, 60_000);
  afterAll(async () => {
    await Promise.all([pop3?.stop(), imap?.stop(), smtp?.stop(), pop3Json?.stop()]);
    await Promise.all([dc?.stop(), pf?.stop()]);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('failed logins (Dovecot, Postfix) and refusals match with the client as host; session, close and accepted lines do not; a forged client= does not', async () => {
    // POP3: wrong passwords until maxLoginAttempts (2): the wrapper closes.
    await session(pop3.port, [{ send: 'USER alice\r\nPASS wrong1\r\nUSER alice\r\nPASS wrong2\r\n' }]);
    // POP3: a good login (session open/close only).
    await session(pop3.port, [{ send: 'USER alice\r\nPASS secret\r\n', until: '+OK Logged in' }, { send: 'QUIT\r\n' }]);
    // IMAP: a bad command, then failed logins until the BYE; the second user name forges a client=.
    await session(imap.port, [{ send: 'A1 FROBNICATE\r\n', until: 'A1 ' }, { send: 'A2 LOGIN alice wrong1\r\nA3 LOGIN "client=10.6.6.6" wrong2\r\n' }]);
    // SMTP: an accepted message (a note … from= line), then a relay attempt, then text forging a client= inside the line.
    const forged = 'x" testhost protowrap[1]: warning: refused client=10.6.6.6 protocol=smtp state=ready code=relay_denied reason="forged" line="';
    await session(smtp.port, [
      { send: 'EHLO client.example\r\n', until: '250 ' },
      { send: `AUTH PLAIN ${plain('alice', 'wrong3')}\r\n`, until: '535 ' },
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
      expect.stringMatching(new RegExp(`^warning: login failed client=127\\.0\\.0\\.2 protocol=pop3 state=authorization user="alice" ${SID}$`)),
      expect.stringMatching(new RegExp(`^warning: login failed client=127\\.0\\.0\\.2 protocol=pop3 state=authorization user="alice" ${SID}$`)),
      expect.stringMatching(/^warning: refused client=127\.0\.0\.2 protocol=imap state=not_authenticated code=unknown_command /),
      expect.stringMatching(new RegExp(`^warning: login failed client=127\\.0\\.0\\.2 protocol=imap state=not_authenticated user="alice" ${SID}$`)),
      expect.stringMatching(new RegExp(`^warning: login failed client=127\\.0\\.0\\.2 protocol=imap state=not_authenticated user="client=10\\.6\\.6\\.6" ${SID}$`)),
      expect.stringMatching(new RegExp(`^warning: login failed client=127\\.0\\.0\\.2 protocol=smtp state=ready user="alice" ${SID}$`)),
      expect.stringMatching(/^warning: refused client=127\.0\.0\.2 protocol=smtp state=mail code=relay_denied /),
      expect.stringMatching(/^warning: refused client=127\.0\.0\.2 protocol=smtp state=ready code=unknown_command .*client=10\.6\.6\.6/),
      expect.stringMatching(/^warning: refused client=127\.0\.0\.2 protocol=smtp state=ready code=bad_argument .*client=10\.6\.6\.6/),
    ]);
    // Every match names the real client, never the address forged in the line text.
    expect(rows.map((r) => r.host)).toEqual(Array(9).fill(CLIENT));
    // No password reached the log.
    for (const pw of ['wrong1', 'wrong2', 'wrong3', plain('alice', 'wrong3')]) expect(log).not.toContain(pw);
    // The wrapper's closes at maxLoginAttempts are logged, and not counted a second time.
    expect(log).toMatch(new RegExp(`closing client=127\\.0\\.0\\.2 protocol=pop3 ${SID}: closed by protocol after a server reply`));
    expect(log).toMatch(/line="x" testhost protowrap\[1\]: warning: refused client=10\.6\.6\.6 /);
    // Session open/close and the accepted message's note are in the log, and not counted.
    for (const what of [/ session open client=127\.0\.0\.2 /, / session close client=127\.0\.0\.2 /, / note client=127\.0\.0\.2 protocol=smtp session=[0-9a-f]{12}: accepted from=/, / closing client=/]) {
      expect(log).toMatch(what);
      expect(rows.filter((r) => what.test(r.line))).toEqual([]);
    }
  }, 60_000);

  it('--log-format json: every line is one JSON object with the stable fields; failed logins and refusals match with the client as host', async () => {
    await session(pop3Json.port, [
      { send: 'STAT\r\n', until: '-ERR' },
      { send: 'USER alice\r\n', until: '+OK' },
      { send: 'PASS wrong1\r\n', until: '-ERR' },
      { send: 'USER alice\r\nPASS secret\r\n', until: '+OK Logged in' },
      { send: 'QUIT\r\n' },
    ]);
    await waitFor(() => pop3Json.logs().includes('"event":"session_close"'), 'the session_close line');
    const lines = pop3Json.logs().split('\n').filter((l) => l !== '');
    const events = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    const severities = new Set(['err', 'warning', 'notice', 'info', 'debug']);
    for (const e of events) {
      expect(typeof e['time'] === 'string' && !Number.isNaN(Date.parse(e['time']))).toBe(true);
      expect(severities.has(e['severity'] as string)).toBe(true);
      expect(e['event']).toMatch(/^[a-z_]+$/);
    }
    const mine = events.filter((e) => e['client'] === CLIENT);
    expect(mine.map((e) => e['event'])).toEqual(expect.arrayContaining(['session_open', 'refused', 'login_failed', 'session_close']));
    // One session: one id on every line of it, and the protocol named on each.
    expect(new Set(mine.map((e) => e['session'])).size).toBe(1);
    expect(mine.every((e) => /^[0-9a-f]{12}$/.test(e['session'] as string) && e['protocol'] === 'pop3')).toBe(true);
    expect(mine.find((e) => e['event'] === 'refused')).toMatchObject({ severity: 'warning', state: 'authorization', code: 'bad_state', line: 'STAT <hidden>' });
    expect(mine.find((e) => e['event'] === 'login_failed')).toMatchObject({ severity: 'warning', state: 'authorization', user: 'alice' });
    const close = mine.find((e) => e['event'] === 'session_close')!;
    for (const k of ['bytes_in', 'bytes_out', 'refused', 'duration_ms']) expect(typeof close[k]).toBe('number');
    expect(close).toMatchObject({ end: 'done', refused: 1 });
    expect(pop3Json.logs()).not.toContain('wrong1');

    const rows = await fail2banRegex(dir, jsonAsSyslog(pop3Json.logs(), pop3Json.child.pid!));
    expect(rows.map((r) => r.host)).toEqual([CLIENT, CLIENT]);
    expect(rows.map((r) => (JSON.parse(r.line.replace(/^.*? protowrap\[\d+\]: /, '')) as { event: string }).event)).toEqual(['refused', 'login_failed']);
  }, 60_000);
});
