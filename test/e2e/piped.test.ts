import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDovecot, type Dovecot } from '../helpers/dovecot.js';
import { startPostfix, type Postfix } from '../helpers/postfix.js';
import { runPiped } from '../helpers/wrapper.js';

const LISTING3 = fileURLToPath(new URL('../../examples/listing3.toml', import.meta.url));

/**
 * A session piped in by hand (issue 12 item 2), through the built file, in
 * front of the real servers. A pipe has no timing: everything is written
 * before the greeting exists. The early-talker rule is for network clients;
 * a piped session waits for the greeting, and each command is fed to the
 * server after the reply it must wait for.
 */
describe('a session piped in by hand works in every protocol', () => {
  let dc: Dovecot;
  let pf: Postfix;
  beforeAll(async () => {
    [dc, pf] = await Promise.all([startDovecot(), startPostfix()]);
  }, 60_000);
  afterAll(async () => {
    await Promise.all([dc?.stop(), pf?.stop()]);
  });

  it('SMTP, the seed\'s Listing 3 (held body): the issue\'s printf session is delivered', async () => {
    const before = pf.delivered().length;
    const r = await runPiped(
      ['-f', LISTING3, '--connect', `127.0.0.1:${pf.port}`],
      'EHLO x\r\nMAIL FROM:<a@mydomain.org>\r\nRCPT TO:<b@mydomain.org>\r\nDATA\r\nSubject: t\r\n\r\nhi\r\n.\r\nQUIT\r\n',
    );
    const out = r.stdout.toString('latin1');
    expect(out).not.toMatch(/talked before the greeting/);
    const codes = out.split('\r\n').filter((l) => /^\d{3} /.test(l)).map((l) => l.slice(0, 3));
    expect(codes).toEqual(['220', '250', '250', '250', '354', '250', '221']);
    const got = await pf.waitDelivered(before + 1);
    expect(got.at(-1)!.toString('latin1')).toMatch(/Subject: t\r?\n[^]*\r?\n\r?\nhi\r?\n$/);
  });

  it('SMTP, stream mode (no body policy): a piped EHLO and QUIT are answered', async () => {
    const r = await runPiped(['-p', 'smtp', '--connect', `127.0.0.1:${pf.port}`], 'EHLO x\r\nQUIT\r\n');
    expect(r.stdout.toString('latin1')).toMatch(/^220 [^\r]*\r\n250-[^]*221 /);
  });

  it('POP3: USER, PASS, STAT, LIST, QUIT piped at once, each answered in turn', async () => {
    dc.clearMailbox('alice');
    dc.addMessage('alice', 'Subject: one\r\n\r\nbody\r\n');
    const r = await runPiped(['-p', 'pop3', '--connect', `127.0.0.1:${dc.pop3Port}`], 'USER alice\r\nPASS secret\r\nSTAT\r\nLIST\r\nQUIT\r\n');
    expect(r.stdout.toString('latin1')).toMatch(/^\+OK [^\r]*ready\.\r\n\+OK\r\n\+OK Logged in\.\r\n\+OK 1 \d+\r\n\+OK 1 messages[^\r]*\r\n1 \d+\r\n\.\r\n\+OK Logging out\.\r\n$/);
    expect(r.code).toBe(0);
  });

  it('IMAP: LOGIN, SELECT, an APPEND whose synchronizing literal goes only after the server\'s +, LOGOUT', async () => {
    dc.clearMailbox('alice');
    const msg = 'Subject: piped\r\n\r\nhello\r\n';
    const r = await runPiped(
      ['-p', 'imap', '--connect', `127.0.0.1:${dc.imapPort}`, '--log-stderr', '--log-level', '3'],
      `a LOGIN alice secret\r\nb SELECT INBOX\r\nc APPEND INBOX {${msg.length}}\r\n${msg}\r\nd LOGOUT\r\n`,
    );
    const out = r.stdout.toString('latin1');
    expect(out).toMatch(/a OK [^]*b OK [^]*\r\n\+ OK[^\r]*\r\n[^]*c OK \[APPENDUID [^]*d OK /);
    expect(r.stderr).not.toMatch(/warning: refused/);
    expect(r.stderr).toMatch(/refused=0/);
  });
});
