import { availableParallelism } from 'node:os';
import { splitCommand } from './core/argv.js';
import { flagName, type OptionSpec, type OptionTable, type OptionValue } from './core/options.js';
import type { LineMatcher, Protocol, ProtocolOptions } from './core/protocol.js';
import { compileLinear } from './core/safe-regex.js';
import { parseConnect, parseListen, parseProxyPeer } from './config-parse.js';
import { ConfigError, expected, UsageError } from './errors.js';
import { AUTH_FAILURE_OPTIONS, resolveAuthFailures } from './config-auth.js';
import type { AuthFailureSettings } from './core/auth-failures.js';
import { findProtocol, protocolNames } from './protocols/index.js';

/** Where the real server is. */
export type Destination =
  | { readonly type: 'tcp'; readonly host: string; readonly port: number }
  | { readonly type: 'unix'; readonly path: string }
  | { readonly type: 'exec'; readonly argv: readonly string[] };

export interface ListenAddress {
  readonly host: string | null;
  readonly port: number;
}

/** Where a key's value came from, for --check. */
export type KeySource = 'default' | 'file' | 'service' | 'flag';

/** One key of the effective configuration: its value and its source. */
export interface EffectiveKey {
  readonly key: string;
  readonly value: OptionValue;
  readonly source: KeySource;
}

export const FACILITIES = [
  'auth', 'authpriv', 'cron', 'daemon', 'ftp', 'kern', 'lpr', 'mail', 'news', 'syslog', 'user', 'uucp',
  'local0', 'local1', 'local2', 'local3', 'local4', 'local5', 'local6', 'local7',
] as const;
export type Facility = (typeof FACILITIES)[number];

export { parseConnect, parseListen, parseProxyPeer, readConfigFile } from './config-parse.js';

/** The validated, frozen configuration. Built once by loadConfig(). */
export interface Config {
  readonly protocol: Protocol;
  readonly listen: ListenAddress | null;
  /** listen = "systemd:NAME": the socket systemd passes under that name (Accept=no); else null. */
  readonly listenFd: string | null;
  readonly dest: Destination;
  readonly options: ProtocolOptions;
  readonly idleTimeoutMs: number;
  readonly sessionTimeoutMs: number;
  readonly connectTimeoutMs: number;
  readonly maxViolations: number;
  readonly maxConnections: number;
  readonly logLevel: 0 | 1 | 2 | 3;
  readonly syslogFacility: Facility;
  readonly logStderr: boolean;
  /** Log lines as text or as one JSON object each (syslog and --log-stderr alike). */
  readonly logFormat: 'text' | 'json';
  /** TLS toward the client; null: none. */
  readonly tls: ClientTls | null;
  /** TLS toward the server; null: none. */
  readonly serverTls: ServerTls | null;
  /** PROXY protocol in and out. */
  readonly proxy: ProxySettings;
  /** Failed logins counted across sessions (maxAuthFailures); null: nothing is counted. */
  readonly authFailures: AuthFailureSettings | null;
  /** Seconds (in ms) open sessions may take to finish after SIGTERM in standalone mode. */
  readonly shutdownGraceMs: number;
  /** Processes sharing the listeners in standalone mode (workers; auto resolved to the cores). 1: this process alone. */
  readonly workers: number;
  /** The service's name in a multi-service file (logged as service=NAME); null otherwise. */
  readonly service: string | null;
  /** The file it came from, if any, for --check. */
  readonly configFile: string | null;
  /** Every key with its value and source, for --check. */
  readonly effective: readonly EffectiveKey[];
}

export interface ClientTls {
  readonly mode: 'implicit' | 'starttls' | 'require';
  readonly cert: string;
  readonly key: string;
}

export interface ServerTls {
  readonly mode: 'starttls' | 'implicit';
  readonly ca: string | null;
  readonly name: string | null;
  readonly verify: boolean;
}

export interface ProxySettings {
  /** Peers whose header is read: CIDR blocks (an address is a /32 or /128). Empty: no header is read. */
  readonly from: readonly ProxyPeer[];
  readonly required: boolean;
  readonly toServer: 'v1' | 'v2' | null;
}

export interface ProxyPeer {
  readonly net: string;
  readonly bits: number;
  readonly family: 4 | 6;
}

/**
 * The core's keys. Seed names (ProtoWrap 2002) where the seed had one:
 * standalone, listenPort, destType, destAddr, destPort, pipeCmd,
 * maxLineLength, logLevel.
 */
export const CORE_OPTIONS: OptionTable = {
  protocol: { kind: 'string', default: 'generic', doc: 'protocol module' },
  standalone: { kind: 'boolean', default: false, doc: 'run as a daemon listening on listenPort' },
  listenPort: { kind: 'integer', min: 1, max: 65535, default: null, doc: 'port to listen on (standalone)' },
  listenAddr: { kind: 'string', default: null, doc: 'address to listen on (standalone); default all' },
  destType: { kind: 'string', default: null, oneOf: ['ip', 'unix', 'pipe'], doc: 'how to reach the real server' },
  destAddr: { kind: 'string', default: null, doc: 'server host (ip) or socket path (unix)' },
  destPort: { kind: 'integer', min: 1, max: 65535, default: null, doc: 'server port (ip)' },
  pipeCmd: { kind: 'string', default: null, doc: 'server command to spawn (pipe)' },
  maxLineLength: { kind: 'integer', min: 1, max: 1048576, default: null, doc: 'bytes per client line, ending excluded' },
  lineEnding: { kind: 'string', default: null, oneOf: ['any', 'crlf', 'lf'], doc: 'line endings accepted from the client' },
  allowNul: { kind: 'boolean', default: false, doc: 'leniency: let NUL bytes through' },
  allowBareCr: { kind: 'boolean', default: false, doc: 'leniency: let a CR not followed by LF through' },
  forwardUnterminated: { kind: 'boolean', default: true, doc: 'forward a last line left without ending at EOF (generic)' },
  allowList: { kind: 'stringList', default: [], regex: true, doc: 'a line must match one of these' },
  denyList: { kind: 'stringList', default: [], regex: true, doc: 'a line matching one of these is refused' },
  idleTimeout: { kind: 'integer', min: 1, max: 604800, default: 600, doc: 'seconds without traffic before closing' },
  sessionTimeout: { kind: 'integer', min: 1, max: 604800, default: 14400, doc: 'seconds a session may last' },
  connectTimeout: { kind: 'integer', min: 1, max: 600, default: 10, doc: 'seconds to reach the server' },
  maxViolations: { kind: 'integer', min: 1, max: 1000000, default: 10, doc: 'refused lines before the connection is closed' },
  maxConnections: { kind: 'integer', min: 1, max: 100000, default: 256, doc: 'concurrent sessions (standalone)' },
  shutdownGrace: { kind: 'integer', min: 0, max: 3600, default: 30, doc: 'seconds open sessions may take to finish after SIGTERM (standalone); then the shutdown reply' },
  workers: { kind: 'string', default: '1', doc: 'processes sharing the listeners (standalone): a count 1..64, or auto (one per core)' },
  logLevel: { kind: 'integer', min: 0, max: 3, default: 1, doc: '0 refusals/errors, 1 +sessions, 2 +states, 3 +lines' },
  syslogFacility: { kind: 'string', default: null, oneOf: FACILITIES, doc: 'syslog facility (default: the protocol\'s, else daemon)' },
  logStderr: { kind: 'boolean', default: false, doc: 'also log to stderr (by-hand use only)' },
  logFormat: { kind: 'string', default: 'text', oneOf: ['text', 'json'], doc: 'log lines as text (key=value) or one JSON object per line, to syslog and stderr' },
  // TLS toward the client: the wrapper is the TLS end point, so it keeps reading every line.
  tls: { kind: 'string', default: 'none', oneOf: ['none', 'implicit', 'starttls', 'require'], doc: 'TLS toward the client: none, implicit (from the first byte), starttls (offered by us), require (starttls, no credentials before TLS)' },
  tlsCert: { kind: 'string', default: null, doc: 'PEM certificate (chain in the same file) for TLS toward the client' },
  tlsKey: { kind: 'string', default: null, doc: 'PEM private key for tlsCert' },
  // TLS toward the real server.
  serverTls: { kind: 'string', default: 'none', oneOf: ['none', 'starttls', 'implicit'], doc: 'TLS toward the server: none, starttls (done by us before the session), implicit' },
  serverTlsCa: { kind: 'string', default: null, doc: 'PEM CA file that signs the server certificate (default: the system store)' },
  serverTlsName: { kind: 'string', default: null, doc: 'name the server certificate must carry (default: the --connect host)' },
  serverTlsVerify: { kind: 'boolean', default: true, doc: 'verify the server certificate and name' },
  // PROXY protocol (HAProxy's v1 text and v2 binary headers).
  proxyFrom: { kind: 'stringList', default: [], doc: 'peers (CIDR or address) whose PROXY v1/v2 header is read and trusted' },
  proxyRequired: { kind: 'boolean', default: true, doc: 'with proxyFrom: a listed peer must send a header' },
  proxyToServer: { kind: 'string', default: null, oneOf: ['v1', 'v2'], doc: 'send a PROXY header (v1 or v2) to the server before any byte' },
  // Failed logins counted per client across sessions and processes (config-auth.ts).
  ...AUTH_FAILURE_OPTIONS,
};

/** Raw values as they come from one source, before validation. */
export type RawOptions = Record<string, unknown>;

/** Flags that are not plain keys: they are resolved into keys here. */
export interface FlagExtras {
  readonly connect?: string;
  readonly exec?: string;
  readonly listen?: string;
  readonly config?: string;
  /** --service NAME: the one service of a multi-service file to run. */
  readonly service?: string;
}

/** One source of raw values; later layers override earlier ones. */
export interface ConfigLayer {
  readonly source: Exclude<KeySource, 'default'>;
  readonly values: RawOptions;
}

/**
 * Keys that are not in the option tables: the destination and the listen
 * address as the flags write them (`connect = "host:port"`, `exec = "…"`,
 * `listen = "[addr:]port"` or `"systemd:NAME"`), for files and service tables.
 */
export const PLACE_KEYS = ['connect', 'exec', 'listen'] as const;
const DEST_KEYS = ['connect', 'exec', 'destType', 'destAddr', 'destPort', 'pipeCmd'];
const LISTEN_KEYS = ['listen', 'standalone', 'listenPort', 'listenAddr'];

function checkValue(key: string, spec: OptionSpec, v: unknown): OptionValue {
  switch (spec.kind) {
    case 'integer':
      if (typeof v !== 'number' || !Number.isInteger(v)) throw new ConfigError('PW_ERR_CONFIG_TYPE', key, expected('an integer', v));
      if (v < spec.min || v > spec.max) throw new ConfigError('PW_ERR_CONFIG_VALUE', key, `expected ${spec.min}..${spec.max}, got ${v}`);
      return v;
    case 'boolean':
      if (typeof v !== 'boolean') throw new ConfigError('PW_ERR_CONFIG_TYPE', key, expected('true or false', v));
      return v;
    case 'string':
      if (typeof v !== 'string') throw new ConfigError('PW_ERR_CONFIG_TYPE', key, expected('a string', v));
      // The OS reads paths, host names and argv up to a NUL: "127.0.0.1\0x" would dial 127.0.0.1.
      if (v.includes('\0')) throw new ConfigError('PW_ERR_CONFIG_VALUE', key, 'contains a NUL character');
      if (spec.oneOf && !spec.oneOf.includes(v)) throw new ConfigError('PW_ERR_CONFIG_VALUE', key, expected(`one of ${spec.oneOf.join(', ')}`, v));
      return v;
    case 'stringList':
      if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) throw new ConfigError('PW_ERR_CONFIG_TYPE', key, expected('a list of strings', v));
      if (v.some((x: string) => x.includes('\0'))) throw new ConfigError('PW_ERR_CONFIG_VALUE', key, 'contains a NUL character (write \\x00 in a pattern)');
      return Object.freeze([...(v as string[])]);
    default: {
      const never: never = spec;
      throw new Error(`unknown option kind ${JSON.stringify(never)}`);
    }
  }
}

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object' && !Object.isFrozen(o)) {
    Object.freeze(o);
    for (const v of Object.values(o)) deepFreeze(v);
  }
  return o;
}

/**
 * Validates the file's keys and the flags' keys against the core's table and
 * the chosen protocol's table, once. A flag overrides the file; a destination
 * given by flag (--connect/--exec) replaces the file's whole destination.
 */
export function buildConfig(file: RawOptions | null, flags: RawOptions, extras: FlagExtras): Config {
  const cli: RawOptions = { ...flags };
  for (const k of PLACE_KEYS) if (extras[k] !== undefined) cli[k] = extras[k];
  return buildLayered([{ source: 'file', values: file ?? {} }, { source: 'flag', values: cli }], extras.config ?? null, null);
}

/**
 * The one validation, over layers (file, a service table, flags): a later
 * layer overrides an earlier one key by key, except that `connect`/`exec`
 * replace the whole destination of the layers below and `listen` their
 * whole listen address. Every value is checked against its table.
 */
export function buildLayered(layers: readonly ConfigLayer[], configFile: string | null, service: string | null): Config {
  const merged: RawOptions = {};
  const source: Record<string, KeySource> = {};
  for (const layer of layers) {
    const set = Object.entries(layer.values).filter(([, v]) => v !== undefined);
    const wipe = (keys: readonly string[]) => {
      for (const k of keys) {
        delete merged[k];
        delete source[k];
      }
    };
    if (set.some(([k]) => k === 'connect' || k === 'exec')) wipe(DEST_KEYS);
    if (set.some(([k]) => k === 'listen')) wipe(LISTEN_KEYS);
    for (const [k, v] of set) {
      merged[k] = v;
      source[k] = layer.source;
    }
  }
  const fromFlag = (k: string) => source[k] === 'flag';

  const protoName = merged['protocol'] ?? 'generic';
  if (typeof protoName !== 'string') throw new ConfigError('PW_ERR_CONFIG_TYPE', 'protocol', expected('a string', protoName));
  const protocol = findProtocol(protoName);
  if (!protocol) throw new ConfigError('PW_ERR_CONFIG_VALUE', 'protocol', expected(`one of ${protocolNames().join(', ')}`, protoName));
  const protoTable: OptionTable = protocol.options ?? {};

  const v: Record<string, OptionValue> = {};
  const extra: Record<string, OptionValue> = {};
  const place: Partial<Record<(typeof PLACE_KEYS)[number], string>> = {};
  for (const [k, raw] of Object.entries(merged)) {
    if ((PLACE_KEYS as readonly string[]).includes(k)) {
      const key = fromFlag(k) ? `--${k}` : k;
      place[k as (typeof PLACE_KEYS)[number]] = checkValue(key, { kind: 'string', default: null, doc: '' }, raw) as string;
      continue;
    }
    const core = Object.hasOwn(CORE_OPTIONS, k) ? CORE_OPTIONS[k] : undefined;
    const own = Object.hasOwn(protoTable, k) ? protoTable[k] : undefined;
    const spec = core ?? own;
    if (!spec) {
      if (fromFlag(k)) {
        // A protocol's flag with another protocol: the command line is wrong, not the file.
        const owners = protocolNames().filter((n) => Object.hasOwn(findProtocol(n)!.options ?? {}, k));
        throw new UsageError(`--${flagName(k)} is an option of protocol ${owners.join(', ')}, not of ${protocol.name}`);
      }
      throw new ConfigError('PW_ERR_CONFIG_UNKNOWN_KEY', k, `unknown key for protocol ${protocol.name}`);
    }
    // workers = 2 in TOML is an integer; the key also takes "auto".
    const value = k === 'workers' && typeof raw === 'number' ? String(raw) : raw;
    (core ? v : extra)[k] = checkValue(k, spec, value);
  }
  // A protocol's own idle default (ident: 60 s) applies only when no source set idleTimeout.
  const idleTimeout = Object.hasOwn(v, 'idleTimeout') ? (v['idleTimeout'] as number) : protocol.defaultIdleTimeout ?? (CORE_OPTIONS['idleTimeout']!.default as number);
  for (const [k, spec] of Object.entries(CORE_OPTIONS)) if (!(k in v)) v[k] = spec.default;
  for (const [k, spec] of Object.entries(protoTable)) if (!(k in extra)) extra[k] = spec.default;

  const placeKey = (k: 'connect' | 'exec' | 'listen') => (fromFlag(k) ? `--${k}` : k);
  const dest = resolveDest(v, place, placeKey);
  const { listen, listenFd } = resolveListen(v, place, placeKey);
  const compile = (key: string) => ((v[key] as readonly string[]).map((p) => compileLinear(key, p)) as LineMatcher[]);
  const options: ProtocolOptions = {
    maxLineLength: (v['maxLineLength'] as number | null) ?? protocol.defaultMaxLineLength,
    lineEnding: ((v['lineEnding'] as string | null) ?? (protocol.name === 'generic' ? 'any' : 'crlf')) as ProtocolOptions['lineEnding'],
    allowNul: v['allowNul'] as boolean,
    allowBareCr: v['allowBareCr'] as boolean,
    allow: compile('allowList'),
    deny: compile('denyList'),
    forwardUnterminated: v['forwardUnterminated'] as boolean,
    extra,
  };
  protocol.checkOptions?.(options);
  const syslogFacility = (v['syslogFacility'] as Facility | null) ?? protocol.defaultFacility ?? 'daemon';
  // The keys a protocol resolves when left unset are shown with the value in force.
  const workers = resolveWorkers(v['workers'] as string);
  const resolved: Record<string, OptionValue> = { protocol: protocol.name, maxLineLength: options.maxLineLength, lineEnding: options.lineEnding, syslogFacility, idleTimeout };
  if (v['workers'] === 'auto') resolved['workers'] = `auto (${workers})`;
  const effective: EffectiveKey[] = [];
  for (const k of PLACE_KEYS) if (place[k] !== undefined) effective.push({ key: k, value: place[k]!, source: source[k]! });
  // In table order: the core's keys, then the protocol's.
  for (const [k, val] of [...Object.keys(CORE_OPTIONS).map((k) => [k, v[k]!] as const), ...Object.keys(protoTable).map((k) => [k, extra[k]!] as const)]) {
    effective.push({ key: k, value: resolved[k] ?? val, source: source[k] ?? 'default' });
  }
  const cfg: Config = {
    protocol,
    listen,
    listenFd,
    dest,
    options,
    idleTimeoutMs: idleTimeout * 1000,
    sessionTimeoutMs: (v['sessionTimeout'] as number) * 1000,
    connectTimeoutMs: (v['connectTimeout'] as number) * 1000,
    maxViolations: v['maxViolations'] as number,
    maxConnections: v['maxConnections'] as number,
    logLevel: v['logLevel'] as 0 | 1 | 2 | 3,
    syslogFacility,
    logStderr: v['logStderr'] as boolean,
    logFormat: v['logFormat'] === 'json' ? 'json' : 'text',
    tls: resolveTls(v),
    serverTls: resolveServerTls(v, dest, protocol),
    proxy: {
      from: (v['proxyFrom'] as readonly string[]).map(parseProxyPeer),
      required: v['proxyRequired'] as boolean,
      toServer: v['proxyToServer'] as 'v1' | 'v2' | null,
    },
    authFailures: resolveAuthFailures(v),
    shutdownGraceMs: (v['shutdownGrace'] as number) * 1000,
    workers,
    service,
    configFile,
    effective,
  };
  return deepFreeze(cfg);
}

/** Most worker processes: each is a whole daemon (listeners, hold store, sessions). */
export const MAX_WORKERS = 64;

/** workers: a count, or auto (os.availableParallelism(), at most MAX_WORKERS). */
function resolveWorkers(w: string): number {
  if (w === 'auto') return Math.max(1, Math.min(MAX_WORKERS, availableParallelism()));
  const n = /^[1-9][0-9]{0,2}$/.test(w) ? Number(w) : NaN;
  if (!(n <= MAX_WORKERS)) throw new ConfigError('PW_ERR_CONFIG_VALUE', 'workers', expected(`a count 1..${MAX_WORKERS} or auto`, w));
  return n;
}

type PlaceKeyName = (k: 'connect' | 'exec' | 'listen') => string;

function resolveDest(v: Record<string, OptionValue>, place: Partial<Record<'connect' | 'exec', string>>, keyOf: PlaceKeyName): Destination {
  if (place.connect !== undefined && place.exec !== undefined) {
    throw new ConfigError('PW_ERR_CONFIG_DEST', `${keyOf('connect')}/${keyOf('exec')}`, 'give one of them, not both');
  }
  const type = v['destType'];
  if ((place.connect !== undefined || place.exec !== undefined) && type !== null) {
    throw new ConfigError('PW_ERR_CONFIG_DEST', 'destType', `not used with ${place.connect !== undefined ? keyOf('connect') : keyOf('exec')}: give one destination`);
  }
  if (place.connect !== undefined) return parseConnect(place.connect, keyOf('connect'));
  if (place.exec !== undefined) return execDest(keyOf('exec'), place.exec);
  const addr = v['destAddr'] as string | null;
  const port = v['destPort'] as number | null;
  const cmd = v['pipeCmd'] as string | null;
  switch (type) {
    case null:
      throw new ConfigError('PW_ERR_CONFIG_DEST', '--connect/--exec', 'no server given: use --connect, --exec, or destType in the config file');
    case 'pipe':
      if (addr !== null || port !== null) throw new ConfigError('PW_ERR_CONFIG_DEST', 'destAddr', 'not used with destType = "pipe"');
      if (cmd === null) throw new ConfigError('PW_ERR_CONFIG_DEST', 'pipeCmd', 'required with destType = "pipe"');
      return execDest('pipeCmd', cmd);
    case 'ip':
      if (cmd !== null) throw new ConfigError('PW_ERR_CONFIG_DEST', 'pipeCmd', 'not used with destType = "ip"');
      if (addr === null || addr === '') throw new ConfigError('PW_ERR_CONFIG_DEST', 'destAddr', 'required with destType = "ip"');
      if (port === null) throw new ConfigError('PW_ERR_CONFIG_DEST', 'destPort', 'required with destType = "ip"');
      return { type: 'tcp', host: addr, port };
    case 'unix':
      if (cmd !== null || port !== null) throw new ConfigError('PW_ERR_CONFIG_DEST', 'destType', 'unix takes destAddr (a socket path) only');
      if (addr === null || !addr.startsWith('/')) throw new ConfigError('PW_ERR_CONFIG_DEST', 'destAddr', expected('an absolute socket path', addr));
      return { type: 'unix', path: addr };
    default:
      throw new ConfigError('PW_ERR_CONFIG_VALUE', 'destType', expected('ip, unix or pipe', type));
  }
}

function execDest(key: string, cmd: string): Destination {
  const argv = splitCommand(cmd);
  if (typeof argv === 'string') throw new ConfigError('PW_ERR_CONFIG_DEST', key, argv);
  return { type: 'exec', argv };
}

/** A name systemd gives a passed socket (FileDescriptorName=): no spaces, no colons. */
const FD_NAME = /^[A-Za-z0-9_.@-]{1,255}$/;

function resolveListen(v: Record<string, OptionValue>, place: Partial<Record<'listen', string>>, keyOf: PlaceKeyName): { listen: ListenAddress | null; listenFd: string | null } {
  if (place.listen !== undefined) {
    if (place.listen.startsWith('systemd:')) {
      const name = place.listen.slice('systemd:'.length);
      if (!FD_NAME.test(name)) throw new ConfigError('PW_ERR_CONFIG_VALUE', keyOf('listen'), expected('systemd:NAME (a FileDescriptorName)', place.listen));
      return { listen: null, listenFd: name };
    }
    return { listen: parseListen(place.listen, keyOf('listen')), listenFd: null };
  }
  const standalone = v['standalone'] as boolean;
  const port = v['listenPort'] as number | null;
  const host = v['listenAddr'] as string | null;
  if (!standalone) {
    if (port !== null || host !== null) throw new ConfigError('PW_ERR_CONFIG_VALUE', 'listenPort', 'only used with standalone = true');
    return { listen: null, listenFd: null };
  }
  if (port === null) throw new ConfigError('PW_ERR_CONFIG_VALUE', 'listenPort', 'required with standalone = true');
  if (host === '') throw new ConfigError('PW_ERR_CONFIG_VALUE', 'listenAddr', 'empty: leave it out to listen on all addresses');
  return { listen: { host, port }, listenFd: null };
}

function resolveTls(v: Record<string, OptionValue>): ClientTls | null {
  const mode = v['tls'] as 'none' | ClientTls['mode'];
  const cert = v['tlsCert'] as string | null;
  const key = v['tlsKey'] as string | null;
  if (mode === 'none') {
    if (cert !== null || key !== null) throw new ConfigError('PW_ERR_CONFIG_VALUE', 'tlsCert', 'given without tls (implicit, starttls or require)');
    return null;
  }
  if (cert === null) throw new ConfigError('PW_ERR_CONFIG_VALUE', 'tlsCert', `required with tls = "${mode}"`);
  if (key === null) throw new ConfigError('PW_ERR_CONFIG_VALUE', 'tlsKey', `required with tls = "${mode}"`);
  return { mode, cert, key };
}

function resolveServerTls(v: Record<string, OptionValue>, dest: Destination, protocol: Protocol): ServerTls | null {
  const mode = v['serverTls'] as 'none' | ServerTls['mode'];
  if (mode === 'none') return null;
  if (mode === 'starttls' && !protocol.serverStarttls) throw new ConfigError('PW_ERR_CONFIG_VALUE', 'serverTls', `protocol ${protocol.name} has no STARTTLS: use implicit`);
  if (dest.type === 'exec') throw new ConfigError('PW_ERR_CONFIG_VALUE', 'serverTls', 'a spawned server (--exec) is reached over pipes, not TLS');
  return { mode, ca: v['serverTlsCa'] as string | null, name: v['serverTlsName'] as string | null, verify: v['serverTlsVerify'] as boolean };
}
