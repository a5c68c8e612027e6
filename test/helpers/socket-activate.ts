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
