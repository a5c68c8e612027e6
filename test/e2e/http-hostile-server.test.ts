import { createServer, type AddressInfo, type Server } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clientSession } from '../helpers/superservers.js';
import { startStandalone, waitFor, type Standalone } from '../helpers/wrapper.js';

/**
 * Servers that answer what no real web server answers (so a scripted one,
 * the only kind that does): a response with bytes after its end (response
 * splitting / queue poisoning), a 101 nobody asked for. The wrapper
 * forwards the part it can frame and closes, instead of handing the
 * client a response to a request it never sent.
 */
describe('http: a server whose responses cannot be framed', () => {
  let srv: Server;
  let w: Standalone;
  let answer = '';
  beforeAll(async () => {
    srv = createServer((s) => {
      s.once('data', () => s.write(answer));
      s.on('error', () => {});
    });
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
    w = await startStandalone(['--protocol', 'http', '--connect', `127.0.0.1:${(srv.address() as AddressInfo).port}`, '--log-level', '1']);
  });
  afterAll(async () => {
    await w?.stop();
    await new Promise((r) => srv?.close(r));
  });

  const REQ = Buffer.from('GET / HTTP/1.1\r\nHost: t\r\n\r\n');
  it('a second response nobody asked for is withheld and the connection closed', async () => {
    const first = 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok';
    answer = `${first}HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nevil!!`;
    const got = (await clientSession(w.port, REQ)).toString('latin1');
    expect(got).toBe(first);
    await waitFor(() => w.logs().includes('server response not framed, connection closed: a response to no request'), 'the note');
  });

  it('a 101 to a plain GET is withheld and the connection closed', async () => {
    answer = 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\nraw bytes';
    const got = (await clientSession(w.port, REQ)).toString('latin1');
    expect(got).toBe('HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n');
    await waitFor(() => w.logs().includes('101 Switching Protocols to a request that asked for no upgrade'), 'the note');
  });

  it('two different Content-Length fields: the head is cut where the framing broke', async () => {
    answer = 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 40\r\n\r\nok';
    const got = (await clientSession(w.port, REQ)).toString('latin1');
    expect(got).toBe('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n');
  });
  it('Content-Length and chunked together (response splitting toward a client that reads the length): the head is cut before its end', async () => {
    const head = 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n';
    answer = `${head}\r\n2\r\nok\r\n1b\r\nHTTP/1.1 200 OK\r\nX: evil\r\n\r\n\r\n0\r\n\r\n`;
    const got = (await clientSession(w.port, REQ)).toString('latin1');
    expect(got).toBe(head);
    await waitFor(() => w.logs().includes('both Transfer-Encoding and Content-Length in a response'), 'the note');
  });
});
