import { isIPv4, isIPv6 } from 'node:net';
import { domainToASCII } from 'node:url';
import { ALNUM, DIGIT } from '../../core/bytes.js';

/**
 * RFC 5321 §4.1.2 Path and Mailbox, and ESMTP parameters, parsed with byte
 * tables and small loops (no regex on client input). The parser answers two
 * questions: is the argument well formed, and which address will the server
 * read (source route dropped, quoting removed, domain lower-cased), so that
 * the policy judges exactly what the server will act on.
 */

function table(pred: (b: number) => boolean): Uint8Array {
  const t = new Uint8Array(256);
  for (let b = 0; b < 256; b++) t[b] = pred(b) ? 1 : 0;
  return t;
}

/** RFC 5322 atext: ALPHA / DIGIT / "!#$%&'*+-/=?^_`{|}~". */
const ATEXT = table((b) => ALNUM[b] === 1 || "!#$%&'*+-/=?^_`{|}~".includes(String.fromCharCode(b)));
/** qtextSMTP: %d32-33 / %d35-91 / %d93-126. */
const QTEXT = table((b) => b === 32 || b === 33 || (b >= 35 && b <= 91) || (b >= 93 && b <= 126));
/** esmtp-keyword characters: ALPHA / DIGIT / "-". */
const KEYWORD = table((b) => ALNUM[b] === 1 || b === 0x2d);
/** esmtp-value: %d33-60 / %d62-126. */
const ESMTP_VALUE = table((b) => (b >= 33 && b <= 60) || (b >= 62 && b <= 126));

const AT = 0x40;
const DOT = 0x2e;
const LT = 0x3c;
const GT = 0x3e;
const DQUOTE = 0x22;
const BACKSLASH = 0x5c;
const SP = 0x20;

/** RFC 5321 §4.5.3.1: local-part 64 octets, domain 255, path 256 including the brackets. */
export const MAX_LOCAL = 64;
export const MAX_DOMAIN = 255;
export const MAX_PATH = 256;
/** ESMTP parameters on one MAIL or RCPT: more than this is not a real client. */
export const MAX_PARAMS = 10;

export interface ParsedPath {
  /** The null reverse-path <>. */
  readonly isNull: boolean;
  /** The special recipient <Postmaster> (no domain). */
  readonly isPostmaster: boolean;
  /**
   * A mailbox without "@domain" (allowUnqualifiedAddress): the server adds
   * its own domain (Postfix: $myorigin, append_at_myorigin). domain is ''.
   */
  readonly unqualified: boolean;
  /** The local part as the server reads it: quotes and quoted-pairs removed. */
  readonly local: string;
  /** The domain as the server reads it (see domainForm); an address literal keeps its brackets. '' for <> and <Postmaster>. */
  readonly domain: string;
  /** local@domain as the server reads it, lower-cased; '' for <>. For policy and logs. */
  readonly address: string;
  /** A source route (A-d-l) was given and dropped, as RFC 5321 §C tells servers to. */
  readonly routed: boolean;
  /** Where the path's closing '>' ends. */
  readonly end: number;
}

export interface PathOptions {
  readonly allowNull: boolean;
  readonly allowPostmaster: boolean;
  /** RFC 6531: UTF-8 in local parts and domains (the server advertised SMTPUTF8). */
  readonly utf8: boolean;
  /** A local part alone (<root>), as Postfix takes by default; RFC 5321 requires the domain. */
  readonly allowUnqualified?: boolean;
}

/** A parse failure: a short reason for the log (never echoes the input). */
export interface ParseError {
  readonly error: string;
  /** Well formed, but a parameter of an extension we do not follow (RFC 5321: 555). */
  readonly unsupported?: boolean;
}

export function isError<T extends object>(v: T | ParseError): v is ParseError {
  return 'error' in v;
}

const latin1 = (b: Uint8Array, s: number, e: number) => Buffer.from(b.buffer, b.byteOffset + s, e - s).toString('latin1');

/**
 * Reads a Domain (sub-domain *("." sub-domain)) or an address literal at i.
 * Returns its end, or an error.
 */
function readDomain(b: Uint8Array, i: number, end: number, utf8: boolean): number | ParseError {
  const start = i;
  if (i < end && b[i] === 0x5b) {
    const close = b.indexOf(0x5d, i);
    if (close < 0 || close >= end) return { error: 'unterminated address literal' };
    const inner = latin1(b, i + 1, close);
    const ok = inner.startsWith('IPv6:') || inner.startsWith('ipv6:') ? isIPv6(inner.slice(5)) : isIPv4(inner);
    if (!ok) return { error: 'bad address literal' };
    return close + 1;
  }
  for (;;) {
    const label = i;
    while (i < end && (ALNUM[b[i]!] === 1 || b[i] === 0x2d || (utf8 && b[i]! >= 0x80))) i++;
    const len = i - label;
    if (len === 0) return { error: 'empty domain label' };
    if (len > 63) return { error: 'domain label longer than 63 octets' };
    if (b[label] === 0x2d || b[i - 1] === 0x2d) return { error: 'domain label starts or ends with a hyphen' };
    if (i < end && b[i] === DOT) {
      i++;
      continue;
    }
    break;
  }
  if (i - start > MAX_DOMAIN) return { error: 'domain longer than 255 octets' };
  return i;
}

/** Reads a Local-part (Dot-string or Quoted-string) at i; returns its end and unquoted text. */
function readLocal(b: Uint8Array, i: number, end: number, utf8: boolean): { end: number; text: string } | ParseError {
  let text = '';
  if (i < end && b[i] === DQUOTE) {
    i++;
    for (;;) {
      if (i >= end) return { error: 'unterminated quoted local part' };
      const c = b[i]!;
      if (c === DQUOTE) {
        i++;
        break;
      }
      if (c === BACKSLASH) {
        const n = b[i + 1];
        if (n === undefined || i + 1 >= end || n < 32 || n > 126) return { error: 'bad quoted-pair in local part' };
        text += String.fromCharCode(n);
        i += 2;
        continue;
      }
      if (QTEXT[c] !== 1 && !(utf8 && c >= 0x80)) return { error: 'bad character in quoted local part' };
      text += String.fromCharCode(c);
      i++;
    }
  } else {
    const start = i;
    for (;;) {
      const atom = i;
      while (i < end && (ATEXT[b[i]!] === 1 || (utf8 && b[i]! >= 0x80))) i++;
      if (i === atom) return { error: 'empty atom in local part' };
      if (i < end && b[i] === DOT) {
        i++;
        continue;
      }
      break;
    }
    text = latin1(b, start, i);
  }
  if (text.length > MAX_LOCAL) return { error: 'local part longer than 64 octets' };
  return { end: i, text };
}

/**
 * Parses a Path at i: "<" [ A-d-l ":" ] Mailbox ">", or "<>" when allowed,
 * or "<Postmaster>" when allowed. Nothing else (no bare addresses, no
 * comments, no spaces inside the brackets).
 */
export function parsePath(b: Uint8Array, i: number, end: number, o: PathOptions): ParsedPath | ParseError {
  const start = i;
  if (b[i] !== LT) return { error: 'path must start with <' };
  i++;
  if (b[i] === GT) {
    if (!o.allowNull) return { error: 'null path not allowed here' };
    return { isNull: true, isPostmaster: false, unqualified: false, local: '', domain: '', address: '', routed: false, end: i + 1 };
  }
  if (o.allowPostmaster && end - i >= 11 && b[i + 10] === GT && latin1(b, i, i + 10).toLowerCase() === 'postmaster') {
    return { isNull: false, isPostmaster: true, unqualified: false, local: 'postmaster', domain: '', address: 'postmaster', routed: false, end: i + 11 };
  }
  let routed = false;
  if (b[i] === AT) {
    // A-d-l: "@" Domain *( "," "@" Domain ) ":"; RFC 5321 tells servers to ignore it.
    for (;;) {
      if (b[i] !== AT) return { error: 'bad source route' };
      const d = readDomain(b, i + 1, end, o.utf8);
      if (typeof d !== 'number') return d;
      i = d;
      if (b[i] === 0x2c) {
        i++;
        continue;
      }
      if (b[i] !== 0x3a) return { error: 'source route not ended by :' };
      i++;
      routed = true;
      break;
    }
  }
  const local = readLocal(b, i, end, o.utf8);
  if (isError(local)) return local;
  i = local.end;
  const unqualified = o.allowUnqualified === true && b[i] === GT;
  if (b[i] !== AT && !unqualified) return { error: 'mailbox without @domain' };
  const domStart = i + 1;
  let d = i;
  if (!unqualified) {
    const r = readDomain(b, domStart, end, o.utf8);
    if (typeof r !== 'number') return r;
    d = r;
  }
  i = d;
  if (i >= end || b[i] !== GT) return { error: 'path not closed by >' };
  i++;
  if (i - start > MAX_PATH) return { error: 'path longer than 256 octets' };
  if (o.utf8) {
    try {
      new TextDecoder('utf-8', { fatal: true }).decode(b.subarray(start, i));
    } catch {
      return { error: 'path is not valid UTF-8' };
    }
  }
  if (unqualified) return { isNull: false, isPostmaster: false, unqualified, local: local.text, domain: '', address: local.text.toLowerCase(), routed, end: i };
  const domain = domainForm(latin1(b, domStart, d));
  return { isNull: false, isPostmaster: false, unqualified, local: local.text, domain, address: `${local.text}@${domain}`.toLowerCase(), routed, end: i };
}

export interface EsmtpParam {
  /** Upper-cased keyword. */
  readonly key: string;
  /** The value as written (latin1), or null for a bare keyword. */
  readonly value: string | null;
}

/**
 * Parses " keyword[=value]" parameters from i to end (RFC 5321 §4.1.2
 * Mail-parameters / Rcpt-parameters). Single spaces only; duplicates refused.
 */
export function parseParams(b: Uint8Array, i: number, end: number, utf8: boolean): EsmtpParam[] | ParseError {
  const out: EsmtpParam[] = [];
  while (i < end) {
    if (b[i] !== SP) return { error: 'parameters must be separated by one space' };
    i++;
    const k = i;
    while (i < end && KEYWORD[b[i]!] === 1) i++;
    if (i === k || ALNUM[b[k]!] !== 1) return { error: 'bad parameter keyword' };
    const key = latin1(b, k, i).toUpperCase();
    let value: string | null = null;
    if (i < end && b[i] === 0x3d) {
      i++;
      const v = i;
      while (i < end && (ESMTP_VALUE[b[i]!] === 1 || (utf8 && b[i]! >= 0x80))) i++;
      if (i === v) return { error: `empty value for ${key}` };
      value = latin1(b, v, i);
    }
    if (i < end && b[i] !== SP) return { error: 'bad character in parameter' };
    if (out.some((p) => p.key === key)) return { error: `duplicate parameter ${key}` };
    if (out.length >= MAX_PARAMS) return { error: 'too many parameters' };
    out.push({ key, value });
  }
  return out;
}

/** A decimal number of at most 15 digits (fits a double exactly), or null. */
export function decimal(s: string): number | null {
  if (s.length === 0 || s.length > 15) return null;
  for (let i = 0; i < s.length; i++) if (DIGIT[s.charCodeAt(i)] !== 1) return null;
  return Number(s);
}

/**
 * A domain (bytes as latin1) as the server reads it: lower case, and a UTF-8
 * (SMTPUTF8) domain mapped to ASCII by UTS #46, as Postfix does with ICU for
 * its lookups and for any next hop without SMTPUTF8. Without the mapping,
 * full-width letters or the ideographic full stop ("ｓｐａｍｍｅｒ。org")
 * would spell a blocked domain that the policy does not recognise.
 */
export function domainForm(latin1Domain: string): string {
  for (let i = 0; i < latin1Domain.length; i++) {
    if (latin1Domain.charCodeAt(i) >= 0x80) {
      const ascii = domainToASCII(Buffer.from(latin1Domain, 'latin1').toString('utf8'));
      return ascii.length > 0 ? ascii : latin1Domain.toLowerCase();
    }
  }
  return latin1Domain.toLowerCase();
}

/**
 * Other forms a server may turn an address into (Postfix's percent hack and
 * bang paths are on by default): user%host@relay → user@host (again and
 * again while the host is the server's own: a%b%c@relay → a%b@c → a@b),
 * host!user@relay → user@host, and a quoted "user@host"@relay.
 * blockAddrList is tested against each, so these disguises fail.
 */
export function addressForms(p: ParsedPath): string[] {
  const forms = [p.address];
  const form = (local: string, domain: string) => `${local.toLowerCase()}@${domainForm(domain)}`;
  let rest = p.local;
  for (let pct = rest.lastIndexOf('%'); pct > 0; pct = rest.lastIndexOf('%')) {
    forms.push(form(rest.slice(0, pct), rest.slice(pct + 1)));
    rest = rest.slice(0, pct);
  }
  const bang = p.local.indexOf('!');
  if (bang > 0) forms.push(form(p.local.slice(bang + 1), p.local.slice(0, bang)));
  const at = p.local.lastIndexOf('@');
  if (at > 0) forms.push(form(p.local.slice(0, at), p.local.slice(at + 1)));
  return forms;
}
