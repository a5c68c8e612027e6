import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnWithSocket } from '../helpers/inetd-spawn.js';
import { startNginx, type Nginx } from '../helpers/nginx.js';
import { socketActivated } from '../helpers/socket-activate.js';
import { startRsyslog, type Rsyslog } from '../helpers/rsyslog.js';
import { clientSession, inetdConf, startDaemon, xinetdConf } from '../helpers/superservers.js';
import { freePort, runPiped, waitFor, WRAPPER } from '../helpers/wrapper.js';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const normalise = (s: string) => s.replace(/^Date: .*\r\n/gm, 'Date: X\r\n');

/**
 * The http mode in every way it is started: a session piped in by hand,
 * inetd's way (the accepted socket as fds 0-2), inetutils-inetd from the
 * shipped inetd.conf.example (its log read from a real rsyslogd), systemd
 * socket activation (--inetd -a), and xinetd from the shipped
 * xinetd.d/protowrap-http; nginx
 * behind each. The client gets nginx's bytes and nothing else (no log
 * line on the socket).
 */
describe('http: inetd, xinetd, socket activation, piped', () => {
  let n: Nginx;
  let reference: string;
  const REQUEST = 'GET /index.html HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n';
  beforeAll(async () => {
    n = await startNginx();
    reference = normalise((await clientSession(n.port, Buffer.from(REQUEST))).toString('latin1'));
    expect(reference).toMatch(/^HTTP\/1\.1 200 OK\r\n[^]*hello from nginx/);
  });
  afterAll(async () => {
    await n?.stop();
  });

  it('piped by hand: HTTP/1.0, and keep-alive requests, answered as nginx answers them', async () => {
    const one = await runPiped(['--protocol', 'http', '--connect', `127.0.0.1:${n.port}`], 'GET /index.html HTTP/1.0\r\n\r\n');
    expect(one.code).toBe(0);
    expect(one.stdout.toString('latin1')).toMatch(/^HTTP\/1\.1 200 OK\r\n[^]*Connection: close\r\n[^]*hello from nginx<\/body><\/html>\n$/);
    const two = await runPiped(['--protocol', 'http', '--connect', `127.0.0.1:${n.port}`], `GET /index.html HTTP/1.1\r\nHost: t\r\n\r\n${REQUEST}`);
    expect(two.stdout.toString('latin1').match(/^HTTP\/1\.1 200 OK/gm)).toHaveLength(2);
  });

  it('piped by hand: a smuggling attempt gets 400, and the log is on stderr only', async () => {
    const r = await runPiped(['--protocol', 'http', '--connect', `127.0.0.1:${n.port}`], 'POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nG');
    expect(r.stdout.toString('latin1')).toMatch(/^HTTP\/1\.1 400 Bad Request\r\n[^]*\r\n\r\n400 Bad Request\n$/);
    expect(r.stderr).toContain('code=smuggling');
  });

  it('credentials (Authorization, Cookie) never reach the log: not in a refusal, not at logLevel 3', async () => {
    const args = ['--protocol', 'http', '--connect', `127.0.0.1:${n.port}`, '--log-level', '3'];
    const ok = await runPiped(args, 'GET /index.html HTTP/1.0\r\nAuthorization: Basic c2VjcmV0LW9r\r\nCookie: session=cookie-secret\r\n\r\n');
    expect(ok.stdout.toString('latin1')).toMatch(/^HTTP\/1\.1 200 OK/);
    expect(ok.stderr).toMatch(/kept client=stdin protocol=http state=headers session=[0-9a-f]{12}: Authorization <hidden>/);
    const bad = await runPiped(args, 'GET / HTTP/1.1\r\nHost: t\r\nAuthorization: Basic c2VjcmV0LWJhZA==\n\r\n');
    expect(bad.stdout.toString('latin1')).toMatch(/^HTTP\/1\.1 400 /);
    expect(bad.stderr).toMatch(/code=bare_lf reason="line ended with a bare LF, CRLF required" line="Authorization <hidden>"/);
    for (const secret of ['c2VjcmV0LW9r', 'cookie-secret', 'c2VjcmV0LWJhZA']) expect(ok.stderr + bad.stderr).not.toContain(secret);
  });

  it("inetd's way: the socket as fds 0, 1 and 2; the client gets nginx's response and nothing else", async () => {
    const s = await spawnWithSocket(process.execPath, [WRAPPER, '--protocol', 'http', '--connect', `127.0.0.1:${n.port}`]);
    s.client.end(REQUEST);
    const done = await s.done;
    expect(normalise(done.received.toString('latin1'))).toBe(reference);
    expect(done.code).toBe(0);
  });

  it('systemd-socket-activate --inetd -a: curl gets what it gets from nginx directly', async () => {
    const sa = await socketActivated(['--protocol', 'http', '--connect', `127.0.0.1:${n.port}`]);
    try {
      const plain = (await run('curl', ['-s', '-i', `http://127.0.0.1:${n.port}/index.html`, '-d', 'x', `http://127.0.0.1:${n.port}/echo`], { encoding: 'latin1' })).stdout;
      const via = (await run('curl', ['-s', '-i', `http://127.0.0.1:${sa.port}/index.html`, '-d', 'x', `http://127.0.0.1:${sa.port}/echo`], { encoding: 'latin1' })).stdout;
      expect(normalise(via)).toBe(normalise(plain));
    } finally {
      await sa.stop();
    }
  });

  it('inetutils-inetd with the http entry of inetd.conf.example: nginx answers, a refusal goes to syslog, never to the client', async () => {
    let rs: Rsyslog | null = null;
    const dir = mkdtempSync(join(tmpdir(), 'pw-http-inetd-'));
    try {
      rs = await startRsyslog();
      const port = await freePort();
      const conf = join(dir, 'inetd.conf');
      writeFileSync(conf, inetdConf(readFileSync(join(ROOT, 'inetd.conf.example'), 'utf8'), 'http', { port, wrapper: WRAPPER, user: userInfo().username, connect: `127.0.0.1:${n.port}` }));
      const w = rs.withDevLog(['inetutils-inetd', '-d', `--pidfile=${join(dir, 'inetd.pid')}`, conf]);
      const d = await startDaemon(w.cmd, w.args, port);
      try {
        expect(normalise((await clientSession(port, Buffer.from(REQUEST))).toString('latin1'))).toBe(reference);
        const bad = (await clientSession(port, Buffer.from('GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n'))).toString('latin1');
        expect(bad).toMatch(/^HTTP\/1\.1 400 Bad Request\r\n[^]*\r\n\r\n400 Bad Request\n$/);
        const r = await rs.waitFor((x) => x.program === 'protowrap' && x.msg.includes('reason="more than one Host"'), 'the refusal in syslog');
        expect(r.facility).toBe('daemon');
        expect(r.msg).toContain('client=127.0.0.1 protocol=http state=headers code=bad_syntax');
      } finally {
        await d.stop();
      }
    } finally {
      await rs?.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('xinetd with the shipped xinetd.d/protowrap-http', async () => {
    const xinetd = execFileSync('sh', [join(ROOT, 'test/helpers/fetch-xinetd.sh')], { encoding: 'utf8' }).trim();
    const dir = mkdtempSync(join(tmpdir(), 'pw-http-xinetd-'));
    const port = await freePort();
    const conf = join(dir, 'xinetd.conf');
    writeFileSync(
      conf,
      xinetdConf(readFileSync(join(ROOT, 'xinetd.d/protowrap-http'), 'utf8'), { port, wrapper: WRAPPER, user: userInfo().username, connect: `127.0.0.1:${n.port}` }, join(dir, 'xinetd.log')),
    );
    const d = await startDaemon(xinetd, ['-dontfork', '-f', conf, '-pidfile', join(dir, 'xinetd.pid')], port);
    try {
      const a = n.entries().length;
      const got = normalise((await clientSession(port, Buffer.from(REQUEST))).toString('latin1'));
      expect(got).toBe(reference);
      await waitFor(() => n.entries().length > a, 'nginx to log the request');
      expect(n.entries()[a]!.request).toBe('GET /index.html HTTP/1.1');
    } finally {
      await d.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
