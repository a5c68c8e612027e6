/**
 * IMAP command syntax (RFC 9051 section 9, RFC 3501 section 9): tags, verbs
 * and the argument stream, scanned with byte tables and a small state
 * machine, never with regular expressions. The scanner does not build a parse
 * tree: it checks that the arguments are well-formed tokens (atoms, quoted
 * strings, parenthesised lists, [sections]), counts the top-level arguments
 * and finds a literal announced at the end of a line. Being strict here is
 * what keeps a non-synchronizing literal from being read differently by the
 * wrapper and by the server (a line the server rejects before its literal
 * would make the server read the literal's bytes as commands).
 */

const SP = 0x20;
const DQUOTE = 0x22;
const LPAREN = 0x28;
const RPAREN = 0x29;
const LBRACKET = 0x5b;
const BACKSLASH = 0x5c;
const RBRACKET = 0x5d;
const LBRACE = 0x7b;
const RBRACE = 0x7d;
const TILDE = 0x7e;
const PLUS = 0x2b;
const MINUS = 0x2d;

function table(pred: (b: number) => boolean): Uint8Array {
  const t = new Uint8Array(256);
  for (let b = 0; b < 256; b++) t[b] = pred(b) ? 1 : 0;
  return t;
}

const isSpecial = (b: number, specials: string) => specials.includes(String.fromCharCode(b));

/**
 * tag = 1*<any ASTRING-CHAR except "+">: visible ASCII but ( ) { SP % * " \ +.
 * Also not ']' (an ASTRING-CHAR): Dovecot answers such a tag with `* BAD` and
 * skips the line without reading its {n+} literal, so the literal's bytes
 * would run as commands the wrapper took for data.
 */
export const TAG_CHAR = table((b) => b > 0x20 && b < 0x7f && !isSpecial(b, '(){%*"\\+]'));

/**
 * Bytes of an atom-like argument: ATOM-CHAR plus the list wildcards % and *
 * (LIST patterns, sequence sets), \ (flags) and ] (ASTRING-CHAR). '[' opens
 * a section and is handled by the scanner.
 */
export const ARG_ATOM_CHAR = table((b) => b > 0x20 && b < 0x7f && !isSpecial(b, '(){"['));

/** Bytes allowed inside a quoted string besides the two escapes: no CTL; 8-bit allowed (UTF-8, RFC 9051). */
const QUOTED_CHAR = table((b) => b >= 0x20 && b !== 0x7f && b !== DQUOTE && b !== BACKSLASH);

/** Longest tag accepted. Real clients use a few characters; a bound keeps server-side matching cheap. */
export const MAX_TAG_LENGTH = 64;
/** Deepest nesting of parentheses accepted (BODYSTRUCTURE-like search keys stay far below). */
export const MAX_PAREN_DEPTH = 32;
/** Literal sizes with more digits are refused (64 bits hold 20 digits; larger sizes are nonsense). */
const MAX_LITERAL_DIGITS = 20;

/**
 * Reads a tag at the start of a line. Returns the index of the SP after it,
 * or -1 when there is no valid tag followed by SP.
 */
export function scanTag(line: Uint8Array, end: number): number {
  let i = 0;
  while (i < end && TAG_CHAR[line[i]!] === 1) {
    if (i >= MAX_TAG_LENGTH) return -1;
    i++;
  }
  if (i === 0 || i >= end || line[i] !== SP) return -1;
  return i;
}

/** Reads an atom (a verb) from start; returns its end (SP, end of line, or a byte that is no ATOM-CHAR). */
export function atomEnd(line: Uint8Array, start: number, end: number): number {
  let i = start;
  while (i < end && ARG_ATOM_CHAR[line[i]!] === 1 && line[i] !== RBRACKET && line[i] !== BACKSLASH) i++;
  return i;
}

/** A literal announced at the end of a line: {n}, {n+}, {n-}, or literal8 ~{n}. */
export interface LiteralSpec {
  readonly size: number;
  /** {n+}: the client sends the bytes without waiting for the server's '+'. */
  readonly nonSync: boolean;
  /** {n-}: not IMAP syntax (RFC 7888 writes non-synchronizing literals as {n+}); refused. */
  readonly minus: boolean;
  /** ~{n}: a literal8 (RFC 3516 BINARY). */
  readonly binary: boolean;
}

/**
 * One argument token as the grammar (grammar.ts) sees it. Atoms, quoted
 * strings and sections keep their bytes (latin1) so that keywords, flags,
 * sequence sets and dates can be checked; a literal is only announced (its
 * bytes are counted by the framer, never parsed).
 */
export type Token =
  | { readonly kind: 'atom'; readonly text: string }
  /** An atom holding a [section] (BODY[HEADER.FIELDS (FROM)]<0.100>); spaced: the section holds SP or parentheses. */
  | { readonly kind: 'section'; readonly text: string; readonly spaced: boolean }
  /** A quoted string; text includes the quotes. */
  | { readonly kind: 'quoted'; readonly text: string }
  | { readonly kind: 'literal'; readonly nonSync: boolean; readonly binary: boolean }
  | { readonly kind: 'open' }
  | { readonly kind: 'close' }
  /** The end of the command (a line that does not end in a literal). */
  | { readonly kind: 'eol' };

/** Tokenizer state, carried across the lines of one command (a literal splits a command into lines). */
export interface ScanState {
  /** Parenthesis depth. */
  depth: number;
  /** 'token': a token may start here; 'sep': a token just ended, SP or ')' must follow. */
  expect: 'token' | 'sep';
}

export function newScan(): ScanState {
  return { depth: 0, expect: 'token' };
}

export type ScanResult = { readonly ok: true; readonly literal: LiteralSpec | null } | { readonly ok: false; readonly reason: string };

const fail = (reason: string): ScanResult => ({ ok: false, reason });

/**
 * Cuts argument bytes line[start, end) (the line's content, ending
 * excluded) into tokens, appended to out, and updates st. A literal may only
 * stand at the very end of the line (Dovecot: "Missing LF after literal
 * size"); it is returned, not appended: the caller checks it first. The
 * lexical rules are at least as strict as Dovecot's parser (imap-parser.c):
 * no control or 8-bit bytes in atoms, no NUL, CR or LF in quoted strings,
 * balanced parentheses, a space between arguments. A literal inside a
 * [section] is refused: Dovecot reads brackets as atom bytes and the
 * parentheses in them as lists, so the two would count arguments apart.
 */
export function tokenize(line: Uint8Array, start: number, end: number, st: ScanState, out: Token[]): ScanResult {
  let i = start;
  while (i < end) {
    const b = line[i]!;
    if (b < 0x20 || b === 0x7f) return fail('control byte in command');
    if (st.expect === 'sep') {
      if (b === SP) {
        st.expect = 'token';
        i++;
      } else if (b === RPAREN) {
        if (st.depth === 0) return fail('unbalanced parenthesis');
        st.depth--;
        out.push(CLOSE);
        i++;
      } else {
        return fail('expected a space between arguments');
      }
      continue;
    }
    // A token starts here.
    if (b === SP) return fail('empty argument (two spaces)');
    if (b === LPAREN) {
      if (++st.depth > MAX_PAREN_DEPTH) return fail('parentheses nested too deep');
      out.push(OPEN);
      i++;
      if (i < end && line[i] === RPAREN) {
        // An empty list "()".
        st.depth--;
        out.push(CLOSE);
        i++;
        st.expect = 'sep';
      }
      continue;
    }
    if (b === RPAREN) return fail('unexpected parenthesis');
    if (b === DQUOTE) {
      const q = quotedEnd(line, i + 1, end);
      if (q < 0) return fail('unterminated or malformed quoted string');
      out.push({ kind: 'quoted', text: latin1(line, i, q) });
      i = q;
      st.expect = 'sep';
      continue;
    }
    if (b === LBRACE || (b === TILDE && i + 1 < end && line[i + 1] === LBRACE)) {
      const lit = literalAt(line, b === TILDE ? i + 1 : i, end);
      if (!lit) return fail('malformed literal, or a literal not at the end of the line');
      st.expect = 'sep';
      return { ok: true, literal: { ...lit, binary: b === TILDE } };
    }
    if (ARG_ATOM_CHAR[b] !== 1 && b !== LBRACKET) return fail('byte not allowed in an atom');
    const from = i;
    // '[' is an ATOM-CHAR: it may start an astring ([Gmail]/Sent); after a name it opens a section (BODY[).
    i++;
    while (i < end && ARG_ATOM_CHAR[line[i]!] === 1) i++;
    if (i < end && line[i] === LBRACKET) {
      const s = sectionEnd(line, i, end);
      if (s.end < 0) return fail(s.reason);
      i = s.end;
      out.push({ kind: 'section', text: latin1(line, from, i), spaced: s.spaced });
    } else {
      out.push({ kind: 'atom', text: latin1(line, from, i) });
    }
    st.expect = 'sep';
  }
  return { ok: true, literal: null };
}

const OPEN: Token = Object.freeze({ kind: 'open' });
const CLOSE: Token = Object.freeze({ kind: 'close' });
export const EOL: Token = Object.freeze({ kind: 'eol' });

function latin1(line: Uint8Array, from: number, to: number): string {
  let s = '';
  for (let k = from; k < to; k++) s += String.fromCharCode(line[k]!);
  return s;
}

/**
 * From a '[' after an atom's name: the index after the section and the
 * partial that may follow it (BODY[1.2]<0.100>), or -1 with a reason. The
 * section holds atoms, quoted strings and balanced parentheses (HEADER.FIELDS
 * (FROM TO)); never a literal, and it never spans lines.
 */
function sectionEnd(line: Uint8Array, i: number, end: number): { end: number; spaced: boolean; reason: string } {
  let depth = 0;
  let spaced = false;
  i++;
  while (i < end) {
    const b = line[i]!;
    if (b < 0x20 || b === 0x7f) return { end: -1, spaced, reason: 'control byte in command' };
    if (b === RBRACKET && depth === 0) {
      i++;
      while (i < end && ARG_ATOM_CHAR[line[i]!] === 1 && line[i] !== RBRACKET) i++;
      return { end: i, spaced, reason: '' };
    }
    if (b === LBRACE || b === TILDE) return { end: -1, spaced, reason: 'literal inside a [section]' };
    if (b === SP || b === LPAREN || b === RPAREN) spaced = true;
    if (b === LPAREN && ++depth > MAX_PAREN_DEPTH) return { end: -1, spaced, reason: 'parentheses nested too deep' };
    if (b === RPAREN && --depth < 0) return { end: -1, spaced, reason: 'unbalanced parenthesis' };
    if (b === DQUOTE) {
      const q = quotedEnd(line, i + 1, end);
      if (q < 0) return { end: -1, spaced, reason: 'unterminated or malformed quoted string' };
      i = q;
      continue;
    }
    if (b !== SP && b !== LPAREN && b !== RPAREN && ARG_ATOM_CHAR[b] !== 1) return { end: -1, spaced, reason: 'byte not allowed in a section' };
    i++;
  }
  return { end: -1, spaced, reason: 'unterminated [section]' };
}

/** From just after the opening quote: the index after the closing quote, or -1. */
function quotedEnd(line: Uint8Array, i: number, end: number): number {
  while (i < end) {
    const b = line[i]!;
    if (b === DQUOTE) return i + 1;
    if (b === BACKSLASH) {
      const n = line[i + 1];
      if (i + 1 >= end || (n !== DQUOTE && n !== BACKSLASH)) return -1;
      i += 2;
      continue;
    }
    if (QUOTED_CHAR[b] !== 1) return -1;
    i++;
  }
  return -1;
}

/** Parses {digits[+|-]} at i, which must end exactly at end. */
function literalAt(line: Uint8Array, i: number, end: number): Omit<LiteralSpec, 'binary'> | null {
  let j = i + 1;
  let size = 0;
  let digits = 0;
  while (j < end && line[j]! >= 0x30 && line[j]! <= 0x39) {
    size = size * 10 + (line[j]! - 0x30);
    digits++;
    j++;
  }
  if (digits === 0 || digits > MAX_LITERAL_DIGITS) return null;
  let nonSync = false;
  let minus = false;
  if (j < end && line[j] === PLUS) {
    nonSync = true;
    j++;
  } else if (j < end && line[j] === MINUS) {
    minus = true;
    j++;
  }
  if (j !== end - 1 || line[j] !== RBRACE) return null;
  if (!Number.isSafeInteger(size)) size = Number.MAX_SAFE_INTEGER;
  return { size, nonSync, minus };
}

/** At the end of a command (a line without a literal): every list must be closed. */
export function scanComplete(st: ScanState): string | null {
  if (st.depth !== 0) return 'unbalanced parenthesis';
  if (st.expect === 'token') return 'trailing space';
  return null;
}

/** True when bytes[start, end) are base64 (RFC 4648 alphabet, '=' padding), possibly empty. */
export function isBase64(bytes: Uint8Array, start: number, end: number): boolean {
  for (let i = start; i < end; i++) {
    const b = bytes[i]!;
    const ok = (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a) || (b >= 0x30 && b <= 0x39) || b === PLUS || b === 0x2f || b === 0x3d;
    if (!ok) return false;
  }
  return true;
}

/** Does a refused line end with a non-synchronizing literal? Its bytes follow at once: the stream is lost. */
export function nonSyncAtEnd(line: Buffer, contentEnd: number): boolean {
  if (contentEnd < 4 || line[contentEnd - 1] !== 0x7d) return false;
  const m = line[contentEnd - 2];
  if (m !== 0x2b && m !== 0x2d) return false;
  const open = line.lastIndexOf(0x7b, contentEnd - 3);
  if (open < 0) return false;
  for (let i = open + 1; i < contentEnd - 2; i++) if (line[i]! < 0x30 || line[i]! > 0x39) return false;
  return open + 1 < contentEnd - 2;
}

/**
 * The first argument of a LOGIN as the server reads it, when it is an atom or
 * a quoted string (RFC 9051 astring; a literal gives null: its bytes come
 * later). The grammar has checked the line already.
 */
export function firstAstring(line: Buffer, start: number, end: number): string | null {
  if (line[start] === 0x7b) return null;
  if (line[start] !== 0x22) {
    let i = start;
    while (i < end && line[i] !== 0x20) i++;
    return line.toString('latin1', start, i);
  }
  const out: number[] = [];
  for (let i = start + 1; i < end; i++) {
    const b = line[i]!;
    if (b === 0x22) return Buffer.from(out).toString('latin1');
    if (b === 0x5c && i + 1 < end) i++;
    out.push(line[i]!);
  }
  return null;
}
