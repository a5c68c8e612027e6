import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { asDelivered, disconnectLines, finalReplies, smtpRaw, startPostfix, type Postfix } from '../helpers/postfix.js';
import { freePort, startStandalone, waitFor, WRAPPER, type Standalone } from '../helpers/wrapper.js';

const run = promisify(execFile);
const LISTING3 = fileURLToPath(new URL('../../examples/listing3.toml', import.meta.url));

/**
 * The wrapper in front of a real Postfix (Debian's postfix): its smtpd on a
 * loopback port, and its `sendmail -bs` spawned per connection exactly as
 * the seed's Listing 3 says (examples/listing3.toml, unchanged). Mail for
 * mydomain.org is delivered to one Maildir; the tests compare the delivered
 * bytes and read Postfix's own log of the commands it got.
 */

/** Carries its own Date and Message-ID, so Postfix adds headers only above it. */
const msg = (n: string) =>
  `From: alice@client.example\r\nTo: bob@mydomain.org\r\nDate: Thu, 26 Nov 2026 10:00:00 +0000\r\nMessage-ID: <${n}@client.example>\r\nSubject: ${n}\r\n\r\n..dot-stuffed line\r\n\tindented\r\n${'x'.repeat(990)}\r\n`;

/** Python smtplib stuffs dots itself: give it the unstuffed text. */
const pySend = (port: number, body: string, rcpt = 'bob@mydomain.org') => `
import smtplib
s = smtplib.SMTP('127.0.0.1', ${port})
s.ehlo('client.example')
s.sendmail('alice@client.example', [${JSON.stringify(rcpt)}], ${JSON.stringify(body.replace(/^\.\./gm, '.'))}.encode('latin1'))
s.quit()
`;

describe('smtp through the wrapper to a real Postfix', () => {
  let pf: Postfix;
  let held: Standalone;
  let plain: Standalone;
  let dir: string;
  let inetd: ChildProcess | null = null;
  let inetdPort = 0;
  let inetdLog = '';

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'pw-smtp-pf-'));
    pf = await startPostfix({ sasl: true });
    [held, plain] = await Promise.all([
      // Listing 3's policy, destination replaced by flag: Postfix's smtpd over TCP.
      startStandalone(['-f', LISTING3, '--log-level', '1', '--bare-line-feed', 'refuse', '--connect', `127.0.0.1:${pf.port}`]),
      startStandalone(['-p', 'smtp', '--log-level', '3', '--connect', `127.0.0.1:${pf.port}`]),
    ]);
    // Listing 3 as written (inetd mode, pipeCmd = sendmail -bs), under systemd's inetd emulation.
    inetdPort = await freePort();
    inetd = spawn('systemd-socket-activate', ['--inetd', '-a', '-l', `127.0.0.1:${inetdPort}`, '-E', `MAIL_CONFIG=${pf.dir}`, process.execPath, WRAPPER, '-f', LISTING3, '--log-stderr'], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    inetd.stderr!.on('data', (b: Buffer) => (inetdLog += b.toString('latin1')));
    await waitFor(() => inetdLog.includes('Listening on') || inetd!.exitCode !== null, 'systemd-socket-activate');
  });
  afterAll(async () => {
    if (inetd && inetd.exitCode === null) {
      const gone = new Promise((r) => inetd!.once('exit', r));
      inetd.kill('SIGTERM');
      await gone;
    }
    await Promise.all([held?.stop(), plain?.stop()]);
    await pf?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const newest = async (count: number) => (await pf.waitDelivered(count)).at(-1)!;
  const endsWith = (file: Buffer, wire: string) => expect(file.subarray(-asDelivered(wire).length).toString('latin1')).toBe(asDelivered(wire).toString('latin1'));

  it('smtpd: python smtplib, swaks and curl deliver the exact bytes (held mode), smtplib also in stream mode', async () => {
    let n = pf.delivered().length;
    await run('python3', ['-c', pySend(held.port, msg('py-held'))]);
    endsWith(await newest(++n), msg('py-held'));
    await run('python3', ['-c', pySend(plain.port, msg('py-plain'))]);
    endsWith(await newest(++n), msg('py-plain'));
    const file = join(dir, 'swaks.eml');
    writeFileSync(file, msg('swaks').replace(/^\.\./gm, '.'));
    await run('swaks', ['--server', `127.0.0.1:${held.port}`, '--helo', 'client.example', '--from', 'alice@client.example', '--to', 'bob@mydomain.org', '--data', `@${file}`]);
    // swaks adds a CRLF of its own before the final dot.
    endsWith(await newest(++n), msg('swaks') + '\r\n');
    writeFileSync(file, msg('curl').replace(/^\.\./gm, '.'));
    await run('curl', ['-sS', `smtp://127.0.0.1:${held.port}/client.example`, '--mail-from', 'alice@client.example', '--mail-rcpt', 'bob@mydomain.org', '-T', file]);
    endsWith(await newest(++n), msg('curl'));
    expect(held.logs()).toMatch(/note client=127\.0\.0\.1 protocol=smtp session=[0-9a-f]{12}: accepted from=<alice@client\.example> nrcpt=1 rcpt=<bob@mydomain\.org> size=\d+/);
  });

  it('smtpd without PIPELINING: a client that pipelines anyway is fed to Postfix one command at a time', async () => {
    const session = (n: string): [string, string] => ['EHLO client.example\r\n', `MAIL FROM:<alice@client.example>\r\nRCPT TO:<bob@mydomain.org>\r\nDATA\r\n${msg(n)}.\r\nQUIT\r\n`];
    const count = () => (pf.log().match(/improper command pipelining/g) ?? []).length;
    // Control: straight to Postfix, the same bytes are improper pipelining (so the assertion below can fail).
    const before = count();
    const [e1, t1] = session('direct');
    const direct = await smtpRaw(pf.noPipeliningPort, [{ send: e1, replies: 1 }, { send: t1, replies: 5 }]);
    direct.client.sock.destroy();
    await waitFor(() => count() > before, 'Postfix noticing improper pipelining');
    const w = await startStandalone(['-p', 'smtp', '--connect', `127.0.0.1:${pf.noPipeliningPort}`]);
    try {
      const [e2, t2] = session('serialised');
      const { text, client } = await smtpRaw(w.port, [{ send: e2, replies: 1 }, { send: t2, replies: 5 }]);
      client.sock.destroy();
      expect(text).not.toContain('PIPELINING');
      expect(finalReplies(text).map((l) => l.slice(0, 3))).toEqual(['220', '250', '250', '250', '354', '250', '221']);
      const mine = () => pf.delivered().find((m) => m.includes('<serialised@client.example>'));
      await waitFor(() => mine() !== undefined, 'the serialised message');
      endsWith(mine()!, msg('serialised'));
      await new Promise((r) => setTimeout(r, 300));
      expect(count()).toBe(before + 1);
    } finally {
      await w.stop();
    }
  });

  it('smtpd: BDAT chunks pass counted, not parsed, when no body policy holds the body', async () => {
    const n = pf.delivered().length;
    const body = msg('bdat');
    const half = 40;
    const { text, client } = await smtpRaw(plain.port, [
      { send: 'EHLO client.example\r\nMAIL FROM:<alice@client.example>\r\nRCPT TO:<bob@mydomain.org>\r\n', replies: 3 },
      { send: `BDAT ${half}\r\n${body.slice(0, half)}BDAT ${body.length - half} LAST\r\n${body.slice(half)}`, replies: 2 },
      { send: 'QUIT\r\n', replies: 1 },
    ]);
    client.sock.destroy();
    expect(finalReplies(text).map((l) => l.slice(0, 3))).toEqual(['220', '250', '250', '250', '250', '250', '221']);
    // BDAT is not dot-stuffed: the bytes arrive exactly as sent, with LF endings in the Maildir.
    const got = await newest(n + 1);
    expect(got.toString('latin1').endsWith(body.replace(/\r\n/g, '\n'))).toBe(true);
  });

  it('smtpd: a discarded attachment never reaches Postfix as DATA; the next message in the session is delivered', async () => {
    const n = pf.delivered().length;
    const logBefore = pf.log().length;
    const virus = 'Subject: x\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\ncontent-type: application/octet-stream;\r\n name="invoice.exe"\r\n\r\nTVqQ\r\n--b--\r\n.\r\n';
    const tx = 'MAIL FROM:<alice@client.example>\r\nRCPT TO:<bob@mydomain.org>\r\nDATA\r\n';
    const { text, client } = await smtpRaw(held.port, [
      { send: 'EHLO client.example\r\n' + tx, replies: 4 },
      { send: virus, replies: 1 },
      { send: tx, replies: 3 },
      { send: msg('after-virus') + '.\r\n', replies: 1 },
      { send: 'QUIT\r\n', replies: 1 },
    ]);
    client.sock.destroy();
    expect(finalReplies(text).map((l) => l.slice(0, 3))).toEqual(['220', '250', '250', '250', '354', '550', '250', '250', '354', '250', '221']);
    endsWith(await newest(n + 1), msg('after-virus'));
    // Postfix counts one DATA only (the clean message), and the RSET that ended the discarded transaction.
    const want = /ehlo=1 mail=2 rcpt=2 data=1 rset=1 quit=1 commands=8$/;
    await waitFor(() => disconnectLines(pf.log().slice(logBefore)).some((l) => want.test(l)), 'Postfix disconnect line').catch(() => {
      expect(disconnectLines(pf.log().slice(logBefore)).join('\n')).toMatch(want);
    });
  });

  it('smtpd: smuggled end-of-data never reaches Postfix; oversize refused; relay from outside refused', async () => {
    const n = pf.delivered().length;
    const logBefore = pf.log().length;
    const tx = 'MAIL FROM:<alice@client.example>\r\nRCPT TO:<bob@mydomain.org>\r\nDATA\r\n';
    const smuggle = 'Subject: s\r\n\r\nhi\n.\nMAIL FROM:<evil@client.example>\r\nRCPT TO:<bob@mydomain.org>\r\nDATA\r\nSubject: smuggled\r\n\r\nx\r\n.\r\n';
    const { text, client } = await smtpRaw(held.port, [
      { send: 'EHLO client.example\r\n' + tx, replies: 4 },
      { send: smuggle, replies: 1 },
      { send: 'MAIL FROM:<alice@client.example> SIZE=2000000\r\n', replies: 1 },
      { send: tx, replies: 3 },
      { send: `${'y'.repeat(998)}\r\n`.repeat(1100) + '.\r\n', replies: 1 },
      { send: 'MAIL FROM:<alice@client.example>\r\nRCPT TO:<victim@elsewhere.example>\r\nSTARTTLS\r\nQUIT\r\n', replies: 4 },
    ]);
    client.sock.destroy();
    expect(finalReplies(text).map((l) => l.slice(0, 3))).toEqual(['220', '250', '250', '250', '354', '550', '552', '250', '250', '354', '552', '250', '550', '502', '221']);
    expect(text).not.toMatch(/STARTTLS/);
    // Postfix's count of what it got: no DATA, no STARTTLS, no relay RCPT, the RSETs that ended two discarded messages.
    const want = /ehlo=1 mail=3 rcpt=2 rset=2 quit=1 commands=9$/;
    await waitFor(() => disconnectLines(pf.log().slice(logBefore)).some((l) => want.test(l)), 'Postfix disconnect line').catch(() => {
      expect(disconnectLines(pf.log().slice(logBefore)).join('\n')).toMatch(want);
    });
    await new Promise((r) => setTimeout(r, 300));
    expect(pf.delivered().length).toBe(n);
    expect(pf.log().slice(logBefore)).not.toMatch(/evil@client\.example|victim@elsewhere/);
  });

  it('maxLoginAttempts (3): each 535 from Postfix is a login failed line naming the user; the third is followed by 421 and the close', async () => {
    const logBefore = plain.logs().length;
    const pfBefore = pf.log().length;
    const auth = (user: string, pass: string) => `AUTH PLAIN ${Buffer.from(`\0${user}\0${pass}`).toString('base64')}\r\n`;
    const { text, client } = await smtpRaw(plain.port, [
      { send: 'EHLO client.example\r\n', replies: 1 },
      { send: auth('alice', 'wrong1'), replies: 1 },
      { send: 'AUTH LOGIN\r\n', replies: 1 },
      { send: 'bWFsbG9yeQ==\r\n', replies: 1 },
      { send: 'd3JvbmcyCg==\r\n', replies: 1 },
      { send: auth('bob', 'wrong3'), replies: 2 },
    ]);
    // The wrapper closes after its 421.
    await client.eof;
    client.sock.destroy();
    const replies = finalReplies(text);
    expect(replies.map((l) => l.slice(0, 3))).toEqual(['220', '250', '535', '334', '334', '535', '535', '421']);
    expect(replies.at(-1)).toBe('421 4.7.0 Too many failed login attempts, closing transmission channel');
    await waitFor(() => /session close .* end=protocol_close /.test(plain.logs().slice(logBefore)), 'the session close line');
    const log = plain.logs().slice(logBefore);
    const failed = log.split('\n').filter((l) => l.includes(' login failed '));
    expect(failed).toEqual([
      expect.stringMatching(/warning: login failed client=127\.0\.0\.1 protocol=smtp state=ready user="alice" session=[0-9a-f]{12}$/),
      expect.stringMatching(/warning: login failed client=127\.0\.0\.1 protocol=smtp state=ready session=[0-9a-f]{12}$/),
      expect.stringMatching(/warning: login failed client=127\.0\.0\.1 protocol=smtp state=ready user="bob" session=[0-9a-f]{12}$/),
    ]);
    for (const pw of ['wrong1', 'wrong2', 'wrong3', 'd3JvbmcyCg']) expect(log).not.toContain(pw);
    // Postfix saw three AUTH exchanges, all failed.
    const want = /auth=0\/3/;
    await waitFor(() => disconnectLines(pf.log().slice(pfBefore)).some((l) => want.test(l)), 'Postfix disconnect line').catch(() => {
      expect(disconnectLines(pf.log().slice(pfBefore)).join('\n')).toMatch(want);
    });
  });

  it('smtpd AUTH (Dovecot SASL): LOGIN continuation lines and PLAIN pass, a bad response cancels the exchange, no credential is logged', async () => {
    const logBefore = pf.log().length;
    const { text, client } = await smtpRaw(plain.port, [
      { send: 'EHLO client.example\r\n', replies: 1 },
      { send: 'AUTH LOGIN\r\n', replies: 1 },
      { send: 'YWxpY2U=\r\n', replies: 1 },
      { send: 'not base64!\r\n', replies: 1 },
      { send: 'AUTH LOGIN\r\n', replies: 1 },
      { send: 'YWxpY2U=\r\n', replies: 1 },
      { send: 'c2VjcmV0\r\n', replies: 1 },
      { send: 'AUTH PLAIN AGFsaWNlAHNlY3JldA==\r\n', replies: 1 },
      { send: 'QUIT\r\n', replies: 1 },
    ]);
    client.sock.destroy();
    expect(finalReplies(text).map((l) => l.slice(0, 3))).toEqual(['220', '250', '334', '334', '501', '334', '334', '235', '503', '221']);
    // Postfix saw two AUTH exchanges, one successful (the first cancelled by our "*"), and no third.
    const want = /ehlo=1 auth=1\/2 quit=1 commands=3\/4$/;
    await waitFor(() => disconnectLines(pf.log().slice(logBefore)).some((l) => want.test(l)), 'Postfix disconnect line').catch(() => {
      expect(disconnectLines(pf.log().slice(logBefore)).join('\n')).toMatch(want);
    });
    expect(plain.logs()).toMatch(/code=bad_argument reason="AUTH response is not base64" line="<hidden>"/);
    for (const secret of ['YWxpY2U', 'c2VjcmV0', 'AGFsaWNl', 'not base64!']) expect(plain.logs()).not.toContain(secret);
    // python smtplib: AUTH PLAIN with an initial response, then a message.
    const n = pf.delivered().length;
    const py = pySend(plain.port, msg('after-auth')).replace("s.ehlo('client.example')", "s.ehlo('client.example')\ns.login('alice', 'secret')");
    await run('python3', ['-c', py]);
    endsWith(await newest(n + 1), msg('after-auth'));
  });

  it('Listing 3 unchanged (inetd, sendmail -bs): python smtplib and curl deliver the exact bytes', async () => {
    let n = pf.delivered().length;
    await run('python3', ['-c', pySend(inetdPort, msg('listing3-py'))]);
    endsWith(await newest(++n), msg('listing3-py'));
    const file = join(dir, 'l3.eml');
    writeFileSync(file, msg('listing3-curl').replace(/^\.\./gm, '.'));
    await run('curl', ['-sS', `smtp://127.0.0.1:${inetdPort}/client.example`, '--mail-from', 'alice@client.example', '--mail-rcpt', 'bob@mydomain.org', '-T', file]);
    endsWith(await newest(++n), msg('listing3-curl'));
    expect(inetdLog).toMatch(/server=exec:\/usr\/sbin\/sendmail/);
    expect(inetdLog).toMatch(/note client=127\.0\.0\.1 protocol=smtp session=[0-9a-f]{12}: accepted from=<alice@client\.example> nrcpt=1 rcpt=<bob@mydomain\.org>/);
  });

  it('Listing 3 unchanged: blocked sender, relay attempt and virus are refused; sendmail delivers nothing of them', async () => {
    const n = pf.delivered().length;
    const virus = 'Content-Type: application/x-msdownload; name="x.scr"\r\n\r\nTVqQ\r\n.\r\n';
    const { text, client } = await smtpRaw(inetdPort, [
      { send: 'EHLO client.example\r\n', replies: 1 },
      { send: 'MAIL FROM:<"hahaha"@SexyFun.net>\r\n', replies: 1 },
      { send: 'MAIL FROM:<alice@client.example>\r\nRCPT TO:<victim@elsewhere.example>\r\nRCPT TO:<bob@mydomain.org>\r\nDATA\r\n', replies: 4 },
      { send: virus, replies: 1 },
      { send: 'QUIT\r\n', replies: 1 },
    ]);
    await client.eof;
    expect(finalReplies(text).map((l) => l.slice(0, 3))).toEqual(['220', '250', '550', '250', '550', '250', '354', '550', '221']);
    expect(inetdLog).toMatch(/refused client=127\.0\.0\.1 protocol=smtp state=\w+ code=blocked_sender .*from=<hahaha@sexyfun\.net>/);
    expect(inetdLog).toMatch(/code=relay_denied .*rcpt=<victim@elsewhere\.example>/);
    expect(inetdLog).toMatch(/code=blocked_body .*from=<alice@client\.example> nrcpt=1 rcpt=<bob@mydomain\.org>/);
    await new Promise((r) => setTimeout(r, 1000));
    expect(pf.delivered().length).toBe(n);
  });
});
