import type { Config } from '../config.js';
import { ConfigError } from '../errors.js';
import type { Logger } from '../log/logger.js';
import { describeDest } from './server.js';
import type { PassedSocket } from './systemd.js';
import { Listener, type ListenTarget } from './listener.js';
import { ClientTlsContext } from './tls.js';
import { openAuthGate, type AuthGate } from './auth-gate.js';
import type { IpcChannel } from './worker-store.js';

/** One listener to run: where, with which configuration. */
export interface PlannedListener {
  readonly target: ListenTarget;
  readonly cfg: Config;
}

/** A listener's identity across reloads: its address, or the passed socket's descriptor. */
function keyOf(t: ListenTarget): string {
  return t.kind === 'fd' ? `fd:${t.fd}` : `addr:${t.address.host ?? '*'}:${t.address.port}`;
}

/**
 * Which listeners a configuration asks for. A service (or the one
 * configuration) with a listen address binds it; `listen = "systemd:NAME"`
 * takes the passed socket of that name; a configuration without either
 * serves every passed socket (Accept=no). A passed socket that no service
 * takes is a configuration error: systemd would queue its connections for ever.
 */
export function planListeners(services: readonly Config[], passed: readonly PassedSocket[], multi: boolean): PlannedListener[] {
  const plan: PlannedListener[] = [];
  const taken = new Set<number>();
  for (const cfg of services) {
    if (cfg.listen) {
      plan.push({ target: { kind: 'address', address: cfg.listen }, cfg });
    } else if (cfg.listenFd !== null) {
      const s = passed.find((p) => p.name === cfg.listenFd && !taken.has(p.fd));
      if (!s) {
        const have = passed.map((p) => p.name ?? '(unnamed)').join(', ') || 'none';
        throw new ConfigError('PW_ERR_CONFIG_VALUE', cfg.service ? `service ${cfg.service}` : 'listen', `listen: no socket named ${cfg.listenFd} from systemd (LISTEN_FDNAMES: ${have})`);
      }
      taken.add(s.fd);
      plan.push({ target: { kind: 'fd', fd: s.fd, name: s.name }, cfg });
    } else {
      for (const s of passed) {
        if (taken.has(s.fd)) continue;
        taken.add(s.fd);
        plan.push({ target: { kind: 'fd', fd: s.fd, name: s.name }, cfg });
      }
    }
  }
  const left = passed.filter((p) => !taken.has(p.fd));
  if (multi && left.length > 0) {
    throw new ConfigError('PW_ERR_CONFIG_VALUE', 'listen', `no service takes the socket${left.length > 1 ? 's' : ''} systemd passed as ${left.map((p) => p.name ?? `fd ${p.fd}`).join(', ')}: give one listen = "systemd:NAME"`);
  }
  return plan;
}

/** A TLS context per configuration that has TLS; throws (78) when a certificate does not load. */
function tlsFor(plan: readonly PlannedListener[]): Map<Config, ClientTlsContext> {
  const out = new Map<Config, ClientTlsContext>();
  for (const p of plan) if (p.cfg.tls && !out.has(p.cfg)) out.set(p.cfg, new ClientTlsContext(p.cfg.tls));
  return out;
}

/**
 * Standalone mode: the listeners of every service in one process, replaced
 * as a whole on SIGHUP (apply) and closed with a grace on SIGTERM (close).
 */
export class Daemon {
  private readonly listeners = new Map<string, Listener>();
  /** Listeners being closed (a reload dropped them, or shutdown): their sessions still count. */
  private readonly closing = new Set<Promise<void>>();
  private readonly retiring = new Set<Listener>();
  /**
   * The ban gates (maxAuthFailures), one per distinct setting: services with
   * the same settings share one count, and a reload that keeps them keeps
   * the count (a memory store is not emptied by SIGHUP).
   */
  private gates = new Map<string, AuthGate>();

  constructor(
    private readonly base: Logger,
    private readonly loggerFor: (cfg: Config) => Logger,
    /** This process is one of several workers (cluster.ts): their count, and the channel to the primary. */
    private readonly worker: { readonly count: number; readonly primary: IpcChannel } | null = null,
  ) {}

  /**
   * Starts the listeners of the plan, or (SIGHUP) replaces the running ones:
   * one at the same place gets the new configuration for its new sessions,
   * a new place is listened on, a place no longer named is closed (its
   * sessions may finish). Nothing changes when a TLS certificate does not
   * load or a new place cannot be listened on: the new places are opened
   * first, and closed again on a failure.
   */
  async apply(plan: readonly PlannedListener[], reload: boolean): Promise<void> {
    const tls = tlsFor(plan);
    const gates = await this.gatesFor(plan);
    const gateOf = (c: Config): AuthGate | null => (c.authFailures ? (gates.get(JSON.stringify(c.authFailures)) ?? null) : null);
    const next = new Map(plan.map((p) => [keyOf(p.target), p]));
    const opened: [string, Listener, string][] = [];
    for (const [key, p] of next) {
      if (this.listeners.has(key)) continue;
      const l = new Listener(p.cfg, this.loggerFor(p.cfg), tls.get(p.cfg) ?? null, p.target, gateOf(p.cfg), this.worker?.count ?? 1);
      try {
        opened.push([key, l, await l.listen()]);
      } catch (err) {
        for (const [, o] of opened) void o.drain();
        this.dropGates(gates, this.gates);
        const place = p.target.kind === 'fd' ? `systemd socket fd ${p.target.fd}` : `${p.target.address.host ?? '*'}:${p.target.address.port}`;
        throw new ListenError(`cannot listen on ${place}${p.cfg.service ? ` service=${p.cfg.service}` : ''}: ${(err as Error).message}`);
      }
    }
    for (const [key, l] of [...this.listeners]) {
      const p = next.get(key);
      if (p) {
        l.update(p.cfg, this.loggerFor(p.cfg), tls.get(p.cfg) ?? null, gateOf(p.cfg));
        continue;
      }
      this.listeners.delete(key);
      this.retire(l, 'no longer in the configuration', 'drain');
    }
    for (const [key, l, where] of opened) {
      this.listeners.set(key, l);
      const c = l.config;
      this.loggerFor(c).event('notice', 'listening', { message: `listening on ${where}`, protocol: c.protocol.name, server: describeDest(c.dest) });
    }
    this.dropGates(this.gates, gates);
    this.gates = gates;
    if (reload && tls.size > 0) this.base.log('notice', 'TLS certificate and key reloaded');
  }

  /** The gates a plan needs: the running one for settings that did not change, a new one otherwise. */
  private async gatesFor(plan: readonly PlannedListener[]): Promise<Map<string, AuthGate>> {
    const out = new Map<string, AuthGate>();
    for (const p of plan) {
      const a = p.cfg.authFailures;
      if (!a) continue;
      const key = JSON.stringify(a);
      if (out.has(key)) continue;
      out.set(key, this.gates.get(key) ?? (await openAuthGate(a, this.base, false, this.worker?.primary ?? null)));
    }
    return out;
  }

  /**
   * Closes the gates of `from` that `keep` does not hold. A session still
   * open on a closed gate fails open (a Redis store is gone; a memory store
   * keeps counting until the session ends).
   */
  private dropGates(from: ReadonlyMap<string, AuthGate>, keep: ReadonlyMap<string, AuthGate>): void {
    for (const [key, g] of from) if (keep.get(key) !== g) void g.close();
  }

  /**
   * Takes a listener out of service. On a reload its open sessions end on
   * their own (drain); on shutdown they get shutdownGrace (close), and so do
   * those of listeners a reload had dropped before.
   */
  private retire(l: Listener, why: string, how: 'drain' | 'close'): void {
    const c = l.config;
    this.base.log('notice', `closing listener protocol=${c.protocol.name}${c.service ? ` service=${c.service}` : ''}: ${why}`);
    this.retiring.add(l);
    const p = (how === 'drain' ? l.drain() : l.close()).finally(() => {
      this.closing.delete(p);
      this.retiring.delete(l);
    });
    this.closing.add(p);
  }

  /** SIGTERM: every listener stops accepting; open sessions get their grace. */
  async close(): Promise<void> {
    for (const l of [...this.retiring]) {
      const p = l.close();
      this.closing.add(p);
      void p.finally(() => this.closing.delete(p));
    }
    for (const [key, l] of [...this.listeners]) {
      this.listeners.delete(key);
      this.retire(l, 'shutting down', 'close');
    }
    await Promise.all([...this.closing]);
    // Failed logins still being written to the store (bounded by stateStoreTimeout).
    await Promise.all([...this.gates.values()].map((g) => g.close()));
  }

  /** A second SIGTERM: no more grace. */
  closeNow(): void {
    for (const l of this.retiring) l.closeNow();
  }
}

/** A listen() that failed: exit 69, as when the server cannot be reached. */
export class ListenError extends Error {}
