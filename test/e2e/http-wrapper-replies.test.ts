import { connect } from 'node:net';
import { describe, expect, it } from 'vitest';
import { startNginx } from '../helpers/nginx.js';
import { clientSession } from '../helpers/superservers.js';
import { freePort, startStandalone, waitFor } from '../helpers/wrapper.js';

/** The wrapper's own replies for its own events, in HTTP: 502 when the server is not there, 503 at shutdown. */
describe('http: the wrapper\'s replies', () => {
  it('no server: 502 Bad Gateway, then the close', async () => {
    const w = await startStandalone(['--protocol', 'http', '--connect', `127.0.0.1:${await freePort()}`]);
    try {
      const got = (await clientSession(w.port, Buffer.from('GET / HTTP/1.1\r\nHost: t\r\n\r\n'))).toString('latin1');
      expect(got).toMatch(/^HTTP\/1\.1 502 Bad Gateway\r\nContent-Type: text\/plain\r\nContent-Length: 16\r\nConnection: close\r\n\r\n502 Bad Gateway\n$/);
    } finally {
      await w.stop();
    }
  });

  it('shutdown (SIGTERM): an idle keep-alive connection is closed silently, one inside a request head gets 503', async () => {
    const n = await startNginx();
    const w = await startStandalone(['--protocol', 'http', '--connect', `127.0.0.1:${n.port}`]);
    try {
      const sock = connect({ port: w.port, host: '127.0.0.1' });
      const chunks: Buffer[] = [];
      sock.on('data', (b: Buffer) => chunks.push(b));
      const closed = new Promise((r) => sock.on('close', r));
      sock.write('GET /index.html HTTP/1.1\r\nHost: t\r\n\r\n');
      await waitFor(() => Buffer.concat(chunks).toString('latin1').includes('</html>\n'), 'the response');
      const mid = connect({ port: w.port, host: '127.0.0.1' });
      const midChunks: Buffer[] = [];
      mid.on('data', (b: Buffer) => midChunks.push(b));
      const midClosed = new Promise((r) => mid.on('close', r));
      mid.write('GET /index.html HTTP/1.1\r\nHost: t\r\n');
      await waitFor(() => w.logs().split('session open').length >= 3, 'both sessions open');
      await w.stop();
      await closed;
      await midClosed;
      expect(Buffer.concat(chunks).toString('latin1')).toMatch(/^HTTP\/1\.1 200 OK\r\n[^]*<\/html>\n$/);
      expect(Buffer.concat(midChunks).toString('latin1')).toMatch(/^HTTP\/1\.1 503 Service Unavailable\r\n[^]*Connection: close\r\n\r\n503 Service Unavailable\n$/);
    } finally {
      await w.stop();
      await n.stop();
    }
  });
});
