import { createServer, type Server, type Socket } from 'node:net';
import type { Config } from '../config.js';
import type { Logger } from '../log/logger.js';
import { normaliseAddress } from './address.js';
import { Channel } from './channel.js';
import { Session } from './session.js';

/**
 * Standalone mode (seed: standalone, listenPort): one process serves many
 * connections with the same Session code as inetd mode. maxConnections
 * bounds memory and file descriptors against a connection flood.
 */
export class Listener {
  private readonly server: Server;
  private readonly sessions = new Set<Session>();

  constructor(
    private readonly cfg: Config,
    private readonly log: Logger,
  ) {
    this.server = createServer({ allowHalfOpen: true, pauseOnConnect: true, noDelay: true }, (sock) => this.accept(sock));
  }

  listen(): Promise<{ address: string; port: number }> {
    const l = this.cfg.listen!;
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen({ port: l.port, host: l.host ?? undefined }, () => {
        this.server.removeListener('error', reject);
        this.server.on('error', (e) => this.log.log('err', `listener error: ${e.message}`));
        const a = this.server.address();
        resolve(typeof a === 'object' && a ? { address: a.address, port: a.port } : { address: String(a), port: l.port });
      });
    });
  }

  private accept(sock: Socket): void {
    const address = normaliseAddress(sock.remoteAddress);
    if (this.sessions.size >= this.cfg.maxConnections) {
      this.log.log('warning', `refused connection client=${address}: ${this.sessions.size} sessions open (maxConnections)`);
      sock.destroy();
      return;
    }
    const session = new Session(new Channel(sock, sock), address, this.cfg, this.log);
    this.sessions.add(session);
    void session.start().then(() => this.sessions.delete(session));
  }

  /** Stop accepting, close the open sessions, resolve when all are gone. */
  async close(): Promise<void> {
    // server.close() calls back only once every connection is gone.
    const closed = new Promise<void>((r) => this.server.close(() => r()));
    const open = [...this.sessions];
    for (const s of open) s.shutdown();
    await Promise.all(open.map((s) => s.done));
    await closed;
  }
}
