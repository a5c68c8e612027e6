import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { asDelivered, finalReplies, smtpRaw, startSink, type Sink } from '../helpers/postfix.js';
import { freePort, runPiped, startStandalone, waitFor, type Standalone } from '../helpers/wrapper.js';

const run = promisify(execFile);

/**
 * The built wrapper in front of Postfix's smtp-sink over TCP. smtp-sink -v
 * logs every command it receives and -d dumps every message it accepts, so
 * each test asserts what the server really got.
 */

const POLICY = `
protocol = "smtp"
maxMsgSize = 1048576
blockAddrList = ["hahaha@sexyfun.net", "@spammer.org"]
blockBodyList = ['^Content-Type: application.+\\.(PIF|EXE|VBS|COM|BAT|LNK|SCR)\\"']
relayIpList = ["192.168.150.", "192.168.160."]
relayDomainList = ["mydomain.org", "gwolf.cx"]
maxRcpt = 3
`;

const MSG = 'From: alice@client.example\r\nTo: bob@mydomain.org\r\nSubject: through the wrapper\r\n\r\n..a line that starts with a dot\r\nplain line\r\n';
const ENV = 'EHLO client.example\r\nMAIL FROM:<alice@client.example>\r\nRCPT TO:<bob@mydomain.org>\r\nDATA\r\n';

describe('smtp through the wrapper to smtp-sink', () => {
  let sink: Sink;
  let slowSink: Sink;
  let plain: Standalone;
  let held: Standalone;
  let early: Standalone;
  let dir: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'pw-smtp-'));
    writeFileSync(join(dir, 'policy.toml'), POLICY);
    [sink, slowSink] = await Promise.all([startSink(), startSink(['-W', 'CONNECT:1'])]);
    [plain, held, early] = await Promise.all([
      startStandalone(['-p', 'smtp', '--bare-line-feed', 'refuse', '--connect', `127.0.0.1:${sink.port}`]),
      startStandalone(['-f', join(dir, 'policy.toml'), '--bare-line-feed', 'refuse', '--connect', `127.0.0.1:${sink.port}`]),
      startStandalone(['-p', 'smtp', '--connect', `127.0.0.1:${slowSink.port}`]),
    ]);
  });
  afterAll(async () => {
    await Promise.all([plain?.stop(), held?.stop(), early?.stop()]);
    await Promise.all([sink?.stop(), slowSink?.stop()]);
    rmSync(dir, { recursive: true, force: true });
  });

  /** The dump's message part: smtp-sink puts its own X- headers and a Received header first, and one LF after. */
  const lastDump = () => sink.dumps().at(-1)!;
  /** Waits until the newest dump is written out whole and ends with exactly the message's bytes. */
  const dumpEndsWith = async (wire: string) => {
    const want = Buffer.concat([asDelivered(wire), Buffer.from('\n')]);
    await waitFor(() => sink.dumps().length > 0 && lastDump().subarray(-want.length).equals(want), `a dump ending with ${JSON.stringify(want.toString('latin1'))}`, 5000).catch(() => {
      expect(lastDump().toString('latin1')).toBe(want.toString('latin1'));
    });
  };

  it('python smtplib: a message arrives byte for byte, in stream and held mode', async () => {
    for (const w of [plain, held]) {
      const before = sink.dumps().length;
      const py = `
import smtplib
s = smtplib.SMTP('127.0.0.1', ${w.port})
s.ehlo('client.example')
s.sendmail('alice@client.example', ['bob@mydomain.org'], ${JSON.stringify(MSG.replace(/^\.\./m, '.'))}.encode('latin1'))
s.quit()
`;
      await run('python3', ['-c', py]);
      await waitFor(() => sink.dumps().length > before, 'the dump');
      await dumpEndsWith(MSG);
    }
    expect(held.logs()).toMatch(/note client=127\.0\.0\.1 protocol=smtp session=[0-9a-f]{12}: accepted from=<alice@client\.example> nrcpt=1 rcpt=<bob@mydomain\.org> size=\d+/);
  });

  it('swaks and curl smtp:// deliver the exact bytes through the held-body path', async () => {
    const file = join(dir, 'msg.eml');
    writeFileSync(file, MSG.replace(/^\.\./m, '.'));
    let before = sink.dumps().length;
    await run('swaks', ['--server', `127.0.0.1:${held.port}`, '--helo', 'client.example', '--from', 'alice@client.example', '--to', 'bob@mydomain.org', '--data', `@${file}`]);
    await waitFor(() => sink.dumps().length > before, 'the swaks dump');
    // swaks ends the data with a CRLF of its own before the final dot.
    await dumpEndsWith(MSG + '\r\n');
    before = sink.dumps().length;
    await run('curl', ['-sS', `smtp://127.0.0.1:${held.port}/client.example`, '--mail-from', 'alice@client.example', '--mail-rcpt', 'bob@mydomain.org', '-T', file]);
    await waitFor(() => sink.dumps().length > before, 'the curl dump');
    await dumpEndsWith(MSG);
  });

  it('EHLO reply: STARTTLS and CHUNKING gone under a body policy, SIZE lowered to maxMsgSize', async () => {
    const { text, client } = await smtpRaw(held.port, [{ send: 'EHLO client.example\r\n', replies: 1 }, { send: 'QUIT\r\n', replies: 1 }]);
    client.sock.destroy();
    expect(text).toContain('SIZE 1048576\r\n');
    expect(text).not.toMatch(/CHUNKING|STARTTLS|XCLIENT|XFORWARD/);
    expect(text).toMatch(/PIPELINING/);
  });

  const smuggling = ['\n.\n', '\n.\r\n', '\r\n.\n', '\r.\r', '\r\n.\r', '\r\n\0.\r\n', '\n..\n'];
  it.each(smuggling)('SMTP smuggling %j in held mode: the server gets no DATA, no smuggled command', async (end) => {
    const before = sink.commands().length;
    const body = `Subject: a\r\n\r\nfirst${end}MAIL FROM:<evil@x.example>\r\nRCPT TO:<victim@mydomain.org>\r\nDATA\r\nsmuggled\r\n.\r\n`;
    const { text, client } = await smtpRaw(held.port, [
      { send: ENV, replies: 4 },
      { send: body, replies: 1 },
      { send: 'NOOP\r\n', replies: 1 },
    ]);
    client.sock.destroy();
    const replies = finalReplies(text);
    expect(replies.at(-2)).toMatch(/^550 5\.6\.0/);
    expect(replies.at(-1)).toMatch(/^250/);
    await waitFor(() => sink.commands().slice(before).includes('NOOP'), 'NOOP at the sink');
    const got = sink.commands().slice(before);
    expect(got).toEqual(['EHLO client.example', 'MAIL FROM:<alice@client.example>', 'RCPT TO:<bob@mydomain.org>', 'RSET', 'NOOP']);
    expect(held.logs()).toMatch(/code=smuggling/);
  });

  it('SMTP smuggling in stream mode: refused before the line is forwarded, session closed, nothing accepted', async () => {
    const before = sink.commands().length;
    const dumps = sink.dumps().length;
    const { text, client } = await smtpRaw(plain.port, [
      { send: ENV, replies: 4 },
      { send: 'Subject: a\r\n\r\nfirst\n.\nMAIL FROM:<evil@x.example>\r\n', replies: 1 },
    ]);
    await client.eof;
    expect(finalReplies(text).at(-1)).toMatch(/^554 /);
    await new Promise((r) => setTimeout(r, 200));
    expect(sink.commands().slice(before).join('\n')).not.toContain('evil');
    expect(sink.dumps().length).toBe(dumps);
  });

  it('blocked senders in disguise are refused at MAIL FROM (550) and never reach the server', async () => {
    const disguises = ['<hahaha@sexyfun.net>', '<HAHAHA@SexyFun.Net>', '<"hahaha"@sexyfun.net>', '<"ha\\haha"@sexyfun.net>', '<@relay.gwolf.cx:hahaha@sexyfun.net>', '<hahaha%sexyfun.net@gwolf.cx>', '<anyone@spammer.org>'];
    const before = sink.commands().length;
    const { text, client } = await smtpRaw(held.port, [
      { send: 'EHLO client.example\r\n', replies: 1 },
      ...disguises.map((d) => ({ send: `MAIL FROM:${d}\r\n`, replies: 1 })),
      { send: 'QUIT\r\n', replies: 1 },
    ]);
    client.sock.destroy();
    expect(finalReplies(text).filter((r) => r.startsWith('550 5.7.1'))).toHaveLength(disguises.length);
    await waitFor(() => sink.commands().slice(before).includes('QUIT'), 'QUIT at the sink');
    expect(sink.commands().slice(before)).toEqual(['EHLO client.example', 'QUIT']);
  });

  it('attachments blockBodyList catches (unfolded and folded) are discarded; the session goes on', async () => {
    const dumps = sink.dumps().length;
    const before = sink.commands().length;
    const unfolded = 'Subject: x\r\nContent-Type: application/octet-stream; name="x.exe"\r\n\r\nTVqQ\r\n.\r\n';
    const folded = 'Subject: x\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\nContent-Type: application/x-msdownload;\r\n\tname="invoice.PIF"\r\n\r\nTVqQ\r\n--b--\r\n.\r\n';
    const tx = 'MAIL FROM:<alice@client.example>\r\nRCPT TO:<bob@mydomain.org>\r\nDATA\r\n';
    const { text, client } = await smtpRaw(held.port, [
      { send: ENV, replies: 4 },
      { send: unfolded, replies: 1 },
      { send: tx, replies: 3 },
      { send: folded, replies: 1 },
      { send: tx, replies: 3 },
      { send: MSG + '.\r\n', replies: 1 },
      { send: 'QUIT\r\n', replies: 1 },
    ]);
    client.sock.destroy();
    const r = finalReplies(text);
    expect(r.filter((l) => l.startsWith('550 5.7.1 Message content rejected'))).toHaveLength(2);
    await waitFor(() => sink.dumps().length === dumps + 1, 'the one clean message');
    await dumpEndsWith(MSG);
    const cmds = sink.commands().slice(before);
    expect(cmds.filter((c) => c === 'DATA')).toHaveLength(1);
    expect(cmds.filter((c) => c === 'RSET')).toHaveLength(2);
  });

  it('oversize messages: 552 with and without SIZE=, the server never gets DATA', async () => {
    const before = sink.commands().length;
    const big = `${'x'.repeat(998)}\r\n`.repeat(1100);
    const { text, client } = await smtpRaw(held.port, [
      { send: 'EHLO client.example\r\n', replies: 1 },
      { send: 'MAIL FROM:<alice@client.example> SIZE=2000000\r\n', replies: 1 },
      { send: 'MAIL FROM:<alice@client.example> SIZE=1000\r\nRCPT TO:<bob@mydomain.org>\r\nDATA\r\n', replies: 3 },
      { send: big + '.\r\n', replies: 1 },
      { send: 'QUIT\r\n', replies: 1 },
    ]);
    client.sock.destroy();
    const r = finalReplies(text);
    expect(r[2]).toMatch(/^552 5\.3\.4/);
    expect(r.at(-2)).toMatch(/^552 5\.3\.4/);
    await waitFor(() => sink.commands().slice(before).includes('QUIT'), 'QUIT at the sink');
    expect(sink.commands().slice(before)).not.toContain('DATA');
  });

  it('overlong command line (510 + CRLF) and too many recipients (maxRcpt 3 per session: 452)', async () => {
    const before = sink.commands().length;
    const rcpts = [1, 2, 3, 4].map((n) => `RCPT TO:<u${n}@mydomain.org>\r\n`).join('');
    const { text, client } = await smtpRaw(held.port, [
      { send: 'EHLO client.example\r\n', replies: 1 },
      { send: `NOOP ${'x'.repeat(505)}\r\n`, replies: 1 },
      { send: `NOOP ${'x'.repeat(506)}\r\n`, replies: 1 },
      { send: `MAIL FROM:<alice@client.example>\r\n${rcpts}`, replies: 5 },
      { send: 'QUIT\r\n', replies: 1 },
    ]);
    client.sock.destroy();
    const r = finalReplies(text);
    expect(r[2]).toMatch(/^250/);
    expect(r[3]).toMatch(/^500 5\.5\.0 Line too long/);
    expect(r.slice(4, 9).map((l) => l.slice(0, 3))).toEqual(['250', '250', '250', '250', '452']);
    await waitFor(() => sink.commands().slice(before).includes('QUIT'), 'QUIT at the sink');
    const cmds = sink.commands().slice(before);
    expect(cmds.filter((c) => c.startsWith('RCPT'))).toEqual(['RCPT TO:<u1@mydomain.org>', 'RCPT TO:<u2@mydomain.org>', 'RCPT TO:<u3@mydomain.org>']);
    expect(cmds.filter((c) => c.startsWith('NOOP'))).toHaveLength(1);
  });

  it('relay from outside is refused (550); out-of-order pipelining never reaches the server as data', async () => {
    const before = sink.commands().length;
    const { text, client } = await smtpRaw(held.port, [
      { send: 'EHLO client.example\r\n', replies: 1 },
      { send: 'MAIL FROM:<alice@client.example>\r\nRCPT TO:<victim@elsewhere.example>\r\nRCPT TO:<x%elsewhere.example@mydomain.org>\r\nRSET\r\n', replies: 4 },
      // DATA before any RCPT, with the body in the same packet: the body is read as commands and refused.
      { send: 'MAIL FROM:<alice@client.example>\r\nDATA\r\nSubject: x\r\nMAIL FROM:<evil@x.example>\r\n.\r\n', replies: 5 },
      { send: 'QUIT\r\n', replies: 1 },
    ]);
    client.sock.destroy();
    const r = finalReplies(text).map((l) => l.slice(0, 3));
    expect(r).toEqual(['220', '250', '250', '550', '550', '250', '250', '503', '500', '503', '500', '221']);
    await waitFor(() => sink.commands().slice(before).includes('QUIT'), 'QUIT at the sink');
    expect(sink.commands().slice(before)).toEqual(['EHLO client.example', 'MAIL FROM:<alice@client.example>', 'RSET', 'MAIL FROM:<alice@client.example>', 'QUIT']);
  });

  it('server unreachable: the client gets 421 before the wrapper closes', async () => {
    const r = await runPiped(['-p', 'smtp', '--connect', `127.0.0.1:${await freePort()}`], '');
    expect(r.stdout.toString('latin1')).toMatch(/^421 4\.3\.2 /);
    expect(r.stderr).toMatch(/server unavailable/);
  });

  it('early talker: a client that talks before the greeting gets 554 and is cut off', async () => {
    const { text, client } = await smtpRaw(early.port, [{ send: 'EHLO early.example\r\n', replies: 1 }], false);
    await client.eof;
    expect(text).toMatch(/^554 5\.5\.1/);
    expect(early.logs()).toMatch(/code=early_talker/);
    expect(slowSink.commands()).not.toContain('EHLO early.example');
  });
});
