import { connect, type Socket } from 'node:net';

/** A real TCP client that records what it receives and when the server half-closes. */
export interface TestClient {
  readonly sock: Socket;
  received(): Buffer;
  /** Resolves when the peer has closed its sending side (EOF). */
  readonly eof: Promise<void>;
  /** Resolves when the socket is fully closed. */
  readonly closed: Promise<void>;
  waitFor(text: string, timeoutMs?: number): Promise<void>;
}

export function tcpClient(port: number, host = '127.0.0.1'): Promise<TestClient> {
  return new Promise((resolve, reject) => {
    const sock = connect({ port, host, allowHalfOpen: true });
    const chunks: Buffer[] = [];
    let eofR: () => void = () => {};
    let closedR: () => void = () => {};
    const eof = new Promise<void>((r) => (eofR = r));
    const closed = new Promise<void>((r) => (closedR = r));
    sock.on('data', (b: Buffer) => chunks.push(b));
    sock.on('end', () => eofR());
    sock.on('close', () => {
      eofR();
      closedR();
    });
    sock.on('error', () => {});
    sock.once('connect', () =>
      resolve({
        sock,
        received: () => Buffer.concat(chunks),
        eof,
        closed,
        waitFor: async (text, timeoutMs = 10_000) => {
          const deadline = Date.now() + timeoutMs;
          while (!Buffer.concat(chunks).toString('latin1').includes(text)) {
            if (Date.now() > deadline) throw new Error(`timed out waiting for ${JSON.stringify(text)}; got ${JSON.stringify(Buffer.concat(chunks).toString('latin1'))}`);
            await new Promise((r) => setTimeout(r, 10));
          }
        },
      }),
    );
    sock.once('error', reject);
  });
}
