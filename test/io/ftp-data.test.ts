import { createHash, randomBytes } from 'node:crypto';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { DataRelays, MAX_DATA_RELAYS, type DataEnv } from '../../src/io/ftp-data.js';
import { freePort, waitFor } from '../helpers/wrapper.js';

/**
 * The shell's FTP data relay on real loopback sockets. The "server data
 * port" here is a plain TCP listener standing for the FTP server's passive
 * port (the relay never speaks FTP on it); the end-to-end tests run the same
 * relay in front of vsftpd.
 */

const cleanup: Array<() => void> = [];
afterEach(() => {
  for (const f of cleanup.splice(0)) f();
});

interface Sink {
  readonly port: number;
  /** Bytes each accepted connection sent, once it ended. */
  readonly got: Buffer[];
  readonly sockets: Socket[];
  /** Bytes received so far, per accepted connection. */
  readonly live: number[];
}

/** A data port that records what it receives and answers `reply` then ends, when the peer ended. */
async function sink(reply = Buffer.alloc(0)): Promise<Sink> {
  const got: Buffer[] = [];
  const sockets: Socket[] = [];
  const live: number[] = [];
  const server: Server = createServer({ allowHalfOpen: true }, (s) => {
    const idx = sockets.push(s) - 1;
    live[idx] = 0;
    const parts: Buffer[] = [];
    s.on('data', (b: Buffer) => {
      parts.push(b);
      live[idx]! += b.length;
    });
    s.on('end', () => {
      got.push(Buffer.concat(parts));
      s.end(reply);
    });
    s.on('error', () => {});
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  cleanup.push(() => {
    for (const s of sockets) s.destroy();
    server.close();
  });
  return { port: (server.address() as AddressInfo).port, got, sockets, live };
}

function env(over: Partial<DataEnv> = {}): DataEnv & { lines: string[] } {
  const lines: string[] = [];
  return {
    clientAddress: '127.0.0.1',
    localAddress: '127.0.0.1',
    serverEnds: () => ({ remote: '127.0.0.1', local: '127.0.0.1' }),
    portRange: null,
    acceptTimeoutMs: 30_000,
    tls: () => null,
    log: (_l, m) => lines.push(m),
    wants: () => true,
    touch: () => {},
    lines,
    ...over,
  };
}

function relays(e: DataEnv): DataRelays {
  const r = new DataRelays(e);
  cleanup.push(() => r.closeAll());
  return r;
}

/** Connects, sends `data`, half-closes, and collects what comes back until the end. */
function transfer(port: number, data: Buffer, localAddress?: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port, allowHalfOpen: true, ...(localAddress ? { localAddress } : {}) });
    const parts: Buffer[] = [];
    s.on('data', (b: Buffer) => parts.push(b));
    s.on('error', reject);
    s.on('end', () => {
      s.end();
      resolve(Buffer.concat(parts));
    });
    s.on('close', () => resolve(Buffer.concat(parts)));
    s.once('connect', () => s.end(data));
  });
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('ftp data relay (passive)', () => {
  it('relays both ways unchanged, 8 MB up, the answer down, and the half-close that ends a transfer', async () => {
    const big = randomBytes(8 * 1024 * 1024);
    const down = randomBytes(3 * 1024 * 1024);
    const s = await sink(down);
    const r = relays(env());
    const o = await r.open({ kind: 'passive', serverHost: null, serverPort: s.port, tls: false });
    expect(o.ok).toBe(true);
    const back = await transfer(o.ok ? o.port : 0, big);
    expect(sha(back)).toBe(sha(down));
    await waitFor(() => s.got.length === 1, 'the upload at the server');
    expect(sha(s.got[0]!)).toBe(sha(big));
  });

  it('accepts only the control client\'s address, and only one connection', async () => {
    const s = await sink(Buffer.from('listing\r\n'));
    const e = env();
    const r = relays(e);
    const o = await r.open({ kind: 'passive', serverHost: null, serverPort: s.port, tls: false });
    const port = o.ok ? o.port : 0;
    expect((await transfer(port, Buffer.from('stolen?'), '127.0.0.2')).length).toBe(0);
    expect(e.lines.some((l) => l.startsWith(`refused data connection from 127.0.0.2 to 127.0.0.1:${port}`))).toBe(true);
    // The server's data port was reached before the listener opened; the thief's bytes never got there.
    expect(s.sockets.length).toBe(1);
    expect(s.live[0]).toBe(0);
    expect((await transfer(port, Buffer.alloc(0))).toString()).toBe('listing\r\n');
    await expect(transfer(port, Buffer.alloc(0))).rejects.toThrow(/ECONNREFUSED/);
  });

  it('one listener at a time: a new request closes the one still waiting', async () => {
    const s = await sink();
    const r = relays(env());
    const first = await r.open({ kind: 'passive', serverHost: null, serverPort: s.port, tls: false });
    const second = await r.open({ kind: 'passive', serverHost: null, serverPort: s.port, tls: false });
    expect(first.ok && second.ok).toBe(true);
    await expect(transfer(first.ok ? first.port : 0, Buffer.alloc(0))).rejects.toThrow(/ECONNREFUSED/);
  });

  it('the accept deadline closes a listener nobody connected to', async () => {
    const s = await sink();
    const e = env({ acceptTimeoutMs: 100 });
    const r = relays(e);
    const o = await r.open({ kind: 'passive', serverHost: null, serverPort: s.port, tls: false });
    await waitFor(() => e.lines.some((l) => l.includes('closed: no connection')), 'the deadline');
    await expect(transfer(o.ok ? o.port : 0, Buffer.alloc(0))).rejects.toThrow(/ECONNREFUSED/);
  });

  it(`at most ${MAX_DATA_RELAYS} relays at once: the next connection is dropped`, async () => {
    const s = await sink();
    const r = relays(env());
    const open: Socket[] = [];
    for (let i = 0; i < MAX_DATA_RELAYS; i++) {
      const o = await r.open({ kind: 'passive', serverHost: null, serverPort: s.port, tls: false });
      const c = connect({ host: '127.0.0.1', port: o.ok ? o.port : 0 });
      c.on('error', () => {});
      c.write('x');
      open.push(c);
      await waitFor(() => s.live[i] === 1, `relay ${i + 1}`);
    }
    cleanup.push(() => open.forEach((c) => c.destroy()));
    const o = await r.open({ kind: 'passive', serverHost: null, serverPort: s.port, tls: false });
    expect((await transfer(o.ok ? o.port : 0, Buffer.from('x'))).length).toBe(0);
    // The fifth listener's server connection got nothing: its client was dropped.
    expect(s.live.slice(0, MAX_DATA_RELAYS)).toEqual(new Array(MAX_DATA_RELAYS).fill(1));
    expect(s.live[MAX_DATA_RELAYS]).toBe(0);
    // closeAll ends every relay.
    r.closeAll();
    await waitFor(() => s.sockets.every((x) => x.destroyed || x.readableEnded), 'the relays closed');
  });

  it('pasvPortRange: a port of the range, and none when the range is taken', async () => {
    const p = await freePort();
    const s = await sink();
    const r = relays(env({ portRange: [p, p] }));
    const o = await r.open({ kind: 'passive', serverHost: null, serverPort: s.port, tls: false });
    expect(o.ok && o.port).toBe(p);
    const r2 = relays(env({ portRange: [p, p] }));
    const o2 = await r2.open({ kind: 'passive', serverHost: null, serverPort: s.port, tls: false });
    expect(o2.ok).toBe(false);
  });

  it('the server\'s data port is reached before the listener opens: an unreachable one is no listener', async () => {
    const r = relays(env());
    const dead = await freePort();
    const o = await r.open({ kind: 'passive', serverHost: null, serverPort: dead, tls: false });
    expect(o.ok).toBe(false);
    expect(!o.ok && o.reason).toContain('ECONNREFUSED');
  });

  it('no local address (a piped session) or PROT P without a TLS context: not opened', async () => {
    const r = relays(env({ localAddress: null }));
    expect((await r.open({ kind: 'passive', serverHost: null, serverPort: 1, tls: false })).ok).toBe(false);
    const r2 = relays(env());
    expect((await r2.open({ kind: 'passive', serverHost: null, serverPort: 1, tls: true })).ok).toBe(false);
  });
});

describe('ftp data relay (active)', () => {
  it('accepts the server only, and dials the client\'s address itself', async () => {
    const clientSink = await sink();
    const e = env();
    const r = relays(e);
    const o = await r.open({ kind: 'active', clientHost: '127.0.0.1', clientPort: clientSink.port, tls: false });
    expect(o.ok).toBe(true);
    const port = o.ok ? o.port : 0;
    // Not the server's address: refused, the client is never dialled.
    expect((await transfer(port, Buffer.from('nope'), '127.0.0.3')).length).toBe(0);
    expect(clientSink.sockets.length).toBe(0);
    // The transfer command goes to the server: from now on its connection may come.
    expect(await r.open({ kind: 'transfer' })).toEqual({ ok: false, kind: 'transfer', reason: 'armed' });
    const payload = randomBytes(1024 * 1024);
    await transfer(port, payload);
    await waitFor(() => clientSink.got.length === 1, 'the download at the client');
    expect(sha(clientSink.got[0]!)).toBe(sha(payload));
  });
  it('a connection from the server\'s address before the transfer command is refused, and so is every one after it', async () => {
    const clientSink = await sink();
    const e = env();
    const r = relays(e);
    const o = await r.open({ kind: 'active', clientHost: '127.0.0.1', clientPort: clientSink.port, tls: false });
    const port = o.ok ? o.port : 0;
    // A refused connection may see its write fail (EPIPE, ECONNRESET): that too is nothing received.
    const attempt = (data: string) => transfer(port, Buffer.from(data)).catch(() => Buffer.alloc(0));
    expect((await attempt('thief')).length).toBe(0);
    await r.open({ kind: 'transfer' });
    expect((await attempt('the server, or the thief again')).length).toBe(0);
    await new Promise((res) => setTimeout(res, 100));
    expect(clientSink.sockets.length).toBe(0);
    expect(e.lines.filter((l) => l.includes('data connection before the transfer command'))).toHaveLength(1);
    expect(e.lines.filter((l) => l.includes('listener contested by an earlier connection'))).toHaveLength(1);
    r.closeAll();
  });
  it('a transfer the server refused disarms the listener: a connection before the next transfer command is refused', async () => {
    const clientSink = await sink();
    const e = env();
    const r = relays(e);
    const o = await r.open({ kind: 'active', clientHost: '127.0.0.1', clientPort: clientSink.port, tls: false });
    const port = o.ok ? o.port : 0;
    await r.open({ kind: 'transfer' });
    expect(await r.open({ kind: 'transfer-refused' })).toEqual({ ok: false, kind: 'transfer-refused', reason: 'disarmed' });
    const attempt = (data: string) => transfer(port, Buffer.from(data)).catch(() => Buffer.alloc(0));
    expect((await attempt('thief after the 550')).length).toBe(0);
    await new Promise((res) => setTimeout(res, 100));
    expect(clientSink.sockets.length).toBe(0);
    expect(e.lines.some((l) => l.includes('data connection before the transfer command'))).toBe(true);
    r.closeAll();
  });
});
