import { writeSync } from 'node:fs';
import { CliInfo, parseCli } from './cli.js';
import { buildConfig, readConfigFile, type Config } from './config.js';
import { enableLinearRegexps } from './core/safe-regex.js';
import { ConfigError, ExitCode, ProtowrapError } from './errors.js';
import { ClientTlsContext } from './io/tls.js';
import { stdioClient, fdIsClient } from './io/stdio.js';
import { Listener } from './io/listener.js';
import { prepareClient } from './io/accept.js';
import { processHoldStore } from './io/hold-store.js';
import { Session } from './io/session.js';
import { describeDest } from './io/server.js';
import { Logger, type LogSink } from './log/logger.js';
import { openSyslog, StderrSink } from './log/syslog.js';

/**
 * Entry point; the only place that exits. In inetd mode fd 0/1 (and 2) are
 * the client's socket: nothing but protocol traffic may be written there, so
 * every message goes to syslog, and to stderr only when stderr is no socket.
 */
async function main(argv: readonly string[]): Promise<never> {
  enableLinearRegexps();
  const stderrFree = !fdIsClient(2);
  let logger: Logger | null = null;
  const fail = async (err: unknown): Promise<never> => {
    const pe = err instanceof ProtowrapError ? err : null;
    const msg = pe ? pe.message : `internal error: ${(err as Error)?.stack ?? String(err)}`;
    const code = pe ? pe.exitCode : ExitCode.software;
    const log = logger ?? new Logger([openSyslog('daemon')], 0);
    log.log('err', msg.replace(/\n/g, ' | '));
    if (stderrFree) writeLine(2, `protowrap: ${msg}`);
    return flushThenExit(log, code);
  };
  process.on('uncaughtException', (e) => void fail(e));
  process.on('unhandledRejection', (e) => void fail(e));

  let cfg: Config;
  let check = false;
  try {
    const cli = parseCli(argv);
    check = cli.check;
    const file = cli.extras.config ? await readConfigFile(cli.extras.config) : null;
    cfg = buildConfig(file, cli.flags, cli.extras);
  } catch (err) {
    if (err instanceof CliInfo) {
      if (!fdIsClient(1)) writeLine(1, err.text.trimEnd());
      process.exit(ExitCode.ok);
    }
    return fail(err);
  }
  if (check) {
    writeLine(1, describeConfig(cfg));
    process.exit(ExitCode.ok);
  }
  let tlsCtx: ClientTlsContext | null = null;
  try {
    // A certificate or key that does not load, or a pair that does not match, stops the start (78).
    if (cfg.tls) tlsCtx = new ClientTlsContext(cfg.tls);
  } catch (err) {
    return fail(err);
  }
  const sinks: LogSink[] = [openSyslog(cfg.syslogFacility)];
  if (cfg.logStderr && stderrFree) sinks.push(new StderrSink());
  logger = new Logger(sinks, cfg.logLevel);
  const log = logger;

  if (cfg.listen) {
    const listener = new Listener(cfg, log);
    listener.tls = tlsCtx;
    process.on('SIGHUP', () => listener.reloadTls());
    let where: { address: string; port: number };
    try {
      where = await listener.listen();
    } catch (err) {
      return fail(new ProtowrapError('PW_ERR_SERVER_UNAVAILABLE', `cannot listen on ${cfg.listen.host ?? '*'}:${cfg.listen.port}: ${(err as Error).message}`));
    }
    log.log('notice', `listening on ${where.address}:${where.port} protocol=${cfg.protocol.name} server=${describeDest(cfg.dest)}`);
    await new Promise<void>((resolve) => {
      process.once('SIGTERM', resolve);
      process.once('SIGINT', resolve);
    });
    log.log('notice', 'shutting down');
    await listener.close();
    return flushThenExit(log, ExitCode.ok);
  }

  const stdio = stdioClient();
  if (tlsCtx && !stdio.isSocket) {
    // A pipe has no TLS peer: a session piped by hand speaks plaintext.
    return fail(new ConfigError('PW_ERR_CONFIG_VALUE', 'tls', 'TLS needs a socket client (inetd, xinetd, systemd Accept=yes, or --listen); stdin is not a socket'));
  }
  // A socket on fd 0 may carry a PROXY header from a listed peer; a pipe never does.
  const client = stdio.socket ? await prepareClient(stdio.socket, cfg, log, stdio.address, tlsCtx) : stdio;
  if (!client) return flushThenExit(log, ExitCode.ok);
  const session = new Session(client.channel, client.address, cfg, log, processHoldStore(cfg, log));
  if (tlsCtx) session.enableStartTls(tlsCtx);
  const stop = () => session.shutdown();
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  const result = await session.start();
  return flushThenExit(log, result.end === 'server_unavailable' ? ExitCode.unavailable : ExitCode.ok);
}

/** How long the log may take to flush at exit. */
const EXIT_FLUSH_MS = 3000;

/**
 * Exits after the log is flushed, but never waits on a stuck syslog for
 * ever: syslog(3) blocks in a libuv worker when nobody reads /dev/log, and
 * even process.exit() would then wait for that thread. Past EXIT_FLUSH_MS
 * the process kills itself (under inetd, a hung syslogd must not pile up
 * wrapper processes); the exit status is then that of SIGKILL.
 */
async function flushThenExit(log: Logger, code: number): Promise<never> {
  let timer: NodeJS.Timeout | undefined;
  const flushed = await Promise.race([
    log.flush().then(() => true),
    new Promise<false>((r) => (timer = setTimeout(() => r(false), EXIT_FLUSH_MS))),
  ]);
  clearTimeout(timer);
  if (!flushed) process.kill(process.pid, 'SIGKILL');
  process.exit(code);
}

function writeLine(fd: number, s: string): void {
  try {
    writeSync(fd, s + '\n');
  } catch {
    // nowhere to say it
  }
}

/** What --check prints: the resolved configuration, one key per line. */
function describeConfig(cfg: Config): string {
  const o = cfg.options;
  const lines = [
    `protocol        ${cfg.protocol.name}`,
    `mode            ${cfg.listen ? `standalone, listening on ${cfg.listen.host ?? '*'}:${cfg.listen.port}` : 'inetd (client on stdin/stdout)'}`,
    `server          ${describeDest(cfg.dest)}${cfg.dest.type === 'exec' ? `  argv=${JSON.stringify(cfg.dest.argv)}` : ''}`,
    `maxLineLength   ${o.maxLineLength}`,
    `lineEnding      ${o.lineEnding}`,
    `allowList       ${JSON.stringify(o.allow.map((m) => m.source))}`,
    `denyList        ${JSON.stringify(o.deny.map((m) => m.source))}`,
    `idleTimeout     ${cfg.idleTimeoutMs / 1000}`,
    `sessionTimeout  ${cfg.sessionTimeoutMs / 1000}`,
    `maxViolations   ${cfg.maxViolations}`,
    `logLevel        ${cfg.logLevel}`,
    `syslogFacility  ${cfg.syslogFacility}`,
    `tls             ${cfg.tls ? `${cfg.tls.mode} cert=${cfg.tls.cert} key=${cfg.tls.key}` : 'none'}`,
    `serverTls       ${cfg.serverTls ? `${cfg.serverTls.mode} verify=${cfg.serverTls.verify}${cfg.serverTls.ca ? ` ca=${cfg.serverTls.ca}` : ''}${cfg.serverTls.name ? ` name=${cfg.serverTls.name}` : ''}` : 'none'}`,
    `proxyFrom       ${JSON.stringify(cfg.proxy.from.map((p) => `${p.net}/${p.bits}`))}${cfg.proxy.from.length > 0 ? ` required=${cfg.proxy.required}` : ''}`,
    `proxyToServer   ${cfg.proxy.toServer ?? 'none'}`,
  ];
  for (const [k, v] of Object.entries(o.extra)) lines.push(`${k.padEnd(15)} ${JSON.stringify(v)}`);
  if (cfg.configFile) lines.push(`config file     ${cfg.configFile}`);
  return lines.join('\n');
}

void main(process.argv.slice(2));
