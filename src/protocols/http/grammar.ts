/**
 * HTTP/1.1 message grammar (RFC 9110, RFC 9112) as byte tables and small
 * parsers. No regular expressions: every byte of a request head is looked up
 * once. Each parser works on a slice of a line (content only, ending
 * excluded) and answers what it found or why the bytes are not HTTP.
 */
import { DIGIT } from '../../core/bytes.js';

function table(pred: (b: number) => boolean): Uint8Array {
  const t = new Uint8Array(256);
  for (let b = 0; b < 256; b++) t[b] = pred(b) ? 1 : 0;
  return t;
}

const isAlpha = (b: number) => (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a);
const isDigit = (b: number) => b >= 0x30 && b <= 0x39;

export const SP = 0x20;
export const HTAB = 0x09;
const COLON = 0x3a;
const SEMI = 0x3b;
const EQ = 0x3d;
const DQUOTE = 0x22;
const BSLASH = 0x5c;
const PERCENT = 0x25;

/** tchar (RFC 9110 section 5.6.2): the bytes of a method, a field name, a coding. */
export const TCHAR = table((b) => isAlpha(b) || isDigit(b) || "!#$%&'*+-.^_`|~".includes(String.fromCharCode(b)));

/** HEXDIG, both cases. */
export const HEX = table((b) => isDigit(b) || (b >= 0x41 && b <= 0x46) || (b >= 0x61 && b <= 0x66));

/**
 * Bytes of a field value: field-vchar (VCHAR, obs-text) plus SP and HTAB
 * inside. Every other control byte (and DEL) is refused: a server that
 * takes a lone CR, LF or NUL for a line end splits the value into a header.
 */
export const FIELD_VALUE = table((b) => b === SP || b === HTAB || (b > 0x20 && b !== 0x7f));

/**
 * Bytes of a request-target in origin or absolute form (RFC 3986): unreserved,
 * sub-delims, ":", "@", "/", "?", "%" (checked for two HEXDIG), and "[" "]"
 * for IP literals in an absolute form's authority. No fragment, no space,
 * no byte outside ASCII: every server agrees on where such a target ends.
 */
export const TARGET = table((b) => isAlpha(b) || isDigit(b) || "-._~!$&'()*+,;=:@/?%[]".includes(String.fromCharCode(b)));

/** uri-host [":" port] bytes of a Host value: reg-name, IP literal, port. */
const HOST = table((b) => isAlpha(b) || isDigit(b) || "-._~!$&'()*+,;=:%[]".includes(String.fromCharCode(b)));

/** Why a request line or field is refused: the HTTP status that answers it and a few words for the log. */
export interface Fault {
  readonly status: 400 | 413 | 414 | 431 | 501 | 505;
  readonly reason: string;
}

const bad = (reason: string): Fault => ({ status: 400, reason });

export interface RequestLine {
  readonly method: string;
  /** 'origin' (/path), 'absolute' (scheme://…), 'authority' (CONNECT host:port), 'asterisk' (*). */
  readonly form: 'origin' | 'absolute' | 'authority' | 'asterisk';
  /** 0 for HTTP/1.0, 1 for HTTP/1.1. */
  readonly minor: 0 | 1;
  /**
   * An absolute form's authority (between "//" and the path, query or end),
   * lower-cased; null for the other forms. A server routes by it and ignores
   * Host (RFC 9112 section 3.2.2), so it must be the Host the wrapper judged.
   */
  readonly authority: string | null;
}

/** The longest method name read (the longest registered one, UPDATEREDIRECTREF, has 17). */
export const MAX_METHOD = 32;

/**
 * request-line = method SP request-target SP HTTP-version (RFC 9112 section 3),
 * exactly one SP each. The versions HTTP/1.0 and HTTP/1.1 only (505 for
 * other HTTP/d.d, 400 for anything else).
 */
export function parseRequestLine(b: Buffer, end: number): RequestLine | Fault {
  let i = 0;
  while (i < end && TCHAR[b[i]!]) i++;
  if (i === 0) return bad('request line does not start with a method');
  if (i > MAX_METHOD) return { status: 501, reason: 'method name too long' };
  if (i >= end || b[i] !== SP) return bad('method not followed by one SP');
  const method = b.toString('latin1', 0, i);
  const t0 = i + 1;
  let t = t0;
  while (t < end && b[t] !== SP) t++;
  if (t === t0) return bad('empty request-target or two SP');
  if (t >= end) return bad('no HTTP version (HTTP/0.9 is not served)');
  const form = targetForm(b, t0, t);
  if (typeof form !== 'string') return form;
  let authority: string | null = null;
  if (form === 'absolute') {
    const a = b.indexOf('//', t0) + 2;
    let ae = a;
    while (ae < t && b[ae] !== 0x2f && b[ae] !== 0x3f) ae++;
    authority = b.toString('latin1', a, ae).toLowerCase();
  }
  const v = t + 1;
  if (end - v !== 8 || b.toString('latin1', v, v + 5) !== 'HTTP/' || !DIGIT[b[v + 5]!] || b[v + 6] !== 0x2e || !DIGIT[b[v + 7]!]) {
    return bad('malformed HTTP version');
  }
  if (b[v + 5] !== 0x31 || (b[v + 7] !== 0x30 && b[v + 7] !== 0x31)) return { status: 505, reason: 'HTTP version other than 1.0 or 1.1' };
  return { method, form, minor: b[v + 7] === 0x31 ? 1 : 0, authority };
}

/** Which of the four request-target forms [s, e) is, or why it is none of them. */
function targetForm(b: Buffer, s: number, e: number): RequestLine['form'] | Fault {
  for (let i = s; i < e; i++) {
    const c = b[i]!;
    if (!TARGET[c]) return bad('request-target has a byte outside RFC 3986');
    if (c === PERCENT && (i + 2 >= e || !HEX[b[i + 1]!] || !HEX[b[i + 2]!])) return bad('request-target has a bad %-escape');
  }
  const first = b[s]!;
  if (first === 0x2f) return 'origin';
  if (first === 0x2a && e - s === 1) return 'asterisk';
  // scheme ":" ... : a letter, then letters, digits, + - .
  let i = s;
  if (isAlpha(first)) {
    i++;
    while (i < e && (isAlpha(b[i]!) || isDigit(b[i]!) || b[i] === 0x2b || b[i] === 0x2d || b[i] === 0x2e)) i++;
    if (i + 2 < e && b[i] === COLON && b[i + 1] === 0x2f && b[i + 2] === 0x2f) {
      // The authority must not be empty (RFC 9110 section 4.2.1).
      if (i + 3 >= e || b[i + 3] === 0x2f || b[i + 3] === 0x3f) return bad('absolute-form target without a host');
      return 'absolute';
    }
  }
  // authority-form: host ":" port, nothing else (CONNECT only).
  let colon = -1;
  for (let p = s; p < e; p++) {
    const c = b[p]!;
    if (c === 0x2f || c === 0x3f || c === 0x40) return bad('request-target in no known form');
    if (c === COLON) colon = p;
  }
  if (colon > s && colon < e - 1) {
    for (let p = colon + 1; p < e; p++) if (!DIGIT[b[p]!]) return bad('request-target in no known form');
    return 'authority';
  }
  return bad('request-target in no known form');
}

export interface Field {
  /** The name, lower-cased (for lookups only; the bytes are forwarded as sent). */
  readonly name: string;
  /** Where the value starts and ends in the line, OWS trimmed. */
  readonly valueStart: number;
  readonly valueEnd: number;
}

/**
 * field-line = field-name ":" OWS field-value OWS (RFC 9112 section 5).
 * A line starting with SP or HTAB is obs-fold (refused, section 5.2);
 * whitespace between the name and the colon is refused (section 5.1: the
 * classic Transfer-Encoding obfuscation).
 */
export function parseField(b: Buffer, end: number): Field | Fault {
  if (end > 0 && (b[0] === SP || b[0] === HTAB)) return bad('obs-fold (a line starting with whitespace)');
  let i = 0;
  while (i < end && TCHAR[b[i]!]) i++;
  if (i === 0) return bad('field without a name');
  if (i >= end || b[i] !== COLON) {
    if (i < end && (b[i] === SP || b[i] === HTAB)) return bad('whitespace between field name and colon');
    return bad('field name with a byte outside tchar');
  }
  const name = b.toString('latin1', 0, i).toLowerCase();
  let s = i + 1;
  let e = end;
  while (s < e && (b[s] === SP || b[s] === HTAB)) s++;
  while (e > s && (b[e - 1] === SP || b[e - 1] === HTAB)) e--;
  for (let p = s; p < e; p++) if (!FIELD_VALUE[b[p]!]) return bad('control byte in a field value');
  return { name, valueStart: s, valueEnd: e };
}

/** Content-Length = 1*DIGIT, one value (RFC 9112 section 6.3); beyond 2^53 it is refused, not wrapped. */
export function parseContentLength(b: Buffer, s: number, e: number): number | Fault {
  if (s === e) return bad('empty Content-Length');
  if (e - s > 15) return bad('Content-Length too long to be honest');
  let n = 0;
  for (let i = s; i < e; i++) {
    const c = b[i]!;
    if (!DIGIT[c]) return bad('Content-Length is not a single run of digits');
    n = n * 10 + (c - 0x30);
  }
  return n;
}

/** Transfer codings the wrapper knows the name of (RFC 9110 section 18.8 registry). */
const KNOWN_CODINGS: ReadonlySet<string> = new Set(['chunked', 'gzip', 'x-gzip', 'deflate', 'compress', 'x-compress']);

/**
 * Adds the codings of one Transfer-Encoding value (a comma list of tokens,
 * OWS around commas) to `into`, lower-cased. Empty members, parameters and
 * unknown codings are refused: a server that ignores an unknown member sees
 * another framing than one that stops at it.
 */
export function parseCodings(b: Buffer, s: number, e: number, into: string[]): Fault | null {
  let i = s;
  for (;;) {
    while (i < e && (b[i] === SP || b[i] === HTAB)) i++;
    const t = i;
    while (i < e && TCHAR[b[i]!]) i++;
    if (i === t) return bad('empty or malformed Transfer-Encoding member');
    const coding = b.toString('latin1', t, i).toLowerCase();
    while (i < e && (b[i] === SP || b[i] === HTAB)) i++;
    if (i < e && b[i] === SEMI) return { status: 501, reason: 'transfer coding with parameters' };
    if (!KNOWN_CODINGS.has(coding)) return { status: 501, reason: 'unknown transfer coding' };
    into.push(coding);
    if (i >= e) return null;
    if (b[i] !== 0x2c) return bad('malformed Transfer-Encoding list');
    i++;
  }
}

/** Lower-cased members of a comma list of tokens (Connection, Upgrade names); malformed members are kept as "". */
export function tokenList(b: Buffer, s: number, e: number): string[] {
  return b
    .toString('latin1', s, e)
    .split(',')
    .map((m) => m.trim().toLowerCase());
}

/** At most this many hex digits in a chunk size (2^64): a longer one is an overflow attempt. */
export const MAX_CHUNK_DIGITS = 16;

/**
 * chunk-size [chunk-ext] (RFC 9112 section 7.1): 1*16 HEXDIG, then
 * *( BWS ";" BWS ext-name [ BWS "=" BWS ext-val ] ), ext-val a token or a
 * quoted-string. No sign, no 0x prefix, no trailing junk: each is a known
 * way to make two parsers disagree on a chunk's length. A size beyond
 * 2^53 is refused (the body could never be counted exactly).
 */
export function parseChunkSize(b: Buffer, end: number): number | Fault {
  let i = 0;
  let n = 0;
  while (i < end && HEX[b[i]!]) {
    const c = b[i]!;
    n = n * 16 + (c <= 0x39 ? c - 0x30 : (c | 0x20) - 0x57);
    i++;
  }
  if (i === 0) return bad('chunk size is not hex');
  if (i > MAX_CHUNK_DIGITS || !Number.isSafeInteger(n)) return bad('chunk size overflows');
  while (i < end) {
    i = skipBws(b, i, end);
    if (i >= end) return bad('whitespace after chunk size without an extension');
    if (b[i] !== SEMI) return bad('junk after chunk size');
    i = skipBws(b, i + 1, end);
    const t = i;
    while (i < end && TCHAR[b[i]!]) i++;
    if (i === t) return bad('chunk extension without a name');
    const j = skipBws(b, i, end);
    if (j < end && b[j] === EQ) {
      i = skipBws(b, j + 1, end);
      const v = i;
      if (i < end && b[i] === DQUOTE) {
        i = quotedEnd(b, i, end);
        if (i < 0) return bad('malformed quoted chunk extension');
      } else {
        while (i < end && TCHAR[b[i]!]) i++;
        if (i === v) return bad('chunk extension without a value');
      }
    }
  }
  return n;
}

function skipBws(b: Buffer, i: number, end: number): number {
  while (i < end && (b[i] === SP || b[i] === HTAB)) i++;
  return i;
}

/** The index after the quoted-string starting at b[i] (a DQUOTE), or -1. */
function quotedEnd(b: Buffer, i: number, end: number): number {
  i++;
  while (i < end) {
    const c = b[i]!;
    if (c === DQUOTE) return i + 1;
    if (c === BSLASH) {
      const q = b[i + 1];
      if (i + 1 >= end || q === undefined || !(q === HTAB || q === SP || q > 0x20) || q === 0x7f) return -1;
      i += 2;
      continue;
    }
    if (!(c === HTAB || c === SP || c > 0x20) || c === 0x7f) return -1;
    i++;
  }
  return -1;
}

/** Host = uri-host [ ":" port ] (RFC 9110 section 7.2), checked by bytes only. */
export function validHost(b: Buffer, s: number, e: number): boolean {
  for (let i = s; i < e; i++) if (!HOST[b[i]!]) return false;
  return true;
}

/** Case-insensitive compare of b[s, e) with a lower-case ASCII word. */
export function equalsCI(b: Buffer, s: number, e: number, word: string): boolean {
  if (e - s !== word.length) return false;
  for (let i = 0; i < word.length; i++) {
    const c = b[s + i]!;
    if ((c >= 0x41 && c <= 0x5a ? c + 0x20 : c) !== word.charCodeAt(i)) return false;
  }
  return true;
}
