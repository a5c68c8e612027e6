import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { isIP, type Socket } from 'node:net';
import type { ConnectionOptions, TLSSocket } from 'node:tls';
import { nodeTls } from './lazy-modules.js';
import type { Config } from '../config.js';
import type { ServerStarttlsDialogue } from '../core/server-starttls.js';
import { ProtowrapError } from '../errors.js';
import type { Logger } from '../log/logger.js';
import type { ServerConnection } from './server.js';
import { SocketServer } from './socket-server.js';

/**
 * TLS toward the real server (serverTls): implicit (TLS from the first byte,
 * after any PROXY header) or starttls (the protocol's own upgrade, done by
 * the wrapper before the client's session and hidden from it: the client
 * then sees the server's original greeting, replayed). TLS 1.2 or later; the
 * certificate is checked against serverTlsCa (or the system store) and
 * serverTlsName (or the --connect host) unless serverTlsVerify is off.
 */
export interface ServerTlsPlan {
  readonly mode: 'implicit' | 'starttls';
  /** For the log: the name checked, or "unverified". */
  readonly checked: string;
  readonly options: ConnectionOptions;
  /** starttls: a fresh dialogue per connection. */
  readonly dialogue: (() => ServerStarttlsDialogue) | null;
}

const plans = new WeakMap<Config, ServerTlsPlan | ProtowrapError>();

/**
 * The plan for this configuration, built once per process (the CA file is
 * read once). A plan that cannot be built (CA file unreadable, a protocol
 * without STARTTLS) is an error every session reports as the server being
 * unavailable.
 */
export function serverTlsPlan(cfg: Config, log: Logger): ServerTlsPlan | ProtowrapError | null {
  const st = cfg.serverTls;
  if (!st) return null;
  let plan = plans.get(cfg);
  if (plan) return plan;
  plan = buildPlan(cfg, st);
  plans.set(cfg, plan);
  if (plan instanceof ProtowrapError) log.log('err', `TLS toward the server cannot work: ${plan.message}`);
  else if (!st.verify) log.log('warning', 'TLS toward the server without verification (--no-server-tls-verify): anyone between us and the server can read and change the session');
  return plan;
}

function buildPlan(cfg: Config, st: NonNullable<Config['serverTls']>): ServerTlsPlan | ProtowrapError {
  const unavailable = (m: string) => new ProtowrapError('PW_ERR_SERVER_UNAVAILABLE', m);
  let dialogue: ServerTlsPlan['dialogue'] = null;
  if (st.mode === 'starttls') {
    const make = cfg.protocol.serverStarttls;
    if (!make) return unavailable(`protocol ${cfg.protocol.name} has no STARTTLS: use serverTls = "implicit"`);
    const ctx = { ehloName: ehloName() };
    dialogue = () => make(ctx);
  }
  const name = st.name ?? (cfg.dest.type === 'tcp' ? cfg.dest.host : null);
  if (st.verify && name === null) return unavailable('serverTlsName is needed to verify a server on a unix socket');
  let ca: string | undefined;
  if (st.ca !== null) {
    try {
      ca = readFileSync(st.ca, 'latin1');
    } catch (err) {
      return unavailable(`serverTlsCa ${st.ca}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  }
  const options: ConnectionOptions = {
    minVersion: 'TLSv1.2',
    ...(ca !== undefined ? { ca } : {}),
    // SNI takes a host name only (RFC 6066); an address is still checked against the certificate's IP entries.
    ...(name !== null && isIP(name) === 0 ? { servername: name } : {}),
    ...(name !== null ? { host: name } : {}),
    rejectUnauthorized: st.verify,
    checkServerIdentity: st.verify ? (_host, cert) => nodeTls().checkServerIdentity(name!, cert) : () => undefined,
  };
  return { mode: st.mode, checked: st.verify ? name! : 'unverified', options, dialogue };
}

/** Our EHLO name: this host's name when it is a plain domain, else an address literal. */
function ehloName(): string {
  const h = hostname();
  return /^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$/.test(h) ? h : '[127.0.0.1]';
}

/**
 * Runs the plan on a connected socket (the PROXY header, if any, already
 * written) within timeoutMs, and resolves with the server connection over
 * TLS. Rejects with PW_ERR_SERVER_UNAVAILABLE (the session's unavailable
 * path) on a refusal, a failed handshake, a bad certificate or the deadline.
 */
export function upgradeServer(sock: Socket, plan: ServerTlsPlan, timeoutMs: number, describe: string): Promise<ServerConnection> {
  return new Promise((resolve, reject) => {
    let tls: TLSSocket | null = null;
    let settled = false;
    const fail = (why: string, cause?: unknown): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      tls?.destroy();
      sock.destroy();
      reject(new ProtowrapError('PW_ERR_SERVER_UNAVAILABLE', `${describe}: ${why}`, { cause }));
    };
    const timer = setTimeout(() => fail(`TLS (${plan.mode}) not up after ${timeoutMs} ms`), timeoutMs);
    const handshake = (greeting: Buffer | null): void => {
      const t = nodeTls().connect({ ...plan.options, socket: sock });
      tls = t;
      t.once('error', (e: NodeJS.ErrnoException) => fail(`TLS handshake: ${e.code ?? e.message}`, e));
      t.once('secureConnect', () => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        t.removeAllListeners('error');
        // The server's greeting from before TLS is the session's first server bytes.
        if (greeting) t.unshift(greeting);
        resolve(new SocketServer(t, `${describe} tls=${t.getProtocol() ?? '?'} (${plan.mode}, ${plan.checked})`));
      });
    };
    sock.on('error', (e: NodeJS.ErrnoException) => fail(e.code ?? e.message, e));
    if (plan.mode === 'implicit' || !plan.dialogue) {
      handshake(null);
      return;
    }
    const d = plan.dialogue();
    const onData = (chunk: Buffer): void => {
      const step = d.feed(chunk);
      switch (step.kind) {
        case 'more':
          return;
        case 'send':
          sock.write(step.bytes);
          return;
        case 'fail':
          fail(`STARTTLS: ${step.reason}`);
          return;
        case 'handshake':
          sock.removeListener('data', onData);
          sock.removeListener('end', onEnd);
          sock.pause();
          handshake(step.greeting);
          return;
        default: {
          const never: never = step;
          throw new Error(`unknown STARTTLS step ${JSON.stringify(never)}`);
        }
      }
    };
    const onEnd = (): void => fail('STARTTLS: server closed the connection');
    sock.on('data', onData);
    sock.once('end', onEnd);
  });
}
