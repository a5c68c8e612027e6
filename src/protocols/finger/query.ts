import { SP } from '../../core/bytes.js';
import type { RefusalCode } from '../../core/protocol.js';

/**
 * The finger query line (RFC 1288 section 2.3), without its CRLF:
 *
 *   {Q1} ::= [ {W} | {W}{S}{U} ] {C}      {W} ::= "/W"   {S} ::= SP+
 *
 * plus a bare {U} (the form every client sends). {Q2}, the forms with
 * `@host`, is forwarding (section 3.2.1: a server SHOULD refuse it; a chain
 * `user@host@host` is the "finger bomb") and is never passed on.
 */
export interface FingerQuery {
  /** /W: the verbose ("long") form. */
  readonly verbose: boolean;
  /** The one user asked about; null for the empty query (a list of the users logged in). */
  readonly user: string | null;
}

/** What is wrong with a query, and which of the wrapper's answers the client gets. */
export interface QueryProblem {
  readonly code: RefusalCode;
  readonly reason: string;
  readonly answer: 'forwarding' | 'refused';
}

/**
 * Bytes of a user name: ASCII letters, digits, `.`, `_`, `-` (the portable
 * POSIX user name set). Everything else is out: shell and option syntax,
 * quoting, 8-bit and control bytes.
 */
const USER_CHAR = (() => {
  const t = new Uint8Array(256);
  for (let b = 0; b < 256; b++) {
    const alnum = (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a);
    t[b] = alnum || b === 0x2e || b === 0x5f || b === 0x2d ? 1 : 0;
  }
  return t;
})();

const AT = 0x40;
const SLASH = 0x2f;
const DASH = 0x2d;
const hex = (b: number) => `0x${b.toString(16).padStart(2, '0')}`;

/**
 * Parses one query line's content bytes [0, end). Accepts `""`, `/W`,
 * `/W ` (what `finger -l @host` sends), `/W user`, `user`, with spaces after
 * the user; /W in either case, as fingerd reads it. Refuses, in this order:
 * any `@` (forwarding, whatever else the line holds); any control byte (TAB,
 * ESC and the rest: escape sequences and fingerd's own word splitting); a
 * leading space; `/W` glued to a word (fingerd turns `/Wx` into an option);
 * a byte outside the user name set; a name that starts with `-` (finger
 * would read it as an option: fingerd passes the words on as argv); a
 * second word (two users).
 */
export function parseQuery(line: Buffer, end: number): FingerQuery | QueryProblem {
  const at = line.indexOf(AT);
  if (at >= 0 && at < end) return { code: 'forwarding', reason: `'@' at offset ${at}: finger forwarding`, answer: 'forwarding' };
  for (let i = 0; i < end; i++) {
    const b = line[i]!;
    if (b < 0x20 || b === 0x7f) return { code: 'bad_syntax', reason: `control byte ${hex(b)} at offset ${i}`, answer: 'refused' };
  }
  let i = 0;
  let verbose = false;
  if (end >= 2 && line[0] === SLASH && (line[1] === 0x57 || line[1] === 0x77)) {
    verbose = true;
    i = 2;
    if (i < end && line[i] !== SP) return { code: 'bad_syntax', reason: '/W not followed by a space', answer: 'refused' };
    while (i < end && line[i] === SP) i++;
  } else if (end > 0 && line[0] === SP) {
    return { code: 'bad_syntax', reason: 'query begins with a space', answer: 'refused' };
  }
  const start = i;
  while (i < end && USER_CHAR[line[i]!] === 1) i++;
  if (i < end && line[i] !== SP) return { code: 'bad_argument', reason: `byte ${hex(line[i]!)} at offset ${i} is not allowed in a user name`, answer: 'refused' };
  if (i > start && line[start] === DASH) return { code: 'bad_argument', reason: "user name begins with '-' (an option to finger)", answer: 'refused' };
  const user = i > start ? line.toString('latin1', start, i) : null;
  while (i < end && line[i] === SP) i++;
  if (i < end) return { code: 'bad_argument', reason: 'more than one user', answer: 'refused' };
  return { verbose, user };
}

export function isProblem(q: FingerQuery | QueryProblem): q is QueryProblem {
  return 'code' in q;
}
