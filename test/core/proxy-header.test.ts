import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  encodeProxyHeader,
  parseProxyHeader,
  PROXY_HEADER_MAX,
  PROXY_V1_MAX_LINE,
  V2_SIGNATURE,
  type ProxyEndpoints,
  type ProxyParse,
} from '../../src/core/proxy-header.js';

const b = (s: string) => Buffer.from(s, 'latin1');

/** A v2 header from its parts (lengths computed). */
function v2(verCmd: number, fam: number, body: Buffer): Buffer {
  const len = Buffer.alloc(2);
  len.writeUInt16BE(body.length);
  return Buffer.concat([V2_SIGNATURE, Buffer.from([verCmd, fam]), len, body]);
}
const tlv = (type: number, value: Buffer) => {
  const h = Buffer.from([type, 0, 0]);
  h.writeUInt16BE(value.length, 1);
  return Buffer.concat([h, value]);
};
const v4body = Buffer.from([192, 0, 2, 7, 10, 0, 0, 1, 0xd4, 0x31, 0, 25]); // 192.0.2.7:54321 → 10.0.0.1:25
const v6body = Buffer.concat([Buffer.from('20010db8000000000000000000000001', 'hex'), Buffer.from('00000000000000000000ffff0a000001', 'hex'), Buffer.from([0, 80, 1, 187])]);

const ep = (remoteAddress: string, remotePort: number, localAddress: string, localPort: number): ProxyEndpoints => ({ remoteAddress, remotePort, localAddress, localPort });

/** Inputs with trailing session bytes, and what the whole input parses to. */
const cases: { name: string; input: Buffer; want: ProxyParse }[] = [
  { name: 'v1 TCP4', input: b('PROXY TCP4 192.0.2.7 10.0.0.1 54321 25\r\nEHLO x\r\n'), want: { kind: 'header', consumed: 40, header: { version: 1, endpoints: ep('192.0.2.7', 54321, '10.0.0.1', 25), authority: null } } },
  { name: 'v1 TCP6', input: b('PROXY TCP6 2001:DB8::1 ::1 1 65535\r\nA'), want: { kind: 'header', consumed: 36, header: { version: 1, endpoints: ep('2001:db8::1', 1, '::1', 65535), authority: null } } },
  { name: 'v1 UNKNOWN with junk', input: b('PROXY UNKNOWN ffff::1 ::1 1 2\r\nx'), want: { kind: 'header', consumed: 31, header: { version: 1, endpoints: null, authority: null } } },
  { name: 'v1 UNKNOWN bare', input: b('PROXY UNKNOWN\r\n'), want: { kind: 'header', consumed: 15, header: { version: 1, endpoints: null, authority: null } } },
  { name: 'v1 LF without CR', input: b('PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n'), want: { kind: 'error', reason: 'v1_syntax' } },
  { name: 'v1 two spaces', input: b('PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n'), want: { kind: 'error', reason: 'v1_syntax' } },
  { name: 'v1 family mismatch', input: b('PROXY TCP4 ::1 5.6.7.8 1 2\r\n'), want: { kind: 'error', reason: 'v1_bad_address' } },
  { name: 'v1 leading-zero octet', input: b('PROXY TCP4 01.2.3.4 5.6.7.8 1 2\r\n'), want: { kind: 'error', reason: 'v1_bad_address' } },
  { name: 'v1 scope id', input: b('PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n'), want: { kind: 'error', reason: 'v1_bad_address' } },
  { name: 'v1 port too big', input: b('PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n'), want: { kind: 'error', reason: 'v1_bad_port' } },
  { name: 'v1 port leading zero', input: b('PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n'), want: { kind: 'error', reason: 'v1_bad_port' } },
  { name: 'v1 line of 107 bytes is fine', input: b(`PROXY UNKNOWN ${'x'.repeat(PROXY_V1_MAX_LINE - 16)}\r\n`), want: { kind: 'header', consumed: 107, header: { version: 1, endpoints: null, authority: null } } },
  { name: 'v1 line of 108 bytes', input: b(`PROXY UNKNOWN ${'x'.repeat(PROXY_V1_MAX_LINE - 15)}\r\n`), want: { kind: 'error', reason: 'v1_too_long' } },
  { name: 'not a header: a command', input: b('EHLO x\r\n'), want: { kind: 'error', reason: 'not_proxy' } },
  { name: 'not a header: PROXY without space', input: b('PROXYTCP4\r\n'), want: { kind: 'error', reason: 'not_proxy' } },
  { name: 'not a header: almost the v2 signature', input: Buffer.concat([V2_SIGNATURE.subarray(0, 11), b('X')]), want: { kind: 'error', reason: 'not_proxy' } },
  { name: 'v2 TCP4', input: Buffer.concat([v2(0x21, 0x11, v4body), b('EHLO')]), want: { kind: 'header', consumed: 28, header: { version: 2, endpoints: ep('192.0.2.7', 54321, '10.0.0.1', 25), authority: null } } },
  { name: 'v2 TCP6, v4-mapped local', input: v2(0x21, 0x21, v6body), want: { kind: 'header', consumed: 52, header: { version: 2, endpoints: ep('2001:db8::1', 80, '10.0.0.1', 443), authority: null } } },
  { name: 'v2 TLVs with AUTHORITY', input: v2(0x21, 0x11, Buffer.concat([v4body, tlv(0x04, Buffer.alloc(0)), tlv(0x02, b('mx.example')), tlv(0x20, Buffer.alloc(9))])), want: { kind: 'header', consumed: 56, header: { version: 2, endpoints: ep('192.0.2.7', 54321, '10.0.0.1', 25), authority: 'mx.example' } } },
  { name: 'v2 TLV past the end', input: v2(0x21, 0x11, Buffer.concat([v4body, Buffer.from([0x02, 0, 9, 0x41])])), want: { kind: 'error', reason: 'v2_bad_tlv' } },
  { name: 'v2 LOCAL (health check)', input: Buffer.concat([v2(0x20, 0x00, Buffer.alloc(0)), b('x')]), want: { kind: 'header', consumed: 16, header: { version: 2, endpoints: null, authority: null } } },
  { name: 'v2 LOCAL skips any body', input: v2(0x20, 0x11, Buffer.alloc(40, 0xff)), want: { kind: 'header', consumed: 56, header: { version: 2, endpoints: null, authority: null } } },
  { name: 'v2 UNSPEC', input: v2(0x21, 0x00, Buffer.alloc(5)), want: { kind: 'header', consumed: 21, header: { version: 2, endpoints: null, authority: null } } },
  { name: 'v2 AF_UNIX is LOCAL', input: v2(0x21, 0x31, Buffer.alloc(216)), want: { kind: 'header', consumed: 232, header: { version: 2, endpoints: null, authority: null } } },
  { name: 'v2 UDP refused', input: v2(0x21, 0x12, v4body), want: { kind: 'error', reason: 'v2_bad_family' } },
  { name: 'v2 unknown family', input: v2(0x21, 0x41, v4body), want: { kind: 'error', reason: 'v2_bad_family' } },
  { name: 'v2 version 1', input: v2(0x11, 0x11, v4body), want: { kind: 'error', reason: 'v2_bad_version' } },
  { name: 'v2 command 2', input: v2(0x22, 0x11, v4body), want: { kind: 'error', reason: 'v2_bad_command' } },
  { name: 'v2 short addresses', input: v2(0x21, 0x21, v4body), want: { kind: 'error', reason: 'v2_short_addresses' } },
  { name: 'v2 too long', input: Buffer.concat([V2_SIGNATURE, Buffer.from([0x21, 0x11, 0x06, 0x00])]), want: { kind: 'error', reason: 'v2_too_long' } },
];

/** Feeds input in pieces cut at the given points, as a reader would: stops at the first answer that is not 'more'. */
function chunked(input: Buffer, cuts: readonly number[]): ProxyParse {
  const points = [...new Set([...cuts, input.length])].filter((c) => c > 0 && c <= input.length).sort((x, y) => x - y);
  for (const p of points) {
    const r = parseProxyHeader(input.subarray(0, p));
    if (r.kind !== 'more') return r;
  }
  return { kind: 'more' };
}

describe('parseProxyHeader', () => {
  for (const c of cases) {
    it(`${c.name}: same result at every split point`, () => {
      expect(parseProxyHeader(c.input)).toEqual(c.want);
      for (let cut = 0; cut <= c.input.length; cut++) expect(chunked(c.input, [cut]), `cut at ${cut}`).toEqual(c.want);
    });
  }

  it('every prefix of a header is "more" (a truncated header is never taken)', () => {
    for (const c of cases.filter((x) => x.want.kind === 'header')) {
      const consumed = (c.want as { consumed: number }).consumed;
      for (let n = 0; n < consumed; n++) expect(parseProxyHeader(c.input.subarray(0, n)).kind, `${c.name} at ${n}`).toBe('more');
    }
  });

  it('no throw, bounded, and the same answer for any chunking (property)', () => {
    const prefix = fc.constantFrom(b(''), b('PROXY '), b('PROXY TCP4 '), V2_SIGNATURE, Buffer.concat([V2_SIGNATURE, Buffer.from([0x21, 0x11, 0, 12])]));
    const input = fc.tuple(prefix, fc.uint8Array({ maxLength: 300 })).map(([p, r]) => Buffer.concat([p, Buffer.from(r)]));
    fc.assert(
      fc.property(input, fc.array(fc.nat(400), { maxLength: 6 }), (buf, cuts) => {
        const whole = parseProxyHeader(buf);
        if (whole.kind === 'header') expect(whole.consumed).toBeLessThanOrEqual(PROXY_HEADER_MAX);
        // A verdict reached on a prefix is the verdict for the whole.
        const r = chunked(buf, cuts);
        expect(r).toEqual(whole);
        // Only the first PROXY_HEADER_MAX bytes matter.
        expect(parseProxyHeader(Buffer.concat([buf, Buffer.alloc(PROXY_HEADER_MAX)])).kind === 'more').toBe(false);
      }),
      { numRuns: 2000 },
    );
  });
});

describe('encodeProxyHeader', () => {
  const round: ProxyEndpoints[] = [
    ep('192.0.2.7', 54321, '127.0.0.1', 25),
    ep('2001:db8::7', 1, '::1', 143),
    ep('fe80::1:2:3:4', 65535, '2001:db8:0:0:1::', 0),
  ];
  for (const e of round) {
    for (const version of [1, 2] as const) {
      it(`v${version} ${e.remoteAddress}: parses back to the same ends`, () => {
        const h = encodeProxyHeader(version, e);
        const r = parseProxyHeader(h);
        expect(r).toEqual({ kind: 'header', consumed: h.length, header: { version, endpoints: e, authority: null } });
      });
    }
  }

  it('a mixed-family pair goes as TCP6 with the v4 end v4-mapped', () => {
    expect(encodeProxyHeader(1, ep('192.0.2.7', 1, '::1', 2)).toString('latin1')).toBe('PROXY TCP6 ::ffff:192.0.2.7 ::1 1 2\r\n');
    const r = parseProxyHeader(encodeProxyHeader(2, ep('192.0.2.7', 1, '::1', 2)));
    expect(r.kind === 'header' && r.header.endpoints).toEqual(ep('192.0.2.7', 1, '::1', 2));
  });

  it('no ends (a piped client): v1 UNKNOWN, v2 LOCAL', () => {
    expect(encodeProxyHeader(1, null).toString('latin1')).toBe('PROXY UNKNOWN\r\n');
    expect(parseProxyHeader(encodeProxyHeader(2, undefined))).toEqual({ kind: 'header', consumed: 16, header: { version: 2, endpoints: null, authority: null } });
    expect(encodeProxyHeader(1, ep('unix', 0, 'unix', 0)).toString('latin1')).toBe('PROXY UNKNOWN\r\n');
  });
});
