import type { Socket } from 'node:net';
import type { Config } from '../config.js';
import type { ProxyEndpoints } from '../core/proxy-header.js';
import { escapeForLog } from '../log/escape.js';
import type { Logger } from '../log/logger.js';
import { normaliseAddress } from './address.js';
import { Channel } from './channel.js';
import { proxyPeerListed, readProxyHeader } from './proxy-in.js';
import { acceptTls, describeTls, type ClientTlsContext } from './tls.js';
import { Duplex } from 'node:stream';

export interface PreparedClient {
  readonly channel: Channel;
  /** The client's address for logs and policy (relayIpList): the PROXY header's source when one came in. */
  readonly address: string;
}

/**
 * What happens to a client connection before its session starts, the same
 * in standalone mode (an accepted socket, paused) and inetd mode (fd 0):
 * the PROXY header of a listed peer, then (later) TLS. Resolves to null when
 * the connection was refused and closed (logged here); the server is then
 * never contacted. `unknownAddress` names a peer without an IP address (a
 * unix socket on fd 0).
 */
export async function prepareClient(sock: Socket, cfg: Config, log: Logger, unknownAddress = 'unknown', tls: ClientTlsContext | null = null): Promise<PreparedClient | null> {
  const peer = sock.remoteAddress ? normaliseAddress(sock.remoteAddress) : unknownAddress;
  let endpoints = socketEndpoints(sock);
  let address = peer;
  // A peer not listed in proxyFrom gets no parsing at all: a "PROXY …" line
  // or the v2 signature from it are protocol bytes, which the protocol
  // refuses as a bad command. Trusting a header from anyone would let any
  // client choose its own address (and so pass relayIpList).
  if (proxyPeerListed(cfg.proxy, peer)) {
    const r = await readProxyHeader(sock, cfg.proxy);
    switch (r.kind) {
      case 'refused':
        log.event('warning', 'refused_connection', { client: peer, message: r.why });
        sock.destroy();
        return null;
      case 'absent':
        if (log.wants(2)) log.event('info', 'proxy', { message: `proxy peer=${peer}: ${r.why}; its own address is used` });
        break;
      case 'header': {
        const e = r.header.endpoints;
        // LOCAL / UNKNOWN (a health check, or ends no header can carry): the peer's own ends.
        if (e) {
          endpoints = { ...e, remoteAddress: normaliseAddress(e.remoteAddress), localAddress: normaliseAddress(e.localAddress) };
          address = endpoints.remoteAddress;
        }
        if (log.wants(1)) {
          const authority = r.header.authority === null ? '' : ` authority=${escapeForLog(Buffer.from(r.header.authority, 'latin1'))}`;
          const ends = e ? `client=${address}:${endpoints!.remotePort} dialled=${endpoints!.localAddress}:${endpoints!.localPort}` : 'local (the peer\'s own address is used)';
          log.event('info', 'proxy', { message: `proxy v${r.header.version} header from peer=${peer}: ${ends}${authority}` });
        }
        break;
      }
      default: {
        const never: never = r;
        throw new Error(`unknown PROXY result ${JSON.stringify(never)}`);
      }
    }
  }
  // TLS toward the client (implicit): after the PROXY header, before any protocol byte.
  let channel: Channel;
  if (tls?.mode === 'implicit') {
    try {
      const secure = await acceptTls(sock.readableLength > 0 ? streamOf(sock) : sock, tls.current);
      channel = new Channel(secure, secure);
      if (log.wants(2)) log.event('info', 'client_tls', { client: address, message: describeTls(secure) });
    } catch (e) {
      log.event('notice', 'tls_failed', { client: address, message: (e as Error).message });
      sock.destroy();
      return null;
    }
  } else {
    channel = new Channel(sock, sock);
  }
  if (endpoints) channel.endpoints = endpoints;
  return { channel, address };
}

/** The socket's own ends; none for a socket without IP addresses (unix). */
function socketEndpoints(sock: Socket): ProxyEndpoints | undefined {
  const { remoteAddress, remotePort, localAddress, localPort } = sock;
  if (!remoteAddress || remotePort === undefined || !localAddress || localPort === undefined) return undefined;
  return { remoteAddress: normaliseAddress(remoteAddress), remotePort, localAddress: normaliseAddress(localAddress), localPort };
}

/**
 * The socket as a plain stream, for TLS when bytes already sit in its read
 * buffer (the start of a ClientHello that came in the PROXY header's
 * segment, put back with unshift): TLS over the socket's handle would skip
 * them, TLS over a stream reads them first.
 */
function streamOf(sock: Socket): Duplex {
  const d = new Duplex({
    read: () => {
      sock.resume();
    },
    write: (chunk: Buffer, _enc, cb) => {
      sock.write(chunk, cb);
    },
    final: (cb) => {
      sock.end();
      cb();
    },
    destroy: (err, cb) => {
      sock.destroy();
      cb(err);
    },
  });
  sock.on('data', (b: Buffer) => {
    if (!d.push(b)) sock.pause();
  });
  sock.on('end', () => d.push(null));
  sock.on('error', (e) => d.destroy(e));
  sock.on('close', () => d.destroy());
  return d;
}
