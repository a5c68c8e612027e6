import { execFile } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startNginx, type Nginx } from '../helpers/nginx.js';
import { clientSession } from '../helpers/superservers.js';
import { startStandalone, waitFor, type Standalone } from '../helpers/wrapper.js';

const run = promisify(execFile);

/** The configured limits and rules, with curl and nginx: what is refused never reaches nginx. */
describe('http policy options in front of nginx', () => {
  let n: Nginx;
  let w: Standalone;
  let sentinel = 0;
  beforeAll(async () => {
    n = await startNginx();
    w = await startStandalone([
      '--protocol', 'http', '--connect', `127.0.0.1:${n.port}`,
      '--max-body-size', '1000', '--deny', '^[A-Z]+ /private', '--deny-headers', '(?i)^x-forwarded-host:', '--http-methods', 'GET', '--http-methods', 'PUT', '--http-methods', 'POST',
    ]);
  });
  afterAll(async () => {
    await w?.stop();
    await n?.stop();
  });

  /** The requests nginx logged from `since` on, up to a sentinel sent directly. */
  async function logged(since: number): Promise<string[]> {
    const mark = `/sentinel-p${++sentinel}`;
    await clientSession(n.port, Buffer.from(`GET ${mark} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n`));
    await waitFor(() => n.entries().some((e) => e.request.includes(mark)), 'the sentinel');
    return n.entries().slice(since).map((e) => e.request).filter((r) => !r.includes(mark));
  }

  const curl = async (args: string[]) => (await run('curl', ['-s', '-i', ...args], { encoding: 'latin1' })).stdout;

  it('maxBodySize: a larger Content-Length gets 413 before curl sends the body (Expect: 100-continue)', async () => {
    const since = n.entries().length;
    const out = await curl(['-H', 'Expect: 100-continue', '--data-binary', 'x'.repeat(1001), `http://127.0.0.1:${w.port}/echo`]);
    expect(out).toMatch(/^HTTP\/1\.1 413 Content Too Large\r\n/);
    expect(out).not.toContain('100 Continue');
    expect(await logged(since)).toEqual([]);
    const small = await curl(['--data-binary', 'x'.repeat(1000), `http://127.0.0.1:${w.port}/echo`]);
    expect(small).toMatch(/^HTTP\/1\.1 200 OK/);
  });

  it('maxBodySize: chunks adding up past it get 413; nginx saw only the start of that request', async () => {
    const since = n.entries().length;
    const out = await run('sh', ['-c', `head -c 5000 /dev/zero | curl -s -i -T - http://127.0.0.1:${w.port}/upload/x`], { encoding: 'latin1' });
    expect(out.stdout).toMatch(/HTTP\/1\.1 413 Content Too Large\r\n/);
    const seen = await logged(since);
    expect(seen).toEqual(['PUT /upload/x HTTP/1.1']);
  });

  it('denyList on the request line and denyHeaders on fields: 403, nothing at nginx', async () => {
    const since = n.entries().length;
    expect(await curl([`http://127.0.0.1:${w.port}/private/x`])).toMatch(/^HTTP\/1\.1 403 Forbidden\r\n/);
    expect(await curl(['-H', 'X-Forwarded-Host: evil', `http://127.0.0.1:${w.port}/index.html`])).toMatch(/^HTTP\/1\.1 403 Forbidden\r\n/);
    expect(await curl(['-X', 'DELETE', `http://127.0.0.1:${w.port}/upload/x`])).toMatch(/^HTTP\/1\.1 501 Not Implemented\r\n/);
    expect(await logged(since)).toEqual([]);
    expect(await curl([`http://127.0.0.1:${w.port}/index.html`])).toMatch(/^HTTP\/1\.1 200 OK/);
  });
  it('denyList sees the path nginx serves: //, %-escapes, dot segments and the absolute form are refused too; nginx itself serves them', async () => {
    const targets = ['//private/index.html', '/%70rivate/index.html', '/pub/../private/index.html', '/pub/%2e%2e/private/index.html', 'http://t/private/index.html'];
    mkdirSync(join(n.root, 'private'), { recursive: true });
    writeFileSync(join(n.root, 'private', 'index.html'), 'secret\n');
    for (const t of targets) {
      const req = Buffer.from(`GET ${t} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n`);
      // Direct, nginx serves the private file for every one of them.
      expect((await clientSession(n.port, req)).toString('latin1'), t).toMatch(/^HTTP\/1\.1 200 OK[\s\S]*secret\n$/);
      const since = n.entries().length;
      expect((await clientSession(w.port, req)).toString('latin1'), t).toMatch(/^HTTP\/1\.1 403 Forbidden\r\n/);
      expect(await logged(since)).toEqual([]);
    }
  });
});
