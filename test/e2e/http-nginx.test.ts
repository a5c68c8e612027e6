import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { connect } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HOSTILE } from '../protocols/http-cases.js';
import { startNginx, type Nginx, type NginxEntry } from '../helpers/nginx.js';
import { clientSession } from '../helpers/superservers.js';
import { startStandalone, waitFor, type Standalone } from '../helpers/wrapper.js';

const run = promisify(execFile);

/** As exchange, the payload written in pieces cut at these offsets, a few milliseconds apart (separate TCP segments). */
function exchangeInPieces(port: number, payload: string, cuts: readonly number[]): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const sock = connect({ port, host: '127.0.0.1' });
    sock.setNoDelay(true);
    const chunks: Buffer[] = [];
    const t = setTimeout(() => {
      sock.destroy();
      reject(new Error(`no close; got ${JSON.stringify(Buffer.concat(chunks).toString('latin1'))}`));
    }, 15_000);
    sock.on('data', (b: Buffer) => chunks.push(b));
    sock.on('error', reject);
    sock.on('close', () => {
      clearTimeout(t);
      resolve(Buffer.concat(chunks));
    });
    sock.once('connect', async () => {
      let at = 0;
      for (const c of [...cuts, payload.length]) {
        sock.write(payload.slice(at, c), 'latin1');
        at = c;
        await new Promise((r) => setTimeout(r, 3));
      }
    });
  });
}

/**
 * Sends the payload without half-closing (nginx aborts a proxied request
 * whose client has closed its side: 499) and collects until the server
 * closes; the payload's last request says Connection: close.
 */
function exchange(port: number, payload: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const sock = connect({ port, host: '127.0.0.1' });
    const chunks: Buffer[] = [];
    const t = setTimeout(() => {
      sock.destroy();
      reject(new Error(`no close; got ${JSON.stringify(Buffer.concat(chunks).toString('latin1'))}`));
    }, 15_000);
    sock.on('data', (b: Buffer) => chunks.push(b));
    sock.on('error', reject);
    sock.on('close', () => {
      clearTimeout(t);
      resolve(Buffer.concat(chunks));
    });
    sock.once('connect', () => sock.write(payload));
  });
}

/** Responses with what differs between two runs taken out: the date, and the port in a Location. */
function normalise(s: string): string {
  return s.replace(/^Date: .*\r\n/gm, 'Date: X\r\n').replace(/127\.0\.0\.1:\d+/g, 'HOST');
}

/** The requests nginx logged after `since` entries, as (request, status, request length, body). */
function parsed(n: Nginx, since: number): Pick<NginxEntry, 'request' | 'status' | 'requestLength' | 'body'>[] {
  return n.entries().slice(since).map((e) => ({ request: e.request, status: e.status, requestLength: e.requestLength, body: e.body }));
}

/**
 * Real nginx behind the wrapper (standalone mode), real clients in front:
 * every response is the same with and without the wrapper (Date aside), and
 * nginx's access log shows it parsed the same requests, bodies included.
 * The smuggling cases go through the wrapper to nginx, and the access log
 * shows which requests nginx saw: only those before the hostile one.
 */
describe('http in front of nginx', () => {
  let n: Nginx;
  let w: Standalone;
  let dir: string;
  const direct = () => `http://127.0.0.1:${n.port}`;
  const wrapped = () => `http://127.0.0.1:${w.port}`;

  beforeAll(async () => {
    n = await startNginx();
    w = await startStandalone(['--protocol', 'http', '--connect', `127.0.0.1:${n.port}`, '--log-level', '2']);
    dir = mkdtempSync(join(tmpdir(), 'pw-http-'));
    writeFileSync(join(dir, 'body.txt'), 'line one\nline two\r\n\0binary\xff'.repeat(500), 'latin1');
  });
  afterAll(async () => {
    await w?.stop();
    await n?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** curl with these arguments (the URL's base is substituted), directly and through the wrapper. */
  async function both(args: (base: string) => string[], requests: number): Promise<{ plain: string; via: string; logPlain: ReturnType<typeof parsed>; logVia: ReturnType<typeof parsed> }> {
    const a = n.entries().length;
    const plain = (await run('curl', ['-s', '-i', '--raw', ...args(direct())], { encoding: 'latin1' })).stdout;
    await waitFor(() => n.entries().length >= a + requests, 'nginx to log the direct requests');
    const b = a + requests;
    const via = (await run('curl', ['-s', '-i', '--raw', ...args(wrapped())], { encoding: 'latin1' })).stdout;
    await waitFor(() => n.entries().length >= b + requests, 'nginx to log the wrapped requests');
    return { plain: normalise(plain), via: normalise(via), logPlain: parsed(n, a).slice(0, requests), logVia: parsed(n, b).slice(0, requests) };
  }

  const CURL: readonly [string, number, (base: string) => string[]][] = [
    ['GET a static file', 1, (u) => [`${u}/index.html`]],
    ['GET a 300 kB file', 1, (u) => [`${u}/big.bin`]],
    ['GET a missing file (404)', 1, (u) => [`${u}/nothing?q=1&r=%41`]],
    ['HEAD', 1, (u) => ['-I', `${u}/index.html`]],
    ['POST with Content-Length', 1, (u) => ['--data-binary', `@${join(dir, 'body.txt')}`, `${u}/echo`]],
    ['POST chunked', 1, (u) => ['-H', 'Transfer-Encoding: chunked', '--data-binary', `@${join(dir, 'body.txt')}`, `${u}/echo`]],
    ['keep-alive: three requests on one connection', 3, (u) => [`${u}/index.html`, `${u}/nothing`, '-d', 'x=1', `${u}/echo`]],
    ['HTTP/1.0', 1, (u) => ['-0', `${u}/index.html`]],
  ];
  for (const [name, requests, args] of CURL) {
    it(`curl: ${name}: the same response and the same request at nginx`, async () => {
      const r = await both(args, requests);
      expect(r.via).toBe(r.plain);
      expect(r.via).toMatch(/^HTTP\/1\.[01] \d{3} /);
      expect(r.logVia).toEqual(r.logPlain);
    });
  }

  it('curl: keep-alive really reuses one connection through the wrapper', async () => {
    const a = n.entries().length;
    await run('curl', ['-s', '-o', '/dev/null', `${wrapped()}/index.html`, '-o', '/dev/null', `${wrapped()}/index.html`]);
    await waitFor(() => n.entries().length >= a + 2, 'two requests');
    const [x, y] = n.entries().slice(a);
    expect(y!.connection).toBe(x!.connection);
    expect(y!.connectionRequests).toBe(2);
  });

  it('curl: PUT with Expect: 100-continue stores the same bytes', async () => {
    const file = join(dir, 'body.txt');
    for (const [base, name] of [[direct(), 'plain'], [wrapped(), 'via']] as const) {
      const r = await run('curl', ['-s', '-i', '-H', 'Expect: 100-continue', '-T', file, `${base}/upload/${name}.bin`], { encoding: 'latin1' });
      expect(r.stdout).toMatch(/^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 201 Created/);
    }
    expect(readFileSync(join(n.root, 'upload', 'via.bin')).equals(readFileSync(file))).toBe(true);
    expect(readFileSync(join(n.root, 'upload', 'plain.bin')).equals(readFileSync(file))).toBe(true);
  });

  it('curl: a 5 MB chunked PUT from stdin (cat | curl -T -) is stored byte for byte', async () => {
    const big = join(dir, 'big-upload.bin');
    const bytes = Buffer.alloc(5 * 1024 * 1024);
    for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 31 + (i >> 10)) & 0xff;
    writeFileSync(big, bytes);
    const r = await run('sh', ['-c', `cat ${big} | curl -s -v -i -T - ${wrapped()}/upload/big.bin`], { encoding: 'latin1' });
    expect(r.stderr).toContain('> Transfer-Encoding: chunked');
    expect(r.stdout).toMatch(/HTTP\/1\.1 201 Created/);
    expect(readFileSync(join(n.root, 'upload', 'big.bin')).equals(bytes)).toBe(true);
    // nginx logs the request after its response: wait, or the line lands in the next test's slice of the log.
    await waitFor(() => n.entries().some((e) => e.request === 'PUT /upload/big.bin HTTP/1.1'), 'nginx to log the PUT');
  });

  it('python http.client: GET, HEAD, POST and a chunked POST on one connection, the same through the wrapper', async () => {
    const script = `
import http.client, sys
c = http.client.HTTPConnection('127.0.0.1', int(sys.argv[1]))
out = []
def show(r):
    hs = [(k, v) for k, v in r.getheaders() if k != 'Date']
    out.append('%d %s %r %r' % (r.status, r.reason, hs, r.read()))
c.request('GET', '/index.html'); show(c.getresponse())
c.request('HEAD', '/index.html'); show(c.getresponse())
c.request('POST', '/echo', body=b'a=1&b=2', headers={'Content-Type': 'application/x-www-form-urlencoded'}); show(c.getresponse())
c.request('POST', '/echo', body=iter([b'abc', b'defgh', b'\\r\\n0\\r\\n']), encode_chunked=True); show(c.getresponse())
c.request('GET', '/big.bin'); show(c.getresponse())
print('\\n'.join(out))
`;
    const a = n.entries().length;
    const plain = (await run('python3', ['-c', script, String(n.port)])).stdout;
    const b = n.entries().length;
    const via = (await run('python3', ['-c', script, String(w.port)])).stdout;
    await waitFor(() => n.entries().length >= b + 5, 'five requests');
    expect(via).toBe(plain);
    expect(via.split('\n').filter((l) => /^200 OK/.test(l))).toHaveLength(5);
    expect(parsed(n, b)).toEqual(parsed(n, a).slice(0, b - a));
    expect(parsed(n, b)[3]!.body).toBe('abcdefgh\r\n0\r\n');
    expect(new Set(n.entries().slice(b).map((e) => e.connection)).size).toBe(1);
  });

  it('a raw pipelining socket: three requests in one write, the same three responses', async () => {
    const req = Buffer.from(
      'GET /index.html HTTP/1.1\r\nHost: t\r\n\r\nHEAD /index.html HTTP/1.1\r\nHost: t\r\n\r\nPOST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello',
    );
    const plain = (await exchange(n.port, req)).toString('latin1');
    const via = (await exchange(w.port, req)).toString('latin1');
    expect(normalise(via)).toBe(normalise(plain));
    expect(via.match(/^HTTP\/1\.1 200 OK/gm)).toHaveLength(3);
  });

  it('HTTP/1.0 keep-alive: a second request on the same connection, the same as direct', async () => {
    const req = Buffer.from('GET /index.html HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /nothing HTTP/1.0\r\n\r\n');
    const plain = (await exchange(n.port, req)).toString('latin1');
    const via = (await exchange(w.port, req)).toString('latin1');
    expect(normalise(via)).toBe(normalise(plain));
    expect(via).toMatch(/^HTTP\/1\.1 200 OK\r\n[^]*Connection: keep-alive\r\n[^]*HTTP\/1\.1 404 Not Found\r\n[^]*Connection: close\r\n/);
  });

  it('40 pipelined requests in one write (past the 32 the wrapper lets wait): the same 40 responses', async () => {
    const one = 'GET /index.html HTTP/1.1\r\nHost: t\r\n\r\nHEAD /big.bin HTTP/1.1\r\nHost: t\r\n\r\n';
    const req = Buffer.from(`${one.repeat(20)}GET /nothing HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n`);
    const plain = (await exchange(n.port, req)).toString('latin1');
    const via = (await exchange(w.port, req)).toString('latin1');
    expect(normalise(via)).toBe(normalise(plain));
    expect(via.match(/^HTTP\/1\.1 200 OK/gm)).toHaveLength(40);
    expect(via).toMatch(/HTTP\/1\.1 404 Not Found\r\n[^]*<\/html>\r\n$/);
  });

  it('property: however the client cuts a pipelined stream into TCP writes, nginx answers the same', async () => {
    const stream =
      'GET /index.html HTTP/1.1\r\nHost: t\r\n\r\nPOST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n0\r\nT: 1\r\n\r\n' +
      'POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhelloHEAD /index.html HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n';
    const reference = normalise((await exchange(n.port, Buffer.from(stream))).toString('latin1'));
    await fc.assert(
      fc.asyncProperty(fc.uniqueArray(fc.integer({ min: 1, max: stream.length - 1 }), { maxLength: 12 }), async (cuts) => {
        const got = normalise((await exchangeInPieces(w.port, stream, [...cuts].sort((a, b) => a - b))).toString('latin1'));
        expect(got).toBe(reference);
      }),
      { numRuns: 15 },
    );
  });

  it('a request smuggled inside a body (the CL.0 class) stays body', async () => {
    const a = n.entries().length;
    const smuggled = 'GET /smuggled HTTP/1.1\r\nHost: t\r\n\r\n';
    const got = (await exchange(w.port, Buffer.from(`POST /echo HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Length: ${smuggled.length}\r\n\r\n${smuggled}`))).toString('latin1');
    expect(got).toMatch(/^HTTP\/1\.1 200 OK/);
    await clientSession(n.port, Buffer.from('GET /sentinel-cl0 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n'));
    await waitFor(() => n.entries().some((e) => e.request.includes('/sentinel-cl0')), 'the sentinel in the log');
    // Earlier tests' last entries may land after `a` was read: look for this request by its body.
    const mine = n.entries().slice(a).filter((e) => e.body === smuggled);
    expect(mine.map((e) => e.request)).toEqual(['POST /echo HTTP/1.1']);
    expect(n.entries().filter((e) => e.request.includes('/smuggled'))).toEqual([]);
  });

  describe('the smuggling cases, through the wrapper to nginx', () => {
    let sentinel = 0;
    /** The requests nginx logged for what came before the sentinel request (sent directly, after the case). */
    async function loggedBy(since: number): Promise<string[]> {
      const mark = `/sentinel-${++sentinel}`;
      await clientSession(n.port, Buffer.from(`GET ${mark} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n`));
      await waitFor(() => n.entries().some((e) => e.request.includes(mark)), 'the sentinel in the log');
      const all = n.entries().slice(since).map((e) => e.request);
      return all.filter((r) => !r.includes(mark));
    }

    for (const c of HOSTILE.filter((x) => !x.flags)) {
      it(`${c.name}: the wrapper answers ${c.status}; nginx parsed only the requests before it`, async () => {
        const since = n.entries().length;
        const got = (await clientSession(w.port, Buffer.from(c.input, 'latin1'))).toString('latin1');
        const expectedRequests = [...c.forwarded.matchAll(/(?:^|\n)([A-Z]+ \S+ HTTP\/1\.[01])\r\n/g)].map((m) => m[1]!);
        // The wrapper's reply comes last, after nginx's answers to what was forwarded.
        expect(got).toMatch(new RegExp(`HTTP/1\\.1 ${c.status} [^\\r]+\\r\\nContent-Type: text/plain\\r\\nContent-Length: \\d+\\r\\nConnection: close\\r\\n\\r\\n${c.status} [^\\n]+\\n$`));
        expect(await loggedBy(since)).toEqual(expectedRequests);
      });
    }
  });

  it('the refusals are in the log with their code', () => {
    expect(w.logs()).toMatch(/refused client=127\.0\.0\.1 protocol=http state=headers code=smuggling reason="both Transfer-Encoding and Content-Length" line="" request="POST \/ HTTP\/1\.1"/);
    expect(w.logs()).toMatch(/refused client=127\.0\.0\.1 protocol=http state=chunk-size code=smuggling reason="junk after chunk size" line="0x5" request="POST \/ HTTP\/1\.1"/);
  });
});
