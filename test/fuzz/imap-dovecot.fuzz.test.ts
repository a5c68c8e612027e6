import { existsSync, readdirSync } from 'node:fs';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDovecot, type Dovecot } from '../helpers/dovecot.js';
import { raw } from '../helpers/wire.js';
import { startStandalone, type Standalone } from '../helpers/wrapper.js';

/**
 * Property, against the real Dovecot: for generated commands carrying
 * non-synchronizing literals, the wrapper's idea of where a command ends is
 * the server's. Each literal holds a command that would leave a trace (a new
 * mailbox "FuzzN") if Dovecot ran it; the wrapper forwards a literal only
 * where it believes the server reads it as data. So a trace mailbox means
 * the two disagreed: the server ran bytes the wrapper passed as data.
 */

const GREETED = ' ready.\r\n';

/**
 * Legal commands (Dovecot answers each), then mutated: a word replaced by a
 * literal or a literal8, a literal inserted or appended, a word replaced by a
 * hostile token. LIT stands for a {n+} literal, LIT8 for ~{n+}.
 */
const TEMPLATES: readonly (readonly string[])[] = [
  ['STATUS', 'INBOX', '(MESSAGES)'],
  ['DELETE', 'nosuch'],
  ['RENAME', 'nosuch1', 'nosuch2'],
  ['CREATE', 'Box'],
  ['SELECT', 'INBOX'],
  ['EXAMINE', 'INBOX'],
  ['LIST', '""', '*'],
  ['LSUB', '""', '*'],
  ['SUBSCRIBE', 'nosuch'],
  ['APPEND', 'INBOX', '(\\Seen)', '"01-Jan-2020 00:00:00 +0000"', 'LIT'],
  ['APPEND', 'INBOX', 'LIT'],
  ['COPY', '1', 'nosuch'],
  ['SEARCH', 'CHARSET', 'UTF-8', 'FROM', 'x'],
  ['SEARCH', 'OR', 'SUBJECT', 'a', 'NOT', 'FROM', 'b'],
  ['FETCH', '1', '(FLAGS)'],
  ['STORE', '1', '+FLAGS', '(\\Seen)'],
  ['NOOP'],
  ['CHECK'],
  ['UID', 'EXPUNGE', '1'],
  ['ID', 'NIL'],
  ['ENABLE', 'CONDSTORE'],
];
const HOSTILE = ['()', '\\Recent', '(', ')', '01-Jan-2020', '"x"', 'BODY[', 'NIL', '$', '(\\Seen'];

type Mutation = readonly ['replace' | 'insert' | 'hostile' | 'append8' | 'append', number, number];

const mutation: fc.Arbitrary<Mutation> = fc.tuple(fc.constantFrom('replace', 'insert', 'hostile', 'append8', 'append'), fc.nat(), fc.nat());

function mutate(words: readonly string[], muts: readonly Mutation[]): string[] {
  const out = [...words];
  for (const [op, at, pick] of muts) {
    const k = 1 + (at % Math.max(1, out.length));
    switch (op) {
      case 'replace':
        out.splice(k, 1, pick % 2 ? 'LIT8' : 'LIT');
        break;
      case 'insert':
        out.splice(k, 0, 'LIT');
        break;
      case 'hostile':
        out.splice(k, 1, HOSTILE[pick % HOSTILE.length]!);
        break;
      case 'append8':
        out.push('LIT8');
        break;
      case 'append':
        out.push('LIT');
        break;
    }
  }
  return out;
}

interface Generated {
  readonly verb: string;
  readonly words: readonly string[];
}

const command: fc.Arbitrary<Generated> = fc
  .tuple(fc.constantFrom(...TEMPLATES), fc.array(mutation, { minLength: 1, maxLength: 2 }))
  .map(([t, muts]) => {
    const m = mutate(t, muts);
    return { verb: m[0]!, words: m.slice(1) };
  });

/** The wire bytes of one generated command, the trace in each literal numbered from n. */
function wire(tag: string, c: Generated, n: { next: number }): string {
  let out = `${tag} ${c.verb}`;
  for (const w of c.words) {
    if (w === 'LIT' || w === 'LIT8') {
      const k = n.next++;
      const payload = `x${k}\r\nz${k} CREATE Fuzz${k}\r\n`;
      out += ` ${w === 'LIT8' ? '~' : ''}{${payload.length}+}\r\n${payload}`;
    } else {
      out += ` ${w}`;
    }
  }
  return `${out}\r\n`;
}

describe('imap: the wrapper and Dovecot agree where a command ends (property)', () => {
  let dc: Dovecot;
  let w: Standalone;

  beforeAll(async () => {
    dc = await startDovecot();
    w = await startStandalone(['-p', 'imap', '--connect', `127.0.0.1:${dc.imapPort}`]);
  }, 60_000);
  afterAll(async () => {
    await w?.stop();
    await dc?.stop();
  });

  const traces = () => readdirSync(dc.maildirOf('alice')).filter((f) => f.startsWith('.Fuzz'));

  it('no command hidden in a literal the wrapper forwarded is ever run by Dovecot', async () => {
    const counter = { next: 0 };
    await fc.assert(
      fc.asyncProperty(fc.array(command, { minLength: 1, maxLength: 3 }), async (cmds) => {
        const c = await raw(w.port);
        await c.until(GREETED);
        c.send('L LOGIN alice secret\r\nS SELECT INBOX\r\n');
        await c.until('S OK');
        const first = counter.next;
        c.send(cmds.map((cmd, i) => wire(`c${i}`, cmd, counter)).join('') + 'q LOGOUT\r\n');
        await Promise.race([c.closed, new Promise((r) => setTimeout(r, 3000))]);
        c.end();
        // Give Dovecot a moment to act on anything it was handed.
        await new Promise((r) => setTimeout(r, 50));
        for (let k = first; k < counter.next; k++) expect(existsSync(`${dc.maildirOf('alice')}/.Fuzz${k}`), `trace Fuzz${k}`).toBe(false);
      }),
      { numRuns: Number(process.env.PW_FUZZ_RUNS ?? 80), seed: Number(process.env.PW_FUZZ_SEED ?? 1301) },
    );
    expect(traces()).toEqual([]);
  }, 120_000);
});
