import { createServer, type Server, type Socket } from 'node:net';
import type { Config, ListenAddress } from '../config.js';
import type { Logger } from '../log/logger.js';
import { normaliseAddress } from './address.js';
import { prepareClient } from './accept.js';
import type { HoldStore } from '../core/hold.js';
import { processHoldStore } from './hold-store.js';
import { Session } from './session.js';
import type { ClientTlsContext } from './tls.js';
import type { AuthGate } from './auth-gate.js';

/** Where a listener takes connections: an address it binds, or a socket systemd passed (Accept=no). */
export type ListenTarget =
  | { readonly kind: 'address'; readonly address: ListenAddress }
  | { readonly kind: 'fd'; readonly fd: number; readonly name: string | null };

/**
 * Standalone mode (seed: standalone, listenPort): one process serves many
 * connections with the same Session code as inetd mode. maxConnections
 * bounds memory and file descriptors against a connection flood.
 *
 * The configuration can be replaced (SIGHUP, see update()): a session keeps
 * the one it started with, new connections get the new one.
 */
export class Listener {
  private readonly server: Server;
  private readonly sessions = new Set<Session>();
  /** All sessions of one configuration share one budget for held bodies. */
  private holdStore: HoldStore | undefined;
  /** Ends the shutdown grace early (a second SIGTERM). */
  private hurry: (() => void) | null = null;

  constructor(
    private cfg: Config,
    private log: Logger,
    /** TLS toward the client; null: none. */
    private tls: ClientTlsContext | null,
    readonly target: ListenTarget,
    /** Failed logins counted across sessions (maxAuthFailures), shared by the daemon's listeners; null: none. */
    private gate: AuthGate | null,
    /** Worker processes sharing this listener: each takes ceil(maxConnections / workers). */
    private readonly workers = 1,
  ) {
    this.holdStore = processHoldStore(cfg, this.log);
    this.server = createServer({ allowHalfOpen: true, pauseOnConnect: true, noDelay: true }, (sock) => this.accept(sock));
  }

  get config(): Config {
    return this.cfg;
  }

  /** Starts listening; resolves with where, as the log shows it. */
  listen(): Promise<string> {
    const t = this.target;
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      const ready = () => {
        this.server.removeListener('error', reject);
        this.server.on('error', (e) => this.log.log('err', `listener error: ${e.message}`));
        const a = this.server.address();
        const where = typeof a === 'object' && a ? `${a.address}:${a.port}` : String(a);
        resolve(t.kind === 'fd' ? `${where} (systemd socket fd ${t.fd}${t.name ? ` ${t.name}` : ''})` : where);
      };
      if (t.kind === 'fd') this.server.listen({ fd: t.fd }, ready);
      else this.server.listen({ port: t.address.port, host: t.address.host ?? undefined }, ready);
    });
  }

  private accept(sock: Socket): void {
    const address = normaliseAddress(sock.remoteAddress);
    const cfg = this.cfg;
    const log = this.log;
    const tls = this.tls;
    const holdStore = this.holdStore;
    const gate = this.gate;
    if (this.sessions.size >= Math.ceil(cfg.maxConnections / this.workers)) {
      const share = this.workers > 1 ? ` in this worker (maxConnections ${cfg.maxConnections} over ${this.workers} workers)` : ' (maxConnections)';
      log.event('warning', 'refused_connection', { client: address, message: `${this.sessions.size} sessions open${share}` });
      sock.destroy();
      return;
    }
    // A listed proxy's header is read first (bounded by PROXY_HEADER_DEADLINE_MS);
    // an unlisted peer's connection is ready at once.
    void prepareClient(sock, cfg, this.log, 'unknown', tls).then((client) => {
      if (!client) return;
      // The listener closed while the header was read: no new session.
      if (!this.server.listening) {
        client.channel.destroy();
        return;
      }
      const session = new Session(client.channel, client.address, cfg, log, holdStore, gate);
      // Implicit TLS too: FTP's PROT P data connections use the context.
      if (tls) session.enableStartTls(tls);
      this.sessions.add(session);
      void session.start().then(() => this.sessions.delete(session));
    });
  }

  /** SIGHUP: the new configuration (and TLS context) for new connections; open sessions keep theirs. */
  update(cfg: Config, log: Logger, tls: ClientTlsContext | null, gate: AuthGate | null): void {
    this.cfg = cfg;
    this.gate = gate;
    this.log = log;
    this.tls = tls;
    this.holdStore = processHoldStore(cfg, this.log);
  }

  /** Stops taking connections (once); resolves when the server has closed, i.e. every connection is gone. */
  private stopAccepting(): Promise<void> {
    this.stopped ??= new Promise<void>((r) => this.server.close(() => r()));
    return this.stopped;
  }

  private stopped: Promise<void> | null = null;

  /**
   * A reload dropped this listener: stop accepting, and let the open
   * sessions end on their own (each is bounded by its timeouts).
   */
  async drain(): Promise<void> {
    const closed = this.stopAccepting();
    await Promise.all([...this.sessions].map((s) => s.done));
    await closed;
  }

  /**
   * SIGTERM: stop accepting at once, let open sessions finish for up to
   * shutdownGrace, then close the rest with the protocol's shutdown reply.
   * Resolves when all are gone.
   */
  async close(): Promise<void> {
    // server.close() calls back only once every connection is gone.
    const closed = this.stopAccepting();
    const graceMs = this.cfg.shutdownGraceMs;
    if (this.sessions.size > 0 && graceMs > 0) {
      this.log.log('notice', `${this.sessions.size} sessions open: they may finish for ${graceMs / 1000} s (shutdownGrace)`);
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        Promise.all([...this.sessions].map((s) => s.done)),
        new Promise<void>((r) => {
          this.hurry = r;
          timer = setTimeout(r, graceMs);
        }),
      ]);
      clearTimeout(timer);
      this.hurry = null;
    }
    const open = [...this.sessions];
    for (const s of open) s.shutdown();
    await Promise.all(open.map((s) => s.done));
    await closed;
  }

  /** A second SIGTERM during the grace: shut the sessions down now. */
  closeNow(): void {
    this.hurry?.();
  }
}

