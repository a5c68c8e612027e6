import { spawn } from 'node:child_process';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { startDaemon, type Daemon } from './superservers.js';
import { freePort, waitFor } from './wrapper.js';

/**
 * The real oidentd (2.5) on a free loopback port, in the foreground, logging
 * to stderr with -d: it logs every request it reads, a lookup as
 * `Successful lookup: <ports> : <user>` and anything else as
 * `Malformed request`, which is how a test sees what the server received.
 */
export interface Oidentd {
  readonly port: number;
  /** oidentd's log lines so far. */
  log(): string[];
  stop(): Promise<void>;
}

export async function startOidentd(extra: readonly string[] = []): Promise<Oidentd> {
  const port = await freePort();
  const d: Daemon = await startDaemon('oidentd', ['-i', '-S', '-d', '-a', '127.0.0.1', '-p', String(port), '-u', 'nobody', '-g', 'nogroup', ...extra], port);
  return { port, log: () => d.output().split('\n').filter((l) => l !== ''), stop: () => d.stop() };
}

/** A real TCP connection on loopback whose ends the test knows: the listening side's port and the connecting side's. */
export interface Connection {
  /** The accepted end's local port (the listener's port). */
  readonly listenPort: number;
  /** The connecting end's local port. */
  readonly dialPort: number;
  close(): Promise<void>;
}

async function listen(): Promise<{ server: Server; port: number; accepted: Promise<Socket> }> {
  const server = createServer();
  const accepted = new Promise<Socket>((r) => server.once('connection', r));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return { server, port: (server.address() as AddressInfo).port, accepted };
}

/** Both ends owned by this process (root in the tests). */
export async function ownConnection(): Promise<Connection> {
  const { server, port, accepted } = await listen();
  const dial = connect({ port, host: '127.0.0.1' });
  await new Promise<void>((r) => dial.once('connect', () => r()));
  const peer = await accepted;
  return {
    listenPort: port,
    dialPort: dial.localPort!,
    close: async () => {
      dial.destroy();
      peer.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/** The connecting end opened by a process running as nobody (setpriv), the listening end ours. */
export async function nobodyConnection(): Promise<Connection> {
  const { server, port, accepted } = await listen();
  const child = spawn(
    'setpriv',
    ['--reuid=nobody', '--regid=nogroup', '--clear-groups', '/usr/bin/python3', '-c', 'import socket,sys,time\ns=socket.create_connection(("127.0.0.1",int(sys.argv[1])))\nprint(s.getsockname()[1],flush=True)\ntime.sleep(120)', String(port)],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  let out = '';
  child.stdout!.on('data', (b: Buffer) => (out += b.toString()));
  const failed = new Promise<never>((_, rej) => child.once('exit', (code) => rej(new Error(`the nobody process exited (${code}) before it connected`))));
  const peer = await Promise.race([accepted, failed]);
  await waitFor(() => out.includes('\n'), 'the nobody process to report its port');
  return {
    listenPort: port,
    dialPort: Number(out.trim()),
    close: async () => {
      peer.destroy();
      const exited = new Promise<void>((r) => child.once('exit', () => r()));
      child.kill('SIGKILL');
      await exited;
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
