import { spawn, type ChildProcess } from 'node:child_process';
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLighttpd, type Lighttpd } from '../helpers/lighttpd.js';
import { waitListening } from '../helpers/nginx.js';
import { freePort, startStandalone, waitFor, type Standalone } from '../helpers/wrapper.js';

const HANDSHAKE =
  'GET /ws HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n';

/** A masked client text frame (RFC 6455 section 5.2). */
function frame(text: string): Buffer {
  const mask = Buffer.from([0x37, 0xfa, 0x21, 0x3d]);
  const p = Buffer.from(text);
  return Buffer.concat([Buffer.from([0x81, 0x80 | p.length]), mask, Buffer.from(p.map((b, i) => b ^ mask[i % 4]!))]);
}

/** Handshake, then one frame; returns everything received once `until` shows up (or the close). */
async function session(port: number, text: string, until: string): Promise<string> {
  const sock = connect({ port, host: '127.0.0.1' });
  const chunks: Buffer[] = [];
  let closed = false;
  sock.on('data', (b: Buffer) => chunks.push(b));
  sock.on('close', () => (closed = true));
  sock.on('error', () => {});
  await new Promise((r) => sock.once('connect', r));
  sock.write(HANDSHAKE);
  const got = () => Buffer.concat(chunks).toString('latin1');
  await waitFor(() => closed || got().includes('\r\n\r\n'), 'the handshake answer');
  if (!closed) sock.write(frame(text));
  await waitFor(() => closed || got().includes(until), `${JSON.stringify(until)}`);
  sock.destroy();
  return got();
}

/**
 * WebSocket through the wrapper to lighttpd's mod_wstunnel (a real
 * WebSocket end point), with `cat` behind it under systemd-socket-activate: refused by
 * default; with allowUpgrade the handshake passes, the server's 101 turns
 * the connection into a raw tunnel and frames go both ways.
 */
describe('http Upgrade to lighttpd mod_wstunnel', () => {
  let echo: ChildProcess;
  let l: Lighttpd;
  let strict: Standalone;
  let lenient: Standalone;
  beforeAll(async () => {
    const port = await freePort();
    // cat per connection, the socket on its stdin/stdout: an echo behind mod_wstunnel.
    echo = spawn('systemd-socket-activate', ['--inetd', '-a', '-l', `127.0.0.1:${port}`, 'cat'], { stdio: 'ignore' });
    await waitListening(port, echo, () => 'systemd-socket-activate');
    l = await startLighttpd(port);
    strict = await startStandalone(['--protocol', 'http', '--connect', `127.0.0.1:${l.port}`]);
    lenient = await startStandalone(['--protocol', 'http', '--connect', `127.0.0.1:${l.port}`, '--allow-upgrade', '--log-level', '1']);
  });
  afterAll(async () => {
    await strict?.stop();
    await lenient?.stop();
    await l?.stop();
    echo?.kill('SIGTERM');
  });

  it('directly: lighttpd answers 101 and echoes the frame (the reference)', async () => {
    const got = await session(l.port, 'hello', 'hello');
    expect(got).toMatch(/^HTTP\/1\.1 101 Switching Protocols\r\n/);
    expect(got).toContain('\x81\x05hello');
  });

  it('by default the wrapper refuses the Upgrade with 501', async () => {
    const got = await session(strict.port, 'hello', '501 Not Implemented\n');
    expect(got).toMatch(/^HTTP\/1\.1 501 Not Implemented\r\n/);
    expect(strict.logs()).toContain('reason="Upgrade refused (allowUpgrade)"');
  });

  it('with allowUpgrade: 101, then frames relayed raw both ways, logged', async () => {
    const got = await session(lenient.port, 'through the wrapper', 'through the wrapper');
    expect(got).toMatch(/^HTTP\/1\.1 101 Switching Protocols\r\n/);
    expect(got).toContain('\x81\x13through the wrapper');
    await waitFor(() => lenient.logs().includes('connection switched to a raw tunnel by the server'), 'the tunnel note');
  });
});
