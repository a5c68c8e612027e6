import { DIGIT } from '../../core/bytes.js';
import { ipv4Bytes, ipv6Bytes } from '../../core/ip.js';

/**
 * Host-port grammars of FTP (RFC 959 PORT and 227, RFC 2428 EPRT and 229),
 * parsed with small loops over bytes, never with regexes (the address
 * literals themselves: core/ip.ts).
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
