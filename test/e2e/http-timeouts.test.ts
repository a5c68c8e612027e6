import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startNginx, type Nginx } from '../helpers/nginx.js';
import { clientSession } from '../helpers/superservers.js';
import { startStandalone, waitFor, type Standalone } from '../helpers/wrapper.js';

interface Conn {
  readonly sock: Socket;
  got(): string;
  readonly closed: Promise<void>;
}

function open(port: number): Promise<Conn> {
  return new Promise((resolve, reject) => {
    const sock = connect({ port, host: '127.0.0.1' });
    const chunks: Buffer[] = [];
    let closedR: () => void = () => {};
    const closed = new Promise<void>((r) => (closedR = r));
    sock.on('data', (b: Buffer) => chunks.push(b));
    sock.on('close', () => closedR());
    sock.on('error', () => {});
    sock.once('connect', () => resolve({ sock, got: () => Buffer.concat(chunks).toString('latin1'), closed }));
    sock.once('error', reject);
  });
}

/** Writes `piece` every `ms` until the connection closes (a slowloris or a slow body). */
function trickle(c: Conn, piece: string, ms: number): void {
  const t = setInterval(() => {
    if (c.sock.destroyed) clearInterval(t);
    else c.sock.write(piece);
  }, ms);
  void c.closed.then(() => clearInterval(t));
}

/**
 * Slowloris and friends against the real shell, nginx behind: a request head
 * that never ends, a body that crawls, a keep-alive connection left idle.
 * Deadlines are short (1 s) and the assertions wait generously: nothing
 * here measures time, only what the client got and what the log says.
 */
describe('http deadlines in front of nginx', () => {
  let n: Nginx;
  let w: Standalone;
  beforeAll(async () => {
    n = await startNginx();
    w = await startStandalone([
      '--protocol', 'http', '--connect', `127.0.0.1:${n.port}`, '--log-level', '1',
      '--header-timeout', '1', '--keep-alive-timeout', '1', '--min-body-rate', '1000', '--min-body-rate-window', '1',
    ]);
  });
  afterAll(async () => {
    await w?.stop();
    await n?.stop();
  });

  it('a head sent a field at a time (slowloris) gets 408 and the close; nginx saw no request', async () => {
    const c = await open(w.port);
    c.sock.write('GET /slowloris HTTP/1.1\r\nHost: t\r\n');
    trickle(c, 'X-a: b\r\n', 150);
    await c.closed;
    expect(c.got()).toMatch(/^HTTP\/1\.1 408 Request Timeout\r\n[^]*Connection: close\r\n/);
    await waitFor(() => w.logs().includes('end=header_timeout'), 'the session close line');
    await clientSession(n.port, Buffer.from('GET /sentinel-t1 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n'));
    await waitFor(() => n.entries().some((e) => e.request.includes('sentinel-t1')), 'the sentinel');
    expect(n.entries().filter((e) => e.request.includes('slowloris'))).toEqual([]);
  });

  it('a connection that sends nothing gets 408: the first head\'s deadline runs from the connection', async () => {
    const c = await open(w.port);
    await c.closed;
    expect(c.got()).toMatch(/^HTTP\/1\.1 408 /);
  });

  it('a body slower than minBodyRate gets 408 and the close', async () => {
    const c = await open(w.port);
    c.sock.write('POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 100000\r\n\r\nabc');
    trickle(c, 'x', 200);
    await c.closed;
    expect(c.got()).toMatch(/HTTP\/1\.1 408 Request Timeout\r\n[^]*Connection: close\r\n\r\n408 Request Timeout\n$/);
    await waitFor(() => w.logs().includes('end=body_too_slow'), 'the session close line');
  });

  it('Expect: 100-continue answered 405 by nginx (no 100): a client that never sends the body is held to minBodyRate, and closed without a 408', async () => {
    const c = await open(w.port);
    c.sock.write('POST /index.html HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 100\r\n\r\n');
    // Before, the session stayed 'busy' (no deadline but idleTimeout, 600 s here).
    let closed = false;
    void c.closed.then(() => (closed = true));
    await waitFor(() => closed, 'the close by the body deadline', 30_000);
    // nginx's 405 and nothing after it: a 408 would be read as the answer to the next request.
    expect(c.got()).toMatch(/^HTTP\/1\.1 405 Not Allowed\r\n/);
    expect(c.got().match(/HTTP\/1\.1 /g)).toHaveLength(1);
    await waitFor(() => w.logs().includes('end=body_too_slow'), 'the session close line');
  });

  it('an idle keep-alive connection is closed silently after its response', async () => {
    const c = await open(w.port);
    c.sock.write('GET /index.html HTTP/1.1\r\nHost: t\r\n\r\n');
    await c.closed;
    expect(c.got()).toMatch(/^HTTP\/1\.1 200 OK\r\n[^]*hello from nginx<\/body><\/html>\n$/);
    await waitFor(() => w.logs().includes('end=keepalive_timeout'), 'the session close line');
  });

  it('a client that keeps up is served through the same deadlines', async () => {
    const c = await open(w.port);
    c.sock.write('POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhelloGET /index.html HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n');
    await c.closed;
    expect(c.got().match(/^HTTP\/1\.1 200 OK/gm)).toHaveLength(2);
  });
});
