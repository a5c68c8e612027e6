import { execFile } from 'node:child_process';
import { connect, type Socket } from 'node:net';
import { promisify } from 'node:util';
import { waitFor } from './wrapper.js';

/** Real clients for the end-to-end tests, and a raw socket that shows what crossed the wire. */
const run = promisify(execFile);

/** python3 with a stdlib client; returns stdout. */
export async function py(code: string, ...args: string[]): Promise<string> {
  const { stdout } = await run('python3', ['-c', code, ...args], { encoding: 'latin1', timeout: 20_000 });
  return stdout;
}

export async function curl(...args: string[]): Promise<string> {
  const { stdout } = await run('curl', ['-sS', '--max-time', '15', ...args], { encoding: 'latin1', timeout: 20_000 });
  return stdout;
}

/** A raw TCP client: what crossed the wire, byte for byte. */
export interface Raw {
  send(s: string): void;
  received(): string;
  until(text: string): Promise<void>;
  readonly closed: Promise<void>;
  end(): void;
}

export function raw(port: number): Promise<Raw> {
  return new Promise((resolve, reject) => {
    const sock: Socket = connect({ host: '127.0.0.1', port });
    let got = '';
    let closedR: () => void = () => {};
    const closed = new Promise<void>((r) => (closedR = r));
    sock.on('data', (b: Buffer) => (got += b.toString('latin1')));
    sock.on('close', () => closedR());
    sock.on('error', () => {});
    sock.once('error', reject);
    sock.once('connect', () =>
      resolve({
        send: (s) => sock.write(Buffer.from(s, 'latin1')),
        received: () => got,
        until: (text) => waitFor(() => got.includes(text), `${JSON.stringify(text)} in ${JSON.stringify(got)}`),
        closed,
        end: () => sock.end(),
      }),
    );
  });
}
