// Writes dist/protowrap.8, the man page, from the same sources as the
// command line and the config validation (issue 10, one source for the docs):
// the option tables (CORE_OPTIONS, each protocol's options), the flags
// commander really defines (src/cli.ts), and the README's "What it does" and
// "Exit codes" sections. The TypeScript sources are bundled by esbuild into a
// temporary CommonJS file and loaded from there.
//   node build/manpage.mjs        (build/build.mjs runs it after the bundle)
import { build } from 'esbuild';
import { mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { nodeBundleOptions } from './bundle-options.mjs';

const root = fileURLToPath(new URL('..', import.meta.url));

/**
 * The entry of the temporary bundle: the tables, and the options commander
 * defines, caught as parseCli() hands its Command to parse() (--help then
 * stops it).
 */
const ENTRY = `
import { Command } from 'commander';
import { CORE_OPTIONS } from './src/config.ts';
import { parseCli, protocolKeys } from './src/cli.ts';
import { flagName, shownDefault } from './src/core/options.ts';
import { findProtocol, protocolNames } from './src/protocols/index.ts';
import { logEvents } from './src/log/event.ts';

function cliOptions(argv) {
  let caught = [];
  const parse = Command.prototype.parse;
  Command.prototype.parse = function (...a) {
    caught = this.options.map((o) => ({ flags: o.flags, description: o.description, key: o.attributeName(), negate: o.negate, long: o.long }));
    return parse.apply(this, a);
  };
  try {
    parseCli([...argv, '--help']);
  } catch {
    // CliInfo: the help text, not wanted here.
  } finally {
    Command.prototype.parse = parse;
  }
  return caught;
}

export function tables() {
  return {
    core: CORE_OPTIONS,
    protocolKeys: [...protocolKeys()].map(([k, e]) => ({ key: k, spec: e.spec, owners: e.owners })),
    protocols: protocolNames().map((n) => {
      const p = findProtocol(n);
      return { name: n, summary: p.summary, defaultMaxLineLength: p.defaultMaxLineLength, defaultFacility: p.defaultFacility ?? null, defaultIdleTimeout: p.defaultIdleTimeout ?? null, options: p.options ?? {} };
    }),
    cli: cliOptions([]),
    events: logEvents(),
    flagName,
    shownDefault,
  };
}
`;

/** Loads the tables from the TypeScript sources. */
async function loadTables(version) {
  const out = await build({
    ...nodeBundleOptions(version),
    stdin: { contents: ENTRY, resolveDir: root, sourcefile: 'manpage-entry.mjs', loader: 'js' },
  });
  const tmp = mkdtempSync(join(tmpdir(), 'protowrap-man-'));
  try {
    const file = join(tmp, 'tables.cjs');
    writeFileSync(file, out.outputFiles[0].text);
    return createRequire(import.meta.url)(file).tables();
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------- roff text

/** Text for roff: backslashes, hyphens, non-ASCII escaped; a leading dot or apostrophe neutralised. */
export function esc(s) {
  let t = '';
  for (const ch of String(s)) {
    const c = ch.codePointAt(0);
    if (ch === '\\') t += '\\e';
    else if (ch === '-') t += '\\-';
    else if (c > 0x7e) t += `\\[u${c.toString(16).toUpperCase().padStart(4, '0')}]`;
    else if (c < 0x20 && ch !== '\t' && ch !== '\n') t += ' ';
    else t += ch;
  }
  return t;
}

/** Every line safe from being read as a request. */
function lines(s) {
  return s
    .split('\n')
    .map((l) => (/^[.']/.test(l) ? `\\&${l}` : l))
    .join('\n');
}

const bold = (s) => `\\fB${esc(s)}\\fR`;
const ital = (s) => `\\fI${esc(s)}\\fR`;

/** A bit of README markdown as roff text: `code` and **bold** in bold, [links](#x) as their text. */
function md(s) {
  let t = '';
  const re = /`([^`]+)`|\*\*([^*]+)\*\*|\[([^\]]+)\]\([^)]*\)/g;
  let last = 0;
  for (const m of s.matchAll(re)) {
    t += esc(s.slice(last, m.index));
    if (m[1] !== undefined) t += bold(m[1]);
    else if (m[2] !== undefined) t += `\\fB${md(m[2])}\\fR`;
    else t += md(m[3]);
    last = m.index + m[0].length;
  }
  return t + esc(s.slice(last));
}

/** A commander flags string ("-p, --protocol <name>") as a tag: flags bold, arguments italic. */
function flagTag(flags) {
  return flags
    .split(/,\s*/)
    .map((f) => {
      const m = /^(\S+)(?:\s+(.*))?$/.exec(f.trim());
      return m[2] ? `${bold(m[1])} ${ital(m[2].replace(/[<>]/g, ''))}` : bold(m[1]);
    })
    .join(', ');
}

/** The README section under `heading`, up to the next heading (code blocks skipped over). */
function readmeSection(readme, heading) {
  const all = readme.split('\n');
  const start = all.indexOf(heading);
  if (start < 0) throw new Error(`manpage: README has no "${heading}" section`);
  const out = [];
  let fence = false;
  for (const l of all.slice(start + 1)) {
    if (l.startsWith('```')) fence = !fence;
    else if (!fence && /^#+ /.test(l)) break;
    out.push(l);
  }
  return out.join('\n');
}

/** The bullets of a markdown section, each joined into one line (code blocks skipped). */
function bullets(section) {
  const out = [];
  let fence = false;
  for (const l of section.split('\n')) {
    if (l.startsWith('```')) {
      fence = !fence;
      continue;
    }
    if (fence) continue;
    if (l.startsWith('- ')) out.push(l.slice(2).trim());
    else if (/^\s+\S/.test(l) && out.length) out[out.length - 1] += ` ${l.trim()}`;
  }
  return out;
}

/** The rows of the first markdown table of a section, header and rule skipped. */
function tableRows(section) {
  return section
    .split('\n')
    .filter((l) => l.startsWith('|'))
    .slice(2)
    .map((l) =>
      l
        .slice(1, -1)
        .split('|')
        .map((c) => c.trim()),
    );
}

// ---------------------------------------------------------------- the page

/** Flags that are not one key: what they set in the config, and their default. */
const HAND_FLAGS = {
  connect: { keys: 'destType = "ip", destAddr, destPort; or destType = "unix", destAddr = "/path"', default: 'none' },
  exec: { keys: 'destType = "pipe", pipeCmd', default: 'none' },
  listen: { keys: 'standalone = true, listenPort, listenAddr', default: 'inetd mode' },
  config: { keys: null, default: 'none' },
  service: { keys: null, default: 'every service of the file' },
  allow: { keys: 'allowList', default: 'none' },
  deny: { keys: 'denyList', default: 'none' },
  check: { keys: null, default: null },
  version: { keys: null, default: null },
};

function specFacts(spec) {
  const f = [];
  if (spec.kind === 'integer') f.push(`${spec.min}..${spec.max}`);
  if (spec.kind === 'string' && spec.oneOf) f.push(`one of ${spec.oneOf.join(', ')}`);
  if (spec.kind === 'stringList') f.push(spec.regex ? 'repeatable; regular expressions' : 'repeatable');
  if (spec.kind === 'boolean') f.push('true or false');
  return f;
}

/** One .TP entry per key: its flags, config key, default, range and doc text. */
function keyEntry(t, key, spec, cli, owners, protocols) {
  const flags = cli.filter((o) => o.key === key).map((o) => flagTag(o.flags));
  if (flags.length === 0) throw new Error(`manpage: key ${key} has no command-line flag`);
  let def = t.shownDefault(spec);
  if (key === 'maxLineLength') def = protocols.map((p) => `${p.name} ${p.defaultMaxLineLength}`).join(', ');
  if (key === 'syslogFacility') def = protocols.map((p) => `${p.name} ${p.defaultFacility ?? 'daemon'}`).join(', ');
  if (key === 'idleTimeout') def = [def, ...protocols.filter((p) => p.defaultIdleTimeout !== null).map((p) => `${p.name} ${p.defaultIdleTimeout}`)].join(', ');
  const facts = [`config key ${bold(key)}`, `default: ${esc(def)}`, ...specFacts(spec).map(esc)];
  if (owners) facts.push(`protocol${owners.length > 1 ? 's' : ''}: ${esc(owners.join(', '))}`);
  return ['.TP', flags.join(', '), lines(`${esc(spec.doc)}.`), '.br', lines(`${facts.join('; ')}.`)].join('\n');
}

function page(t, readme, version) {
  const out = [];
  const add = (...l) => out.push(...l);
  const sh = (s) => add(`.SH ${s}`);

  add(
    '.\\" Generated by build/manpage.mjs from the option tables and README.md: do not edit.',
    `.TH PROTOWRAP 8 "" "protowrap ${esc(version)}" "System Manager's Manual"`,
  );
  sh('NAME');
  add(`protowrap \\- ${esc('a security wrapper for line-oriented TCP protocols (inetd, xinetd, systemd, standalone)')}`);

  sh('SYNOPSIS');
  add(
    '.B protowrap',
    `[${bold('\u002dp')} ${ital('protocol')}] (${bold('\u002d\u002dconnect')} ${ital('addr')} | ${bold('\u002d\u002dexec')} ${ital('command')}) [${bold('\u002d\u002dlisten')} ${ital('[addr:]port')}] [${ital('option')} ...]`,
    '.br',
    `.B protowrap`,
    `${bold('\u002d\u002dconfig')} ${ital('file')} [${bold('\u002d\u002dcheck')}] [${ital('option')} ...]`,
    '.br',
    `.B protowrap`,
    `[${bold('\u002d\u002dprotocol')} ${ital('name')}] ${bold('\u002d\u002dhelp')} | ${bold('\u002d\u002dversion')}`,
  );

  sh('DESCRIPTION');
  const intro = readme.slice(readme.indexOf('\n\n') + 2, readme.indexOf('\n## ')).trim().replace(/\s*\n\s*/g, ' ');
  add('.PP', lines(md(intro)));
  for (const b of bullets(readmeSection(readme, '## What it does'))) add('.PP', lines(md(b)));
  add('.PP', lines(md('The protocols (see PROTOCOL OPTIONS for their keys):')));
  for (const p of t.protocols) add('.TP', bold(p.name), lines(`${esc(p.summary)}.`));

  sh('OPTIONS');
  add(
    '.PP',
    lines(
      md(
        'Every configuration key is also a flag, its kebab-case form (`maxLoginAttempts` is `--max-login-attempts`); list flags repeat; booleans have a `--no-` form. A flag overrides the config file; `--connect` or `--exec` replaces the file\'s whole destination. The configuration is validated once at start-up: an unknown key, a wrong type, a value out of range or a pattern that cannot run in linear time gives one line naming the key and exit status 78.',
      ),
    ),
  );
  add('.SS Flags that are not one key');
  const keyed = new Set([...Object.keys(t.core), ...t.protocolKeys.map((e) => e.key)]);
  for (const o of t.cli) {
    if (keyed.has(o.key)) continue;
    const name = o.long.replace(/^--/, '');
    const h = HAND_FLAGS[name];
    if (!h) throw new Error(`manpage: flag ${o.long} is not described (add it to HAND_FLAGS)`);
    const facts = [];
    if (h.keys) facts.push(`config: ${esc(h.keys)}`);
    if (h.default) facts.push(`default: ${esc(h.default)}`);
    add('.TP', flagTag(o.flags), lines(`${esc(o.description)}.`));
    if (facts.length) add('.br', lines(`${facts.join('; ')}.`));
  }
  add('.TP', `${bold('\u002dh')}, ${bold('\u002d\u002dhelp')}`, lines(esc('show the flags; with --protocol NAME, also that protocol\'s.')));
  add('.SS Core keys');
  for (const [key, spec] of Object.entries(t.core)) add(keyEntry(t, key, spec, t.cli, null, t.protocols));

  sh('PROTOCOL OPTIONS');
  add(
    '.PP',
    lines(md("A protocol's keys are valid with that protocol only (`--protocol`, or `protocol` in the file); with another, the flag is a usage error (exit status 64).")),
  );
  const byKey = new Map(t.protocolKeys.map((e) => [e.key, e]));
  for (const p of t.protocols) {
    add(`.SS ${esc(p.name)}`, '.PP', lines(`${esc(p.summary)}.`));
    const keys = Object.keys(p.options);
    if (keys.length === 0) add('.PP', lines(esc('No keys of its own: the core keys above.')));
    for (const key of keys) {
      const e = byKey.get(key);
      add(keyEntry(t, key, p.options[key], t.cli, e.owners, t.protocols));
    }
  }

  sh('EXIT STATUS');
  for (const [code, meaning] of tableRows(readmeSection(readme, '## Exit codes'))) add('.TP', bold(code), lines(md(meaning)));

  sh('SIGNALS');
  add(
    '.TP',
    `${bold('SIGTERM')}, ${bold('SIGINT')}`,
    lines(
      esc(
        'shut down: in inetd mode the session ends as a shutdown at once (protocol modes send their closing reply: -ERR, * BYE, 421); in standalone mode the listeners close, open sessions may finish for shutdownGrace seconds (default 30), those still open are then shut down the same way, and the process exits 0 once they are done. A second signal ends the grace at once.',
      ),
    ),
    '.TP',
    bold('SIGHUP'),
    lines(
      esc(
        'standalone mode: read the configuration again (the command line\'s --config file, every service of a multi-service file, the TLS certificate and key); new connections get the new configuration, open sessions keep theirs; a configuration that does not validate, or a certificate that does not load, is logged and the old configuration stays.',
      ),
    ),
  );

  sh('LOGGING');
  add(
    '.PP',
    lines(
      esc(
        'Every line is one event. The text form (logFormat text, the default) starts with the event\'s words, then key=value fields: client=, protocol=, service= when set, the event\'s own fields, and session=, an id unique per session, as the last field; words follow after ": ". With --log-format json each line is one JSON object, to syslog and to --log-stderr alike, with the same information and stable field names: time, severity, event, session, client, protocol, service, state, code, reason, line, user, server, end, bytes_in, bytes_out, refused, duration_ms, detail, message. Client text is escaped and cut to 200 bytes; credentials are never logged. The events (JSON "event"; text form in parentheses):',
      ),
    ),
  );
  for (const e of t.events) add('.TP', bold(e.name), lines(esc(`${e.head === null ? '' : `(${e.head}) `}${e.doc}.`)));

  sh('FILES');
  const files = [
    ['/etc/protowrap/*.toml', 'configuration files, read with --config (the seed option names; examples/listing3.toml is the seed\'s Listing 3).'],
    ['/etc/inetd.conf', 'inetd entries; inetd.conf.example in the source has one commented entry per protocol.'],
    ['/etc/xinetd.d/protowrap-*', 'xinetd services; xinetd.d/ in the source has one per protocol.'],
    ['/etc/systemd/system/protowrap.socket, protowrap@.service', 'systemd socket activation with Accept=yes (systemd/ in the source).'],
    ['/etc/systemd/system/protowrap-standalone.socket, protowrap-standalone.service', 'systemd socket activation with Accept=no: one process serves every connection on the passed sockets (LISTEN_FDS); a multi-service file matches them by FileDescriptorName= (listen = "systemd:NAME").'],
    ['/etc/protowrap/services.toml', 'a multi-service file: [[service]] tables (examples/services.toml in the source).'],
    ['/dev/log', 'syslog(3): refusals, errors and sessions are logged there, never to the client.'],
    ['/etc/fail2ban/filter.d/protowrap.conf', 'the fail2ban filter for these log lines (fail2ban/ in the source; a jail example beside it).'],
    ['$TMPDIR/protowrap-spool-<uid>', 'the default spoolDir (smtp): unlinked spool files of held message bodies.'],
  ];
  for (const [f, what] of files) add('.TP', ital(f), lines(esc(what)));

  sh('EXAMPLES');
  const example = (title, text) => add('.PP', lines(esc(title)), '.PP', '.RS 4', '.nf', lines(esc(text)), '.fi', '.RE');
  example(
    'inetd.conf: POP3 and IMAP servers moved to loopback ports:',
    'pop3  stream tcp nowait nobody /usr/local/bin/protowrap protowrap --protocol pop3 --connect 127.0.0.1:10110\nimap2 stream tcp nowait nobody /usr/local/bin/protowrap protowrap --protocol imap --connect 127.0.0.1:10143',
  );
  example(
    'xinetd: /etc/xinetd.d/protowrap-pop3:',
    'service pop3\n{\n    socket_type = stream\n    protocol    = tcp\n    wait        = no\n    user        = nobody\n    server      = /usr/local/bin/protowrap\n    server_args = --protocol pop3 --connect 127.0.0.1:10110\n}',
  );
  example(
    'systemd socket activation: protowrap.socket and protowrap@.service (one process per connection):',
    '# protowrap.socket\n[Socket]\nListenStream=7000\nAccept=yes\n\n# protowrap@.service\n[Service]\nExecStart=/usr/local/bin/protowrap --protocol generic --connect 127.0.0.1:7001\nStandardInput=socket\nStandardOutput=socket\nStandardError=journal',
  );
  example('Standalone daemon in front of an IMAP server:', 'protowrap --listen 143 --protocol imap --connect 127.0.0.1:10143');
  example(
    'Several services in one process (SIGHUP re-reads the file, SIGTERM lets sessions finish for shutdownGrace):',
    '# /etc/protowrap/services.toml\nmaxViolations = 5\n\n[[service]]\nname = "pop3"\nprotocol = "pop3"\nlisten = "110"\nconnect = "127.0.0.1:10110"\n\n[[service]]\nname = "mx"\nprotocol = "smtp"\nlisten = "systemd:smtp"\nconnect = "127.0.0.1:10025"\n\nprotowrap -f /etc/protowrap/services.toml',
  );
  example('One service of that file from inetd:', 'smtp stream tcp nowait nobody /usr/local/bin/protowrap protowrap -f /etc/protowrap/services.toml --service mx');
  example('Check a configuration file without running it:', 'protowrap --config /etc/protowrap/listing3.toml --check');
  example('A session piped in by hand, logging to stderr too:', "printf 'hello\\r\\n' | protowrap --exec cat --log-stderr");

  sh('SEE ALSO');
  const refs = ['inetd (8)', 'xinetd (8)', 'systemd.socket (5)', 'fail2ban (1)', 'syslog (3)'];
  add(...refs.map((r, i) => `.BR ${r}${i < refs.length - 1 ? ',' : ''}`));
  add('.PP', lines(esc('README.md in the protowrap source has the protocols, TLS and PROXY protocol in detail.')));
  return out.join('\n') + '\n';
}

/** Builds dist/protowrap.8; returns its path. */
export async function writeManPage() {
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
  const readme = readFileSync(join(root, 'README.md'), 'utf8');
  const t = await loadTables(pkg.version);
  const text = page(t, readme, pkg.version);
  mkdirSync(join(root, 'dist'), { recursive: true });
  const dest = join(root, 'dist', 'protowrap.8');
  const tmp = `${dest}.${process.pid}.tmp`;
  writeFileSync(tmp, text);
  renameSync(tmp, dest);
  return dest;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) await writeManPage();
