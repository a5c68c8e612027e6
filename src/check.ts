import type { Config, EffectiveKey } from './config.js';
import type { OptionValue } from './core/options.js';
import { describeDest } from './io/server.js';

/**
 * What --check prints: a summary of what would run, then every key with the
 * value in force and where it came from (default, file, service, flag).
 */
export function describeConfig(cfg: Config): string {
  return [...summary(cfg), '', ...keyRows(cfg.effective)].join('\n');
}

/** A multi-service file: the process, then one block per service. */
export function describeServices(services: readonly Config[], facility: string): string {
  const out = [`services        ${services.map((s) => s.service).join(', ')}`, `syslogFacility  ${facility} (the process's)`];
  if (services[0]?.configFile) out.push(`config file     ${services[0].configFile}`);
  for (const s of services) out.push('', `[service ${s.service}]`, ...summary(s).filter((l) => !l.startsWith('config file')), '', ...keyRows(s.effective));
  return out.join('\n');
}

function summary(cfg: Config): string[] {
  const mode = cfg.listenFd !== null
    ? `standalone, on the socket systemd passes as ${cfg.listenFd}`
    : cfg.listen
      ? `standalone, listening on ${cfg.listen.host ?? '*'}:${cfg.listen.port}`
      : 'inetd (client on stdin/stdout), or standalone on the sockets systemd passes (Accept=no)';
  const lines = [
    `protocol        ${cfg.protocol.name}`,
    `mode            ${mode}`,
    `server          ${describeDest(cfg.dest)}${cfg.dest.type === 'exec' ? `  argv=${JSON.stringify(cfg.dest.argv)}` : ''}`,
    `tls             ${cfg.tls ? `${cfg.tls.mode} cert=${cfg.tls.cert} key=${cfg.tls.key}` : 'none'}`,
    `serverTls       ${cfg.serverTls ? `${cfg.serverTls.mode} verify=${cfg.serverTls.verify}${cfg.serverTls.ca ? ` ca=${cfg.serverTls.ca}` : ''}${cfg.serverTls.name ? ` name=${cfg.serverTls.name}` : ''}` : 'none'}`,
    ...describeAuthFailures(cfg),
  ];
  if (cfg.configFile) lines.push(`config file     ${cfg.configFile}`);
  return lines;
}

/** The lines for maxAuthFailures, with a warning where the counts cannot work. */
function describeAuthFailures(cfg: Config): string[] {
  const a = cfg.authFailures;
  if (!a) return ['maxAuthFailures none (failed logins are not counted across sessions)'];
  const store = a.store.type === 'memory' ? `memory (at most ${a.store.maxAddresses} addresses)` : `${a.store.url} timeout=${a.timeoutMs / 1000}s`;
  const lines = [
    `maxAuthFailures ${a.limit} within ${a.windowMs / 1000} s, then banned for ${a.banMs / 1000} s; IPv6 per /${a.prefix6}`,
    `stateStore      ${store}`,
  ];
  // Under inetd (no listen address, no systemd socket of its own) each process is one session.
  if (!cfg.listen && cfg.listenFd === null && a.store.type === 'memory') {
    lines.push('warning         inetd mode with the memory store: each process serves one connection, so nothing is counted across sessions; use stateStore = "redis://host:port"');
  }
  return lines;
}

function keyRows(keys: readonly EffectiveKey[]): string[] {
  const shown = keys.map((k) => ({ key: k.key, value: show(k.value), source: k.source }));
  const kw = Math.max(...shown.map((r) => r.key.length)) + 2;
  const vw = Math.min(40, Math.max(...shown.map((r) => r.value.length))) + 2;
  return [`${'key'.padEnd(kw)}${'value'.padEnd(vw)}source`, ...shown.map((r) => `${r.key.padEnd(kw)}${r.value.padEnd(vw)}${r.source}`)];
}

/** A value as TOML would write it (strings and lists as JSON, which TOML reads the same); none for unset. */
function show(v: OptionValue): string {
  if (v === null) return 'none';
  if (typeof v === 'string' || Array.isArray(v)) return JSON.stringify(v);
  return String(v);
}
