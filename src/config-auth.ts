import { isIP } from 'node:net';
import type { AuthFailureSettings, StateStoreSpec } from './core/auth-failures.js';
import type { OptionTable, OptionValue } from './core/options.js';
import { ConfigError, expected } from './errors.js';

/**
 * The keys of failed logins counted across sessions (maxAuthFailures), part
 * of the core's table (config.ts spreads them into CORE_OPTIONS).
 */
export const AUTH_FAILURE_OPTIONS: OptionTable = {
  maxAuthFailures: { kind: 'integer', min: 1, max: 1000, default: null, doc: 'failed logins per client address (across sessions) within authFailureWindow that ban it; unset: nothing is counted' },
  authFailureWindow: { kind: 'integer', min: 1, max: 604800, default: 600, doc: 'seconds the failed logins of maxAuthFailures are counted in (a sliding window)' },
  banTime: { kind: 'integer', min: 1, max: 604800, default: 900, doc: 'seconds a banned client\'s new connections are refused' },
  banPrefix6: { kind: 'integer', min: 1, max: 128, default: 64, doc: 'IPv6 clients are counted per prefix of this length' },
  stateStore: { kind: 'string', default: 'memory', doc: 'where the counts live: memory (this process; with workers, the primary\'s) or redis://host:port[/db] (shared)' },
  stateStoreTimeout: { kind: 'integer', min: 1, max: 60, default: 1, doc: 'seconds a Redis store (or, with workers, the primary) may take to answer before the session goes on without it (fail open)' },
  stateStoreMaxAddresses: { kind: 'integer', min: 1, max: 10000000, default: 100000, doc: 'client addresses the memory store tracks; the one whose last failure is oldest is forgotten first' },
};

/** maxAuthFailures and its companions; null when maxAuthFailures is unset (nothing is counted). */
export function resolveAuthFailures(v: Readonly<Record<string, OptionValue>>): AuthFailureSettings | null {
  const store = parseStateStore(v['stateStore'] as string, v['stateStoreMaxAddresses'] as number);
  const limit = v['maxAuthFailures'] as number | null;
  if (limit === null) return null;
  return {
    limit,
    windowMs: (v['authFailureWindow'] as number) * 1000,
    banMs: (v['banTime'] as number) * 1000,
    prefix6: v['banPrefix6'] as number,
    store,
    timeoutMs: (v['stateStoreTimeout'] as number) * 1000,
  };
}

/** "memory", or redis://host[:port][/db] (host may be [v6]; port 6379, db 0 by default). */
export function parseStateStore(raw: string, maxAddresses: number): StateStoreSpec {
  if (raw === 'memory') return { type: 'memory', maxAddresses };
  const bad = (why: string) => new ConfigError('PW_ERR_CONFIG_VALUE', 'stateStore', expected(`memory or redis://host:port[/db] (${why})`, raw));
  if (!raw.startsWith('redis://')) throw bad('unknown scheme');
  let rest = raw.slice('redis://'.length);
  if (rest.includes('@')) throw bad('user and password are not supported');
  let db = 0;
  const slash = rest.indexOf('/');
  if (slash >= 0) {
    const dbText = rest.slice(slash + 1);
    if (!/^\d{1,9}$/.test(dbText)) throw bad('the database is a number');
    db = Number(dbText);
    rest = rest.slice(0, slash);
  }
  let host: string;
  let portText = '6379';
  if (rest.startsWith('[')) {
    const close = rest.indexOf(']');
    if (close < 0) throw bad('unclosed [');
    host = rest.slice(1, close);
    if (isIP(host) !== 6) throw bad('not an IPv6 address in [ ]');
    const after = rest.slice(close + 1);
    if (after !== '') {
      if (!after.startsWith(':')) throw bad('text after ]');
      portText = after.slice(1);
    }
  } else {
    const colon = rest.indexOf(':');
    host = colon < 0 ? rest : rest.slice(0, colon);
    if (colon >= 0) portText = rest.slice(colon + 1);
    if (!/^[A-Za-z0-9.-]+$/.test(host)) throw bad('bad host');
  }
  if (!/^\d{1,5}$/.test(portText) || Number(portText) < 1 || Number(portText) > 65535) throw bad('bad port');
  const port = Number(portText);
  return { type: 'redis', host, port, db, url: `redis://${host.includes(':') ? `[${host}]` : host}:${port}/${db}` };
}
