import { DIGIT } from './bytes.js';

/**
 * IP address literals as bytes, parsed with small loops (no regexes): what
 * the FTP bounce check compares (CVE-1999-0017) and what a failed login's
 * IPv6 prefix is cut from (maxAuthFailures).
 */

/** A decimal number of 1..maxDigits digits in s[from, to), or -1. */
function decimal(s: Uint8Array, from: number, to: number, maxDigits: number): number {
  const n = to - from;
  if (n < 1 || n > maxDigits) return -1;
  let v = 0;
  for (let i = from; i < to; i++) {
    const b = s[i]!;
    if (DIGIT[b] !== 1) return -1;
    v = v * 10 + (b - 0x30);
  }
  return v;
}

/** The 16 (IPv6) or 4 (IPv4) bytes of an address literal; IPv4-mapped IPv6 is given as IPv4. Null when it is none. */
export function addressBytes(text: string): Uint8Array | null {
  const v4 = ipv4Bytes(text);
  if (v4) return v4;
  const v6 = ipv6Bytes(text);
  if (!v6) return null;
  // ::ffff:a.b.c.d is the IPv4 client a.b.c.d (the wrapper logs and compares it so).
  let mapped = v6[10] === 0xff && v6[11] === 0xff;
  for (let i = 0; i < 10 && mapped; i++) if (v6[i] !== 0) mapped = false;
  return mapped ? v6.subarray(12) : v6;
}

export function sameAddress(a: string, b: string): boolean {
  const x = addressBytes(a);
  const y = addressBytes(b);
  if (!x || !y || x.length !== y.length) return false;
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false;
  return true;
}

/** Dotted-quad IPv4, each part 0..255 in at most three digits. */
export function ipv4Bytes(text: string): Uint8Array | null {
  const b = Buffer.from(text, 'latin1');
  const out = new Uint8Array(4);
  let part = 0;
  let from = 0;
  for (let i = 0; i <= b.length; i++) {
    if (i === b.length || b[i] === 0x2e) {
      if (part > 3) return null;
      const v = decimal(b, from, i, 3);
      if (v < 0 || v > 255) return null;
      out[part++] = v;
      from = i + 1;
    }
  }
  return part === 4 ? out : null;
}

function hexGroup(s: string): number {
  if (s.length < 1 || s.length > 4) return -1;
  let v = 0;
  for (const c of s) {
    const d = parseInt(c, 16);
    if (Number.isNaN(d)) return -1;
    v = v * 16 + d;
  }
  return v;
}

/** An IPv6 literal (RFC 4291 section 2.2, with "::" and a trailing dotted quad). */
export function ipv6Bytes(text: string): Uint8Array | null {
  if (text.length < 2 || text.length > 45) return null;
  const dbl = text.indexOf('::');
  if (dbl >= 0 && text.indexOf('::', dbl + 1) >= 0) return null;
  const parseSide = (side: string): number[] | null => {
    if (side === '') return [];
    const groups: number[] = [];
    const parts = side.split(':');
    for (let i = 0; i < parts.length; i++) {
      const p = parts[i]!;
      if (i === parts.length - 1 && p.includes('.')) {
        const v4 = ipv4Bytes(p);
        if (!v4) return null;
        groups.push((v4[0]! << 8) | v4[1]!, (v4[2]! << 8) | v4[3]!);
      } else {
        const g = hexGroup(p);
        if (g < 0) return null;
        groups.push(g);
      }
    }
    return groups;
  };
  let groups: number[];
  if (dbl >= 0) {
    const left = parseSide(text.slice(0, dbl));
    const right = parseSide(text.slice(dbl + 2));
    if (!left || !right || left.length + right.length > 7) return null;
    groups = [...left, ...new Array<number>(8 - left.length - right.length).fill(0), ...right];
  } else {
    const all = parseSide(text);
    if (!all || all.length !== 8) return null;
    groups = all;
  }
  const out = new Uint8Array(16);
  groups.forEach((g, i) => {
    out[2 * i] = g >> 8;
    out[2 * i + 1] = g & 0xff;
  });
  return out;
}
