import { createServer, connect, type AddressInfo, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { ProxySettings } from '../../src/config.js';
import { proxyPeerListed, readProxyHeader } from '../../src/io/proxy-in.js';

/** A real loopback connection on port 0: the accepted side paused, as the listener has it. */
async function pair(): Promise<{ server: Socket; client: Socket; close: () => void }> {
  const srv = createServer({ pauseOnConnect: true, allowHalfOpen: true });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  const accepted = new Promise<Socket>((r) => srv.once('connection', r));
  const client = connect({ port: (srv.address() as AddressInfo).port, host: '127.0.0.1', allowHalfOpen: true });
  client.on('error', () => {});
  const server = await accepted;
  return { server, client, close: () => (client.destroy(), server.destroy(), srv.close()) };
}

const settings = (required: boolean): ProxySettings => ({ from: [{ net: '127.0.0.0', bits: 8, family: 4 }], required, toServer: null });
const read = (s: Socket): Promise<string> => new Promise((r) => { let got = ''; s.on('data', (b: Buffer) => { got += b.toString('latin1'); if (got.endsWith('\n')) r(got); }); s.resume(); });

describe('readProxyHeader', () => {
  let close: (() => void) | null = null;
  afterEach(() => close?.());

  it('lists by CIDR; v4-mapped and unknown addresses as the caller normalised them', () => {
    expect(proxyPeerListed(settings(true), '127.1.2.3')).toBe(true);
    expect(proxyPeerListed(settings(true), '10.0.0.1')).toBe(false);
    expect(proxyPeerListed(settings(true), 'unix')).toBe(false);
    expect(proxyPeerListed({ ...settings(true), from: [] }, '127.0.0.1')).toBe(false);
  });

  it('the bytes after the header, in the same segment and later, reach the next reader in order', async () => {
    const p = await pair();
    close = p.close;
    p.client.write('PROXY TCP4 192.0.2.7 198.51.100.1 1 2\r\nfirst ');
    const r = await readProxyHeader(p.server, settings(true), 1000);
    expect(r.kind === 'header' && r.header.endpoints?.remoteAddress).toBe('192.0.2.7');
    p.client.write('second\n');
    expect(await read(p.server)).toBe('first second\n');
  });

  it('not required: protocol bytes first are put back whole; silence ends at the deadline', async () => {
    const p = await pair();
    close = p.close;
    p.client.write('USER a\r\n');
    expect((await readProxyHeader(p.server, settings(false), 1000)).kind).toBe('absent');
    expect(await read(p.server)).toBe('USER a\r\n');
    const q = await pair();
    const t0 = Date.now();
    expect(await readProxyHeader(q.server, settings(false), 150)).toEqual({ kind: 'absent', why: 'no PROXY header within 150 ms' });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(140);
    q.close();
  });

  it('required: silence, a partial header at the deadline, and a reset are refusals', async () => {
    const p = await pair();
    close = p.close;
    expect(await readProxyHeader(p.server, settings(true), 100)).toEqual({ kind: 'refused', why: 'no PROXY header within 100 ms' });
    const q = await pair();
    q.client.write('PROXY TCP4 1.2');
    expect(await readProxyHeader(q.server, settings(true), 200)).toEqual({ kind: 'refused', why: 'incomplete PROXY header after 200 ms (14 bytes)' });
    q.close();
    const s = await pair();
    s.client.resetAndDestroy();
    expect((await readProxyHeader(s.server, settings(true), 1000)).kind).toBe('refused');
    s.close();
  });
});
