import { describe, expect, it } from 'vitest';
import { encodeProxyHeader, proxyEncodable } from '../../src/core/proxy-header.js';
import { normaliseAddress } from '../../src/io/address.js';

/**
 * Review 4: a link-local client (fe80::…%eth0) was sent on as a PROXY LOCAL
 * header, so the server took the wrapper's loopback address for the client's
 * (and Postfix let it pass permit_mynetworks). The zone is dropped; ends no
 * header can carry are refused by the session (not LOCAL).
 */
describe('client addresses', () => {
  it('drops an IPv6 zone and shows v4-mapped IPv6 as IPv4', () => {
    expect(normaliseAddress('fe80::1%eth0')).toBe('fe80::1');
    expect(normaliseAddress('FE80::A%2')).toBe('fe80::a');
    expect(normaliseAddress('::ffff:192.0.2.7')).toBe('192.0.2.7');
    expect(normaliseAddress(undefined)).toBe('unknown');
  });

  it('a link-local end goes in a PROXY header as itself, never as LOCAL', () => {
    const e = { remoteAddress: normaliseAddress('fe80::1%eth0'), remotePort: 40000, localAddress: 'fe80::2', localPort: 25 };
    expect(proxyEncodable(e)).toBe(true);
    expect(encodeProxyHeader(1, e).toString('latin1')).toBe('PROXY TCP6 fe80::1 fe80::2 40000 25\r\n');
    expect(encodeProxyHeader(2, e)[13]).toBe(0x21);
    expect(proxyEncodable({ ...e, remoteAddress: 'unknown' })).toBe(false);
  });
});
