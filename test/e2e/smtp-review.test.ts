import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tcpClient } from '../helpers/client.js';
import { finalReplies, smtpRaw, startPostfix, type Postfix } from '../helpers/postfix.js';
import { runPiped, startStandalone, waitFor, type Standalone } from '../helpers/wrapper.js';

const LISTING3 = fileURLToPath(new URL('../../examples/listing3.toml', import.meta.url));

/**
 * Findings of the adversarial review, end to end: the built wrapper in front
 * of a real Postfix smtpd (Debian's postfix), asserting what Postfix got.
 */

/** One client session: each chunk written on its own (separate TCP segments), then QUIT; returns what the client read. */
async function session(port: number, chunks: (string | Buffer)[]): Promise<string> {
  const c = await tcpClient(port);
  await c.waitFor('220 ');
  for (const ch of chunks) {
    c.sock.write(ch);
    await new Promise((r) => setTimeout(r, 40));
  }
  await c.eof;
  c.sock.destroy();
  return c.received().toString('latin1');
}

describe('smtp review findings against a real Postfix', () => {
  let pf: Postfix;
  let held: Standalone;
  let relayOnly: Standalone;
  let plain: Standalone;
  let dir: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'pw-smtp-review-'));
    // Relay control only: no body policy, so DATA streams straight to Postfix.
    writeFileSync(join(dir, 'relay.toml'), 'protocol = "smtp"\nrelayIpList = ["192.168.150."]\nrelayDomainList = ["mydomain.org", "gwolf.cx"]\n');
    pf = await startPostfix();
    [held, relayOnly, plain] = await Promise.all([
      startStandalone(['-f', LISTING3, '--connect', `127.0.0.1:${pf.port}`]),
      startStandalone(['-f', join(dir, 'relay.toml'), '--connect', `127.0.0.1:${pf.port}`]),
      startStandalone(['-p', 'smtp', '--bare-line-feed', 'refuse', '--connect', `127.0.0.1:${pf.port}`]),
    ]);
  });
  afterAll(async () => {
    await Promise.all([held?.stop(), relayOnly?.stop(), plain?.stop()]);
    await pf?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  /**
   * Waits for this session's line in Postfix's log (its disconnect line with
   * the command counts, or what Postfix said of it). Another session's line
   * may land after logBefore on a loaded machine, so the expected line is
   * waited for, not just the first disconnect line.
   */
  const postfixSaw = async (logBefore: number, want: RegExp) => {
    const hit = () => pf.log().slice(logBefore).split('\n').some((l) => want.test(l));
    await waitFor(hit, `Postfix log line ${want}`, 20_000);
    return pf.log().slice(logBefore);
  };

  // Postfix refuses "RET=BOGUS" (501) where the wrapper does not look; the
  // late 501 used to reset the transaction the client had started since, so
  // the wrapper took a nested MAIL (refused by Postfix) as the sender of its
  // relay decision, and Postfix, trusting its loopback client, relayed.
  it.each([
    ['relay lists only (stream)', () => relayOnly],
    ['Listing 3 (held)', () => held],
  ])('pipelined MAIL refusals cannot make the wrapper judge relaying on a sender Postfix never took: %s', async (_n, w) => {
    const logBefore = pf.log().length;
    const text = await session(w().port, [
      'EHLO client.example\r\n',
      'MAIL FROM:<a@x.example> RET=BOGUS\r\nRSET\r\nMAIL FROM:<spam@x.example>\r\n',
      'MAIL FROM:<a@gwolf.cx>\r\nRCPT TO:<victim@elsewhere.example>\r\nDATA\r\n',
      'Subject: relayed\r\n\r\nx\r\n.\r\nQUIT\r\n',
    ]);
    const log = await postfixSaw(logBefore, /ehlo=1 mail=1\/2 rset=1 quit=1 commands=4\/5$/);
    expect(log).not.toContain('victim@elsewhere.example');
    expect(log).not.toContain('gwolf.cx');
    expect(finalReplies(text).map((l) => l.slice(0, 3)).slice(0, 8)).toEqual(['220', '250', '501', '250', '250', '503', '550', '503']);
  });

  // Postfix maps SMTPUTF8 domains to ASCII with UTS #46 for its lookups and
  // for any next hop without SMTPUTF8: this is mail from spammer.org.
  it('a blocked domain spelt in full-width letters is refused at MAIL FROM', async () => {
    const logBefore = pf.log().length;
    const text = await session(held.port, ['EHLO client.example\r\n', Buffer.from('MAIL FROM:<x@ｓｐａｍｍｅｒ.org> SMTPUTF8\r\nQUIT\r\n', 'utf8')]);
    expect(finalReplies(text).map((l) => l.slice(0, 3))).toEqual(['220', '250', '550', '221']);
    await postfixSaw(logBefore, /ehlo=1 quit=1 commands=2$/);
    expect(held.logs()).toMatch(/code=blocked_sender .*from=<x@spammer\.org>/);
  });

  // Smuggling in stream mode, with the end-of-data sequence cut across TCP
  // segments: the line with the bare byte is never forwarded, the session is
  // closed, Postfix discards the unfinished message and sees no second one.
  it.each([
    ['\\n.\\n', ['hi\n', '.\n']],
    ['\\r.\\r', ['hi\r', '.\r']],
    ['\\r\\n.\\r\\r\\n', ['hi\r\n.\r', '\r\n']],
    ['\\n.\\r\\n', ['hi\n', '.\r\n']],
    ['NUL', ['hi\r\n\0', '.\r\n']],
  ])('stream mode, %s across segments: nothing delivered, no smuggled command', async (_n, parts) => {
    const logBefore = pf.log().length;
    const n = pf.delivered().length;
    const text = await session(plain.port, [
      'EHLO client.example\r\nMAIL FROM:<alice@client.example>\r\nRCPT TO:<bob@mydomain.org>\r\n',
      'DATA\r\n',
      'Subject: s\r\n\r\n',
      ...parts,
      'MAIL FROM:<evil@client.example>\r\nRCPT TO:<bob@mydomain.org>\r\nDATA\r\nsmuggled\r\n.\r\n',
    ]);
    expect(finalReplies(text).at(-1)).toMatch(/^554 5\.6\.0/);
    const log = await postfixSaw(logBefore, /lost connection after DATA/);
    expect(log).not.toContain('evil@client.example');
    await new Promise((r) => setTimeout(r, 300));
    expect(pf.delivered().length).toBe(n);
  });

  // A spawned server that dies before its greeting (Listing 3's sendmail -bs
  // failing to start) is as unreachable as a closed port: 421, not silence.
  it('a spawned server that exits before its greeting: the client gets 421', async () => {
    const r = await runPiped(['-p', 'smtp', '--exec', '/bin/false'], '');
    expect(r.stdout.toString('latin1')).toMatch(/^421 4\.3\.2 [^\r\n]*\r\n$/);
  });

  // RFC 5321 §4.5.3.1.6: 1000 octets with CRLF. Held: the message is refused
  // and Postfix never sees DATA; stream: it cannot be taken back, so both
  // sides are closed and Postfix drops the unfinished message.
  it('a text line over 998 octets: held mode refuses the message, stream mode closes', async () => {
    const tx = 'MAIL FROM:<alice@client.example>\r\nRCPT TO:<bob@mydomain.org>\r\nDATA\r\n';
    const n = pf.delivered().length;
    let logBefore = pf.log().length;
    const { text, client } = await smtpRaw(held.port, [
      { send: 'EHLO client.example\r\n' + tx, replies: 4 },
      { send: `Subject: long\r\n\r\n${'z'.repeat(998)}\r\n${'z'.repeat(999)}\r\n.\r\n`, replies: 1 },
      { send: 'QUIT\r\n', replies: 1 },
    ]);
    client.sock.destroy();
    expect(finalReplies(text).map((l) => l.slice(0, 3))).toEqual(['220', '250', '250', '250', '354', '500', '221']);
    await postfixSaw(logBefore, /ehlo=1 mail=1 rcpt=1 rset=1 quit=1 commands=5$/);
    logBefore = pf.log().length;
    const streamed = await session(plain.port, ['EHLO client.example\r\n' + tx, `Subject: long\r\n\r\n${'z'.repeat(999)}\r\n.\r\n`]);
    expect(finalReplies(streamed).at(-1)).toMatch(/^500 5\.5\.0/);
    await postfixSaw(logBefore, /lost connection after DATA/);
    await new Promise((r) => setTimeout(r, 300));
    expect(pf.delivered().length).toBe(n);
  });

  // RFC 2920: DATA after a group whose every RCPT failed is refused, and what
  // the client sent as a body is read as commands, each one checked (a relay
  // RCPT in it is refused like any other), as Postfix itself would read it.
  it.each([
    ['stream', () => relayOnly],
    ['held', () => held],
  ])('%s: a refused RCPT, then DATA and the body in the same packet: no message, the body is checked as commands', async (_n, w) => {
    const logBefore = pf.log().length;
    const n = pf.delivered().length;
    const text = await session(w().port, [
      'EHLO client.example\r\n',
      'MAIL FROM:<alice@client.example>\r\nRCPT TO:<victim@elsewhere.example>\r\nDATA\r\nRSET\r\nMAIL FROM:<alice@client.example>\r\nRCPT TO:<victim2@elsewhere.example>\r\n.\r\nQUIT\r\n',
    ]);
    const codes = finalReplies(text).map((l) => l.slice(0, 3));
    expect(codes.slice(0, 3)).toEqual(['220', '250', '250']);
    expect(codes[3]).toBe('550');
    expect(codes[4]).toMatch(/^5/);
    expect(codes.slice(5)).toEqual(['250', '250', '550', '500', '221']);
    const log = await postfixSaw(logBefore, /disconnect from/);
    expect(log).not.toMatch(/victim/);
    await new Promise((r) => setTimeout(r, 300));
    expect(pf.delivered().length).toBe(n);
  });

  // File names a mail reader decodes (RFC 2047, RFC 2231), one in an attached
  // message's header: Listing 3's rule catches them, Postfix sees no DATA.
  it('encoded and embedded attachment names are discarded under Listing 3', async () => {
    const logBefore = pf.log().length;
    const tx = 'MAIL FROM:<alice@client.example>\r\nRCPT TO:<bob@mydomain.org>\r\nDATA\r\n';
    const mp = (h: string) => `Subject: x\r\nContent-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\n${h}\r\n\r\nTVqQ\r\n--b--\r\n.\r\n`;
    const bodies = [
      mp("Content-Type: application/octet-stream;\r\n\tname*=UTF-8''invoice%2Eexe"),
      mp('Content-Type: application/octet-stream; name="=?UTF-8?B?aW52b2ljZS5leGU=?="'),
      mp('Content-Type: message/rfc822\r\n\r\nSubject: inner\r\nContent-Type: application/x-msdownload;\r\n name="x.scr"'),
    ];
    const { text, client } = await smtpRaw(held.port, [
      { send: 'EHLO client.example\r\n', replies: 1 },
      ...bodies.flatMap((b) => [{ send: tx, replies: 3 }, { send: b, replies: 1 }]),
      { send: 'QUIT\r\n', replies: 1 },
    ]);
    client.sock.destroy();
    expect(finalReplies(text).filter((l) => l.startsWith('550 5.7.1 Message content rejected'))).toHaveLength(3);
    await postfixSaw(logBefore, /ehlo=1 mail=3 rcpt=3 rset=3 quit=1 commands=11$/);
  });
});
