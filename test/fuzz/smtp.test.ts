import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isError, parseParams, parsePath } from '../../src/protocols/smtp/path.js';
import { ReplyReader } from '../../src/protocols/smtp/replies.js';
import { Harness, SEED } from '../protocols/smtp-harness.js';


const EHLO = 'EHLO c.example\r\n';
const TX = 'MAIL FROM:<a@c.example>\r\nRCPT TO:<b@mydomain.org>\r\n';

/** Scenarios whose outcome must not depend on how the bytes are cut. */
const scenarios: [string, Record<string, unknown>, string][] = [
  ['clean, stream mode', {}, `${EHLO}${TX}DATA\r\nSubject: x\r\n\r\n..dot\r\n.\r\nQUIT\r\n`],
  ['clean, held mode', SEED, `${EHLO}${TX}DATA\r\nSubject: x\r\n\r\n..dot\r\n.\r\nQUIT\r\n`],
  ['blocked body then clean', SEED, `${EHLO}${TX}DATA\r\nContent-Type: application/x;\r\n name="a.exe"\r\n\r\n.\r\n${TX}DATA\r\nok\r\n.\r\nQUIT\r\n`],
  ['smuggling, held mode', SEED, `${EHLO}${TX}DATA\r\nx\n.\nMAIL FROM:<e@x.example>\r\n.\r\nNOOP\r\n`],
  ['relay refusal inside a pipelined group', SEED, `${EHLO}MAIL FROM:<a@c.example>\r\nRCPT TO:<x@else.example>\r\nRCPT TO:<b@mydomain.org>\r\nDATA\r\nhi\r\n.\r\nQUIT\r\n`],
  ['blocked sender, pipelined', SEED, `${EHLO}MAIL FROM:<"hahaha"@sexyfun.net>\r\nRCPT TO:<b@mydomain.org>\r\nNOOP\r\n`],
  ['BDAT', {}, `${EHLO}${TX}BDAT 7\r\nQUIT\r\n\rBDAT 5 LAST\r\nRSET\nQUIT\r\n`],
  ['AUTH', {}, `${EHLO}AUTH LOGIN\r\nYWxpY2U=\r\n${TX}DATA\r\nx\r\n.\r\n`],
];

function cut(bytes: Buffer, points: number[]): Buffer[] {
  const cuts = [...new Set(points.map((p) => p % (bytes.length + 1)))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let last = 0;
  for (const c of cuts) {
    out.push(bytes.subarray(last, c));
    last = c;
  }
  out.push(bytes.subarray(last));
  return out.filter((b) => b.length > 0);
}

function run(config: Record<string, unknown>, input: string, clientCuts: number[], serverCuts: number[]) {
  const h = new Harness(config, {}, (s) => cut(s, serverCuts));
  h.send(...cut(Buffer.from(input, 'latin1'), clientCuts));
  return { client: h.clientText, server: h.serverText, refusals: h.refusals(), notes: h.notes, messages: h.server.messages.map(String) };
}

describe('smtp: any chunking gives the same result', () => {
  it.each(scenarios)('%s', (_name, config, input) => {
    const whole = run(config, input, [], []);
    fc.assert(
      fc.property(fc.array(fc.nat(), { maxLength: 12 }), fc.array(fc.nat(), { maxLength: 6 }), (cc, sc) => {
        expect(run(config, input, cc, sc)).toEqual(whole);
      }),
      { numRuns: 150 },
    );
  });
});

describe('smtp: hostile bytes never throw and memory stays bounded', () => {
  it('random client bytes after EHLO, in held and stream mode', () => {
    const alphabet = fc.constantFrom(...'MAIL FROM:<a@b.c>RCPT TO:DATA\r\n.\0BDAT 3 LAST AUTH PLAIN\n\r=+/'.split(''));
    fc.assert(
      fc.property(fc.boolean(), fc.array(fc.string({ unit: alphabet, maxLength: 200 }), { maxLength: 10 }), (held, parts) => {
        const h = new Harness(held ? SEED : {});
        h.send(EHLO, ...parts);
        expect(h.framer.bufferedBytes).toBeLessThanOrEqual(Math.max(...parts.map((p) => p.length), 1) + 1024);
      }),
      { numRuns: 300 },
    );
  });
});

describe('smtp parsers: no throw, nothing lost', () => {
  it('parsePath and parseParams never throw, and a parsed path ends inside the input', () => {
    const bytes = fc.uint8Array({ maxLength: 80 }).map((a) => Buffer.concat([Buffer.from('<'), Buffer.from(a)]));
    const texty = fc.string({ unit: fc.constantFrom(...'<>@:,."\\ab-1[]IPv6% !'.split('')), maxLength: 60 }).map((s) => Buffer.from(s, 'latin1'));
    fc.assert(
      fc.property(fc.oneof(bytes, texty), fc.boolean(), (b, utf8) => {
        const p = parsePath(b, 0, b.length, { allowNull: true, allowPostmaster: true, utf8 });
        if (!isError(p)) expect(p.end).toBeLessThanOrEqual(b.length);
        parseParams(b, 0, b.length, utf8);
      }),
      { numRuns: 2000 },
    );
  });

  it('ReplyReader hands back every server byte, in order, however the bytes are cut', () => {
    const line = fc.oneof(
      fc.constantFrom('250-a\r\n', '250 b\r\n', '354 go\r\n', '220 hi\r\n', 'junk\r\n', '25\r\n', '250\r\n', '\r\n', `250-${'x'.repeat(5000)}\r\n`),
      fc.string({ maxLength: 20 }).map((s) => `${s}\n`),
    );
    fc.assert(
      fc.property(fc.array(line, { maxLength: 20 }), fc.array(fc.nat(), { maxLength: 8 }), (lines, cuts) => {
        // A final reply line ends whatever is still open, so every byte must have come out.
        const all = Buffer.from(lines.join('') + '\r\n250 end\r\n', 'latin1');
        const r = new ReplyReader();
        const got = cut(all, cuts).flatMap((c) => r.feed(c).flatMap((x) => [...x.lines]));
        expect(Buffer.concat(got).equals(all)).toBe(true);
      }),
      { numRuns: 500 },
    );
  });
});
