import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CAP_LINE_MAX, ServerScanner, type ServerResponse } from '../../src/protocols/imap/server.js';
import type { ImapSession } from '../../src/protocols/imap/session.js';
import { ImapDriver } from '../helpers/imap-driver.js';

/** Cuts a string at the given points (taken modulo its length). */
function cutAt(s: string, points: readonly number[]): string[] {
  const cuts = [...new Set(points.map((p) => p % (s.length + 1)))].sort((a, b) => a - b);
  const out: string[] = [];
  let prev = 0;
  for (const c of cuts) {
    if (c > prev) out.push(s.slice(prev, c));
    prev = c;
  }
  if (prev < s.length) out.push(s.slice(prev));
  return out;
}

const CLIENT_TOKENS = [
  'A1 ', 'a2 ', 'T3 ', 'LOGIN alice secret', 'LOGIN {5}', 'AUTHENTICATE PLAIN', 'AGFsaWNlAHNlY3JldA==', '*', 'DONE', 'SELECT INBOX', 'EXAMINE "x"',
  'FETCH 1 BODY[]', 'FETCH 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (FROM)])', 'UID FETCH 1 FLAGS', 'APPEND INBOX {3}', 'APPEND INBOX {3+}', '{2+}', '{0}', '{7-}',
  '~{1}', 'IDLE', 'CLOSE', 'UNSELECT', 'LOGOUT', 'NOOP', 'STARTTLS', 'COMPRESS DEFLATE', 'XYZZY', '(', ')', '"q\\"', ' ', '\r\n', '\r\n', '\r\n', '\n', '\0', 'abc',
  'x'.repeat(3000),
];
const SERVER_TOKENS = [
  '* OK [CAPABILITY IMAP4rev1 LITERAL+ STARTTLS] hi', '* PREAUTH', '* CAPABILITY IMAP4rev1 IDLE', '* CAPABILITY LITERAL- LOGINDISABLED', '* BYE bye',
  '+ OK', '+ ', '+', 'A1 OK', 'A1 NO', 'A1 BAD', 'a2 OK [CAPABILITY LITERAL+]', 'T3 NO', '* 1 FETCH (BODY[] {5}', '* 2 FETCH (BODY[] {0}', ' {3}', ')',
  '* 3 EXISTS', 'A1 OK [CAPAB', 'ILITY x]', 'text', '\r\n', '\r\n', '\r\n', '\n', 'z'.repeat(500),
];

type Step = readonly ['c' | 's', string];

const steps = fc.array(
  fc.tuple(fc.constantFrom<'c' | 's'>('c', 's'), fc.array(fc.nat(), { maxLength: 14 }), fc.array(fc.nat(), { maxLength: 5 })),
  { maxLength: 24 },
).map((raw) =>
  raw.map(([side, picks, cuts]) => {
    const tokens = side === 'c' ? CLIENT_TOKENS : SERVER_TOKENS;
    return { step: [side, picks.map((p) => tokens[p % tokens.length]).join('')] as Step, cuts };
  }),
);

/** Holds a session may keep: a server head, a capability line, a few queued replies. */
const MEMORY_BOUND = 200 + CAP_LINE_MAX + 32 * 200;

function play(list: readonly { step: Step; cuts: readonly number[] }[], cutClient: boolean, flags = {}): ImapDriver {
  const d = new ImapDriver(flags);
  for (const { step, cuts } of list) {
    const [side, text] = step;
    if (side === 's') d.server(text);
    else for (const part of cutClient ? cutAt(text, cuts) : [text]) d.client(part);
    expect((d.proto as ImapSession).bufferedBytes).toBeLessThanOrEqual(MEMORY_BOUND);
  }
  return d;
}

describe('imap properties', () => {
  it('any chunking of the client gives the same verdicts and bytes; no throw; memory bounded', () => {
    fc.assert(
      fc.property(steps, (list) => {
        const whole = play(list, false);
        const cut = play(list, true);
        expect(cut.toServer).toBe(whole.toServer);
        expect(cut.toClient).toBe(whole.toClient);
        expect(cut.refusals).toEqual(whole.refusals);
        expect(cut.state).toBe(whole.state);
      }),
      { numRuns: 400 },
    );
  });

  it('every line forwarded outside a literal is a whole CRLF line, within the limit, without NUL or bare CR', () => {
    fc.assert(
      fc.property(steps, (list) => {
        const d = play(list, true, { maxLineLength: 1024 });
        for (const line of d.forwardedLines) {
          expect(line.length).toBeLessThanOrEqual(1026);
          expect(line.subarray(-2).toString('latin1')).toBe('\r\n');
          expect(line.subarray(0, -2).includes(0)).toBe(false);
          expect(line.subarray(0, -2).includes(0x0d)).toBe(false);
          expect(line.subarray(0, -2).includes(0x0a)).toBe(false);
        }
      }),
      { numRuns: 200 },
    );
  });

  it('server scanner: any chunking gives the same bytes and responses; held bytes bounded', () => {
    const serverText = fc.array(fc.nat(), { maxLength: 40 }).map((p) => p.map((i) => SERVER_TOKENS[i % SERVER_TOKENS.length]).join(''));
    fc.assert(
      fc.property(serverText, fc.array(fc.nat(), { maxLength: 10 }), (text, cuts) => {
        const run = (parts: readonly string[]) => {
          const s = new ServerScanner();
          const responses: ServerResponse[] = [];
          let out = '';
          for (const p of parts) {
            const r = s.feed(Buffer.from(p, 'latin1'), (x) => responses.push(x), () => null);
            out += r === null ? p : Buffer.concat(r).toString('latin1');
            expect(s.bufferedBytes).toBeLessThanOrEqual(200 + CAP_LINE_MAX);
          }
          return { out, responses };
        };
        const whole = run([text]);
        expect(run(cutAt(text, cuts))).toEqual(whole);
        expect(run([...text])).toEqual(whole);
      }),
      { numRuns: 300 },
    );
  });

  it('random bytes never throw (client and server)', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.boolean(), fc.uint8Array({ maxLength: 300 })), { maxLength: 30 }), (ops) => {
        const d = new ImapDriver();
        for (const [toServer, bytes] of ops) {
          if (toServer) d.server(Buffer.from(bytes));
          else d.client(Buffer.from(bytes));
        }
        expect((d.proto as ImapSession).bufferedBytes).toBeLessThanOrEqual(MEMORY_BOUND);
      }),
      { numRuns: 300 },
    );
  });
});
