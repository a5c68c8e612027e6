/**
 * The arguments a server checks before it reads an APPEND message literal.
 *
 * Dovecot answers a bad flag (\Recent, \Bogus) or a malformed date-time with
 * a tagged BAD without reading the literal that follows; a non-synchronizing
 * literal's bytes are then read as commands, unseen by the wrapper (checked
 * against Dovecot 2.3). So an APPEND line that ends with {n+} may carry only
 * what the wrapper has checked as strictly: [mailbox] [flag-list] [date-time].
 */

const SP = 0x20;
const DQUOTE = 0x22;
const LPAREN = 0x28;
const RPAREN = 0x29;
const BACKSLASH = 0x5c;

/** System flags APPEND accepts (RFC 9051 2.3.2; \Recent may not be set by a client). */
const SYSTEM_FLAGS = new Set(['\\SEEN', '\\ANSWERED', '\\FLAGGED', '\\DELETED', '\\DRAFT']);
const MONTHS = new Set(['JAN', 'FEB', 'MAR', 'APR', 'MAY', 'JUN', 'JUL', 'AUG', 'SEP', 'OCT', 'NOV', 'DEC']);

const isDigit = (b: number | undefined): boolean => b !== undefined && b >= 0x30 && b <= 0x39;

function upper(line: Uint8Array, from: number, to: number): string {
  let s = '';
  for (let i = from; i < to; i++) {
    const b = line[i]!;
    s += String.fromCharCode(b >= 0x61 && b <= 0x7a ? b - 0x20 : b);
  }
  return s;
}

/** flag-list: "(" [flag *(SP flag)] ")", flags system or keyword atoms (no nesting). Returns its end or -1. */
function flagListEnd(line: Uint8Array, i: number, end: number): number {
  i++;
  while (i < end && line[i] !== RPAREN) {
    const from = i;
    while (i < end && line[i] !== SP && line[i] !== RPAREN) {
      if (line[i] === LPAREN || line[i] === DQUOTE) return -1;
      i++;
    }
    if (i === from) return -1;
    if (line[from] === BACKSLASH && !SYSTEM_FLAGS.has(upper(line, from, i))) return -1;
    if (line[i] === SP) {
      i++;
      if (line[i] === RPAREN) return -1;
    }
  }
  return i < end ? i + 1 : -1;
}

/** date-time: DQUOTE (SP DIGIT / 2DIGIT) "-" month "-" 4DIGIT SP hh:mm:ss SP ("+"/"-") 4DIGIT DQUOTE. Returns its end or -1. */
function dateTimeEnd(line: Uint8Array, i: number, end: number): number {
  const d = i + 1;
  if (end - d < 27) return -1;
  const ok =
    (line[d] === SP || isDigit(line[d])) &&
    isDigit(line[d + 1]) &&
    line[d + 2] === 0x2d &&
    MONTHS.has(upper(line, d + 3, d + 6)) &&
    line[d + 6] === 0x2d &&
    [7, 8, 9, 10, 12, 13, 15, 16, 18, 19, 22, 23, 24, 25].every((k) => isDigit(line[d + k])) &&
    line[d + 11] === SP &&
    line[d + 14] === 0x3a &&
    line[d + 17] === 0x3a &&
    line[d + 20] === SP &&
    (line[d + 21] === 0x2b || line[d + 21] === 0x2d) &&
    line[d + 26] === DQUOTE;
  return ok ? d + 27 : -1;
}

/** The end of the mailbox argument at i (atom or quoted string), or -1. */
function mailboxEnd(line: Uint8Array, i: number, end: number): number {
  if (line[i] !== DQUOTE) {
    while (i < end && line[i] !== SP) i++;
    return i;
  }
  for (i++; i < end; i++) {
    if (line[i] === BACKSLASH) i++;
    else if (line[i] === DQUOTE) return i + 1;
  }
  return -1;
}

/**
 * Checks what precedes a non-synchronizing literal on an APPEND line.
 * line[start, litStart) is the line's argument text before the literal's
 * '{' (or '~'); withMailbox: the line holds the command's first argument.
 * Returns why it is refused, or null.
 */
export function appendNonSyncError(line: Uint8Array, start: number, litStart: number, withMailbox: boolean): string | null {
  let i = start;
  if (i < litStart && line[i] === SP) i++;
  if (withMailbox && i < litStart) {
    i = mailboxEnd(line, i, litStart);
    if (i < 0) return 'malformed mailbox';
    i++;
  }
  let stage = 0; // 0: flags or date may follow, 1: only a date, 2: nothing
  while (i < litStart) {
    let next: number;
    if (line[i] === LPAREN && stage === 0) {
      next = flagListEnd(line, i, litStart);
      if (next < 0) return 'flag list a server would refuse before its {n+} literal';
      stage = 1;
    } else if (line[i] === DQUOTE && stage < 2) {
      next = dateTimeEnd(line, i, litStart);
      if (next < 0) return 'date-time a server would refuse before its {n+} literal';
      stage = 2;
    } else {
      return 'only flags and a date-time may precede an APPEND {n+} literal';
    }
    i = next + 1;
  }
  return null;
}

/** Where the literal that ends a line starts: its '{', or the '~' of a literal8. */
export function literalStart(line: Buffer, contentEnd: number): number {
  const open = line.lastIndexOf(0x7b, contentEnd - 1);
  return open > 0 && line[open - 1] === 0x7e ? open - 1 : open;
}
