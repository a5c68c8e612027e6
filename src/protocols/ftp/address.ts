import { DIGIT } from '../../core/bytes.js';

/**
 * Host-port grammars of FTP (RFC 959 PORT and 227, RFC 2428 EPRT and 229),
 * parsed with small loops over bytes, never with regexes, and the
 * comparison of addresses that the bounce check (CVE-1999-0017) rests on.
 */

export interface HostPort {
  readonly host: string;
  readonly port: number;
  readonly family: 4 | 6;
}

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

/** PORT's argument h1,h2,h3,h4,p1,p2 in line[from, to); a string says what is wrong. */
export function parsePortArg(line: Uint8Array, from: number, to: number): HostPort | string {
  const nums: number[] = [];
  let start = from;
  for (let i = from; i <= to; i++) {
    if (i === to || line[i] === 0x2c) {
      const v = decimal(line, start, i, 3);
      if (v < 0 || v > 255) return 'expected h1,h2,h3,h4,p1,p2';
      nums.push(v);
      start = i + 1;
    }
  }
  if (nums.length !== 6) return 'expected h1,h2,h3,h4,p1,p2';
  const port = nums[4]! * 256 + nums[5]!;
  return { host: nums.slice(0, 4).join('.'), port, family: 4 };
}

/**
 * EPRT's argument <d><af><d><addr><d><port><d> (RFC 2428 section 2): d is
 * one byte in 33..126, af 1 (IPv4) or 2 (IPv6). 'af' when the family is
 * another (the reply is 522).
 */
export function parseEprtArg(line: Uint8Array, from: number, to: number): HostPort | 'af' | string {
  if (to - from < 7) return 'expected <d>af<d>addr<d>port<d>';
  const d = line[from]!;
  if (d < 33 || d > 126 || line[to - 1] !== d) return 'bad delimiter';
  const cuts: number[] = [];
  for (let i = from + 1; i < to - 1; i++) if (line[i] === d) cuts.push(i);
  if (cuts.length !== 2) return 'expected <d>af<d>addr<d>port<d>';
  const af = decimal(line, from + 1, cuts[0]!, 1);
  if (af !== 1 && af !== 2) return 'af';
  const host = Buffer.from(line.subarray(cuts[0]! + 1, cuts[1]!)).toString('latin1');
  const port = decimal(line, cuts[1]! + 1, to - 1, 5);
  if (port < 1 || port > 65535) return 'bad port';
  if (af === 1 ? !ipv4Bytes(host) : !ipv6Bytes(host) || host.includes('.')) return 'bad address';
  return { host: af === 1 ? host : host.toLowerCase(), port, family: af === 1 ? 4 : 6 };
}

/** Where a reply names its address: text[from, to) is replaced by the wrapper's. */
export interface ReplyAddress {
  readonly host: string | null;
  readonly port: number;
  readonly from: number;
  readonly to: number;
}

/** The h1,h2,h3,h4,p1,p2 of a 227 reply's text (RFC 959 section 4.1.2: anywhere in it; RFC 1123 4.1.2.6). */
export function parse227(text: Buffer): ReplyAddress | null {
  for (let i = 4; i < text.length; i++) {
    if (DIGIT[text[i]!] !== 1 || DIGIT[text[i - 1]!] === 1) continue;
    let j = i;
    while (j < text.length && (DIGIT[text[j]!] === 1 || text[j] === 0x2c)) j++;
    const hp = parsePortArg(text, i, j);
    if (typeof hp !== 'string') return { host: hp.host, port: hp.port, from: i, to: j };
    i = j;
  }
  return null;
}

/** The port of a 229 reply: "(<d><d><d>port<d>)" (RFC 2428 section 3); from/to bound the port's digits. */
export function parse229(text: Buffer): ReplyAddress | null {
  const open = text.indexOf(0x28);
  if (open < 0) return null;
  const close = text.indexOf(0x29, open);
  if (close < 0 || close - open < 6) return null;
  const d = text[open + 1]!;
  if (d < 33 || d > 126 || text[open + 2] !== d || text[open + 3] !== d || text[close - 1] !== d) return null;
  const port = decimal(text, open + 4, close - 1, 5);
  return port >= 1 && port <= 65535 ? { host: null, port, from: open + 4, to: close - 1 } : null;
}

/**
 * The server's reply with its address replaced by the wrapper's, every
 * other byte as the server wrote it (its words, its line endings, a
 * multi-line form): a 227's h1,h2,h3,h4,p1,p2, a 229's port.
 */
export function rewriteReply(text: Buffer, at: ReplyAddress, host: string | null, port: number): Buffer {
  const addr = host === null ? String(port) : `${host.split('.').join(',')},${port >> 8},${port & 0xff}`;
  return Buffer.concat([text.subarray(0, at.from), Buffer.from(addr, 'latin1'), text.subarray(at.to)]);
}

/** The wrapper's own PORT (IPv4) or EPRT toward the server, naming its listener. */
export function activeCommand(host: string, port: number, eprt: boolean): Buffer {
  const v4 = ipv4Bytes(host);
  if (v4 && !eprt) return Buffer.from(`PORT ${[...v4].join(',')},${port >> 8},${port & 0xff}\r\n`);
  return Buffer.from(`EPRT |${v4 ? 1 : 2}|${host}|${port}|\r\n`);
}
