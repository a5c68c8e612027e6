import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './wrapper.js';

/** One request as nginx parsed it, from its access log. */
export interface NginxEntry {
  readonly request: string;
  readonly status: number;
  readonly requestLength: number;
  readonly contentLength: string;
  /** $request_body (only for the proxied /echo location), JSON-unescaped. */
  readonly body: string;
  readonly connection: number;
  readonly connectionRequests: number;
}

export interface Nginx {
  readonly port: number;
  readonly dir: string;
  /** The document root (files for GET; PUT stores under /upload/). */
  readonly root: string;
  entries(): NginxEntry[];
  stop(): Promise<void>;
}

/**
 * A real nginx on a free loopback port, everything inside a temp dir: a
 * static root, a WebDAV PUT location (/upload/, bodies stored as files), an
 * echo location (/echo: the body is read by a proxy to a second server
 * block, so that the access log records $request_body), and an access log
 * that records exactly which requests nginx parsed ($request,
 * $request_length, $content_length, the connection and its request count).
 */
export async function startNginx(): Promise<Nginx> {
  const dir = mkdtempSync(join(tmpdir(), 'pw-nginx-'));
  const root = join(dir, 'www');
  mkdirSync(join(root, 'upload'), { recursive: true });
  mkdirSync(join(dir, 'tmp'));
  const port = await freePort();
  const sink = await freePort();
  const log = join(dir, 'access.log');
  writeFileSync(
    join(dir, 'nginx.conf'),
    `user root root;
worker_processes 1;
error_log ${dir}/error.log info;
pid ${dir}/nginx.pid;
events { worker_connections 128; }
http {
  client_body_temp_path ${dir}/tmp/body;
  proxy_temp_path ${dir}/tmp/proxy;
  fastcgi_temp_path ${dir}/tmp/fastcgi;
  uwsgi_temp_path ${dir}/tmp/uwsgi;
  scgi_temp_path ${dir}/tmp/scgi;
  default_type text/plain;
  log_format pw escape=json '{"request":"$request","status":$status,"requestLength":$request_length,"contentLength":"$content_length","body":"$request_body","connection":$connection,"connectionRequests":$connection_requests}';
  server {
    listen 127.0.0.1:${port};
    access_log ${log} pw;
    root ${root};
    client_body_buffer_size 1m;
    client_max_body_size 10m;
    location /upload/ {
      dav_methods PUT DELETE;
      create_full_put_path on;
    }
    location /echo {
      proxy_pass http://127.0.0.1:${sink}/;
    }
  }
  server {
    listen 127.0.0.1:${sink};
    access_log off;
    location / { return 200 "echo ok\\n"; }
  }
}
`,
  );
  writeFileSync(join(root, 'index.html'), '<html><body>hello from nginx</body></html>\n');
  writeFileSync(join(root, 'big.bin'), Buffer.alloc(300_000, 'x'));
  const child: ChildProcess = spawn('nginx', ['-c', join(dir, 'nginx.conf'), '-p', dir, '-g', 'daemon off;'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (b: Buffer) => (err += b.toString()));
  await waitListening(port, child, () => err);
  return {
    port,
    dir,
    root,
    entries: () =>
      existsSync(log)
        ? readFileSync(log, 'utf8')
            .split('\n')
            .filter((l) => l.length > 0)
            .map((l) => JSON.parse(l) as NginxEntry)
        : [],
    stop: () =>
      new Promise<void>((r) => {
        const done = () => {
          rmSync(dir, { recursive: true, force: true });
          r();
        };
        if (child.exitCode !== null) return done();
        child.once('exit', done);
        child.kill('SIGQUIT');
        setTimeout(() => child.kill('SIGKILL'), 5000).unref();
      }),
  };
}

/** Waits until something accepts on the port (nginx, lighttpd). */
export async function waitListening(port: number, child: ChildProcess, why: () => string): Promise<void> {
  const { connect } = await import('node:net');
  const deadline = Date.now() + 15_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`server exited ${child.exitCode}: ${why()}`);
    const ok = await new Promise<boolean>((r) => {
      const s = connect(port, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        r(true);
      });
      s.once('error', () => r(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`server did not listen on ${port}: ${why()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
