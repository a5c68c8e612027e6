import { buildLayered, CORE_OPTIONS, PLACE_KEYS, type Config, type ConfigLayer, type Facility, type FlagExtras, type RawOptions } from './config.js';
import { flagName } from './core/options.js';
import { ConfigError, expected, ProtowrapError, UsageError } from './errors.js';
import { findProtocol, protocolNames } from './protocols/index.js';

/**
 * A multi-service file: `[[service]]` tables, each one service of its own
 * (name, listen, protocol, destination, options), the top-level keys giving
 * defaults to all of them. One process runs them all (`protowrap -f FILE`),
 * or one of them under a superserver (`--service NAME`).
 */
export interface ServiceSet {
  /** Every service (or the one --service picked), validated and frozen. */
  readonly services: readonly Config[];
  /** --service picked one: it runs alone, like a single configuration. */
  readonly picked: boolean;
}

/** Most services in one file: each is a listener, its hold store and its sessions. */
export const MAX_SERVICES = 64;

/** A service name: it is logged (service=NAME) and matched by fail2ban, so no spaces or quotes. */
const SERVICE_NAME = /^[A-Za-z0-9_.-]{1,64}$/;

/** Keys that are one per process, not one per service: set them at the top level. */
const PROCESS_KEYS = ['syslogFacility', 'logStderr', 'logFormat', 'workers'];

/** Keys a multi-service file does not take: each service has its own `listen`. */
const SEED_LISTEN_KEYS = ['standalone', 'listenPort', 'listenAddr'];

export function isMultiService(file: RawOptions | null): file is RawOptions {
  return file !== null && Object.hasOwn(file, 'service');
}

/** A protocol key of some protocol (not the core's). */
function protocolKeyOwners(k: string): string[] {
  return protocolNames().filter((n) => Object.hasOwn(findProtocol(n)!.options ?? {}, k));
}

/**
 * Validates every service of the file like a top-level configuration (its
 * table over the top level, flags over both); an error names the service.
 * Names and listen addresses are unique. A top-level or flag key of a
 * protocol applies to the services of that protocol only.
 */
export function buildServices(file: RawOptions, flags: RawOptions, extras: FlagExtras): ServiceSet {
  const tables = file['service'];
  if (!Array.isArray(tables) || tables.length === 0 || !tables.every((t) => t !== null && typeof t === 'object' && !Array.isArray(t))) {
    throw new ConfigError('PW_ERR_CONFIG_TYPE', 'service', expected('[[service]] tables', tables));
  }
  if (tables.length > MAX_SERVICES) throw new ConfigError('PW_ERR_CONFIG_VALUE', 'service', `at most ${MAX_SERVICES} services, got ${tables.length}`);
  const top: RawOptions = { ...file };
  delete top['service'];
  for (const k of [...SEED_LISTEN_KEYS, 'listen']) {
    if (top[k] !== undefined) throw new ConfigError('PW_ERR_CONFIG_VALUE', k, 'not at the top level of a multi-service file: give each [[service]] its own listen');
  }
  for (const k of Object.keys(top)) {
    if (Object.hasOwn(CORE_OPTIONS, k) || (PLACE_KEYS as readonly string[]).includes(k) || protocolKeyOwners(k).length > 0) continue;
    throw new ConfigError('PW_ERR_CONFIG_UNKNOWN_KEY', k, 'unknown key (top level of a multi-service file)');
  }
  const pick = extras.service ?? null;
  if (pick === null) {
    for (const k of PLACE_KEYS) {
      if (extras[k] !== undefined) throw new UsageError(`--${k} with a multi-service file needs --service NAME (which service it is for)`);
    }
  }

  const names = new Set<string>();
  const built: Config[] = [];
  const usedKeys = new Set<string>();
  for (const raw of tables as RawOptions[]) {
    const name = raw['name'];
    if (typeof name !== 'string' || !SERVICE_NAME.test(name)) {
      throw new ConfigError('PW_ERR_CONFIG_VALUE', 'service.name', expected('a name of letters, digits, _ . - (64 at most)', name ?? 'nothing'));
    }
    if (names.has(name)) throw new ConfigError('PW_ERR_CONFIG_VALUE', `service ${name}`, 'name: given to two services');
    names.add(name);
    const table: RawOptions = { ...raw };
    delete table['name'];
    try {
      for (const k of [...SEED_LISTEN_KEYS, ...PROCESS_KEYS]) {
        if (table[k] === undefined) continue;
        throw new ConfigError('PW_ERR_CONFIG_VALUE', k, SEED_LISTEN_KEYS.includes(k) ? 'use listen = "[addr:]port" in a service table' : 'one per process: set it at the top level');
      }
      // The protocol the layers below settle on (flags over the table over the top level): its keys are this service's.
      const protoName = flags['protocol'] ?? table['protocol'] ?? top['protocol'] ?? 'generic';
      const proto = typeof protoName === 'string' ? findProtocol(protoName) : undefined;
      const mine = (k: string) => !proto || Object.hasOwn(CORE_OPTIONS, k) || Object.hasOwn(proto.options ?? {}, k) || protocolKeyOwners(k).length === 0;
      // Another protocol's key, at the top level or as a flag, is for the services of that protocol.
      const only = (o: RawOptions) => Object.fromEntries(Object.entries(o).filter(([k, v]) => v !== undefined && mine(k)));
      const cli: RawOptions = only(flags);
      if (pick === name) {
        for (const k of PLACE_KEYS) if (extras[k] !== undefined) cli[k] = extras[k];
      }
      for (const k of Object.keys(cli)) usedKeys.add(k);
      const own: RawOptions = { ...table };
      // Picked for inetd mode (or the sockets systemd passes): its listen address is not used.
      if (pick === name) delete own['listen'];
      const layers: ConfigLayer[] = [
        { source: 'file', values: only(top) },
        { source: 'service', values: own },
        { source: 'flag', values: cli },
      ];
      const cfg = buildLayered(layers, extras.config ?? null, name);
      if (pick === null && !cfg.listen && !cfg.listenFd) {
        throw new ConfigError('PW_ERR_CONFIG_VALUE', 'listen', 'required in a service table (or run this one service alone with --service NAME)');
      }
      built.push(cfg);
    } catch (err) {
      if (err instanceof ConfigError) throw new ConfigError(err.code as ConfigCode, `service ${name}`, err.message);
      throw err;
    }
  }
  // A flag of a protocol no service has is a usage error, as with one configuration.
  for (const [k, v] of Object.entries(flags)) {
    if (v === undefined || Object.hasOwn(CORE_OPTIONS, k) || usedKeys.has(k)) continue;
    const owners = protocolKeyOwners(k);
    if (owners.length > 0) throw new UsageError(`--${flagName(k)} is an option of protocol ${owners.join(', ')}, which no service uses`);
  }
  for (const [k, v] of Object.entries(top)) {
    if (v === undefined || Object.hasOwn(CORE_OPTIONS, k) || (PLACE_KEYS as readonly string[]).includes(k)) continue;
    if (!built.some((c) => Object.hasOwn(c.protocol.options ?? {}, k))) {
      throw new ConfigError('PW_ERR_CONFIG_UNKNOWN_KEY', k, `unknown key for the protocols of the services (${[...new Set(built.map((c) => c.protocol.name))].join(', ')})`);
    }
  }
  checkListensUnique(built);
  if (pick !== null) {
    const one = built.find((c) => c.service === pick);
    if (!one) throw new ConfigError('PW_ERR_CONFIG_VALUE', '--service', expected(`one of ${[...names].join(', ')}`, pick));
    return { services: [one], picked: true };
  }
  return { services: built, picked: false };
}

type ConfigCode = Extract<ProtowrapError['code'], `PW_ERR_CONFIG_${string}`>;

function checkListensUnique(services: readonly Config[]): void {
  const seen = new Map<string, string>();
  for (const c of services) {
    const where = c.listenFd !== null ? `systemd:${c.listenFd}` : c.listen ? `${c.listen.host ?? '*'}:${c.listen.port}` : null;
    if (where === null) continue;
    const other = seen.get(where);
    if (other) throw new ConfigError('PW_ERR_CONFIG_VALUE', `service ${c.service}`, `listen: ${where} is also service ${other}'s`);
    seen.set(where, c.service!);
  }
}

/** The process's syslog facility: the one every service has, else daemon. */
export function processFacility(services: readonly Config[]): Facility {
  const first = services[0]!.syslogFacility;
  return services.every((c) => c.syslogFacility === first) ? first : 'daemon';
}
