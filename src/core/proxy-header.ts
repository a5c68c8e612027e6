import { isIPv4, isIPv6 } from 'node:net';

/**
 * The PROXY protocol (HAProxy's proxy-protocol.txt), sans I/O: v1 (a text
 * line) and v2 (a binary header), parsed from the bytes a trusted peer sent
 * first, and encoded toward the server. parseProxyHeader() looks at what has
 * arrived so far and says: need more, a header and how many bytes it took,
 * or an error with a stable reason. The answer for a prefix never
 * contradicts the answer for the whole (an error stays an error, a header
 * stays the same header), so any chunking of the input gives one result.
 */

/** The v1 line's limit from the spec (CRLF included): a peer that sends more is not speaking PROXY v1. */
export const PROXY_V1_MAX_LINE = 107;
/**
 * Most bytes of a v2 header (16 fixed + addresses + TLVs) we accept. The
 * length field allows 65551; HAProxy's own headers with its TLVs stay far
 * below this. Stops a peer from making us buffer 64 KiB before the session.
 */
export const PROXY_V2_MAX = 1536;
/** The longest prefix needed to tell a header from protocol bytes, and the most we ever buffer. */
export const PROXY_HEADER_MAX = PROXY_V2_MAX;
/** Most bytes of the AUTHORITY TLV (the SNI the client sent) kept for the log. */
const MAX_AUTHORITY = 255;

const V1_PREFIX = Buffer.from('PROXY ', 'latin1');
export const V2_SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
const V2_FIXED = 16;
const PP2_TYPE_AUTHORITY = 0x02;

/** A connection's two ends as a PROXY header carries them. */
export interface ProxyEndpoints {
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly localAddress: string;
  readonly localPort: number;
}

export interface ProxyHeader {
  readonly version: 1 | 2;
  /**
   * The proxied connection's ends; null for v2 LOCAL, v1 UNKNOWN, and v2
   * UNSPEC or AF_UNIX addresses: the receiver then uses the peer's own.
   */
  readonly endpoints: ProxyEndpoints | null;
  /** v2 PP2_TYPE_AUTHORITY (the host name the client asked for), latin1, if sent. */
  readonly authority: string | null;
}

export type ProxyErrorReason =
  | 'not_proxy'
  | 'v1_too_long'
  | 'v1_syntax'
  | 'v1_bad_address'
  | 'v1_bad_port'
  | 'v2_bad_version'
  | 'v2_bad_command'
  | 'v2_bad_family'
  | 'v2_too_long'
  | 'v2_short_addresses'
  | 'v2_bad_tlv';

export type ProxyParse =
  | { readonly kind: 'more' }
  | { readonly kind: 'header'; readonly header: ProxyHeader; readonly consumed: number }
  | { readonly kind: 'error'; readonly reason: ProxyErrorReason };

const MORE: ProxyParse = Object.freeze({ kind: 'more' });
const fail = (reason: ProxyErrorReason): ProxyParse => ({ kind: 'error', reason });

/** True while buf may still become sig (buf is a prefix of it), or starts with all of it. */
function matchesPrefix(buf: Buffer, sig: Buffer): boolean {
  const n = Math.min(buf.length, sig.length);
  return buf.subarray(0, n).equals(sig.subarray(0, n));
}

/**
 * What the first bytes of a connection are. Only the first PROXY_HEADER_MAX
 * bytes are ever looked at: a caller may stop reading there.
 */
export function parseProxyHeader(buf: Buffer): ProxyParse {
  if (buf.length === 0) return MORE;
  if (buf[0] === V1_PREFIX[0]) {
    if (!matchesPrefix(buf, V1_PREFIX)) return fail('not_proxy');
    return parseV1(buf);
  }
  if (buf[0] === V2_SIGNATURE[0]) {
    if (!matchesPrefix(buf, V2_SIGNATURE)) return fail('not_proxy');
    return parseV2(buf);
  }
  return fail('not_proxy');
}

/** Strict decimal port: 0..65535, no sign, no leading zero. */
function port(s: string): number | null {
  if (!/^(0|[1-9][0-9]{0,4})$/.test(s)) return null;
  const n = Number(s);
  return n <= 65535 ? n : null;
}

function parseV1(buf: Buffer): ProxyParse {
  const window = buf.subarray(0, PROXY_V1_MAX_LINE);
  const lf = window.indexOf(0x0a);
  if (lf < 0) return window.length >= PROXY_V1_MAX_LINE ? fail('v1_too_long') : MORE;
  if (lf === 0 || window[lf - 1] !== 0x0d) return fail('v1_syntax');
  const consumed = lf + 1;
  const line = window.subarray(V1_PREFIX.length, lf - 1).toString('latin1');
  const header = (endpoints: ProxyEndpoints | null): ProxyParse => ({ kind: 'header', header: { version: 1, endpoints, authority: null }, consumed });
  // "UNKNOWN" may be followed by anything up to the CRLF; the receiver ignores it.
  if (line === 'UNKNOWN' || line.startsWith('UNKNOWN ')) return header(null);
  const f = line.split(' ');
  if (f.length !== 5 || (f[0] !== 'TCP4' && f[0] !== 'TCP6')) return fail('v1_syntax');
  const isFamily = f[0] === 'TCP4' ? isIPv4 : isIPv6;
  // A scope id (fe80::1%eth0) is no address a header can carry.
  if (!isFamily(f[1]!) || !isFamily(f[2]!) || f[1]!.includes('%') || f[2]!.includes('%')) return fail('v1_bad_address');
  const sport = port(f[3]!);
  const dport = port(f[4]!);
  if (sport === null || dport === null) return fail('v1_bad_port');
  return header({ remoteAddress: f[1]!.toLowerCase(), remotePort: sport, localAddress: f[2]!.toLowerCase(), localPort: dport });
}

function parseV2(buf: Buffer): ProxyParse {
  if (buf.length < V2_SIGNATURE.length + 1) return MORE;
  const verCmd = buf[12]!;
  if (verCmd >> 4 !== 2) return fail('v2_bad_version');
  const command = verCmd & 0x0f;
  if (command > 1) return fail('v2_bad_command');
  if (buf.length < 14) return MORE;
  const fam = buf[13]!;
  const af = fam >> 4;
  const transport = fam & 0x0f;
  // A LOCAL header's family is ignored (the spec); a PROXY header must name a known one.
  // A datagram (UDP) family cannot describe the stream we are reading.
  if (command === 1 && (af > 3 || transport > 2 || (af !== 0 && transport !== 1))) return fail('v2_bad_family');
  if (buf.length < V2_FIXED) return MORE;
  const len = buf.readUInt16BE(14);
  const total = V2_FIXED + len;
  if (total > PROXY_V2_MAX) return fail('v2_too_long');
  if (buf.length < total) return MORE;
  const body = buf.subarray(V2_FIXED, total);
  let endpoints: ProxyEndpoints | null = null;
  let used = 0;
  if (command === 1 && af === 1) {
    if (len < 12) return fail('v2_short_addresses');
    endpoints = { remoteAddress: ipv4(body, 0), localAddress: ipv4(body, 4), remotePort: body.readUInt16BE(8), localPort: body.readUInt16BE(10) };
    used = 12;
  } else if (command === 1 && af === 2) {
    if (len < 36) return fail('v2_short_addresses');
    endpoints = { remoteAddress: ipv6(body, 0), localAddress: ipv6(body, 16), remotePort: body.readUInt16BE(32), localPort: body.readUInt16BE(34) };
    used = 36;
  } else if (command === 1 && af === 3) {
    // AF_UNIX: paths, no address a log or relayIpList can use: treated as LOCAL.
    if (len < 216) return fail('v2_short_addresses');
    used = 216;
  }
  // LOCAL and UNSPEC: the whole body is skipped, TLVs or not.
  const authority = command === 1 && af !== 0 ? readTlvs(body.subarray(used)) : null;
  if (authority === false) return fail('v2_bad_tlv');
  return { kind: 'header', header: { version: 2, endpoints, authority }, consumed: total };
}

/** Walks the TLVs (bounded by the header's size); false when one runs past the end. */
function readTlvs(tlvs: Buffer): string | null | false {
  let authority: string | null = null;
  let pos = 0;
  while (pos < tlvs.length) {
    if (tlvs.length - pos < 3) return false;
    const type = tlvs[pos]!;
    const len = tlvs.readUInt16BE(pos + 1);
    const end = pos + 3 + len;
    if (end > tlvs.length) return false;
    if (type === PP2_TYPE_AUTHORITY) authority = tlvs.subarray(pos + 3, Math.min(end, pos + 3 + MAX_AUTHORITY)).toString('latin1');
    pos = end;
  }
  return authority;
}

function ipv4(b: Buffer, at: number): string {
  return `${b[at]}.${b[at + 1]}.${b[at + 2]}.${b[at + 3]}`;
}

/** Full form, lower case, then compressed like Node shows addresses (longest zero run). */
function ipv6(b: Buffer, at: number): string {
  const groups: number[] = [];
  for (let i = 0; i < 8; i++) groups.push(b.readUInt16BE(at + 2 * i));
  // A v4-mapped address is a v4 client behind an IPv6 proxy: shown as a.b.c.d, as normaliseAddress does.
  if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff) return ipv4(b, at + 12);
  let best = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen && j - i > 1) [best, bestLen] = [i, j - i];
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (best < 0) return hex.join(':');
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`;
}

// ---- toward the server -----------------------------------------------

/** 4 or 6 for a header; an IPv4 end and an IPv6 end go as IPv6 (v4-mapped). */
function familyOf(e: ProxyEndpoints): 4 | 6 | null {
  const a = isIPv4(e.remoteAddress) ? 4 : isIPv6(e.remoteAddress) ? 6 : 0;
  const b = isIPv4(e.localAddress) ? 4 : isIPv6(e.localAddress) ? 6 : 0;
  if (a === 0 || b === 0 || e.remoteAddress.includes('%') || e.localAddress.includes('%')) return null;
  return a === 4 && b === 4 ? 4 : 6;
}

/** True when a header can carry these ends (both IP addresses, no zone). */
export function proxyEncodable(e: ProxyEndpoints): boolean {
  return familyOf(e) !== null;
}

const mapped = (addr: string): string => (isIPv4(addr) ? `::ffff:${addr}` : addr);

/**
 * The header for the server. No endpoints (a client on a pipe), or ends no
 * header can carry: v1 UNKNOWN / v2 LOCAL, so the server uses our own address.
 */
export function encodeProxyHeader(version: 1 | 2, e: ProxyEndpoints | null | undefined): Buffer {
  const family = e ? familyOf(e) : null;
  if (version === 1) {
    if (!e || family === null) return Buffer.from('PROXY UNKNOWN\r\n', 'latin1');
    const [src, dst] = family === 4 ? [e.remoteAddress, e.localAddress] : [mapped(e.remoteAddress), mapped(e.localAddress)];
    return Buffer.from(`PROXY TCP${family} ${src} ${dst} ${e.remotePort} ${e.localPort}\r\n`, 'latin1');
  }
  if (!e || family === null) return Buffer.concat([V2_SIGNATURE, Buffer.from([0x20, 0x00, 0x00, 0x00])]);
  const addrLen = family === 4 ? 12 : 36;
  const out = Buffer.alloc(V2_FIXED + addrLen);
  V2_SIGNATURE.copy(out, 0);
  out[12] = 0x21; // version 2, PROXY
  out[13] = family === 4 ? 0x11 : 0x21; // AF_INET / AF_INET6, STREAM
  out.writeUInt16BE(addrLen, 14);
  if (family === 4) {
    writeV4(out, 16, e.remoteAddress);
    writeV4(out, 20, e.localAddress);
    out.writeUInt16BE(e.remotePort, 24);
    out.writeUInt16BE(e.localPort, 26);
  } else {
    writeV6(out, 16, mapped(e.remoteAddress));
    writeV6(out, 32, mapped(e.localAddress));
    out.writeUInt16BE(e.remotePort, 48);
    out.writeUInt16BE(e.localPort, 50);
  }
  return out;
}

function writeV4(out: Buffer, at: number, addr: string): void {
  addr.split('.').forEach((p, i) => (out[at + i] = Number(p)));
}

/** Expands an IPv6 text address (isIPv6-valid, no scope id) into 16 bytes. */
function writeV6(out: Buffer, at: number, addr: string): void {
  // A trailing dotted quad (::ffff:1.2.3.4) is the last two groups.
  const text = addr.replace(/(\d+)\.(\d+)\.(\d+)\.(\d+)$/, (_m, a: string, b: string, c: string, d: string) =>
    `${((Number(a) << 8) | Number(b)).toString(16)}:${((Number(c) << 8) | Number(d)).toString(16)}`,
  );
  const parse = (s: string) => (s === '' ? [] : s.split(':').map((g) => parseInt(g, 16)));
  const cut = text.indexOf('::');
  const head = parse(cut < 0 ? text : text.slice(0, cut));
  const tail = cut < 0 ? [] : parse(text.slice(cut + 2));
  const groups = [...head, ...new Array<number>(8 - head.length - tail.length).fill(0), ...tail];
  groups.forEach((g, i) => out.writeUInt16BE(g, at + 2 * i));
}
