import { LOG_UNSAFE } from '../core/bytes.js';

const HEX = '0123456789abcdef';

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
  const sp = line.indexOf(0x20);
  const end = sp >= 0 && sp < contentEnd ? sp : 0;
  return `${escapeForLog(line, 0, end)} <hidden>`;
}
