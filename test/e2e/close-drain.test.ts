import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tcpClient } from '../helpers/client.js';
import { startDovecot, type Dovecot } from '../helpers/dovecot.js';
import { startPostfix, type Postfix } from '../helpers/postfix.js';
import { runPiped, startStandalone, type Standalone } from '../helpers/wrapper.js';

/**
 * Nothing accepted is lost when the wrapper closes (issue 12 item 3): on a
 * policy close the client is read no more, the server is half-closed, what
 * it still answers to the lines already forwarded reaches the client, and
 * the protocol's closing reply comes last.
 */

/** Sends everything in one write after the greeting, then reads until the wrapper closes. */
async function burst(port: number, greeting: string, before: string, bytes: string): Promise<string> {
  const c = await tcpClient(port);
  await c.waitFor(greeting);
  if (before) {
    c.sock.write(before);
    await new Promise((r) => setTimeout(r, 300));
  }
  c.sock.write(bytes);
  await Promise.race([c.eof, new Promise((r) => setTimeout(r, 8000))]);
  c.sock.destroy();
  return c.received().toString('latin1');
}

describe('a policy close delivers what the server still answers, then the closing reply', () => {
  let dc: Dovecot;
  let pf: Postfix;
  let pop3: Standalone;
  let imap: Standalone;
  let smtp: Standalone;

  beforeAll(async () => {
    [dc, pf] = await Promise.all([startDovecot(), startPostfix()]);
    [pop3, imap, smtp] = await Promise.all([
      startStandalone(['-p', 'pop3', '--connect', `127.0.0.1:${dc.pop3Port}`, '--max-violations', '2']),
      startStandalone(['-p', 'imap', '--connect', `127.0.0.1:${dc.imapPort}`, '--max-violations', '2']),
      startStandalone(['-p', 'smtp', '--connect', `127.0.0.1:${pf.port}`, '--max-violations', '2']),
    ]);
  }, 60_000);
  afterAll(async () => {
    await Promise.all([pop3?.stop(), imap?.stop(), smtp?.stop()]);
    await Promise.all([dc?.stop(), pf?.stop()]);
  });

  it('generic, piped by hand (the issue\'s session): the accepted line comes back from cat before the close', async () => {
    const r = await runPiped(['--exec', 'cat', '--max-line-length', '5', '--max-violations', '2'], 'ok\r\ntoolong1\r\ntoolong2\r\nafter\r\n');
    expect(r.stdout.toString('latin1')).toBe('ok\r\n');
    expect(r.stderr).toMatch(/end=too_many_violations/);
  });

  it('generic: an idle timeout still delivers the answer of a slow server to the line it got', async () => {
    const r = await runPiped(['--exec', "sh -c 'read l; sleep 1.5; echo \"got:$l\"'", '--idle-timeout', '1'], 'x\n', { timeoutMs: 10_000 });
    expect(r.stdout.toString('latin1')).toBe('got:x\n');
  });

  it('POP3 (too many violations): STAT and NOOP answered before the closing -ERR', async () => {
    const text = await burst(pop3.port, '+OK', 'USER alice\r\nPASS secret\r\n', 'STAT\r\nNOOP\r\nXX1\r\nXX2\r\nLIST\r\n');
    expect(text).toMatch(/\+OK Logged in\.\r\n\+OK \d+ \d+\r\n\+OK\r\n-ERR unknown command\r\n-ERR unknown command\r\n-ERR too many invalid commands\r\n$/);
  });

  it('IMAP (an overlong line closes): the NOOP sent before it is answered before the BYE', async () => {
    const text = await burst(imap.port, ' ready.', 'L LOGIN alice secret\r\n', `a NOOP\r\nb NOOP ${'x'.repeat(9000)}\r\nc NOOP\r\n`);
    expect(text).toMatch(/\r\na OK [^\r]*\r\n\* BYE [^\r]*\r\n$/);
    expect(text).not.toContain('c OK');
  });

  it('SMTP stream mode, a bare CR in DATA: the 554 is the last word, no 421 for the server leaving before it', async () => {
    const c = await tcpClient(smtp.port);
    await c.waitFor('220 ');
    c.sock.write('EHLO x\r\n');
    await c.waitFor('250 ');
    c.sock.write('MAIL FROM:<a@example.org>\r\nRCPT TO:<alice@mydomain.org>\r\nDATA\r\n');
    await c.waitFor('354 ');
    c.sock.write('Subject: x\r\n\r\nbad\rline\r\n');
    await Promise.race([c.eof, new Promise((r) => setTimeout(r, 8000))]);
    c.sock.destroy();
    const after354 = c.received().toString('latin1').split('354 ')[1]!;
    expect(after354).toMatch(/\r\n554 5\.6\.0 [^\r]*\r\n$/);
    expect(after354).not.toContain('421');
  });

  it('SMTP (too many violations, PIPELINING): the MAIL and RCPT replies come before the 421', async () => {
    const text = await burst(smtp.port, '220 ', 'EHLO x\r\n', 'MAIL FROM:<a@example.org>\r\nRCPT TO:<alice@mydomain.org>\r\nXX1\r\nXX2\r\nRSET\r\n');
    expect(text).toMatch(/250 2\.1\.0 Ok\r\n250 2\.1\.5 Ok\r\n500 [^\r]*\r\n500 [^\r]*\r\n421 [^\r]*\r\n$/);
  });
});
