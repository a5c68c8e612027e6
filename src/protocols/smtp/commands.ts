import { DIGIT, startsWithWordCI, VCHAR } from '../../core/bytes.js';
import { decimal, isError, parseParams, parsePath, type EsmtpParam, type ParsedPath, type ParseError } from './path.js';

/**
 * The session's states, moved by the server's replies (optimistically by
 * pipelined MAIL/RCPT/RSET, corrected when their replies come):
 *   greeting  → no 220 yet: a client that talks now is an early talker
 *   connected → greeted, no HELO/EHLO accepted yet
 *   ready     → HELO/EHLO accepted, no transaction
 *   mail      → MAIL sent
 *   rcpt      → RCPT sent
 *   data      → message text (after 354, the server's or ours)
 *   auth      → an AUTH exchange (after 334)
 *   quit      → QUIT answered
 */
export type State = 'greeting' | 'connected' | 'ready' | 'mail' | 'rcpt' | 'data' | 'auth' | 'quit';

export type Verb = 'HELO' | 'EHLO' | 'MAIL' | 'RCPT' | 'DATA' | 'BDAT' | 'RSET' | 'NOOP' | 'HELP' | 'VRFY' | 'EXPN' | 'QUIT' | 'AUTH' | 'STARTTLS';

/** How a command's argument is checked. */
export type ArgRule = 'none' | 'optionalText' | 'text' | 'domain' | 'mail' | 'rcpt' | 'bdat' | 'auth';

export interface CommandSpec {
  readonly verb: Verb;
  /** States in which the command is legal. */
  readonly states: readonly State[];
  readonly arg: ArgRule;
  /**
   * RFC 2920 §3.1: may be sent without waiting for its reply when the server
   * offers PIPELINING. Every other command is held until its reply comes, so
   * it is always the last of a group (EHLO, DATA, VRFY, EXPN, NOOP, QUIT...).
   */
  readonly pipelined: boolean;
}

const AFTER_GREETING: readonly State[] = ['connected', 'ready', 'mail', 'rcpt'];

const spec = (verb: Verb, states: readonly State[], arg: ArgRule, pipelined = false): [string, CommandSpec] => [verb, { verb, states, arg, pipelined }];

/** RFC 5321 §4.1, 1870, 3030, 4954, 3207. Looked up by the upper-cased verb; anything else is 500. */
export const COMMANDS: ReadonlyMap<string, CommandSpec> = new Map([
  spec('HELO', AFTER_GREETING, 'domain'),
  spec('EHLO', AFTER_GREETING, 'domain'),
  spec('MAIL', ['ready'], 'mail', true),
  spec('RCPT', ['mail', 'rcpt'], 'rcpt', true),
  spec('DATA', ['rcpt'], 'none'),
  spec('BDAT', ['rcpt'], 'bdat', true),
  spec('RSET', AFTER_GREETING, 'none', true),
  spec('NOOP', AFTER_GREETING, 'optionalText'),
  spec('HELP', AFTER_GREETING, 'optionalText'),
  spec('VRFY', AFTER_GREETING, 'text'),
  spec('EXPN', AFTER_GREETING, 'text'),
  spec('QUIT', AFTER_GREETING, 'none'),
  spec('AUTH', ['ready'], 'auth'),
  spec('STARTTLS', AFTER_GREETING, 'none'),
]);

/** What the sender or recipient command carries. */
export interface EnvelopeArg {
  readonly path: ParsedPath;
  readonly params: readonly EsmtpParam[];
}

const MAIL_PARAMS = new Set(['SIZE', 'BODY', 'SMTPUTF8', 'AUTH', 'RET', 'ENVID']);
const RCPT_PARAMS = new Set(['NOTIFY', 'ORCPT']);

/**
 * "FROM:" / "TO:" then the path (a space after the colon is tolerated, as
 * most servers do), then parameters. Only parameters of extensions we follow.
 */
export function parseEnvelope(line: Buffer, argStart: number, end: number, which: 'FROM:' | 'TO:', utf8: boolean, allowUnqualified = false): EnvelopeArg | ParseError {
  if (!startsWithWordCI(line, argStart, end, which)) return { error: `expected ${which}` };
  let i = argStart + which.length;
  if (line[i] === 0x20) i++;
  const path = parsePath(line, i, end, { allowNull: which === 'FROM:', allowPostmaster: which === 'TO:', utf8, allowUnqualified });
  if (isError(path)) return path;
  const params = parseParams(line, path.end, end, utf8);
  if (isError(params)) return params;
  const known = which === 'FROM:' ? MAIL_PARAMS : RCPT_PARAMS;
  for (const p of params) if (!known.has(p.key)) return { error: `unsupported parameter ${p.key}`, unsupported: true };
  return { path, params };
}

/** HELO/EHLO argument: one token of visible ASCII (a domain or an address literal), at most 255 octets. */
export function checkDomainArg(line: Buffer, argStart: number, end: number): ParseError | null {
  if (argStart >= end) return { error: 'missing domain' };
  if (end - argStart > 255) return { error: 'domain longer than 255 octets' };
  for (let i = argStart; i < end; i++) if (VCHAR[line[i]!] !== 1) return { error: 'bad character in domain' };
  return null;
}

/** Free text (VRFY, EXPN, HELP, NOOP): printable ASCII and spaces. */
export function checkText(line: Buffer, argStart: number, end: number, required: boolean): ParseError | null {
  if (required && argStart >= end) return { error: 'missing argument' };
  for (let i = argStart; i < end; i++) {
    const b = line[i]!;
    if (b !== 0x20 && VCHAR[b] !== 1) return { error: 'bad character in argument' };
  }
  return null;
}

const SMTPUTF8_PARAM = ' SMTPUTF8';
const utf8Decoder = new TextDecoder('utf-8', { fatal: true });

/**
 * VRFY / EXPN argument. RFC 6531 §3.7.4: `VRFY String [SP "SMTPUTF8"]`; with
 * the parameter, and only when the server advertised SMTPUTF8, the string may
 * hold UTF-8, which must then be valid UTF-8 (curl sends it so for a UTF-8
 * name). Without it: printable ASCII, as checkText.
 */
export function checkQueryArg(line: Buffer, argStart: number, end: number, smtputf8: boolean): ParseError | null {
  const p = end - SMTPUTF8_PARAM.length;
  if (!smtputf8 || p <= argStart || line.toString('latin1', p, end).toUpperCase() !== SMTPUTF8_PARAM) return checkText(line, argStart, end, true);
  for (let i = argStart; i < p; i++) {
    const b = line[i]!;
    if (b !== 0x20 && b < 0x80 && VCHAR[b] !== 1) return { error: 'bad character in argument' };
  }
  try {
    utf8Decoder.decode(line.subarray(argStart, p));
  } catch {
    return { error: 'argument is not valid UTF-8' };
  }
  return null;
}

/** BDAT chunk-size [SP "LAST"] (RFC 3030). */
export function parseBdat(line: Buffer, argStart: number, end: number): { size: number; last: boolean } | ParseError {
  let i = argStart;
  while (i < end && DIGIT[line[i]!] === 1) i++;
  const size = decimal(line.toString('latin1', argStart, i));
  if (size === null) return { error: 'bad chunk size' };
  if (i === end) return { size, last: false };
  if (end - i === 5 && line[i] === 0x20 && startsWithWordCI(line, i + 1, end, 'LAST')) return { size, last: true };
  return { error: 'bad BDAT argument' };
}

/** RFC 4648 base64 alphabet, for AUTH initial responses and continuation lines. */
export function isBase64(line: Buffer, start: number, end: number): boolean {
  if (start >= end) return true;
  if (end - start === 1 && line[start] === 0x3d) return true; // "=": an empty initial response
  for (let i = start; i < end; i++) {
    const b = line[i]!;
    const ok = (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a) || (b >= 0x30 && b <= 0x39) || b === 0x2b || b === 0x2f || b === 0x3d;
    if (!ok) return false;
  }
  return true;
}

/** AUTH mechanism [SP initial-response]: the mechanism must be one the server offered. */
export function parseAuth(line: Buffer, argStart: number, end: number, offered: ReadonlySet<string>): { mech: string } | ParseError {
  let i = argStart;
  while (i < end && line[i] !== 0x20) i++;
  const mech = line.toString('latin1', argStart, i).toUpperCase();
  if (mech.length === 0) return { error: 'missing mechanism' };
  if (!offered.has(mech)) return { error: 'mechanism not offered' };
  if (i < end && !isBase64(line, i + 1, end)) return { error: 'initial response is not base64' };
  return { mech };
}
