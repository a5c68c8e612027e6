import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MAX_PENDING } from '../../src/protocols/pop3/session.js';
import type { Driver } from '../helpers/pop3-driver.js';
import { newDriver, run, SCENARIOS, type Step } from '../protocols/pop3.scenarios.js';

/** Cuts a string at the given (sorted, deduplicated) points. */
function cutAt(s: string, points: number[]): string[] {
  const cuts = [...new Set(points.map((p) => p % (s.length + 1)))].sort((a, b) => a - b);
  const out: string[] = [];
  let prev = 0;
  for (const c of cuts) {
    if (c > prev) out.push(s.slice(prev, c));
    prev = Math.max(prev, c);
  }
  if (prev < s.length) out.push(s.slice(prev));
  return out;
}

/**
 * A POP3 server model: answers each complete line it received, in order, with
 * a reply chosen by the command and the test's random choices (never data
 * nobody asked for, so any chunking must give the same result).
 */
class ModelServer {
  private answered = 0;
  private sent = false;
  private sasl = false;
  constructor(private readonly choices: number[]) {}

  owes(received: string): boolean {
    return received.split('\r\n').length - 1 > this.answered;
  }

  /** Replies to the lines received since the last call (the greeting first). */
  answer(received: string): string {
    let out = this.sent ? '' : '+OK model ready\r\n';
    this.sent = true;
    const lines = received.split('\r\n').slice(0, -1);
    for (; this.answered < lines.length; this.answered++) {
      const line = lines[this.answered]!;
      const c = this.choices[this.answered % this.choices.length]!;
      const verb = this.sasl ? '' : line.split(' ')[0]!.toUpperCase();
      const body = ['x', '..dot', '+OK', '-ERR', 'STLS', '', '.x'].slice(0, c % 7).join('\r\n');
      const multi = body === '' ? '+OK\r\n.\r\n' : `+OK\r\n${body}\r\n.\r\n`;
      if (this.sasl || verb === 'AUTH') {
        const r = line === '*' ? 2 : c % 3;
        this.sasl = r === 0;
        out += ['+ \r\n', '+OK in\r\n', '-ERR no\r\n'][r];
      } else if (['RETR', 'TOP', 'CAPA'].includes(verb) || (['LIST', 'UIDL'].includes(verb) && !line.includes(' '))) {
        out += c % 4 === 0 ? '-ERR no such message\r\n' : multi;
      } else out += c % 3 === 0 ? '-ERR no\r\n' : '+OK\r\n';
    }
    return out;
  }
}

function summary(d: Driver) {
  return { verdicts: d.verdicts, server: d.server, client: d.client, state: d.proto.state, closed: d.closed };
}

const CLIENT_TOKENS = ['USER alice', 'PASS secret', 'PASS ', 'APOP a 0123456789abcdef0123456789abcdef', 'AUTH PLAIN', 'AGFsaWNlAHNlY3JldA==', '*', 'STAT', 'LIST', 'LIST 1', 'RETR 1', 'TOP 1 0', 'UIDL', 'DELE 1', 'NOOP', 'RSET', 'CAPA', 'STLS', 'QUIT', 'XYZZY', ' ', '1', '\r\n', '\r\n', '\r\n', '\n', '\r', '\0', 'x'.repeat(300)];
const SERVER_TOKENS = ['+OK', '+OK ', '-ERR', '-ERR [IN-USE]', '+ ', '+', '.', '..', 'STLS', 'stls', 'TOP', 'text', '\r\n', '\r\n', '\r\n', '\n', 'y'.repeat(100)];

const session = fc.array(
  fc.tuple(fc.constantFrom<'c' | 's'>('c', 's'), fc.array(fc.integer({ min: 0, max: 1000 }), { maxLength: 12 }), fc.array(fc.nat(), { maxLength: 4 })),
  { maxLength: 25 },
).map((raw) =>
  raw.map(([side, picks, cuts]) => {
    const tokens = side === 'c' ? CLIENT_TOKENS : SERVER_TOKENS;
    return { step: [side, picks.map((p) => tokens[p % tokens.length]).join('')] as Step, cuts };
  }),
);

describe('pop3 properties', () => {
  it('any chunking of the scenario sessions gives the same verdicts and bytes', () => {
    fc.assert(
      fc.property(fc.constantFrom(...SCENARIOS), fc.array(fc.array(fc.nat(), { maxLength: 6 }), { minLength: 12, maxLength: 12 }), (s, cuts) => {
        const whole = summary(run(s.steps));
        const chunked = summary(run(s.steps, (i, b) => cutAt(b, cuts[i % cuts.length]!)));
        expect(chunked).toEqual(whole);
      }),
      { numRuns: 300 },
    );
  });

  it('random sessions against a model server: no throw, same result for any chunking, bounded, only validated lines forwarded', () => {
    fc.assert(
      fc.property(session, fc.array(fc.nat(), { minLength: 1, maxLength: 20 }), (steps, choices) => {
        const play = (cut: boolean): Driver => {
          const d = newDriver();
          const server = new ModelServer(choices);
          const pump = (cuts: number[]) => {
            const out = server.answer(d.server);
            for (const piece of cut ? cutAt(out, cuts) : [out]) if (piece) d.fromServer(piece);
          };
          for (const { step, cuts } of steps) {
            if (step[0] === 'c') {
              for (const piece of cut ? cutAt(step[1], cuts) : [step[1]]) d.fromClient(piece);
            } else pump(cuts);
          }
          // Let the server answer everything that reached it.
          for (let i = 0; i < 200 && server.owes(d.server); i++) pump([7, 3]);
          return d;
        };
        const plain = play(false);
        const chunked = play(true);
        expect(summary(chunked)).toEqual(summary(plain));
        // Owed replies are bounded (one held line may sit on top of the limit).
        const tracker = (plain.proto as unknown as { tracker: { pending: number; carryLen: number } }).tracker;
        expect(tracker.pending).toBeLessThanOrEqual(MAX_PENDING + 1);
        expect(tracker.carryLen).toBeLessThanOrEqual(32);
        // The server got exactly the forwarded lines (plus the wrapper's SASL cancels), in order.
        let expected = '';
        for (const j of plain.judged) {
          if (j.verdict.kind === 'forward') expected += j.line;
          else if (j.verdict.toServer) expected += j.verdict.toServer.map((b) => b.toString('latin1')).join('');
        }
        expect(plain.server).toBe(expected);
        for (const j of plain.judged.filter((x) => x.verdict.kind === 'forward')) {
          expect(j.line.endsWith('\r\n')).toBe(true);
          expect(j.line.slice(0, -2)).not.toMatch(/[\0\r\n]/);
        }
      }),
      { numRuns: 500 },
    );
  });

  it('random server bytes never throw and reach the client unchanged when nothing is rewritten', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.integer({ min: 0, max: 1000 }), fc.nat()), { maxLength: 60 }), (picks) => {
        // In TRANSACTION with no command sent, every server line is unsolicited and must pass as is.
        const bytes = picks.map(([p]) => SERVER_TOKENS[p % SERVER_TOKENS.length]).join('');
        const d = run([['s', '+OK\r\n'], ['c', 'USER a\r\n'], ['s', '+OK\r\n'], ['c', 'PASS b\r\n'], ['s', '+OK\r\n']]);
        const before = d.client.length;
        for (const piece of cutAt(bytes, picks.map(([, c]) => c))) d.fromServer(piece);
        expect(d.client.slice(before)).toBe(bytes);
      }),
      { numRuns: 300 },
    );
  });
});
