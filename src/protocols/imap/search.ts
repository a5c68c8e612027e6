/**
 * Search keys (RFC 9051 section 6.4.4 and the extensions Dovecot offers),
 * as a table: key → the arguments it takes. Strings (and so literals) stand
 * only where a key takes one (FROM "x", HEADER name value); a key the table
 * does not know is refused, since the wrapper could not tell whether what
 * follows it is an argument or the next key.
 */
import { astring, atom, atomText, fail, isSequenceSet, number, peek, take, type G, type Input } from './grammar-core.js';

type Arg = 'astring' | 'date' | 'number' | 'atom' | 'sequence' | 'key';

const K = (...args: Arg[]): readonly Arg[] => args;

const KEYS: ReadonlyMap<string, readonly Arg[]> = new Map<string, readonly Arg[]>([
  ...['ALL', 'ANSWERED', 'DELETED', 'DRAFT', 'FLAGGED', 'NEW', 'OLD', 'RECENT', 'SEEN'].map((k) => [k, K()] as const),
  ...['UNANSWERED', 'UNDELETED', 'UNDRAFT', 'UNFLAGGED', 'UNSEEN', 'SAVEDATESUPPORTED'].map((k) => [k, K()] as const),
  ...['BCC', 'BODY', 'CC', 'FROM', 'SUBJECT', 'TEXT', 'TO'].map((k) => [k, K('astring')] as const),
  ...['BEFORE', 'ON', 'SINCE', 'SENTBEFORE', 'SENTON', 'SENTSINCE'].map((k) => [k, K('date')] as const),
  ...['SAVEDBEFORE', 'SAVEDON', 'SAVEDSINCE', 'X-SAVEDBEFORE', 'X-SAVEDON', 'X-SAVEDSINCE'].map((k) => [k, K('date')] as const),
  ['KEYWORD', K('atom')],
  ['UNKEYWORD', K('atom')],
  ['HEADER', K('astring', 'astring')],
  ['LARGER', K('number')],
  ['SMALLER', K('number')],
  ['OLDER', K('number')],
  ['YOUNGER', K('number')],
  ['UID', K('sequence')],
  ['NOT', K('key')],
  ['OR', K('key', 'key')],
  ['FUZZY', K('key')],
  ['INTHREAD', K('atom', 'key')],
  ['EMAILID', K('atom')],
  ['THREADID', K('atom')],
  ['X-GUID', K('astring')],
  ['X-MAILBOX', K('astring')],
  ['X-REAL-UID', K('sequence')],
]);

/** One or more search keys, to the end of the command. */
export function* searchKeys(inp: Input): G {
  yield* searchKey(inp, 0);
  for (;;) {
    const t = yield* peek(inp);
    if (t.kind === 'eol') return;
    yield* searchKey(inp, 0);
  }
}

function* searchKey(inp: Input, depth: number): G {
  if (depth > inp.ctx.maxDepth) fail('search keys nested too deep');
  const t = yield* take(inp);
  if (t.kind === 'open') {
    yield* searchKey(inp, depth + 1);
    for (;;) {
      const n = yield* peek(inp);
      if (n.kind === 'close') {
        yield* take(inp);
        return;
      }
      if (n.kind === 'eol') fail('unterminated search list');
      yield* searchKey(inp, depth + 1);
    }
  }
  const name = atomText(t);
  if (name === null) return fail('search key: expected a key');
  if (isSequenceSet(name)) return;
  if (name === 'MODSEQ') return yield* modseq(inp);
  const args = KEYS.get(name);
  if (!args) return fail('unknown search key');
  for (const a of args) yield* searchArg(inp, a, depth);
}

function* searchArg(inp: Input, a: Arg, depth: number): G {
  switch (a) {
    case 'astring':
      return yield* astring(inp, 'search value');
    case 'date': {
      // date = date-text / DQUOTE date-text DQUOTE: never a literal.
      const t = yield* take(inp);
      if (t.kind !== 'atom' && t.kind !== 'quoted') fail('search date: expected a date');
      return;
    }
    case 'number':
      return yield* number(inp, 'search size');
    case 'atom':
      yield* atom(inp, 'search argument');
      return;
    case 'sequence': {
      const s = yield* atom(inp, 'sequence set');
      if (!isSequenceSet(s)) fail('malformed sequence set');
      return;
    }
    case 'key':
      return yield* searchKey(inp, depth + 1);
    default: {
      const never: never = a;
      throw new Error(`unknown search argument ${String(never)}`);
    }
  }
}

/** MODSEQ [entry-name entry-type] mod-sequence (RFC 7162): the entry name is a quoted string. */
function* modseq(inp: Input): G {
  const t = yield* peek(inp);
  if (t.kind === 'quoted') {
    yield* take(inp);
    yield* atom(inp, 'entry type');
  }
  yield* number(inp, 'mod-sequence');
}
