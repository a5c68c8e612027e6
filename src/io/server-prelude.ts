import type { Config } from '../config.js';
import { encodeProxyHeader, type ProxyEndpoints } from '../core/proxy-header.js';
import type { Logger } from '../log/logger.js';
import type { ServerPrelude } from './server.js';
import { serverTlsPlan } from './server-tls.js';

/**
 * What the session's server connection starts with, from the configuration
 * and the client's ends: a PROXY header (proxyToServer) carrying the client's
 * address and port (the incoming header's, when one came in) and the address
 * the client dialled (a client on a pipe has no ends: v1 UNKNOWN / v2
 * LOCAL); then TLS toward the server (serverTls).
 */
export function serverPrelude(cfg: Config, endpoints: ProxyEndpoints | undefined, log: Logger): ServerPrelude {
  const v = cfg.proxy.toServer;
  return {
    proxyHeader: v === null ? null : encodeProxyHeader(v === 'v1' ? 1 : 2, endpoints),
    tls: serverTlsPlan(cfg, log),
  };
}
