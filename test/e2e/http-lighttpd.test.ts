import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLighttpd, type Lighttpd } from '../helpers/lighttpd.js';
import { clientSession } from '../helpers/superservers.js';
import { startStandalone, type Standalone } from '../helpers/wrapper.js';

const run = promisify(execFile);
const normalise = (s: string) => s.replace(/^Date: .*\r\n/gm, 'Date: X\r\n');

/**
 * Real lighttpd behind the wrapper: static files and a CGI that answers the
 * body it was given (so the bytes that reached the server come back), the
 * same with and without the wrapper; smuggling attempts never reach it
 * (its access log, read once lighttpd has stopped and flushed it).
 */
describe('http in front of lighttpd', () => {
  let l: Lighttpd;
  let w: Standalone;
  let dir: string;
  const base = (port: number) => `http://127.0.0.1:${port}`;
  beforeAll(async () => {
    l = await startLighttpd();
    w = await startStandalone(['--protocol', 'http', '--connect', `127.0.0.1:${l.port}`]);
    dir = mkdtempSync(join(tmpdir(), 'pw-http-lt-'));
    writeFileSync(join(dir, 'body.bin'), Buffer.from(Array.from({ length: 70000 }, (_, i) => (i * 7) & 0xff)));
  });
  afterAll(async () => {
    await w?.stop();
    await l?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const CURL: readonly [string, (u: string) => string[]][] = [
    ['GET', (u) => [`${u}/index.html`]],
    ['HEAD', (u) => ['-I', `${u}/index.html`]],
    ['404', (u) => [`${u}/none`]],
    ['POST with Content-Length, echoed', (u) => ['--data-binary', `@${join(dir, 'body.bin')}`, `${u}/echo.sh`]],
    ['POST chunked, echoed', (u) => ['-H', 'Transfer-Encoding: chunked', '--data-binary', `@${join(dir, 'body.bin')}`, `${u}/echo.sh`]],
    ['PUT with Expect: 100-continue, echoed', (u) => ['-H', 'Expect: 100-continue', '-T', join(dir, 'body.bin'), `${u}/echo.sh`]],
    ['keep-alive', (u) => [`${u}/index.html`, `${u}/index.html`, '--data-binary', 'abc', `${u}/echo.sh`]],
  ];
  for (const [name, args] of CURL) {
    it(`curl: ${name}: the same response with and without the wrapper`, async () => {
      const plain = (await run('curl', ['-s', '-i', '--raw', ...args(base(l.port))], { encoding: 'latin1', maxBuffer: 1 << 24 })).stdout;
      const via = (await run('curl', ['-s', '-i', '--raw', ...args(base(w.port))], { encoding: 'latin1', maxBuffer: 1 << 24 })).stdout;
      expect(normalise(via)).toBe(normalise(plain));
      expect(via).toMatch(/^HTTP\/1\.1 (100 Continue\r\n\r\nHTTP\/1\.1 )?(200|404) /);
    });
  }

  it('the echoed body is the file, byte for byte', async () => {
    const r = await run('curl', ['-s', '--data-binary', `@${join(dir, 'body.bin')}`, `${base(w.port)}/echo.sh`], { encoding: 'buffer', maxBuffer: 1 << 24 });
    expect(Buffer.compare(r.stdout, Buffer.from(Array.from({ length: 70000 }, (_, i) => (i * 7) & 0xff)))).toBe(0);
  });

  it('python http.client: a chunked POST and a GET on one connection, the same through the wrapper', async () => {
    const script = `
import http.client, sys
c = http.client.HTTPConnection('127.0.0.1', int(sys.argv[1]))
c.request('POST', '/echo.sh', body=iter([b'one', b'two\\r\\n', b'0\\r\\n\\r\\n']), encode_chunked=True)
r = c.getresponse(); print(r.status, r.read())
c.request('GET', '/index.html'); r = c.getresponse(); print(r.status, r.read())
`;
    const plain = (await run('python3', ['-c', script, String(l.port)])).stdout;
    const via = (await run('python3', ['-c', script, String(w.port)])).stdout;
    expect(via).toBe(plain);
    expect(via).toContain("200 b'onetwo\\r\\n0\\r\\n\\r\\n'");
  });

  const SMUGGLING: readonly [string, string][] = [
    ['CL.TE', 'POST /echo.sh HTTP/1.1\r\nHost: t\r\nContent-Length: 40\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled-clte HTTP/1.1\r\nHost: t\r\n\r\n'],
    ['TE.CL', 'POST /echo.sh HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n2a\r\nGET /smuggled-tecl HTTP/1.1\r\nHost: t\r\n\r\n\r\n0\r\n\r\n'],
    ['TE.TE', 'POST /echo.sh HTTP/1.1\r\nHost: t\r\nContent-Length: 40\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: cow\r\n\r\n0\r\n\r\nGET /smuggled-tete HTTP/1.1\r\nHost: t\r\n\r\n'],
    ['chunk size with 0x', 'POST /echo.sh HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n0x0\r\n\r\nGET /smuggled-hex HTTP/1.1\r\nHost: t\r\n\r\n'],
  ];
  for (const [name, input] of SMUGGLING) {
    it(`${name}: the client gets the wrapper's error and nothing from lighttpd`, async () => {
      const got = (await clientSession(w.port, Buffer.from(input, 'latin1'))).toString('latin1');
      expect(got).toMatch(/^HTTP\/1\.1 (400|501) [^\r]+\r\nContent-Type: text\/plain\r\nContent-Length: \d+\r\nConnection: close\r\n\r\n\d{3} [^\n]+\n$/);
    });
  }

  it('lighttpd never parsed a smuggled request (its access log, flushed at its exit)', async () => {
    await w.stop();
    await l.stopOnly();
    const logged = l.requests().map((r) => r.request);
    expect(logged.length).toBeGreaterThan(10);
    expect(logged.filter((r) => r.includes('smuggled'))).toEqual([]);
  });
});
