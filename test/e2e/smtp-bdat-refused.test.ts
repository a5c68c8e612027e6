import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tcpClient } from '../helpers/client.js';
import { finalReplies, startPostfix, type Postfix } from '../helpers/postfix.js';
import { startStandalone, type Standalone } from '../helpers/wrapper.js';

/**
 * A BDAT the wrapper refuses still has its chunk read and dropped, as Postfix
 * does (RFC 3030; third review): read as commands, a message's text would
 * run as SMTP (a forged MAIL FROM delivered). Each case sends the chunk to
 * Postfix directly too: Postfix drops it and delivers nothing.
 */

async function run(port: number, data: string): Promise<string> {
  const c = await tcpClient(port);
  await c.waitFor('220 ', 15_000);
  c.sock.write(data);
  await Promise.race([c.eof, new Promise((r) => setTimeout(r, 4000))]);
  c.sock.destroy();
  return c.received().toString('latin1');
}

const chunk = (tag: string) => `RSET\r\nMAIL FROM:<ceo-${tag}@bank.example>\r\nRCPT TO:<bob@mydomain.org>\r\nDATA\r\nSubject: smuggled-${tag}\r\n\r\nwire the money\r\n.\r\n`;
const bdat = (tag: string) => `BDAT ${chunk(tag).length} LAST\r\n${chunk(tag)}`;

describe('a refused BDAT: its chunk is dropped, never run as commands', () => {
  let pf: Postfix;
  let relay: Standalone;
  let block: Standalone;
  let held: Standalone;
  beforeAll(async () => {
    pf = await startPostfix();
    const to = ['--connect', `127.0.0.1:${pf.port}`];
    [relay, block, held] = await Promise.all([
      startStandalone(['-p', 'smtp', '--relay-domain-list', 'mydomain.org', '--relay-strict', ...to]),
      startStandalone(['-p', 'smtp', '--block-addr-list', 'spammer.example', ...to]),
      // Held mode hides CHUNKING: a BDAT sent anyway is refused (502).
      startStandalone(['-p', 'smtp', '--max-msg-size', '100000', ...to]),
    ]);
  }, 60_000);
  afterAll(async () => {
    await Promise.all([relay?.stop(), block?.stop(), held?.stop()]);
    await pf?.stop();
  });

  const smuggled = () => pf.delivered().filter((m) => m.toString('latin1').includes('smuggled-'));

  it('directly, Postfix drops the chunk of a BDAT it refuses', async () => {
    const text = await run(pf.port, `EHLO relay.example\r\nMAIL FROM:<a@relay.example>\r\nRCPT TO:<x@nowhere.invalid>\r\n${bdat('direct')}QUIT\r\n`);
    expect(finalReplies(text).at(-1)).toMatch(/^221 /);
    await new Promise((r) => setTimeout(r, 1000));
    expect(smuggled()).toHaveLength(0);
  });

  it.each([
    ['relay denied (RCPT refused, then BDAT out of state)', () => relay, `EHLO relay.example\r\nMAIL FROM:<a@relay.example>\r\nRCPT TO:<x@elsewhere.example>\r\n${bdat('relay')}QUIT\r\n`],
    ['blocked sender (MAIL refused, then BDAT out of state)', () => block, `EHLO relay.example\r\nMAIL FROM:<a@spammer.example>\r\nRCPT TO:<bob@mydomain.org>\r\n${bdat('block')}QUIT\r\n`],
    ['no CHUNKING offered (held mode)', () => held, `EHLO relay.example\r\nMAIL FROM:<a@relay.example>\r\nRCPT TO:<bob@mydomain.org>\r\n${bdat('held')}QUIT\r\n`],
  ])('%s: the chunk is dropped, QUIT is the next command', async (_name, w, input) => {
    const text = await run(w().port, input);
    const replies = finalReplies(text);
    expect(replies.at(-1)).toMatch(/^221 /);
    expect(text).not.toMatch(/bad sequence[^]*bad sequence[^]*bad sequence/);
    await new Promise((r) => setTimeout(r, 1000));
    expect(smuggled()).toHaveLength(0);
    expect(w().logs()).not.toMatch(/ceo-/);
  });

  it('a BDAT whose size cannot be read, refused: the session closes (nobody can tell where its chunk ends)', async () => {
    const text = await run(relay.port, `EHLO x\r\nBDAT x1 LAST\r\n${chunk('nosize')}QUIT\r\n`);
    expect(finalReplies(text).at(-1)).toMatch(/^(501|503) /);
    expect(relay.logs()).toMatch(/closing client=127\.0\.0\.1 protocol=smtp session=[0-9a-f]{12}: closed by protocol after refusal/);
    expect(text).not.toMatch(/^221 /m);
    await new Promise((r) => setTimeout(r, 500));
    expect(smuggled()).toHaveLength(0);
  });
});
