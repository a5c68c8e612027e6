import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { ProtocolOptions } from '../../src/core/protocol.js';
import { finger } from '../../src/protocols/finger/index.js';
import { checkReply, parseQuery } from '../../src/protocols/ident/grammar.js';
import { ident } from '../../src/protocols/ident/index.js';
import { Driver } from '../helpers/pop3-driver.js';

function options(p: typeof finger | typeof ident, extra: Record<string, number | boolean>): ProtocolOptions {
  const defaults = Object.fromEntries(Object.entries(p.options ?? {}).map(([k, s]) => [k, s.default]));
  return {
    maxLineLength: p.defaultMaxLineLength,
    lineEnding: 'crlf',
    allowNul: false,
    allowBareCr: false,
    allow: [],
    deny: [],
    forwardUnterminated: true,
    extra: { ...defaults, ...extra } as ProtocolOptions['extra'],
  };
}

function newDriver(p: typeof finger | typeof ident, extra: Record<string, number | boolean> = {}): Driver {
  const o = options(p, extra);
  return new Driver(p.createSession({ clientAddress: '127.0.0.1', maxLineLength: o.maxLineLength }, o), o.maxLineLength);
}

/** Cuts bytes at the given points. */
function cut(s: string, points: readonly number[]): string[] {
  const ps = [...new Set(points.map((p) => p % (s.length + 1)))].sort((a, b) => a - b);
  const out: string[] = [];
  let prev = 0;
  for (const p of ps) {
    out.push(s.slice(prev, p));
    prev = p;
  }
  out.push(s.slice(prev));
  return out;
}

/** Pieces that make good and hostile query lines. */
const piece = fc.constantFrom('root', 'nobody', '/W', '/w', ' ', '  ', '@', 'host', '\t', '\x1b[2J', '-l', '\r', '\n', '\r\n', '\x00', '\xc3\xa9', ',', '23', '65535', '0', '99999', ':', 'x', '23,24\r\n', ' 1 , 2 \r\n', 'root\r\n', '/W root\r\n');
const stream = fc.array(piece, { maxLength: 14 }).map((a) => a.join(''));

describe('finger and ident sessions: the same result for any chunking', () => {
  it('finger: verdicts, what the server gets and what the client gets do not depend on how the client stream is cut', () => {
    fc.assert(
      fc.property(stream, fc.array(fc.nat(), { maxLength: 6 }), fc.boolean(), (input, points, allowUserList) => {
        const whole = newDriver(finger, { allowUserList }).fromClient(input);
        const d = newDriver(finger, { allowUserList });
        for (const c of cut(input, points)) d.fromClient(c);
        expect(d.verdicts).toEqual(whole.verdicts);
        expect(d.server).toBe(whole.server);
        expect(d.client).toBe(whole.client);
        // At most one line ever reaches the server, and it holds no @ and no control byte but its CRLF.
        const sent = d.server;
        if (sent !== '') {
          expect(sent.endsWith('\r\n')).toBe(true);
          expect(sent.slice(0, -2)).not.toMatch(/[@\x00-\x1f\x7f]/);
        }
        expect(d.judged.filter((j) => j.verdict.kind === 'forward').length).toBeLessThanOrEqual(1);
      }),
      { numRuns: 3000 },
    );
  });

  /** A model ident server: answers each query line it received with a USERID reply for those ports. */
  function answer(d: Driver, answered: number, chunks: (reply: string) => string[]): number {
    const lines = d.server.split('\r\n').slice(0, -1);
    for (let i = answered; i < lines.length; i++) {
      const q = parseQuery(Buffer.from(lines[i]!, 'latin1'), lines[i]!.length);
      if (!q.ok) throw new Error(`the server received a line that is no query: ${JSON.stringify(lines[i])}`);
      for (const c of chunks(`${q.ports.server},${q.ports.client}:USERID:UNIX:root\r\n`)) d.fromServer(c);
    }
    return lines.length;
  }

  it('ident: with a server answering each query, any chunking of both sides gives the same bytes both ways; only queries reach the server', () => {
    fc.assert(
      fc.property(stream, fc.array(fc.nat(), { maxLength: 6 }), fc.array(fc.nat(), { maxLength: 4 }), fc.integer({ min: 1, max: 4 }), (input, points, serverPoints, maxQueries) => {
        const run = (clientChunks: string[], serverCut: (r: string) => string[]) => {
          const d = newDriver(ident, { maxQueries });
          let answered = 0;
          for (const c of clientChunks) {
            d.fromClient(c);
            answered = answer(d, answered, serverCut);
          }
          // Queries released by the last answers are answered too.
          for (let n = 0; n < 8; n++) answered = answer(d, answered, serverCut);
          return d;
        };
        const whole = run([input], (r) => [r]);
        const d = run(cut(input, points), (r) => cut(r, serverPoints));
        expect(d.verdicts).toEqual(whole.verdicts);
        expect(d.server).toBe(whole.server);
        expect(d.client).toBe(whole.client);
        expect(d.judged.filter((j) => j.verdict.kind === 'forward').length).toBeLessThanOrEqual(maxQueries);
        // Every line the client got is a valid reply: the server's, or the wrapper's INVALID-PORT.
        for (const line of d.client.split('\r\n').slice(0, -1)) {
          const ports = /^(\d+) ?, ?(\d+)/.exec(line);
          expect(ports, line).not.toBeNull();
          expect(checkReply(Buffer.from(line, 'latin1'), line.length, { server: Number(ports![1]), client: Number(ports![2]) }), line).toBeNull();
        }
      }),
      { numRuns: 2000 },
    );
  });
});
