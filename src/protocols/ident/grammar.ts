/**
 * RFC 1413's grammar, read with byte tests and a cursor (no regex):
 *
 *   <request>      ::= <port-pair> <EOL>
 *   <port-pair>    ::= <integer> "," <integer>           ; 1-5 digits each
 *   <reply>        ::= <port-pair> ":" ( "ERROR" ":" <error-type>
 *                                      | "USERID" ":" <opsys-field> ":" <user-id> ) <EOL>
 *   <opsys-field>  ::= <opsys> [ "," <charset> ]         ; tokens, 1-64 characters
 *   <error-type>   ::= "INVALID-PORT" | "NO-USER" | "UNKNOWN-ERROR" | "HIDDEN-USER"
 *                    | "X" 1*63<token-characters>
 *   <user-id>      ::= 1*512 octets but NUL, CR, LF
 *
 * White space (space and tab) may stand anywhere between tokens and at both
 * ends of a line, but not inside a token, and everything after the colon
 * that ends the opsys field is the user id (syntax note 1).
 */

const TAB = 0x09;
const SP = 0x20;
const COMMA = 0x2c;
const COLON = 0x3a;

export interface PortPair {
  readonly server: number;
  readonly client: number;
}

/** A cursor over bytes [pos, end). */
class Cursor {
  constructor(
    readonly b: Buffer,
    public pos: number,
    readonly end: number,
  ) {}

  skipSpace(): void {
    while (this.pos < this.end && (this.b[this.pos] === SP || this.b[this.pos] === TAB)) this.pos++;
  }

  /** Consumes byte c, white space around it allowed. */
  expect(c: number): boolean {
    this.skipSpace();
    if (this.pos >= this.end || this.b[this.pos] !== c) return false;
    this.pos++;
    this.skipSpace();
    return true;
  }

  get atEnd(): boolean {
    return this.pos >= this.end;
  }

  /** 1-5 digits as a number; -1 when there are none or more than five. */
  integer(): number {
    const start = this.pos;
    let n = 0;
    while (this.pos < this.end && this.b[this.pos]! >= 0x30 && this.b[this.pos]! <= 0x39) {
      n = n * 10 + this.b[this.pos]! - 0x30;
      this.pos++;
      if (this.pos - start > 5) return -1;
    }
    return this.pos > start ? n : -1;
  }

  /** A token (1-64 token characters), or null. */
  token(): string | null {
    const start = this.pos;
    while (this.pos < this.end && TOKEN_CHAR[this.b[this.pos]!] === 1) this.pos++;
    const len = this.pos - start;
    return len >= 1 && len <= 64 ? this.b.toString('latin1', start, this.pos) : null;
  }
}

/**
 * Token characters: visible ASCII but the colon (the field separator) and
 * the comma (it separates opsys and charset; RFC 1413 lists it, but a token
 * holding one cannot be told from the two fields). No quoting is read.
 */
const TOKEN_CHAR = (() => {
  const t = new Uint8Array(256);
  for (let b = 0x21; b < 0x7f; b++) t[b] = b === COLON || b === COMMA ? 0 : 1;
  return t;
})();

export type QueryResult =
  | { readonly ok: true; readonly ports: PortPair }
  /** shown: the port pair to repeat in the INVALID-PORT reply (0 , 0 when the line is no port pair). */
  | { readonly ok: false; readonly kind: 'syntax' | 'range'; readonly reason: string; readonly shown: PortPair };

const NONE: PortPair = Object.freeze({ server: 0, client: 0 });
const inRange = (p: number) => p >= 1 && p <= 65535;

/** A query line's content [0, end): `<port> , <port>`, both 1-65535, white space around the tokens, nothing else. */
export function parseQuery(line: Buffer, end: number): QueryResult {
  const c = new Cursor(line, 0, end);
  c.skipSpace();
  const server = c.integer();
  if (server < 0) return { ok: false, kind: 'syntax', reason: 'no port number (1-5 digits) at the start', shown: NONE };
  if (!c.expect(COMMA)) return { ok: false, kind: 'syntax', reason: 'no comma after the first port', shown: NONE };
  const client = c.integer();
  if (client < 0) return { ok: false, kind: 'syntax', reason: 'no port number (1-5 digits) after the comma', shown: NONE };
  c.skipSpace();
  if (!c.atEnd) return { ok: false, kind: 'syntax', reason: `byte 0x${line[c.pos]!.toString(16).padStart(2, '0')} after the port pair`, shown: NONE };
  if (!inRange(server) || !inRange(client)) {
    return { ok: false, kind: 'range', reason: `port ${inRange(server) ? client : server} out of 1..65535`, shown: { server, client } };
  }
  return { ok: true, ports: { server, client } };
}

const ERROR_TYPES: ReadonlySet<string> = new Set(['INVALID-PORT', 'NO-USER', 'UNKNOWN-ERROR', 'HIDDEN-USER']);

/** The RFC's bound on a user id (syntax note 3: a server SHOULD NOT send more). */
export const MAX_USER_ID = 512;

/**
 * Checks a reply line's content [0, end) (CRLF removed) against the
 * grammar and the query it answers: the port pair must be the query's.
 * Returns null when the reply is good, else why not (for the log).
 *
 * Stricter than the RFC in one place: the user id may hold no control
 * byte but TAB (the RFC allows any octet but NUL, CR, LF; an ESC there
 * reaches the logs and terminals of whoever reads the ident answer).
 */
export function checkReply(line: Buffer, end: number, query: PortPair): string | null {
  const c = new Cursor(line, 0, end);
  c.skipSpace();
  const server = c.integer();
  if (server < 0 || !c.expect(COMMA)) return 'no port pair';
  const client = c.integer();
  if (client < 0) return 'no port pair';
  if (server !== query.server || client !== query.client) return `port pair ${server} , ${client} answers no query (asked ${query.server} , ${query.client})`;
  if (!c.expect(COLON)) return 'no colon after the port pair';
  const kind = c.token();
  if (kind === 'ERROR') {
    if (!c.expect(COLON)) return 'no colon after ERROR';
    const type = c.token();
    if (type === null) return 'no error type';
    if (!ERROR_TYPES.has(type) && !(type.length >= 2 && type[0] === 'X')) return 'unknown error type';
    c.skipSpace();
    return c.atEnd ? null : 'bytes after the error type';
  }
  if (kind !== 'USERID') return 'neither USERID nor ERROR';
  if (!c.expect(COLON)) return 'no colon after USERID';
  if (c.token() === null) return 'no operating system token';
  c.skipSpace();
  if (c.pos < end && line[c.pos] === COMMA) {
    c.pos++;
    c.skipSpace();
    if (c.token() === null) return 'no character set token after the comma';
    c.skipSpace();
  }
  if (c.atEnd || line[c.pos] !== COLON) return 'no colon before the user id';
  return checkUserId(line, c.pos + 1, end);
}

function checkUserId(line: Buffer, start: number, end: number): string | null {
  if (end - start > MAX_USER_ID) return `user id longer than ${MAX_USER_ID} bytes`;
  let visible = false;
  for (let i = start; i < end; i++) {
    const b = line[i]!;
    if ((b < 0x20 && b !== TAB) || b === 0x7f) return `control byte 0x${b.toString(16).padStart(2, '0')} in the user id`;
    if (b !== SP && b !== TAB) visible = true;
  }
  return visible ? null : 'empty user id';
}
