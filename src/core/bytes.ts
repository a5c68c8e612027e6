/**
 * Byte-class tables. Fixed protocol grammar is checked with these lookups and
 * small loops, never with regular expressions on attacker input.
 */
export const CR = 0x0d;
export const LF = 0x0a;
export const NUL = 0x00;
export const SP = 0x20;

function table(pred: (b: number) => boolean): Uint8Array {
  const t = new Uint8Array(256);
  for (let b = 0; b < 256; b++) t[b] = pred(b) ? 1 : 0;
  return t;
}

/** Bytes that need escaping before they reach a log line. */
export const LOG_UNSAFE = table((b) => b < 0x20 || b === 0x7f || b === 0x5c || b >= 0x80);

/** ASCII letters and digits. */
export const ALNUM = table((b) => (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a));

/** ASCII digits. */
export const DIGIT = table((b) => b >= 0x30 && b <= 0x39);

/** Visible ASCII, no space. */
export const VCHAR = table((b) => b > 0x20 && b < 0x7f);

/**
 * Finds the first NUL or bare CR (a CR that is not the line's own CRLF ending)
 * in bytes[start, end). Returns the offending bytes' indexes, -1 for none.
 */
export function findNulOrBareCr(bytes: Uint8Array, start: number, end: number): { nul: number; cr: number } {
  // The native search (memchr) is some ten times faster than a loop in JS on
  // a line of 80 bytes, but it runs to the end of the buffer: used when that
  // end is the line's own (a framed line: its ending follows end), else the loop.
  if (bytes.length - end <= 2) {
    const nul = bytes.indexOf(NUL, start);
    const cr = bytes.indexOf(CR, start);
    return { nul: nul >= end ? -1 : nul, cr: cr >= end ? -1 : cr };
  }
  let nul = -1;
  let cr = -1;
  for (let i = start; i < end; i++) {
    const b = bytes[i];
    if (b === NUL) {
      if (nul < 0) nul = i;
    } else if (b === CR) {
      if (cr < 0) cr = i;
    }
  }
  return { nul, cr };
}

/** True when bytes[start, end) contains the byte. Uses the native search. */
export function hasByte(bytes: Buffer, byte: number, start: number, end: number): boolean {
  const i = bytes.indexOf(byte, start);
  return i >= 0 && i < end;
}

/** Compares bytes[start, start+word.length) to an upper-case ASCII word, case-insensitively. */
export function startsWithWordCI(bytes: Uint8Array, start: number, end: number, word: string): boolean {
  if (end - start < word.length) return false;
  for (let i = 0; i < word.length; i++) {
    const b = bytes[start + i]!;
    const up = b >= 0x61 && b <= 0x7a ? b - 0x20 : b;
    if (up !== word.charCodeAt(i)) return false;
  }
  return true;
}

/**
 * Reads the first word of a line (up to SP or the end), upper-cased, as a
 * string. Returns '' when the word is longer than maxLen or holds a byte
 * outside VCHAR: such a word can never be a verb in a command table.
 */
export function verbOf(bytes: Uint8Array, start: number, end: number, maxLen = 16): string {
  let i = start;
  let s = '';
  while (i < end && bytes[i] !== SP) {
    const b = bytes[i]!;
    if (VCHAR[b] !== 1 || i - start >= maxLen) return '';
    s += String.fromCharCode(b >= 0x61 && b <= 0x7a ? b - 0x20 : b);
    i++;
  }
  return s;
}

/**
 * True when bytes[start, end), after leading spaces and tabs, begins with
 * one of the upper-case words, compared without regard to case. Used to tell
 * a credential line (AUTH, PASS, LOGIN) whatever follows the word: a check
 * that errs towards hiding.
 */
export function beginsWithAnyCI(bytes: Uint8Array, start: number, end: number, words: readonly string[]): boolean {
  let i = start;
  while (i < end && (bytes[i] === SP || bytes[i] === 0x09)) i++;
  for (const w of words) {
    if (end - i < w.length) continue;
    let k = 0;
    while (k < w.length) {
      const b = bytes[i + k]!;
      if ((b >= 0x61 && b <= 0x7a ? b - 0x20 : b) !== w.charCodeAt(k)) break;
      k++;
    }
    if (k === w.length) return true;
  }
  return false;
}
