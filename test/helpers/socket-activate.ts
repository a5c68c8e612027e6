import { spawn } from 'node:child_process';
import { freePort, waitFor, WRAPPER } from './wrapper.js';

export interface SocketActivated {
  readonly port: number;
  stop(): void;
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
  launcher.stderr!.on('data', (b: Buffer) => (err += b.toString()));
  try {
    await waitFor(() => err.includes('Listening on'), 'systemd-socket-activate to listen');
  } catch (e) {
    launcher.kill('SIGTERM');
    throw e;
  }
  return { port, stop: () => launcher.kill('SIGTERM') };
}
