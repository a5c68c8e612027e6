import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tcpClient } from '../helpers/client.js';
import { asDelivered, finalReplies, smtpRaw, startPostfix, startSink, type Postfix, type Sink } from '../helpers/postfix.js';
import { startStandalone, waitFor, type Standalone } from '../helpers/wrapper.js';

/**
 * Two review items, end to end through the built wrapper: an early talker
 * that sends half a line before a late greeting (Postfix's smtp-sink,
 * greeting delayed 1 s), and a client that pipelines more BDAT commands than
 * the pending-reply cap (a real Postfix smtpd, CHUNKING, whose reply to RCPT
 * is delayed 2 s so that the wrapper's queue fills while nothing comes back).
 */

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** The wrapper's pending-reply cap (MAX_PENDING in src/protocols/smtp/conversation.ts). */
const CAP = 1000;

describe('smtp: early talker by halves, BDAT past the pending cap', () => {
  let slowSink: Sink;
  let pf: Postfix;
  let early: Standalone;
  let chunky: Standalone;

  beforeAll(async () => {
    [slowSink, pf] = await Promise.all([startSink(['-W', 'CONNECT:1']), startPostfix({ extraSmtpd: ['smtpd_recipient_restrictions=sleep,5'] })]);
    [early, chunky] = await Promise.all([
      startStandalone(['-p', 'smtp', '--connect', `127.0.0.1:${slowSink.port}`]),
      // Level 3 logs every forwarded line: how far the wrapper read the client.
      startStandalone(['-p', 'smtp', '--log-level', '3', '--connect', `127.0.0.1:${pf.extraPort}`]),
    ]);
  });
  afterAll(async () => {
    await Promise.all([early?.stop(), chunky?.stop()]);
    await Promise.all([slowSink?.stop(), pf?.stop()]);
  });

  it('early talker: "EH" before the greeting, "LO x" after it: 554 at the first byte, cut off, the server got none of it', async () => {
    const t0 = Date.now();
    const c = await tcpClient(early.port);
    c.sock.write('EH');
    // A wrapper that let the half line wait would pass the greeting on after 1 s instead.
    await waitFor(() => finalReplies(c.received().toString('latin1')).length > 0 || Date.now() - t0 > 3000, 'a reply');
    await sleep(Math.max(0, 1300 - (Date.now() - t0)));
    if (!c.sock.destroyed) c.sock.write('LO x\r\n');
    await Promise.race([c.eof, sleep(3000)]);
    const text = c.received().toString('latin1');
    c.sock.destroy();
    expect(text).toBe('554 5.5.1 Error: talked before the greeting\r\n');
    expect(early.logs()).toMatch(/refused client=127\.0\.0\.1 protocol=smtp state=greeting code=early_talker/);
    // The control: a client that waits is served, and the sink logs its EHLO.
    const { client } = await smtpRaw(early.port, [
      { send: 'EHLO polite.example\r\n', replies: 1 },
      { send: 'QUIT\r\n', replies: 1 },
    ]);
    client.sock.destroy();
    await waitFor(() => slowSink.commands().includes('QUIT'), 'QUIT at the sink');
    expect(slowSink.commands()).toEqual(['EHLO polite.example', 'QUIT']);
  });

  it(`BDAT: ${3 * CAP} one-byte chunks pipelined at once: read no further than the cap while replies are owed; the message arrives whole`, async () => {
    const n = 3 * CAP;
    // A complete header, so that Postfix adds none of its own inside it.
    const head = 'From: alice@client.example\r\nTo: bob@mydomain.org\r\nDate: Thu, 26 Nov 2026 12:00:00 +0000\r\nMessage-ID: <bdat-cap@client.example>\r\nSubject: BDAT past the pending cap\r\n\r\n';
    const line = `${'abcdefghijklmnopqrstuvwxyz'.repeat(3)}\r\n`;
    let msg = head + line.repeat(Math.ceil((n - head.length) / line.length));
    msg = msg.slice(0, n - 2) + '\r\n';
    expect(msg.length).toBe(n);
    const bdats = [...msg].map((ch) => `BDAT 1\r\n${ch}`).join('');
    const { client } = await smtpRaw(chunky.port, [
      { send: 'EHLO client.example\r\n', replies: 1 },
      { send: 'MAIL FROM:<alice@client.example>\r\n', replies: 1 },
    ]);
    // The RCPT reply comes after 5 s; everything else is pipelined behind it.
    client.sock.write(`RCPT TO:<bob@mydomain.org>\r\n${bdats}BDAT 0 LAST\r\nQUIT\r\n`);
    const forwarded = () => (chunky.logs().match(/^.*line client=.* session=[0-9a-f]{12}: BDAT 1$/gm) ?? []).length;
    // Polled, not slept: a loaded machine must not push the check past the server's delay.
    await waitFor(() => forwarded() >= CAP - 10, 'the wrapper to reach the cap', 4000);
    await sleep(300);
    // Still inside the delay: no reply since MAIL's, and the wrapper stopped at the cap.
    expect(finalReplies(client.received().toString('latin1'))).toHaveLength(3);
    expect(forwarded()).toBeGreaterThan(CAP - 10);
    expect(forwarded()).toBeLessThanOrEqual(CAP);
    const total = 3 + 1 + n + 1 + 1;
    await waitFor(() => finalReplies(client.received().toString('latin1')).length >= total, `${total} replies`, 30_000);
    await client.eof;
    client.sock.destroy();
    const codes = finalReplies(client.received().toString('latin1')).map((r) => r.slice(0, 3));
    expect(codes).toHaveLength(total);
    expect(codes.slice(0, -1).every((c, i) => c === (i === 0 ? '220' : '250'))).toBe(true);
    expect(codes.at(-1)).toBe('221');
    expect(forwarded()).toBe(n);
    expect(chunky.logs()).toMatch(new RegExp(`accepted from=<alice@client\\.example> nrcpt=1 rcpt=<bob@mydomain\\.org> size=${n}\\b`));
    const [mail] = await pf.waitDelivered(1);
    const want = asDelivered(msg);
    expect(mail!.subarray(-want.length).toString('latin1')).toBe(want.toString('latin1'));
  }, 60_000);
});
