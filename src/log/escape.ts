import { LOG_UNSAFE } from '../core/bytes.js';

const HEX = '0123456789abcdef';

/** Bytes of a verb or an IMAP tag as the log may show it before <hidden>. */
const WORD_BYTE = (() => {
  const t = new Uint8Array(256);
  for (let b = 0; b < 256; b++) t[b] = (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a) || b === 0x2e || b === 0x2d || b === 0x5f ? 1 : 0;
  return t;
})();


/**
 * Makes client text safe for a log line: CR, LF, NUL, other control bytes,
 * backslash and non-ASCII bytes become escapes, and the result is cut to
 * `max` input bytes (a log line must not be a vehicle for log injection or a
 * flood). Credentials are hidden before this is called (see redact()).
 */
export function escapeForLog(bytes: Uint8Array, start = 0, end = bytes.length, max = 200): string {
  const stop = Math.min(end, start + max);
  let s = '';
  for (let i = start; i < stop; i++) {
    const b = bytes[i]!;
    if (LOG_UNSAFE[b] === 0) {
      s += String.fromCharCode(b);
      continue;
    }
    switch (b) {
      case 0x0d:
        s += '\\r';
        break;
      case 0x0a:
        s += '\\n';
        break;
      case 0x5c:
        s += '\\\\';
        break;
      case 0x09:
        s += '\\t';
        break;
      default:
        s += '\\x' + HEX[b >> 4] + HEX[b & 15];
    }
  }
  if (end > stop) s += `...(+${end - stop} bytes)`;
  return s;
}

/** A client line for the log: escaped, or only its first word when it carries credentials. */
export function shownLine(line: Buffer, contentEnd: number, secret: boolean | 'line' | undefined): string {
  if (!secret) return escapeForLog(line, 0, contentEnd);
  if (secret === 'line') return '<hidden>';
  // The first word is a verb or a tag: letters, digits and a few marks. It ends at the first other
  // byte (a TAB after PASS must not let the password through); a line with no word shows none.
  let end = 0;
  while (end < contentEnd && WORD_BYTE[line[end]!] === 1) end++;
  return `${escapeForLog(line, 0, end)} <hidden>`;
}
