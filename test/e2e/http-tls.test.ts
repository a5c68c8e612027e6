import { execFile } from 'node:child_process';
import { rmSync } from 'node:fs';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeCert, type TestCert } from '../helpers/certs.js';
import { startNginx, type Nginx } from '../helpers/nginx.js';
import { startStandalone, type Standalone } from '../helpers/wrapper.js';

const run = promisify(execFile);
const normalise = (s: string) => s.replace(/^Date: .*\r\n/gm, 'Date: X\r\n').replace(/127\.0\.0\.1:\d+/g, 'HOST');

/** HTTPS in front (tls = implicit: the wrapper is the TLS end point and keeps judging every request), nginx in clear behind. */
describe('http with implicit TLS toward the client', () => {
  let n: Nginx;
  let w: Standalone;
  let cert: TestCert;
  beforeAll(async () => {
    cert = makeCert('web.test');
    n = await startNginx();
    w = await startStandalone(['--protocol', 'http', '--connect', `127.0.0.1:${n.port}`, '--tls', 'implicit', '--tls-cert', cert.cert, '--tls-key', cert.key]);
  });
  afterAll(async () => {
    await w?.stop();
    await n?.stop();
    if (cert) rmSync(cert.dir, { recursive: true, force: true });
  });

  it('curl over https: the same responses as nginx gives in clear, keep-alive and a chunked POST included', async () => {
    const args = (scheme: string, port: number) => ['-s', '-i', '--cacert', cert.cert, `${scheme}://127.0.0.1:${port}/index.html`, '-H', 'Transfer-Encoding: chunked', '-d', 'abc', `${scheme}://127.0.0.1:${port}/echo`];
    const plain = (await run('curl', args('http', n.port), { encoding: 'latin1' })).stdout;
    const via = (await run('curl', args('https', w.port), { encoding: 'latin1' })).stdout;
    expect(normalise(via)).toBe(normalise(plain));
    // -d makes both requests POSTs: nginx answers the static file's with 405, the echo's with 200.
    expect(via.match(/^HTTP\/1\.1 (405 Not Allowed|200 OK)/gm)).toHaveLength(2);
  });

  it('a smuggling attempt inside TLS is refused like one in clear', async () => {
    const r = await run('curl', ['-s', '-i', '--cacert', cert.cert, '-H', 'Content-Length: 3', '-H', 'Transfer-Encoding: chunked', '-d', 'abc', `https://127.0.0.1:${w.port}/echo`], { encoding: 'latin1' });
    expect(r.stdout).toMatch(/^HTTP\/1\.1 400 Bad Request\r\n/);
  });
});
