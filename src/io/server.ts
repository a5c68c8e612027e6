import { spawn } from 'node:child_process';
import { connect, type Socket } from 'node:net';
import type { Destination } from '../config.js';
import { ProtowrapError } from '../errors.js';
import { Channel } from './channel.js';
import { upgradeServer, type ServerTlsPlan } from './server-tls.js';
import { SocketServer } from './socket-server.js';

/** Most bytes of one stderr line of a spawned server kept for the log. */
const MAX_STDERR_LINE = 512;
/** Most stderr lines of one spawned server logged; the rest are counted. */
const MAX_STDERR_LINES = 200;
/** How long a spawned server may take to exit after its stdin is closed. */
export const CHILD_EXIT_GRACE_MS = 5000;

export interface ServerConnection {
  readonly channel: Channel;
  /** For logs: tcp:host:port, unix:/path, exec:argv0. */
  readonly describe: string;
  /** Spawned servers only: settles when the child has been reaped. */
  readonly exited: Promise<string> | null;
  /** True once a spawned server has exited. */
  hasExited(): boolean;
  /** Ends the server for good: closes the socket, or TERMs (then KILLs) the child. */
  stop(): void;
}

export function describeDest(dest: Destination): string {
  switch (dest.type) {
    case 'tcp':
      return dest.host.includes(':') ? `tcp:[${dest.host}]:${dest.port}` : `tcp:${dest.host}:${dest.port}`;
    case 'unix':
      return `unix:${dest.path}`;
    case 'exec':
      return `exec:${dest.argv.join(' ')}`;
    default: {
      const never: never = dest;
      throw new Error(`unknown destination ${JSON.stringify(never)}`);
    }
  }
}

/** What the server gets before the session's first byte. */
export interface ServerPrelude {
  /**
   * A PROXY header (proxyToServer), written right after the connect, before
   * anything else: on a TCP or unix socket, or a spawned server's stdin.
   */
  readonly proxyHeader?: Buffer | null;
  /** TLS toward the server (serverTls), after the PROXY header; an error when it cannot work (no server is dialled). */
  readonly tls?: ServerTlsPlan | ProtowrapError | null;
}

/**
 * Reaches the real server. Rejects with PW_ERR_SERVER_UNAVAILABLE when it
 * cannot be reached in time or the command cannot be started.
 */
export function connectServer(dest: Destination, timeoutMs: number, onStderr: (line: string) => void, prelude: ServerPrelude = {}): Promise<ServerConnection> {
  if (prelude.tls instanceof ProtowrapError) return Promise.reject(prelude.tls);
  return dest.type === 'exec' ? spawnServer(dest.argv, timeoutMs, onStderr, prelude) : dialServer(dest, timeoutMs, prelude);
}

function dialServer(dest: Extract<Destination, { type: 'tcp' | 'unix' }>, timeoutMs: number, prelude: ServerPrelude): Promise<ServerConnection> {
  const describe = describeDest(dest);
  return new Promise((resolve, reject) => {
    const sock: Socket =
      dest.type === 'tcp'
        ? connect({ host: dest.host, port: dest.port, allowHalfOpen: true, noDelay: true })
        : connect({ path: dest.path, allowHalfOpen: true });
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new ProtowrapError('PW_ERR_SERVER_UNAVAILABLE', `${describe}: no connection after ${timeoutMs} ms`));
    }, timeoutMs);
    sock.once('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(new ProtowrapError('PW_ERR_SERVER_UNAVAILABLE', `${describe}: ${err.code ?? err.message}`, { cause: err }));
    });
    sock.once('connect', () => {
      clearTimeout(timer);
      sock.removeAllListeners('error');
      if (prelude.proxyHeader) sock.write(prelude.proxyHeader);
      if (prelude.tls && !(prelude.tls instanceof ProtowrapError)) {
        upgradeServer(sock, prelude.tls, timeoutMs, describe).then(resolve, reject);
        return;
      }
      resolve(new SocketServer(sock, describe));
    });
  });
}

function spawnServer(argv: readonly string[], timeoutMs: number, onStderr: (line: string) => void, prelude: ServerPrelude): Promise<ServerConnection> {
  const describe = `exec:${argv[0]}`;
  return new Promise((resolve, reject) => {
    // Its own process group, so that stop() reaches what a shell wrapper (sh -c) started too.
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ['pipe', 'pipe', 'pipe'], detached: true });
    const kill = (sig: NodeJS.Signals) => {
      try {
        process.kill(-child.pid!, sig);
      } catch {
        child.kill(sig);
      }
    };
    let exited = false;
    let settle: (s: string) => void = () => {};
    const exitedP = new Promise<string>((r) => (settle = r));
    child.once('exit', (code, signal) => {
      exited = true;
      settle(signal ? `killed by ${signal}` : `exit ${code}`);
    });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new ProtowrapError('PW_ERR_SERVER_UNAVAILABLE', `${describe}: did not start in ${timeoutMs} ms`));
    }, timeoutMs);
    child.once('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      exited = true;
      settle(`failed: ${err.code ?? err.message}`);
      reject(new ProtowrapError('PW_ERR_SERVER_UNAVAILABLE', `${describe}: ${err.code ?? err.message}`, { cause: err }));
    });
    child.once('spawn', () => {
      clearTimeout(timer);
      child.removeAllListeners('error');
      child.on('error', () => {}); // a failed kill() after exit: nothing to do
      // EPIPE when the server exits while we write: the session sees the close.
      child.stdin.on('error', () => {});
      if (prelude.proxyHeader) child.stdin.write(prelude.proxyHeader);
      pipeStderr(child.stderr, onStderr);
      let killTimer: NodeJS.Timeout | null = null;
      resolve({
        channel: new Channel(child.stdout, child.stdin, () => {
          child.stdin.destroy();
          child.stdout.destroy();
        }),
        describe,
        exited: exitedP,
        hasExited: () => exited,
        stop: () => {
          if (exited || killTimer) return;
          child.stdin.destroy();
          kill('SIGTERM');
          killTimer = setTimeout(() => kill('SIGKILL'), CHILD_EXIT_GRACE_MS);
          killTimer.unref();
          void exitedP.then(() => killTimer && clearTimeout(killTimer));
        },
      });
    });
  });
}

/**
 * A spawned server's stderr goes to the log, line by line, bounded; never to
 * the client. A line is cut at MAX_STDERR_LINE bytes (the rest of it, up to
 * its newline, is dropped), and at most MAX_STDERR_LINES lines are logged.
 */
function pipeStderr(stream: NodeJS.ReadableStream, onLine: (line: string) => void): void {
  let buf = '';
  let discarding = false;
  let lines = 0;
  let dropped = 0;
  const emit = (s: string) => {
    if (lines < MAX_STDERR_LINES) {
      lines++;
      onLine(s);
    } else dropped++;
  };
  stream.setEncoding('latin1');
  stream.on('data', (chunk: string) => {
    let pos = 0;
    while (pos < chunk.length) {
      const nl = chunk.indexOf('\n', pos);
      const end = nl < 0 ? chunk.length : nl;
      if (!discarding) {
        buf += chunk.slice(pos, Math.min(end, pos + MAX_STDERR_LINE - buf.length));
        if (buf.length >= MAX_STDERR_LINE && nl < 0) {
          emit(buf);
          buf = '';
          discarding = true;
        } else if (nl >= 0) {
          emit(buf);
          buf = '';
        }
      }
      if (nl < 0) break;
      discarding = false;
      pos = nl + 1;
    }
  });
  stream.on('end', () => {
    if (buf.length > 0) emit(buf);
    if (dropped > 0) onLine(`(${dropped} more stderr lines not logged)`);
  });
}
