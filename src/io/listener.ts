import { createServer, type Server, type Socket } from 'node:net';
import type { Config } from '../config.js';
import type { Logger } from '../log/logger.js';
import { normaliseAddress } from './address.js';
import { prepareClient } from './accept.js';
import type { HoldStore } from '../core/hold.js';
import { processHoldStore } from './hold-store.js';
import { Session } from './session.js';
import type { ClientTlsContext } from './tls.js';

/**
 * Standalone mode (seed: standalone, listenPort): one process serves many
 * connections with the same Session code as inetd mode. maxConnections
 * bounds memory and file descriptors against a connection flood.
 */
export class Listener {
  private readonly server: Server;
  private readonly sessions = new Set<Session>();
  /** TLS toward the client (set by main); re-read on SIGHUP (reloadTls). */
  tls: ClientTlsContext | null = null;
  /** All sessions share one budget for held bodies. */
  private readonly holdStore: HoldStore | undefined;

  constructor(
    private readonly cfg: Config,
    private readonly log: Logger,
  ) {
    this.holdStore = processHoldStore(cfg, log);
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
    // A listed proxy's header is read first (bounded by PROXY_HEADER_DEADLINE_MS);
    // an unlisted peer's connection is ready at once.
    void prepareClient(sock, this.cfg, this.log, 'unknown', this.tls).then((client) => {
      if (!client) return;
      // The listener closed while the header was read: no new session.
      if (!this.server.listening) {
        client.channel.destroy();
        return;
      }
      const session = new Session(client.channel, client.address, this.cfg, this.log, this.holdStore);
      if (this.tls) session.enableStartTls(this.tls);
      this.sessions.add(session);
      void session.start().then(() => this.sessions.delete(session));
    });
  }

  /** SIGHUP: re-read the certificate and key; new connections use them, open sessions keep theirs. */
  reloadTls(): void {
    if (!this.tls) return;
    const err = this.tls.reload();
    if (err) this.log.log('err', `TLS certificate not reloaded, the old one stays: ${err}`);
    else this.log.log('notice', 'TLS certificate and key reloaded');
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
