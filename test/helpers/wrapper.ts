import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, type AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';

/** The built single-file executable under test (npm test builds it first). */
export const WRAPPER = fileURLToPath(new URL('../../dist/protowrap.js', import.meta.url));

/**
 * Ports handed out by freePort(): below Linux's ephemeral range (32768 and
 * up), so that no outgoing connection of this or any process takes one as its
 * source port between freePort() and the server's bind, and a block of its
 * own for each vitest worker (VITEST_POOL_ID), so that two files running at
 * once never get the same one; each file starts at a random place in its
 * worker's block, so the next file in that worker does not at once reuse the
 * ports the last one let go. A port something else holds is skipped.
 */
const PORT_BLOCK = 600;
const POOL = Number(process.env['VITEST_POOL_ID'] ?? 1 + (process.pid % 15));
const PORT_BASE = 20000 + ((POOL - 1) % 16) * PORT_BLOCK;
let nextPort = PORT_BASE + Math.floor(Math.random() * PORT_BLOCK);

function canListen(port: number): Promise<boolean> {
  return new Promise((res) => {
    const s = createServer();
    s.once('error', () => res(false));
    s.listen(port, '127.0.0.1', () => s.close(() => res(true)));
  });
}

/** A free TCP port on loopback, for a server a test starts (see PORT_BASE). */
export async function freePort(): Promise<number> {
  for (let tries = 0; tries < PORT_BLOCK; tries++) {
    const port = nextPort;
    nextPort = nextPort + 1 >= PORT_BASE + PORT_BLOCK ? PORT_BASE : nextPort + 1;
    if (await canListen(port)) return port;
  }
  // Every port of the block is taken: let the kernel pick one.
  return new Promise((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as AddressInfo).port;
      s.close(() => res(port));
    });
  });
}

export interface PipedRun {
  /** Bytes the wrapper wrote to its stdout (what the client received). */
  stdout: Buffer;
  /** Log lines from --log-stderr. */
  stderr: string;
  code: number | null;
  signal: NodeJS.Signals | null;
}

/**
 * Runs the wrapper in inetd mode with stdin/stdout as pipes (a session piped
 * in by hand). Adds --log-stderr so the test can read the log.
 */
export function runPiped(args: readonly string[], input: Buffer | string, opts: { timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}): Promise<PipedRun> {
  return new Promise((res, rej) => {
    const child = spawn(process.execPath, [WRAPPER, '--log-stderr', ...args], { stdio: ['pipe', 'pipe', 'pipe'], env: opts.env ?? process.env });
    const out: Buffer[] = [];
    let err = '';
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => (err += b.toString('latin1')));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      rej(new Error(`wrapper did not exit in time; stderr so far:\n${err}`));
    }, opts.timeoutMs ?? 20_000);
    child.on('error', rej);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      res({ stdout: Buffer.concat(out), stderr: err, code, signal });
    });
    child.stdin.on('error', () => {});
    child.stdin.end(input);
  });
}

export interface Standalone {
  readonly child: ChildProcess;
  readonly port: number;
  /** Log lines so far (--log-stderr). */
  logs(): string;
  stop(): Promise<void>;
}

/**
 * Starts the wrapper as a standalone daemon on a free loopback port and waits until it listens.
 * stop() (SIGTERM) closes open sessions at once: --shutdown-grace 0 unless args set it
 * (test/e2e/daemon-signals.test.ts tests the grace).
 */
export async function startStandalone(args: readonly string[]): Promise<Standalone> {
  // freePort() is a guess: another test may bind the port before the wrapper does (EADDRINUSE); then try another.
  for (let attempt = 1; ; attempt++) {
    const started = await tryStandalone(args);
    if (started !== 'port_taken') return started;
    if (attempt === 3) throw new Error('wrapper could not listen: three ports taken in a row');
  }
}

async function tryStandalone(args: readonly string[]): Promise<Standalone | 'port_taken'> {
  const port = await freePort();
  const grace = args.includes('--shutdown-grace') ? [] : ['--shutdown-grace', '0'];
  const child = spawn(process.execPath, [WRAPPER, '--log-stderr', '--listen', `127.0.0.1:${port}`, ...grace, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (b: Buffer) => (err += b.toString('latin1')));
  const deadline = Date.now() + 10_000;
  while (!err.includes('listening on')) {
    if (child.exitCode !== null) {
      if (err.includes('EADDRINUSE')) return 'port_taken';
      throw new Error(`wrapper exited ${child.exitCode}: ${err}`);
    }
    if (Date.now() > deadline) throw new Error(`wrapper did not listen: ${err}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  return {
    child,
    port,
    logs: () => err,
    stop: () =>
      new Promise<void>((r) => {
        if (child.exitCode !== null) return r();
        child.once('exit', () => r());
        child.kill('SIGTERM');
      }),
  };
}

/** Waits until cond() is true, polling; throws with the message after timeoutMs. */
export async function waitFor(cond: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
