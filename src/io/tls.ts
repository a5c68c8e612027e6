import { readFileSync } from 'node:fs';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { SecureContext, TLSSocket } from 'node:tls';
import { nodeTls } from './lazy-modules.js';
import type { ClientTls } from '../config.js';
import { ConfigError } from '../errors.js';

/** How long a client may take to complete its TLS handshake (implicit or after STARTTLS). */
export const TLS_HANDSHAKE_TIMEOUT_MS = 10_000;

/**
 * The certificate and key toward the client, loaded at start-up (a file that
 * does not load, or a key that does not match, is a configuration error: 78)
 * and re-read on SIGHUP in standalone mode. TLS 1.2 and 1.3 only; Node's
 * default cipher list (ECDHE with AES-GCM or ChaCha20-Poly1305 first).
 */
export class ClientTlsContext {
  private ctx: SecureContext;

  constructor(private readonly settings: ClientTls) {
    this.ctx = loadContext(settings);
  }

  get mode(): ClientTls['mode'] {
    return this.settings.mode;
  }

  get current(): SecureContext {
    return this.ctx;
  }

  /** Re-reads the files; on failure the old context stays and the error is returned. */
  reload(): string | null {
    try {
      this.ctx = loadContext(this.settings);
      return null;
    } catch (e) {
      return (e as Error).message;
    }
  }
}

function readPem(key: 'tlsCert' | 'tlsKey', path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (e) {
    throw new ConfigError('PW_ERR_CONFIG_FILE', key, `cannot read ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
}

function loadContext(t: ClientTls): SecureContext {
  const cert = readPem('tlsCert', t.cert);
  const key = readPem('tlsKey', t.key);
  try {
    return nodeTls().createSecureContext({ cert, key, minVersion: 'TLSv1.2' });
  } catch (e) {
    // OpenSSL's words: "key values mismatch", "no start line", "bad decrypt".
    throw new ConfigError('PW_ERR_CONFIG_VALUE', 'tlsCert', `certificate and key do not load as a pair: ${(e as Error).message}`);
  }
}

/**
 * Runs the server side of a TLS handshake over an accepted socket. Resolves
 * with the TLS socket once the handshake is complete; rejects on a failed
 * handshake, a close, or after TLS_HANDSHAKE_TIMEOUT_MS.
 */
export function acceptTls(raw: Socket | Duplex, ctx: SecureContext): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const sock = new (nodeTls().TLSSocket)(raw, { isServer: true, secureContext: ctx });
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`no TLS handshake in ${TLS_HANDSHAKE_TIMEOUT_MS / 1000} s`));
    }, TLS_HANDSHAKE_TIMEOUT_MS);
    const fail = (e: Error) => {
      clearTimeout(timer);
      sock.destroy();
      reject(e);
    };
    const closed = () => fail(new Error('connection closed during the TLS handshake'));
    sock.once('error', fail);
    sock.once('close', closed);
    sock.once('end', closed);
    // A peer that leaves mid-handshake may show it on the plain socket only.
    raw.once('close', closed);
    raw.once('end', closed);
    sock.once('secure', () => {
      clearTimeout(timer);
      sock.removeListener('error', fail);
      sock.removeListener('close', closed);
      sock.removeListener('end', closed);
      raw.removeListener('close', closed);
      raw.removeListener('end', closed);
      resolve(sock);
    });
  });
}

/** For the log: "TLSv1.3 TLS_AES_256_GCM_SHA384". */
export function describeTls(sock: TLSSocket): string {
  const c = sock.getCipher();
  return `${sock.getProtocol() ?? 'TLS'} ${c?.standardName ?? c?.name ?? ''}`.trim();
}

/**
 * STARTTLS toward the client: the plaintext socket is read no more by the
 * session (its listeners go: they must not see TLS records), the go-ahead
 * already queued on it is written first, then the handshake runs on it.
 */
export function upgradeToTls(raw: Socket, ctx: SecureContext): Promise<TLSSocket> {
  raw.removeAllListeners('data');
  raw.removeAllListeners('end');
  raw.removeAllListeners('close');
  raw.removeAllListeners('drain');
  return new Promise((resolve, reject) => {
    raw.write(Buffer.alloc(0), () => acceptTls(raw, ctx).then(resolve, reject));
  });
}
