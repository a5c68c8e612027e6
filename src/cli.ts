import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import type { FlagExtras, RawOptions } from './config.js';
import { UsageError } from './errors.js';
import { protocolNames } from './protocols/index.js';

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

function build(): Command {
  return new Command('protowrap')
    .description('A security wrapper for line-oriented TCP protocols: checks every client line before the real server sees it.')
    .version(VERSION, '-V, --version')
    .addOption(new Option('-p, --protocol <name>', 'protocol module').choices(protocolNames()))
    .option('-c, --connect <addr>', 'dial the real server: host:port, [v6addr]:port or unix:/path')
    .option('-e, --exec <command>', 'spawn the real server per connection (argv with shell-like quoting, no shell)')
    .option('-l, --listen <[addr:]port>', 'standalone daemon listening here (default: inetd mode on stdin/stdout)')
    .option('-f, --config <file>', 'TOML file with the seed option names (standalone, destType, maxLineLength, ...)')
    .option('--max-line-length <n>', 'bytes per client line, line ending excluded (generic 1024)', intOrRaw)
    .option('--allow <regex>', 'a line must match one of these (repeatable)', collect)
    .option('--deny <regex>', 'a line matching one of these is refused (repeatable)', collect)
    .option('--idle-timeout <s>', 'seconds without traffic before closing (600)', intOrRaw)
    .option('--session-timeout <s>', 'seconds a session may last (14400)', intOrRaw)
    .option('--max-violations <n>', 'refused lines before the connection is closed (10)', intOrRaw)
    .option('--log-level <0-3>', '0 refusals/errors, 1 +sessions, 2 +state changes, 3 +every line (1)', intOrRaw)
    .option('--syslog-facility <name>', 'syslog facility (daemon)')
    .option('--log-stderr', 'also log to stderr (by-hand use; ignored when stderr is a socket)')
    .option('--check', 'validate the configuration, print what would run, exit 0 (or 78)')
    .helpOption('-h, --help', 'show this help')
    .allowExcessArguments(false)
    .exitOverride();
}

declare const __PROTOWRAP_VERSION__: string | undefined;
const VERSION = typeof __PROTOWRAP_VERSION__ === 'string' ? __PROTOWRAP_VERSION__ : '0.0.0-dev';

/** Parses argv (without node and script). Throws UsageError (exit 64) or CliInfo (exit 0). */
export function parseCli(argv: readonly string[]): CliResult {
  const cmd = build();
  let out = '';
  cmd.configureOutput({ writeOut: (s) => (out += s), writeErr: (s) => (out += s) });
  try {
    cmd.parse([...argv], { from: 'user' });
  } catch (err) {
    if (err instanceof CommanderError || err instanceof InvalidArgumentError) {
      if (err.exitCode === 0) throw new CliInfo(out);
      throw new UsageError(err.message.replace(/^error: /, ''));
    }
    throw err;
  }
  const o = cmd.opts<Record<string, unknown>>();
  const flags: RawOptions = {
    protocol: o['protocol'],
    maxLineLength: o['maxLineLength'],
    allowList: o['allow'],
    denyList: o['deny'],
    idleTimeout: o['idleTimeout'],
    sessionTimeout: o['sessionTimeout'],
    maxViolations: o['maxViolations'],
    logLevel: o['logLevel'],
    syslogFacility: o['syslogFacility'],
    logStderr: o['logStderr'] === true ? true : undefined,
  };
  const extras: FlagExtras = {
    ...(typeof o['connect'] === 'string' ? { connect: o['connect'] } : {}),
    ...(typeof o['exec'] === 'string' ? { exec: o['exec'] } : {}),
    ...(typeof o['listen'] === 'string' ? { listen: o['listen'] } : {}),
    ...(typeof o['config'] === 'string' ? { config: o['config'] } : {}),
  };
  return { flags, extras, check: o['check'] === true };
}
