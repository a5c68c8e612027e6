import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';

/**
 * A recording TCP server for the generic protocol, where no real server's
 * behaviour is at stake: it sends an optional banner, records every byte it
 * receives per connection, and can echo.
 */
export interface Recorder {
  readonly port: number;
  readonly server: Server;
  /** Bytes received, one Buffer per connection, in arrival order. */
  received(): Buffer[];
  /** Resolves when a connection's client side has ended (half-close seen). */
  ended(): Promise<void>;
  close(): Promise<void>;
}

export async function startRecorder(opts: { banner?: string; echo?: boolean; closeAfterBanner?: boolean } = {}): Promise<Recorder> {
  const conns: Buffer[][] = [];
  let endResolve: () => void = () => {};
  const endP = new Promise<void>((r) => (endResolve = r));
  const sockets = new Set<Socket>();
  const server = createServer({ allowHalfOpen: true }, (sock) => {
    sockets.add(sock);
    const chunks: Buffer[] = [];
    conns.push(chunks);
    if (opts.banner) sock.write(opts.banner);
    if (opts.closeAfterBanner) {
      sock.end();
    }
    sock.on('data', (b: Buffer) => {
      chunks.push(b);
      if (opts.echo && !sock.writableEnded) sock.write(b);
    });
    sock.on('end', () => {
      endResolve();
      if (!sock.writableEnded) sock.end();
    });
    sock.on('error', () => {});
    sock.on('close', () => sockets.delete(sock));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    port: (server.address() as AddressInfo).port,
    server,
    received: () => conns.map((c) => Buffer.concat(c)),
    ended: () => endP,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}
