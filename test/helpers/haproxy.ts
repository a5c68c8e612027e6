import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tcpClient } from './client.js';
import { freePort } from './wrapper.js';

/**
 * A real HAProxy 2.6 (Debian haproxy) in TCP mode in front of a backend on
 * loopback, started in the foreground (-db) from a private temp dir, and
 * stopped by its pid. `send` is the server line's PROXY option.
 */
export interface Haproxy {
  readonly port: number;
  /** HAProxy's own output (-db: its log and warnings on stderr). */
  output(): string;
  stop(): Promise<void>;
}

const START_TIMEOUT_MS = 15_000;

/** backendPort: one backend, or several (HAProxy's default roundrobin between them). */
export async function startHaproxy(backendPort: number | readonly number[], send: 'send-proxy' | 'send-proxy-v2'): Promise<Haproxy> {
  const backends = typeof backendPort === 'number' ? [backendPort] : backendPort;
  const dir = mkdtempSync(join(tmpdir(), 'pw-haproxy-'));
  const port = await freePort();
  const cfg = join(dir, 'haproxy.cfg');
  writeFileSync(
    cfg,
    [
      'global',
      '  maxconn 100',
      'defaults',
      '  mode tcp',
      '  timeout connect 5s',
      '  timeout client 30s',
      '  timeout server 30s',
      'frontend fe',
      `  bind 127.0.0.1:${port}`,
      '  default_backend be',
      'backend be',
      ...backends.map((p, i) => `  server s${i + 1} 127.0.0.1:${p} ${send}`),
      '',
    ].join('\n'),
  );
  const child: ChildProcess = spawn('haproxy', ['-db', '-f', cfg], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (b: Buffer) => (out += b.toString('latin1')));
  child.stderr!.on('data', (b: Buffer) => (out += b.toString('latin1')));
  const deadline = Date.now() + START_TIMEOUT_MS;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`haproxy exited ${child.exitCode}: ${out}`);
    try {
      // A connect that HAProxy accepts (it then dials the backend: a harmless extra connection).
      const c = await tcpClient(port);
      c.sock.destroy();
      break;
    } catch {
      if (Date.now() > deadline) throw new Error(`haproxy did not listen: ${out}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  return {
    port,
    output: () => out,
    stop: () =>
      new Promise<void>((r) => {
        const done = () => {
          rmSync(dir, { recursive: true, force: true });
          r();
        };
        if (child.exitCode !== null) return done();
        child.once('exit', done);
        child.kill('SIGTERM');
      }),
  };
}
