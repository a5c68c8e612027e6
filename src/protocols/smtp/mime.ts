/**
 * A decoded view of one (unfolded) MIME header, for blockBodyList only: a
 * mail reader shows a file name written as RFC 2047 encoded words
 * (name="=?UTF-8?B?eC5leGU=?=") or RFC 2231 parameters (name*=utf-8''x%2Eexe,
 * name*0="x."; name*1="exe") as "x.exe", so a rule written for the plain
 * form must see that form too. Small loops over the header text, no regex;
 * the work is linear in the header's length (at most MAX_UNFOLDED).
 *
 * Bytes stay latin1 characters, as the rules see every other line.
 */

const B64 = new Int16Array(256).fill(-1);
for (let i = 0; i < 64; i++) B64['ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'.charCodeAt(i)] = i;

function hexVal(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x41 && c <= 0x46) return c - 0x37;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  return -1;
}

function base64(s: string): string {
  let out = '';
  let acc = 0;
  let bits = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    const v = c <= 0xff ? B64[c]! : -1;
    if (v < 0) continue; // "=" padding and stray bytes
    acc = ((acc << 6) | v) & 0xffffff;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += String.fromCharCode((acc >> bits) & 0xff);
    }
  }
  return out;
}

/** %XX (RFC 2231) or =XX (RFC 2047 Q, where "_" is a space) escapes decoded. */
function unescape(s: string, mark: number, underscore: boolean): string {
  let out = '';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === mark && i + 2 < s.length && hexVal(s.charCodeAt(i + 1)) >= 0 && hexVal(s.charCodeAt(i + 2)) >= 0) {
      out += String.fromCharCode(hexVal(s.charCodeAt(i + 1)) * 16 + hexVal(s.charCodeAt(i + 2)));
      i += 2;
    } else out += underscore && c === 0x5f ? ' ' : s[i];
  }
  return out;
}

/** RFC 2047 encoded words decoded; white space between two of them dropped (§6.2). */
function encodedWords(text: string): string | null {
  let out = '';
  let pos = 0;
  let found = false;
  let lastEnd = -1;
  for (;;) {
    const start = text.indexOf('=?', pos);
    if (start < 0) break;
    const q1 = text.indexOf('?', start + 2);
    const q2 = q1 < 0 ? -1 : text.indexOf('?', q1 + 1);
    const end = q2 < 0 ? -1 : text.indexOf('?=', q2 + 1);
    if (q1 < 0 || q2 !== q1 + 2 || end < 0) {
      out += text.slice(pos, start + 2);
      pos = start + 2;
      continue;
    }
    const enc = text.charCodeAt(q1 + 1) | 0x20;
    if (enc !== 0x62 && enc !== 0x71) {
      out += text.slice(pos, start + 2);
      pos = start + 2;
      continue;
    }
    const between = text.slice(pos, start);
    if (!(lastEnd === pos && between.trim().length === 0)) out += between;
    const data = text.slice(q2 + 1, end);
    out += enc === 0x62 ? base64(data) : unescape(data, 0x3d, true);
    found = true;
    pos = end + 2;
    lastEnd = pos;
  }
  return found ? out + text.slice(pos) : null;
}

/** Most RFC 2231 sections joined for one parameter. */
const MAX_SECTIONS = 100;

/** RFC 2231 parameters (name*=, name*N=, name*N*=) joined and decoded, as `; name="value"` to append. */
function rfc2231(text: string): string | null {
  if (text.indexOf('*') < 0) return null;
  const parts = new Map<string, string[]>();
  let i = text.indexOf(';');
  while (i >= 0 && i < text.length) {
    i++;
    while (i < text.length && (text[i] === ' ' || text[i] === '\t')) i++;
    const eq = text.indexOf('=', i);
    if (eq < 0) break;
    const semi = text.indexOf(';', i);
    if (semi >= 0 && semi < eq) {
      // A parameter without "=": go on with the next one.
      i = semi;
      continue;
    }
    const attr = text.slice(i, eq).trim().toLowerCase();
    let value: string;
    let next: number;
    if (text[eq + 1] === '"') {
      let j = eq + 2;
      value = '';
      while (j < text.length && text[j] !== '"') {
        if (text[j] === '\\' && j + 1 < text.length) j++;
        value += text[j];
        j++;
      }
      next = text.indexOf(';', j);
    } else {
      next = text.indexOf(';', eq + 1);
      value = text.slice(eq + 1, next < 0 ? text.length : next).trim();
    }
    const star = attr.indexOf('*');
    if (star > 0) {
      const name = attr.slice(0, star);
      const extended = attr.endsWith('*');
      const sectionText = attr.slice(star + 1, extended ? attr.length - 1 : attr.length);
      const section = sectionText.length === 0 ? 0 : Number(sectionText);
      if (Number.isInteger(section) && section >= 0 && section < MAX_SECTIONS) {
        if (extended && section === 0) {
          // charset'language'value
          const a = value.indexOf("'");
          const b = a < 0 ? -1 : value.indexOf("'", a + 1);
          if (b >= 0) value = value.slice(b + 1);
        }
        const list = parts.get(name) ?? [];
        list[section] = extended ? unescape(value, 0x25, false) : value;
        parts.set(name, list);
      }
    }
    i = next;
  }
  if (parts.size === 0) return null;
  let out = '';
  for (const [name, list] of parts) out += `; ${name}="${list.join('')}"`;
  return out;
}

/** The header as a mail reader would show it, or null when it holds nothing encoded. */
export function decodedHeader(text: string): string | null {
  const words = encodedWords(text);
  const params = rfc2231(words ?? text);
  if (words === null && params === null) return null;
  return (words ?? text) + (params ?? '');
}
