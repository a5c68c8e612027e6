/**
 * The APPEND arguments a server checks before it reads the message literal.
 *
 * Dovecot answers a bad flag (\Recent, \Bogus) or a malformed date-time with
 * a tagged BAD without reading the literal that follows, and skips nothing:
 * a non-synchronizing literal's bytes are then read as commands, unseen by
 * the wrapper (checked against Dovecot 2.3, cmd-append.c). So the wrapper
 * checks both as strictly as the server does, before any literal.
 */

/** System flags APPEND accepts (RFC 9051 2.3.2; \Recent may not be set by a client). */
const SYSTEM_FLAGS = new Set(['\\SEEN', '\\ANSWERED', '\\FLAGGED', '\\DELETED', '\\DRAFT']);
const MONTHS = new Set(['JAN', 'FEB', 'MAR', 'APR', 'MAY', 'JUN', 'JUL', 'AUG', 'SEP', 'OCT', 'NOV', 'DEC']);

const isDigit = (c: string | undefined): boolean => c !== undefined && c >= '0' && c <= '9';

/** A flag of an APPEND flag list (an atom's text): null when the server takes it. */
export function appendFlagError(flag: string): string | null {
  if (flag.startsWith('\\') && !SYSTEM_FLAGS.has(flag.toUpperCase())) return 'flag list: a system flag a server would refuse before the literal';
  return null;
}

/**
 * date-time (text with its quotes): DQUOTE (SP DIGIT / 2DIGIT) "-" month "-"
 * 4DIGIT SP hh:mm:ss SP ("+"/"-") 4DIGIT DQUOTE. null when well formed.
 */
export function appendDateError(text: string): string | null {
  const d = text;
  const ok =
    d.length === 28 &&
    d[0] === '"' &&
    (d[1] === ' ' || isDigit(d[1])) &&
    isDigit(d[2]) &&
    d[3] === '-' &&
    MONTHS.has(d.slice(4, 7).toUpperCase()) &&
    d[7] === '-' &&
    [8, 9, 10, 11, 13, 14, 16, 17, 19, 20, 23, 24, 25, 26].every((k) => isDigit(d[k])) &&
    d[12] === ' ' &&
    d[15] === ':' &&
    d[18] === ':' &&
    d[21] === ' ' &&
    (d[22] === '+' || d[22] === '-') &&
    d[27] === '"';
  return ok ? null : 'date-time a server would refuse before the literal';
}
