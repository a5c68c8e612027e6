import { spawn } from 'node:child_process';
import { freePort, waitFor, WRAPPER } from './wrapper.js';

export interface SocketActivated {
  readonly port: number;
  /** What the launcher and the wrappers it started wrote to stderr (the wrappers' --log-stderr lines). */
  logs(): string;
  stop(): Promise<void>;
}

/**
 * The built wrapper under the real systemd-socket-activate (`--inetd -a`:
 * one process per connection, the accepted socket on stdin/stdout), as an
 * inetd-mode service on a free loopback port.
 */
export async function socketActivated(wrapperArgs: readonly string[]): Promise<SocketActivated> {
  const port = await freePort();
  const launcher = spawn('systemd-socket-activate', ['--inetd', '-a', '-l', `127.0.0.1:${port}`, '--', process.execPath, WRAPPER, ...wrapperArgs], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let err = '';
  launcher.stderr!.on('data', (b: Buffer) => (err += b.toString('latin1')));
  const stop = () =>
    new Promise<void>((r) => {
      if (launcher.exitCode !== null) return r();
      launcher.once('exit', () => r());
      launcher.kill('SIGTERM');
    });
  try {
    await waitFor(() => err.includes('Listening on') || launcher.exitCode !== null, 'systemd-socket-activate to listen');
  } catch (e) {
    await stop();
    throw e;
  }
  return { port, logs: () => err, stop };
}

export interface SocketDaemon {
  /** The loopback ports systemd-socket-activate listens on, in LISTEN_FDS order (fd 3, 4, ...). */
  readonly ports: readonly number[];
  /** What the launcher and the wrapper (the same process once it execs) wrote to stderr. */
  logs(): string;
  /** The exit code, once the process has exited. */
  readonly exited: Promise<number | null>;
  /** Sends a signal to the process (the wrapper, once the launcher has exec'd it). */
  signal(sig: NodeJS.Signals): void;
  stop(): Promise<void>;
}

/**
 * The built wrapper under the real systemd-socket-activate without --accept
 * (systemd's Accept=no): the launcher listens on `sockets` free loopback
 * ports, and on the first connection execs the wrapper with the listening
 * sockets as fds 3, 4, … (LISTEN_FDS, LISTEN_PID, and LISTEN_FDNAMES from
 * `fdnames`). One process then serves every connection. `prefix` runs the
 * launcher under another command (a /dev/log namespace from rsyslog.ts).
 */
export async function socketActivatedDaemon(
  wrapperArgs: readonly string[],
  opts: { sockets?: number; fdnames?: readonly string[]; prefix?: (argv: readonly string[]) => { cmd: string; args: string[] } } = {},
): Promise<SocketDaemon> {
  const ports: number[] = [];
  for (let i = 0; i < (opts.sockets ?? 1); i++) ports.push(await freePort());
  const argv = [
    'systemd-socket-activate',
    ...ports.flatMap((p) => ['-l', `127.0.0.1:${p}`]),
    ...(opts.fdnames ? [`--fdname=${opts.fdnames.join(':')}`] : []),
    '--',
    process.execPath,
    WRAPPER,
    ...wrapperArgs,
  ];
  const run = opts.prefix ? opts.prefix(argv) : { cmd: argv[0]!, args: argv.slice(1) };
  const launcher = spawn(run.cmd, run.args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  launcher.stderr!.on('data', (b: Buffer) => (err += b.toString('latin1')));
  const exited = new Promise<number | null>((r) => launcher.once('exit', (code) => r(code)));
  const stop = async () => {
    if (launcher.exitCode === null && launcher.signalCode === null) launcher.kill('SIGTERM');
    await exited;
  };
  try {
    await waitFor(() => (err.match(/Listening on/g) ?? []).length >= ports.length || launcher.exitCode !== null, 'systemd-socket-activate to listen');
  } catch (e) {
    await stop();
    throw e;
  }
  return { ports, logs: () => err, exited, signal: (sig) => launcher.kill(sig), stop };
}
