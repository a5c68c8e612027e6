import { spawn, type ChildProcess } from 'node:child_process';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';

/**
 * What inetd does for one connection, in a few lines: accept a TCP
 * connection and start a process with the accepted socket as fds 0, 1 and 2.
 * The test holds the other end, so it sees every byte the process writes to
 * any of those fds.
 */
export interface InetdRun {
  readonly child: ChildProcess;
  /** The test's end of the connection. */
  readonly client: Socket;
  /** Everything the process sent to the client so far. */
  received(): Buffer;
  /** Resolves with the exit code once the process has exited and the client has seen the connection close. */
  readonly done: Promise<{ code: number | null; signal: NodeJS.Signals | null; received: Buffer }>;
}

export async function spawnWithSocket(cmd: string, args: readonly string[], timeoutMs = 20_000): Promise<InetdRun> {
  const server = createServer({ pauseOnConnect: true, allowHalfOpen: true });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const accepted = new Promise<Socket>((r) => server.once('connection', r));
  const client = connect({ port: (server.address() as AddressInfo).port, host: '127.0.0.1', allowHalfOpen: true });
  const chunks: Buffer[] = [];
  client.on('data', (b: Buffer) => chunks.push(b));
  client.on('error', () => {});
  const closed = new Promise<void>((r) => client.once('close', () => r()));
  await new Promise<void>((r) => client.once('connect', () => r()));
  const sock = await accepted;
  server.close();
  const child = spawn(cmd, [...args], { stdio: [sock, sock, sock] });
  // The child holds its own copies of the socket; ours must go, or the
  // client would not see the connection close when the child exits.
  sock.destroy();
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((res, rej) => {
    const t = setTimeout(() => {
      child.kill('SIGKILL');
      rej(new Error(`${cmd} did not exit in time`));
    }, timeoutMs);
    child.once('error', rej);
    child.once('exit', (code, signal) => {
      clearTimeout(t);
      res({ code, signal });
    });
  });
  const done = Promise.all([exited, closed]).then(([e]) => ({ ...e, received: Buffer.concat(chunks) }));
  return { child, client, received: () => Buffer.concat(chunks), done };
}
