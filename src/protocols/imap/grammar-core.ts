/**
 * The machinery of the IMAP argument grammars (grammar.ts): a rule is a
 * generator that pulls tokens (syntax.ts) one at a time, so a command that
 * spans lines (a literal splits it) is checked as it arrives. When a line
 * announces a literal, the literal token is fed at once: the rule in force
 * accepts it only where the command's grammar has a string there, after
 * every earlier argument parsed. That is the rule that keeps a
 * non-synchronizing literal from being forwarded where the server would not
 * read it (and would run its bytes as commands).
 *
 * The grammars are LL(1) over tokens: a rule looks at most one token ahead
 * (peek) before it decides. No backtracking, no regular expressions.
 */
import type { Token } from './syntax.js';

/** A grammar step: yields to ask for the next token. */
export type G<T = void> = Generator<void, T, Token>;

/** A refusal by the grammar; the message is for the log (never echoes client text). */
export class GrammarError extends Error {}

export const fail = (why: string): never => {
  throw new GrammarError(why);
};

/** What a rule may consult: the server's capabilities (upper-cased) and a nesting budget. */
export interface GrammarContext {
  readonly caps: ReadonlySet<string>;
  /** Deepest nesting of search keys (NOT, OR, parentheses). */
  readonly maxDepth: number;
}

/** The token stream with one token of lookahead. */
export class Input {
  peeked: Token | null = null;
  /**
   * Set by a rule that took a literal the server streams instead of parsing
   * (an APPEND message, a CATENATE TEXT part, a SETMETADATA value): its bytes
   * do not count against the server's command limit.
   */
  streamed = false;
  constructor(readonly ctx: GrammarContext) {}
}

export type Rule = (inp: Input) => G;

export function* take(inp: Input): G<Token> {
  const t = inp.peeked;
  if (t) {
    inp.peeked = null;
    return t;
  }
  return yield;
}

export function* peek(inp: Input): G<Token> {
  if (!inp.peeked) inp.peeked = yield;
  return inp.peeked;
}

/** Upper-cased text of an atom token, or null. */
export const atomText = (t: Token): string | null => (t.kind === 'atom' ? t.text.toUpperCase() : null);

/** literal8 (~{n}) is accepted only where a rule says so (APPEND with BINARY). */
function plainLiteral(t: Token, what: string): void {
  if (t.kind === 'literal' && t.binary) fail(`literal8 not allowed in ${what}`);
}

/** astring: atom, quoted string or literal (and an atom with brackets but no space, such as foo[bar]). */
export function* astring(inp: Input, what = 'argument'): G {
  const t = yield* take(inp);
  switch (t.kind) {
    case 'atom':
    case 'quoted':
      return;
    case 'literal':
      plainLiteral(t, what);
      return;
    case 'section':
      if (!t.spaced) return;
      return fail(`${what}: brackets with spaces are not one argument`);
    default:
      return fail(`${what}: expected an atom or a string`);
  }
}

/** string: quoted string or literal. */
export function* string(inp: Input, what = 'argument'): G {
  const t = yield* take(inp);
  if (t.kind === 'quoted') return;
  if (t.kind === 'literal') return plainLiteral(t, what);
  fail(`${what}: expected a string`);
}

/** nstring: NIL or a string. */
export function* nstring(inp: Input, what = 'argument'): G {
  const t = yield* peek(inp);
  if (atomText(t) === 'NIL') {
    yield* take(inp);
    return;
  }
  yield* string(inp, what);
}

/** An atom (no string, no literal); returns it upper-cased. */
export function* atom(inp: Input, what = 'argument'): G<string> {
  const t = yield* take(inp);
  const a = atomText(t);
  if (a === null) return fail(`${what}: expected an atom`);
  return a;
}

const isDigits = (s: string): boolean => s.length > 0 && s.length <= 20 && [...s].every((c) => c >= '0' && c <= '9');

export function* number(inp: Input, what = 'number'): G {
  const a = yield* atom(inp, what);
  if (!isDigits(a)) fail(`${what}: expected a number`);
}

/** sequence-set (RFC 9051): digits, '*', ':' and ','; '$' for SEARCHRES (RFC 5182). */
export function isSequenceSet(a: string): boolean {
  if (a === '$') return true;
  if (a.length === 0) return false;
  for (const c of a) if (!((c >= '0' && c <= '9') || c === '*' || c === ':' || c === ',')) return false;
  return true;
}

export function* sequenceSet(inp: Input): G {
  const a = yield* atom(inp, 'sequence set');
  if (!isSequenceSet(a)) fail('malformed sequence set');
}

/** "(" rule* ")": a list whose items are read by item until ')'. */
export function* listOf(inp: Input, item: Rule, what: string): G {
  const t = yield* take(inp);
  if (t.kind !== 'open') fail(`${what}: expected a list`);
  for (;;) {
    const n = yield* peek(inp);
    if (n.kind === 'close') {
      yield* take(inp);
      return;
    }
    if (n.kind === 'eol') fail(`${what}: unterminated list`);
    yield* item(inp);
  }
}

/**
 * A parameter list of atoms and nested lists only (SELECT, CREATE and LIST
 * options, STATUS items, FETCH modifiers): no strings, no literals.
 */
export function* atomList(inp: Input): G {
  yield* listOf(inp, atomOrList, 'parameter list');
}

function* atomOrList(inp: Input): G {
  const t = yield* peek(inp);
  if (t.kind === 'open') return yield* atomList(inp);
  yield* atom(inp, 'parameter');
}

/** Zero or more tokens to the end, no literal among them (commands whose grammar is not followed in detail). */
export function* noLiterals(inp: Input): G {
  for (;;) {
    const t = yield* peek(inp);
    if (t.kind === 'eol') return;
    if (t.kind === 'literal') fail('literal not allowed here');
    yield* take(inp);
  }
}

/** True when the server advertised one of these capabilities (a name ending in '=' matches any value). */
export function hasCap(inp: Input, ...names: readonly string[]): boolean {
  for (const r of names) {
    if (!r.endsWith('=')) {
      if (inp.ctx.caps.has(r)) return true;
      continue;
    }
    for (const n of inp.ctx.caps) if (n.startsWith(r)) return true;
  }
  return false;
}

const TOO_MANY = 'too many arguments';

/** A grammar refusal: bad_argument for a missing or extra argument, literal for a misplaced literal, else bad_syntax. */
export interface GrammarRefusal {
  readonly reason: string;
  readonly code: 'bad_argument' | 'literal' | 'bad_syntax';
  /** The text of the BAD reply. */
  readonly text: 'Missing arguments' | 'Too many arguments' | 'Literal not allowed here' | 'Invalid arguments';
}

/**
 * Runs a command's rule over its tokens. feed() returns null while the
 * tokens fit the grammar, or why they do not; after an EOL token it
 * says whether the command was complete. A failed parser stays failed.
 */
export class ArgParser {
  private readonly gen: G;
  private readonly inp: Input;
  private failed: GrammarRefusal | null = null;
  private finished = false;

  constructor(rule: Rule, ctx: GrammarContext) {
    const inp = new Input(ctx);
    this.inp = inp;
    this.gen = (function* (): G {
      yield* rule(inp);
      const t = yield* take(inp);
      if (t.kind !== 'eol') fail(TOO_MANY);
    })();
    this.gen.next();
  }

  feed(t: Token): GrammarRefusal | null {
    if (this.failed) return this.failed;
    if (this.finished) return (this.failed = { reason: 'input after the end of the command', code: 'bad_syntax', text: 'Invalid arguments' });
    this.inp.streamed = false;
    try {
      const r = this.gen.next(t);
      if (r.done) this.finished = true;
    } catch (e) {
      if (!(e instanceof GrammarError)) throw e;
      if (t.kind === 'eol') this.failed = { reason: `missing arguments (${e.message})`, code: 'bad_argument', text: 'Missing arguments' };
      else if (e.message === TOO_MANY) this.failed = { reason: TOO_MANY, code: 'bad_argument', text: 'Too many arguments' };
      else if (t.kind === 'literal') this.failed = { reason: e.message, code: 'literal', text: 'Literal not allowed here' };
      else this.failed = { reason: e.message, code: 'bad_syntax', text: 'Invalid arguments' };
    }
    return this.failed;
  }

  /** The literal just fed stands where the server streams it (see Input.streamed). */
  get literalStreamed(): boolean {
    return this.inp.streamed;
  }

  /** True once an EOL token completed the command. */
  get complete(): boolean {
    return this.finished && !this.failed;
  }
}
