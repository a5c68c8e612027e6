import { connect, createServer, Socket, type Server } from 'node:net';
import type { SecureContext } from 'node:tls';
import type { Duplex } from 'node:stream';
import { parsePortRange, type DataOpened, type DataRequest } from '../core/data-channel.js';
import type { ProtocolOptions } from '../core/protocol.js';
import type { LogFields } from '../log/event.js';
import type { Logger } from '../log/logger.js';
import { sameAddress } from '../core/ip.js';
import { normaliseAddress } from './address.js';
import { acceptTls } from './tls.js';

/** Data connections of one session relayed at once (a transfer and one still closing, and some room). */
export const MAX_DATA_RELAYS = 4;
/** Ports tried in pasvPortRange before a listener counts as not available. */
const MAX_PORT_TRIES = 256;

export interface DataEnv {
  /** The control client's address: the only one a passive listener accepts, and the only one active mode dials. */
  readonly clientAddress: string;
  /** The control connection's local address: passive listeners are bound there, active connections leave from it. */
  readonly localAddress: string | null;
  /** The server connection's two ends (TCP); null for a spawned server or a unix socket. */
  serverEnds(): { remote: string; local: string } | null;
  readonly portRange: readonly [number, number] | null;
  readonly acceptTimeoutMs: number;
  /** TLS toward the client for PROT P data connections; null: no TLS context. */
  tls(): SecureContext | null;
  log(level: 'warning' | 'notice' | 'info', msg: string): void;
  wants(level: 0 | 1 | 2 | 3): boolean;
  /** Data traffic counts as session activity (the idle timeout). */
  touch(): void;
}

interface Relay {
  destroy(): void;
}

/**
 * The FTP data channel (RFC 959 section 3.2), run by the shell for a
 * protocol's DataRequest. The real server usually sits on loopback, so its
 * own 227 / 229 address means nothing to the client, and a PORT toward it
 * would name an address it must not trust. So every data connection goes
 * through the wrapper: passive, the server's data port is reached first,
 * then a listener toward the client (pasvPortRange, bound to the control
 * connection's local address) accepts one connection from the control
 * client's address only, within dataTimeout, and relays it to that
 * server connection; active, a
 * listener toward the server (its PORT names it) that accepts one
 * connection from the server, and a connection the wrapper makes itself to
 * the client's validated address. Bytes are relayed unchanged, with
 * backpressure both ways; half-closes are passed on; a relay ends with its
 * transfer. At most one listener waits at a time (a new request closes the
 * old one) and MAX_DATA_RELAYS relays run.
 */
export class DataRelays {
  private pending: {
    server: Server;
    timer: NodeJS.Timeout;
    dataSocket: Socket | null;
    kind: 'passive' | 'active';
    /** Active: the transfer command went to the server; only from now on may the server's connection come. */
    armed: boolean;
    /** Active: a connection came before the transfer command; no connection is relayed from this listener. */
    contested: boolean;
  } | null = null;
  /** Counts requests: an answer to an older one (still dialling when a newer came) is dropped. */
  private generation = 0;
  private readonly relays = new Set<Relay>();
  private closed = false;

  constructor(private readonly env: DataEnv) {}

  async open(req: DataRequest): Promise<DataOpened> {
    if (req.kind === 'transfer') {
      // Not a new listener: the active one waiting now may take the server's connection.
      if (this.pending?.kind === 'active') this.pending.armed = true;
      return { ok: false, kind: 'transfer', reason: 'armed' };
    }
    if (req.kind === 'transfer-refused') {
      if (this.pending?.kind === 'active') this.pending.armed = false;
      return { ok: false, kind: 'transfer-refused', reason: 'disarmed' };
    }
    this.closePending();
    const gen = ++this.generation;
    if (this.closed) return { ok: false, kind: req.kind, reason: 'session closed' };
    const ends = this.env.serverEnds();
    if (req.tls && !this.env.tls()) return { ok: false, kind: req.kind, reason: 'PROT P without a TLS context' };
    if (req.kind === 'passive') {
      const host = this.env.localAddress;
      if (!host) return { ok: false, kind: 'passive', reason: 'no local address to listen on' };
      const serverHost = ends?.remote ?? req.serverHost ?? '127.0.0.1';
      // The server's data port is reached first: a port that cannot be reached is a 425 to
      // the PASV / EPSV (a client then tries the other one), not a data connection that dies.
      let dataSocket: Socket;
      try {
        dataSocket = await dialData(serverHost, req.serverPort, this.env.acceptTimeoutMs);
      } catch (e) {
        return { ok: false, kind: 'passive', reason: `server data port ${serverHost}:${req.serverPort}: ${(e as Error).message}` };
      }
      if (this.closed || gen !== this.generation) {
        dataSocket.destroy();
        return { ok: false, kind: 'passive', reason: 'superseded' };
      }
      const opened = await this.listen('passive', host, this.env.portRange, this.env.clientAddress, (sock) => this.passiveRelay(sock, dataSocket, req.tls), dataSocket);
      if (!opened.ok) dataSocket.destroy();
      return opened;
    }
    const host = ends?.local ?? '127.0.0.1';
    const peer = ends?.remote ?? '127.0.0.1';
    return this.listen('active', host, null, peer, (sock) => this.activeRelay(sock, req.clientHost, req.clientPort, req.tls));
  }

  /** The session is over: every listener and relay goes. */
  closeAll(): void {
    this.closed = true;
    this.closePending();
    for (const r of [...this.relays]) r.destroy();
  }

  private closePending(): void {
    const p = this.pending;
    if (!p) return;
    this.pending = null;
    clearTimeout(p.timer);
    p.server.close();
    p.dataSocket?.destroy();
  }

  private async listen(
    kind: 'passive' | 'active',
    host: string,
    range: readonly [number, number] | null,
    peer: string,
    onConnection: (sock: Socket) => void,
    dataSocket: Socket | null = null,
  ): Promise<DataOpened> {
    const server = createServer({ allowHalfOpen: true, pauseOnConnect: true });
    const port = await bindInRange(server, host, range);
    if (port === null) return { ok: false, kind, reason: range ? `no free port in ${range[0]}-${range[1]} on ${host}` : `cannot listen on ${host}` };
    if (this.closed) {
      server.close();
      return { ok: false, kind, reason: 'session closed' };
    }
    const timer = setTimeout(() => {
      if (this.pending?.server !== server) return;
      this.env.log('notice', `data listener ${host}:${port} (${kind}) closed: no connection in ${this.env.acceptTimeoutMs / 1000} s`);
      this.closePending();
    }, this.env.acceptTimeoutMs);
    this.pending = { server, timer, dataSocket, kind, armed: false, contested: false };
    server.on('connection', (sock) => {
      const from = normaliseAddress(sock.remoteAddress);
      if (!sameAddress(from, peer)) {
        // Someone else on the announced port (port theft, a scan): never relayed.
        this.env.log('warning', `refused data connection from ${from} to ${host}:${port} (${kind}): expected ${peer}`);
        sock.destroy();
        return;
      }
      if (this.pending?.server !== server || this.relays.size >= MAX_DATA_RELAYS) {
        sock.destroy();
        return;
      }
      const p = this.pending;
      if (kind === 'active' && (!p.armed || p.contested)) {
        // On the server's side every local process has the server's address: a connection before the
        // transfer command is not the server's, and once one came, the next may be the thief's again.
        const why = p.contested ? 'listener contested by an earlier connection' : 'data connection before the transfer command';
        this.env.log('warning', `refused data connection from ${from}:${sock.remotePort ?? '?'} to ${host}:${port} (active): ${why}`);
        p.contested = true;
        sock.destroy();
        return;
      }
      // One connection per listener; the server's data socket now belongs to the relay.
      if (this.pending) this.pending.dataSocket = null;
      this.closePending();
      sock.on('error', () => {});
      onConnection(sock);
    });
    server.on('error', () => {
      if (this.pending?.server === server) this.closePending();
    });
    return { ok: true, kind, host, port };
  }

  /** A client connected to a passive listener: TLS first (PROT P), then relayed to the server's data socket. */
  private passiveRelay(client: Socket, server: Socket, tls: boolean): void {
    this.relay(tls ? this.secure(client) : Promise.resolve(client), server, client, `client ${normaliseAddress(client.remoteAddress)} -> server ${server.remoteAddress ?? '?'}:${server.remotePort ?? '?'}`);
  }

  /** The server connected to the active-mode listener: the wrapper dials the client's validated address itself. */
  private activeRelay(server: Socket, clientHost: string, clientPort: number, tls: boolean): void {
    const local = this.env.localAddress;
    const sameFamily = local !== null && local.includes(':') === clientHost.includes(':');
    const client = connect({ host: clientHost, port: clientPort, allowHalfOpen: true, ...(sameFamily ? { localAddress: local } : {}) });
    client.pause();
    client.on('error', () => {});
    const ready = new Promise<Socket>((resolve, reject) => {
      client.once('connect', () => resolve(client));
      client.once('error', reject);
    });
    this.relay(tls ? ready.then((s) => this.secure(s)) : ready, server, client, `server -> client ${clientHost}:${clientPort}`);
  }

  private secure(sock: Socket): Promise<Duplex> {
    const ctx = this.env.tls();
    if (!ctx) return Promise.reject(new Error('no TLS context'));
    return acceptTls(sock, ctx);
  }

  private relay(clientSide: Promise<Duplex>, server: Socket, rawClient: Socket, what: string): void {
    const parts: Duplex[] = [server, rawClient];
    const relay: Relay = {
      destroy: () => {
        this.relays.delete(relay);
        for (const p of parts) p.destroy();
      },
    };
    this.relays.add(relay);
    server.on('error', (e: NodeJS.ErrnoException) => {
      if (this.env.wants(2)) this.env.log('info', `data connection ${what}: ${e.code ?? e.message}`);
      relay.destroy();
    });
    clientSide.then(
      (client) => {
        if (!this.relays.has(relay)) {
          client.destroy();
          return;
        }
        parts.push(client);
        client.on('error', () => relay.destroy());
        if (this.env.wants(2)) this.env.log('info', `data connection ${what}`);
        pipeBoth(client, server, () => this.env.touch(), () => relay.destroy());
      },
      (e: Error) => {
        this.env.log('notice', `data connection ${what} not set up: ${e.message}`);
        relay.destroy();
      },
    );
  }
}

/**
 * Relays a ↔ b with backpressure (pipe pauses a reader whose writer is
 * full) and half-close (an end is passed on as end()); done when both
 * directions have ended, or either side closes.
 */
function pipeBoth(a: Duplex, b: Duplex, touch: () => void, done: () => void): void {
  let ended = 0;
  const onEnd = () => {
    if (++ended === 2) {
      // Both directions are over: let the last bytes leave, then close.
      let finished = 0;
      const fin = () => {
        if (++finished === 2) done();
      };
      for (const s of [a, b]) {
        if (s.writableFinished) fin();
        else s.once('finish', fin);
      }
    }
  };
  for (const [from, to] of [[a, b], [b, a]] as const) {
    from.on('data', touch);
    from.once('end', onEnd);
    from.once('close', () => {
      // A side that went away before it ended (a reset) ends the transfer.
      if (!from.readableEnded) done();
    });
    from.pipe(to);
  }
}

/** Connects to a server's data port (paused until a relay reads it); rejects on an error or after timeoutMs. */
function dialData(host: string, port: number, timeoutMs: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const sock = connect({ host, port, allowHalfOpen: true });
    sock.pause();
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`no connection in ${timeoutMs / 1000} s`));
    }, timeoutMs);
    sock.once('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(new Error(e.code ?? e.message));
    });
    sock.once('connect', () => {
      clearTimeout(timer);
      sock.removeAllListeners('error');
      // Until a relay takes it: an error (the server gave up) only ends it.
      sock.on('error', () => {});
      resolve(sock);
    });
  });
}

/** Listens on host at a port from range (a random start, then the next ones), or any free port. */
async function bindInRange(server: Server, host: string, range: readonly [number, number] | null): Promise<number | null> {
  const tryPort = (port: number) =>
    new Promise<number | null>((resolve) => {
      const onError = () => {
        server.removeListener('listening', onListening);
        resolve(null);
      };
      const onListening = () => {
        server.removeListener('error', onError);
        const a = server.address();
        resolve(typeof a === 'object' && a ? a.port : null);
      };
      server.once('error', onError);
      server.once('listening', onListening);
      server.listen({ host, port, exclusive: true });
    });
  if (!range) return tryPort(0);
  const [lo, hi] = range;
  const size = hi - lo + 1;
  const start = Math.floor(Math.random() * size);
  for (let k = 0; k < Math.min(size, MAX_PORT_TRIES); k++) {
    const port = await tryPort(lo + ((start + k) % size));
    if (port !== null) return port;
  }
  return null;
}

/** What a session tells its data relays about itself. */
export interface SessionSide {
  readonly clientAddress: string;
  readonly localAddress: string | null;
  /** The server connection's input (a socket for a TCP server), or null before it is up. */
  server(): unknown;
  /** pasvPortRange and dataTimeout come from the protocol's options. */
  readonly options: ProtocolOptions;
  tls(): SecureContext | null;
  readonly log: Logger;
  /** The session's fields (client, protocol, session id) for log lines. */
  readonly tag: LogFields;
  touch(): void;
}

/** The data relays of one session (made on the protocol's first data request). */
export function sessionDataRelays(o: SessionSide): DataRelays {
  const range = o.options.extra['pasvPortRange'];
  return new DataRelays({
    clientAddress: o.clientAddress,
    localAddress: o.localAddress,
    serverEnds: () => {
      const s = o.server();
      return s instanceof Socket && s.remoteAddress && s.localAddress ? { remote: normaliseAddress(s.remoteAddress), local: normaliseAddress(s.localAddress) } : null;
    },
    portRange: typeof range === 'string' ? parsePortRange(range) : null,
    acceptTimeoutMs: ((o.options.extra['dataTimeout'] as number | undefined) ?? 30) * 1000,
    tls: o.tls,
    log: (level, msg) => o.log.event(level, 'data_connection', { ...o.tag, message: msg }),
    wants: (n) => o.log.wants(n),
    touch: o.touch,
  });
}
