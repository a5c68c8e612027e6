import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { CORE_OPTIONS, type FlagExtras, type RawOptions } from './config.js';
import { flagName, shownDefault, type OptionSpec } from './core/options.js';
import { UsageError } from './errors.js';
import { findProtocol, protocolNames } from './protocols/index.js';

export interface CliResult {
  /** Keys set by flags, named as in the config file. */
  readonly flags: RawOptions;
  readonly extras: FlagExtras;
  readonly check: boolean;
}

/** Thrown for --help and --version: the text is printed and the process exits 0. */
export class CliInfo {
  constructor(readonly text: string) {}
}

/** An integer as written, or the raw string so that config validation names the key and the type. */
function intOrRaw(v: string): number | string {
  return /^-?\d+$/.test(v) ? Number(v) : v;
}

function collect(v: string, prev: string[] | undefined): string[] {
  return [...(prev ?? []), v];
}

/**
 * Core keys with a flag of their own above (a short form, another name, or
 * not a plain key): the generated flag for the key is not added again.
 */
const HAND_WRITTEN = new Set(['protocol', 'maxLineLength', 'idleTimeout', 'sessionTimeout', 'maxViolations', 'logLevel', 'syslogFacility', 'logStderr']);

/** One generated flag per key: `--kebab-name <value>`, repeatable for lists, `--x` / `--no-x` for booleans. */
function addKeyFlags(cmd: Command, key: string, spec: OptionSpec, hidden: boolean, owner: string): void {
  const flag = flagName(key);
  const doc = `${spec.doc}${owner ? ` [${owner}]` : ''} (default: ${shownDefault(spec)})`;
  const add = (o: Option) => cmd.addOption(hidden ? o.hideHelp() : o);
  switch (spec.kind) {
    case 'integer':
      add(new Option(`--${flag} <n>`, doc).argParser(intOrRaw));
      return;
    case 'string':
      add(new Option(`--${flag} <${spec.oneOf ? spec.oneOf.join('|') : 'value'}>`, doc));
      return;
    case 'stringList':
      add(new Option(`--${flag} <value>`, `${doc}; repeatable`).argParser(collect));
      return;
    case 'boolean':
      add(new Option(`--${flag}`, doc));
      add(new Option(`--no-${flag}`, `turn ${flag} off`));
      return;
    default: {
      const never: never = spec;
      throw new Error(`unknown option kind ${JSON.stringify(never)}`);
    }
  }
}

/** Every protocol key, once, with the protocols that have it (maxLoginAttempts: pop3, imap). */
export function protocolKeys(): Map<string, { spec: OptionSpec; owners: string[] }> {
  const keys = new Map<string, { spec: OptionSpec; owners: string[] }>();
  for (const name of protocolNames()) {
    for (const [k, spec] of Object.entries(findProtocol(name)!.options ?? {})) {
      const e = keys.get(k);
      if (e) e.owners.push(name);
      else keys.set(k, { spec, owners: [name] });
    }
  }
  return keys;
}

/** The protocol named on the command line, if any, for --help. */
function protocolInArgv(argv: readonly string[]): string | null {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if ((a === '-p' || a === '--protocol') && i + 1 < argv.length) return argv[i + 1]!;
    if (a.startsWith('--protocol=')) return a.slice('--protocol='.length);
  }
  return null;
}

/** The idle default as --help shows it: the core's, and each protocol's own (ident: 60). */
function idleDefaults(): string {
  const own = protocolNames().flatMap((n) => {
    const d = findProtocol(n)!.defaultIdleTimeout;
    return d === undefined ? [] : [`${n} ${d}`];
  });
  return [String(CORE_OPTIONS['idleTimeout']!.default), ...own].join('; ');
}

/**
 * The long flag names argv mentions (`--max-line-length 5`, `--x=1`,
 * `--no-x`), for the quick build: null when argv asks for something only the
 * full table answers (help).
 */
function mentionedFlags(argv: readonly string[]): Set<string> | null {
  const names = new Set<string>();
  for (const a of argv) {
    if (a === '-h' || a === '--help') return null;
    if (!a.startsWith('--')) continue;
    const eq = a.indexOf('=');
    const name = a.slice(2, eq < 0 ? a.length : eq);
    names.add(name);
    if (name.startsWith('no-')) names.add(name.slice(3));
  }
  return names;
}

/**
 * The command line's table. `only` set: just the generated flags argv
 * mentions. Commander registers each of the 150-odd options one by one, a
 * few milliseconds of every inetd start; a flag argv never names cannot
 * change how argv parses (an option-argument is taken as it stands, whatever
 * else is registered), so the result is the same. Anything but a clean parse
 * (an error with its "did you mean", help) is redone on the full table.
 */
function build(argv: readonly string[], only: Set<string> | null): Command {
  const cmd = new Command('protowrap')
    .description('A security wrapper for line-oriented TCP protocols: checks every client line before the real server sees it.')
    .version(VERSION, '-V, --version')
    .addOption(new Option('-p, --protocol <name>', 'protocol module').choices(protocolNames()))
    .option('-c, --connect <addr>', 'dial the real server: host:port, [v6addr]:port or unix:/path')
    .option('-e, --exec <command>', 'spawn the real server per connection (argv with shell-like quoting, no shell)')
    .option('-l, --listen <[addr:]port>', 'standalone daemon listening here (default: inetd mode on stdin/stdout)')
    .option('-f, --config <file>', 'TOML file with the seed option names (standalone, destType, maxLineLength, ...), or [[service]] tables')
    .option('--service <name>', 'run only this service of a multi-service file (inetd mode, or on the sockets systemd passes)')
    .option('--max-line-length <n>', 'bytes per client line, line ending excluded (generic 1024)', intOrRaw)
    .option('--allow <regex>', 'a line must match one of these (repeatable; same as --allow-list)', collect)
    .option('--deny <regex>', 'a line matching one of these is refused (repeatable; same as --deny-list)', collect)
    .option('--idle-timeout <s>', `seconds without traffic before closing (${idleDefaults()})`, intOrRaw)
    .option('--session-timeout <s>', 'seconds a session may last (14400)', intOrRaw)
    .option('--max-violations <n>', 'refused lines before the connection is closed (10)', intOrRaw)
    .option('--log-level <0-3>', '0 refusals/errors, 1 +sessions, 2 +state changes, 3 +every line (1)', intOrRaw)
    .option('--syslog-facility <name>', 'syslog facility (daemon)')
    .option('--log-stderr', 'also log to stderr (by-hand use; ignored when stderr is a socket)')
    .option('--check', 'validate the configuration, print every key with its value and source, exit 0 (or 78)');
  const wanted = (k: string) => only === null || only.has(flagName(k));
  for (const [k, spec] of Object.entries(CORE_OPTIONS)) if (!HAND_WRITTEN.has(k) && wanted(k)) addKeyFlags(cmd, k, spec, false, '');
  const shown = protocolInArgv(argv);
  for (const [k, { spec, owners }] of protocolKeys()) {
    if (wanted(k)) addKeyFlags(cmd, k, spec, shown === null || !owners.includes(shown), owners.join(', '));
  }
  return cmd
    .addHelpText('after', shown ? '' : '\nEach protocol has options of its own: protowrap --protocol <name> --help lists them with their defaults.')
    .helpOption('-h, --help', 'show this help')
    .allowExcessArguments(false)
    .exitOverride();
}

declare const __PROTOWRAP_VERSION__: string | undefined;
const VERSION = typeof __PROTOWRAP_VERSION__ === 'string' ? __PROTOWRAP_VERSION__ : '0.0.0-dev';

/** argv parsed on the quick table, or null when the full table must answer (help, any error). */
function quickParse(argv: readonly string[]): Command | null {
  const only = mentionedFlags(argv);
  const r = only === null ? null : parsedOn(build(argv, only), argv);
  return r instanceof Command ? r : null;
}

/** True when argv parses on the quick table (no full build needed): for tests. */
export function parsesOnQuickTable(argv: readonly string[]): boolean {
  return quickParse(argv) !== null;
}

/** cmd after parsing argv, or the error (or help, version) it threw. */
function parsedOn(cmd: Command, argv: readonly string[]): Command | { out: string; err: unknown } {
  const res = { out: '', err: undefined as unknown };
  cmd.configureOutput({ writeOut: (s) => (res.out += s), writeErr: (s) => (res.out += s) });
  try {
    cmd.parse([...argv], { from: 'user' });
    return cmd;
  } catch (err) {
    res.err = err;
    return res;
  }
}

/** The options argv sets, parsed on the full table; throws UsageError or CliInfo. */
function fullParse(argv: readonly string[]): Record<string, unknown> {
  const r = parsedOn(build(argv, null), argv);
  if (r instanceof Command) return r.opts<Record<string, unknown>>();
  const { err, out } = r;
  if (err instanceof CommanderError || err instanceof InvalidArgumentError) {
    if (err.exitCode === 0) throw new CliInfo(out);
    throw new UsageError(err.message.replace(/^error: /, ''));
  }
  throw err;
}

/** Parses argv (without node and script). Throws UsageError (exit 64) or CliInfo (exit 0). */
export function parseCli(argv: readonly string[], table: 'quick' | 'full' = 'quick'): CliResult {
  const quick = table === 'quick' ? quickParse(argv) : null;
  const o = quick ? quick.opts<Record<string, unknown>>() : fullParse(argv);
  const flags: RawOptions = {
    protocol: o['protocol'],
    maxLineLength: o['maxLineLength'],
    idleTimeout: o['idleTimeout'],
    sessionTimeout: o['sessionTimeout'],
    maxViolations: o['maxViolations'],
    logLevel: o['logLevel'],
    syslogFacility: o['syslogFacility'],
    logStderr: o['logStderr'] === true ? true : undefined,
  };
  // Generated flags: commander names them by their key (--max-login-attempts → maxLoginAttempts).
  for (const k of [...Object.keys(CORE_OPTIONS), ...protocolKeys().keys()]) {
    if (!HAND_WRITTEN.has(k) && o[k] !== undefined) flags[k] = o[k];
  }
  // --allow/--deny and --allow-list/--deny-list add to the same lists.
  const both = (a: unknown, b: unknown) => (a === undefined && b === undefined ? undefined : [...((a as string[]) ?? []), ...((b as string[]) ?? [])]);
  flags['allowList'] = both(o['allow'], o['allowList']);
  flags['denyList'] = both(o['deny'], o['denyList']);
  const extras: FlagExtras = {
    ...(typeof o['connect'] === 'string' ? { connect: o['connect'] } : {}),
    ...(typeof o['exec'] === 'string' ? { exec: o['exec'] } : {}),
    ...(typeof o['listen'] === 'string' ? { listen: o['listen'] } : {}),
    ...(typeof o['config'] === 'string' ? { config: o['config'] } : {}),
    ...(typeof o['service'] === 'string' ? { service: o['service'] } : {}),
  };
  return { flags, extras, check: o['check'] === true };
}
