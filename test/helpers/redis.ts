import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, type Server, type Socket } from 'node:net';
import { freePort } from './wrapper.js';

/**
 * A real Redis 7 (Debian redis-server) on a loopback port, in the foreground,
 * with no persistence; stopped by its pid. start() again brings it back on
 * the same port (a Redis killed mid-run and restarted).
 */
export interface Redis {
  readonly port: number;
  readonly url: string;
  /** Kills the server (SIGKILL: an outage, not a clean shutdown) and waits for its exit. */
  kill(): Promise<void>;
  /** Starts it again on the same port (empty: nothing was saved). */
  start(): Promise<void>;
  stop(): Promise<void>;
  output(): string;
}

const START_TIMEOUT_MS = 15_000;

export async function startRedis(): Promise<Redis> {
  const port = await freePort();
  let child: ChildProcess | null = null;
  let out = '';
  const start = async () => {
    const c = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: ['ignore', 'pipe', 'pipe'] });
    child = c;
    const from = out.length;
    c.stdout!.on('data', (b: Buffer) => (out += b.toString('latin1')));
    c.stderr!.on('data', (b: Buffer) => (out += b.toString('latin1')));
    const deadline = Date.now() + START_TIMEOUT_MS;
    while (!out.slice(from).includes('Ready to accept connections')) {
      if (c.exitCode !== null) throw new Error(`redis-server exited ${c.exitCode}: ${out}`);
      if (Date.now() > deadline) throw new Error(`redis-server did not start: ${out}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  const kill = () =>
    new Promise<void>((r) => {
      const c = child;
      child = null;
      if (!c || c.exitCode !== null || c.signalCode !== null) return r();
      c.once('exit', () => r());
      c.kill('SIGKILL');
    });
  await start();
  return { port, url: `redis://127.0.0.1:${port}`, kill, start, stop: kill, output: () => out };
}

/** One command to the real Redis through redis-cli (what the test checks the store wrote). */
export async function redisCli(port: number, ...args: string[]): Promise<string> {
  const c = spawn('redis-cli', ['-p', String(port), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  c.stdout!.on('data', (b: Buffer) => (out += b.toString('latin1')));
  c.stderr!.on('data', (b: Buffer) => (out += b.toString('latin1')));
  await new Promise((r) => c.once('close', r));
  return out.trim();
}

/**
 * A TCP listener that accepts and never answers: a Redis that hangs (no real
 * Redis can be made to do that on demand). It counts its connections.
 */
export interface SilentListener {
  readonly port: number;
  connections(): number;
  /** Bytes it was sent, all connections. */
  received(): string;
  stop(): Promise<void>;
}

export async function silentListener(): Promise<SilentListener> {
  const socks = new Set<Socket>();
  let n = 0;
  let got = '';
  const server: Server = createServer((s) => {
    n++;
    socks.add(s);
    s.on('data', (b: Buffer) => (got += b.toString('latin1')));
    s.on('error', () => {});
    s.on('close', () => socks.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as { port: number }).port;
  return {
    port,
    connections: () => n,
    received: () => got,
    stop: () =>
      new Promise<void>((r) => {
        for (const s of socks) s.destroy();
        server.close(() => r());
      }),
  };
}
