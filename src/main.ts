import { writeSync } from 'node:fs';
import { CliInfo, parseCli } from './cli.js';
import { buildConfig, readConfigFile, type Config } from './config.js';
import { describeConfig, describeServices } from './check.js';
import { enableLinearRegexps } from './core/safe-regex.js';
import { ConfigError, ExitCode, ProtowrapError, UsageError } from './errors.js';
import { buildServices, isMultiService, processFacility } from './services.js';
import { ClientTlsContext } from './io/tls.js';
import { stdioClient, fdIsClient } from './io/stdio.js';
import { prepareClient } from './io/accept.js';
import { processHoldStore } from './io/hold-store.js';
import { Session } from './io/session.js';
import { openAuthGate } from './io/auth-gate.js';
import { Daemon, ListenError, planListeners } from './io/daemon.js';
import { takePassedSockets, type PassedSocket } from './io/systemd.js';
import { runPrimary, type ReadyMessage } from './io/cluster-primary.js';
import type { IpcChannel } from './io/worker-store.js';
import { Logger, type LogSink } from './log/logger.js';
import { openSyslog, StderrSink } from './log/syslog.js';

/** What the command line and the file ask for, validated. */
interface Loaded {
  readonly services: readonly Config[];
  /** A multi-service file running all its services (no --service). */
  readonly multi: boolean;
  readonly check: boolean;
}

/** Reads the command line and the file and validates them (also on SIGHUP). Throws CliInfo, UsageError, ConfigError. */
async function load(argv: readonly string[]): Promise<Loaded> {
  const cli = parseCli(argv);
  const file = cli.extras.config ? await readConfigFile(cli.extras.config) : null;
  if (isMultiService(file)) {
    const set = buildServices(file, cli.flags, cli.extras);
    return { services: set.services, multi: !set.picked, check: cli.check };
  }
  if (cli.extras.service !== undefined) throw new UsageError('--service needs a multi-service file (-f FILE with [[service]] tables)');
  return { services: [buildConfig(file, cli.flags, cli.extras)], multi: false, check: cli.check };
}

/**
 * Entry point; the only place that exits. In inetd mode fd 0/1 (and 2) are
 * the client's socket: nothing but protocol traffic may be written there, so
 * every message goes to syslog, and to stderr only when stderr is no socket.
 */
async function main(argv: readonly string[]): Promise<never> {
  enableLinearRegexps();
  // A worker forked by the primary (workers > 1): taken out of the environment so that no spawned server inherits it.
  const worker = takeWorkerEnv();
  const stderrFree = !fdIsClient(2);
  let logger: Logger | null = null;
  const fail = async (err: unknown): Promise<never> => {
    const pe = err instanceof ProtowrapError ? err : null;
    const msg = pe ? pe.message : `internal error: ${(err as Error)?.stack ?? String(err)}`;
    const code = pe ? pe.exitCode : ExitCode.software;
    const log = logger ?? new Logger([openSyslog('daemon')], 0);
    log.event('err', 'error', { message: msg.replace(/\n/g, ' | ') });
    if (stderrFree) writeLine(2, `protowrap: ${msg}`);
    return flushThenExit(log, code);
  };
  process.on('uncaughtException', (e) => void fail(e));
  process.on('unhandledRejection', (e) => void fail(e));

  let loaded: Loaded;
  let passed: PassedSocket[];
  try {
    // Read (and removed from the environment) first, so that no spawned server inherits them.
    passed = takePassedSockets();
    loaded = await load(argv);
  } catch (err) {
    if (err instanceof CliInfo) {
      if (!fdIsClient(1)) writeLine(1, err.text.trimEnd());
      process.exit(ExitCode.ok);
    }
    return fail(err);
  }
  const { services, multi } = loaded;
  const facility = processFacility(services);
  if (loaded.check) {
    writeLine(1, multi ? describeServices(services, facility) : describeConfig(services[0]!));
    process.exit(ExitCode.ok);
  }
  const first = services[0]!;
  // The daemon's lines go through logger(1), an inetd process's through syslog(3) (see SyslogVia);
  // decided when the sink opens, after the first line, by which time the mode is known.
  let daemonLogs = false;
  const sinks: LogSink[] = [openSyslog(facility, () => (daemonLogs ? 'pipe' : 'native'))];
  if (first.logStderr && stderrFree) sinks.push(new StderrSink(first.logFormat === 'json'));
  logger = new Logger(sinks, first.logLevel, first.logFormat);
  const log = logger;

  // Standalone: the file's services, a listen address, or the sockets systemd passes (Accept=no);
  // a socket on stdin (inetd, Accept=yes) is one client, whatever else is there.
  const inetdClient = fdIsClient(0);
  if (multi && inetdClient) {
    return fail(new ConfigError('PW_ERR_CONFIG_VALUE', '--service', 'a multi-service file under inetd (a client socket on stdin) needs --service NAME'));
  }
  const standalone = multi || first.listen !== null || first.listenFd !== null || (passed.length > 0 && !inetdClient) || worker !== null;
  daemonLogs = standalone;
  if (worker !== null) return runDaemon(argv, loaded, worker.sockets, log, fail, { count: worker.count, primary: process as unknown as IpcChannel });
  if (standalone && first.workers > 1) return runWorkers(argv, loaded, passed, log);
  if (standalone) return runDaemon(argv, loaded, passed, log, fail, null);
  if (first.workers > 1) {
    // Under a superserver each connection is a process of its own already.
    return fail(new ConfigError('PW_ERR_CONFIG_VALUE', 'workers', 'more than 1 needs standalone mode (--listen, a multi-service file, or sockets systemd passes with Accept=no); in inetd mode each connection is its own process'));
  }

  let tlsCtx: ClientTlsContext | null = null;
  try {
    // A certificate or key that does not load, or a pair that does not match, stops the start (78).
    if (first.tls) tlsCtx = new ClientTlsContext(first.tls);
  } catch (err) {
    return fail(err);
  }
  const cfg = first;
  const sessionLog = log.derive(cfg.logLevel, cfg.service);
  const stdio = stdioClient();
  if (tlsCtx && !stdio.isSocket) {
    // A pipe has no TLS peer: a session piped by hand speaks plaintext.
    return fail(new ConfigError('PW_ERR_CONFIG_VALUE', 'tls', 'TLS needs a socket client (inetd, xinetd, systemd Accept=yes, or --listen); stdin is not a socket'));
  }
  // A socket on fd 0 may carry a PROXY header from a listed peer; a pipe never does.
  const client = stdio.socket ? await prepareClient(stdio.socket, cfg, sessionLog, stdio.address, tlsCtx) : stdio;
  if (!client) return flushThenExit(log, ExitCode.ok);
  const gate = cfg.authFailures ? await openAuthGate(cfg.authFailures, sessionLog, true) : null;
  const session = new Session(client.channel, client.address, cfg, sessionLog, processHoldStore(cfg, sessionLog), gate);
  // Implicit TLS too: FTP's PROT P data connections use the context.
  if (tlsCtx) session.enableStartTls(tlsCtx);
  // Under a superserver the process is the session: SIGTERM closes it at once (shutdownGrace is the daemon's).
  const stop = () => session.shutdown();
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  const result = await session.start();
  // A failed login still being written to the store (bounded by stateStoreTimeout).
  await gate?.close();
  return flushThenExit(log, result.end === 'server_unavailable' ? ExitCode.unavailable : ExitCode.ok);
}

/**
 * Standalone mode: every service's listener in this process. SIGHUP reads
 * the command line and the file again: a configuration that validates (and
 * whose certificates load) replaces the old one for new sessions; one that
 * does not is logged and the old one stays. SIGTERM (or SIGINT): stop
 * accepting, let sessions finish for shutdownGrace, then close them with
 * the protocol's shutdown reply; a second signal closes them at once.
 */
async function runDaemon(
  argv: readonly string[],
  loaded: Loaded,
  passed: readonly PassedSocket[],
  log: Logger,
  fail: (e: unknown) => Promise<never>,
  worker: { readonly count: number; readonly primary: IpcChannel } | null,
): Promise<never> {
  const daemon = new Daemon(log, (cfg) => log.derive(cfg.logLevel, cfg.service), worker);
  const sockets = usedSockets(loaded, passed, worker ? null : log);
  try {
    await daemon.apply(planListeners(loaded.services, sockets, loaded.multi), false);
  } catch (err) {
    if (err instanceof ListenError) return fail(new ProtowrapError('PW_ERR_SERVER_UNAVAILABLE', err.message));
    return fail(err);
  }
  if (worker) worker.primary.send({ pw: 'ready' } satisfies ReadyMessage);

  // One reload at a time, and at most one waiting: a burst of SIGHUPs is one more reload, not a queue.
  let reloading = Promise.resolve();
  let waiting = false;
  let stopping = false;
  process.on('SIGHUP', () => {
    if (waiting || stopping) return;
    waiting = true;
    reloading = reloading.then(async () => {
      waiting = false;
      // A reload must not open listeners again once the shutdown has begun.
      if (stopping) return;
      try {
        const next = await load(argv);
        if (next.multi !== loaded.multi) throw new ConfigError('PW_ERR_CONFIG_VALUE', '--config', 'a single configuration and a multi-service file cannot replace each other: restart');
        await daemon.apply(planListeners(next.services, sockets, next.multi), true);
        loaded = next;
        log.log('notice', `configuration reloaded${next.multi ? ` services=${next.services.map((s) => s.service).join(',')}` : ''}`);
      } catch (err) {
        logReloadFailure(log, err);
      }
    });
  });
  // A worker takes its signals from the primary: a Ctrl-C reaches the whole process group, and the primary turns it into SIGTERM.
  if (worker) process.on('SIGINT', () => {});
  await new Promise<void>((resolve) => {
    process.once('SIGTERM', resolve);
    if (!worker) process.once('SIGINT', resolve);
    // The primary is gone (killed): the worker shuts down as on SIGTERM (its sessions get their
    // grace) rather than serve unsupervised. Node's cluster would exit(0) at once, cutting them off.
    if (worker) {
      process.removeAllListeners('disconnect');
      process.once('disconnect', resolve);
    }
  });
  stopping = true;
  log.event('notice', 'shutdown', {});
  const again = () => daemon.closeNow();
  process.on('SIGTERM', again);
  if (!worker) process.on('SIGINT', again);
  // A reload under way finishes first, so that no listener it opens outlives the shutdown.
  await reloading;
  await daemon.close();
  return flushThenExit(log, ExitCode.ok);
}

function logReloadFailure(log: Logger, err: unknown): void {
  const msg = err instanceof Error ? err.message : String(err);
  const tls = err instanceof ConfigError && /^(service \S+: )?tls(Cert|Key)\b/.test(err.message);
  log.log('err', `${tls ? 'TLS certificate not reloaded, the old one stays' : 'configuration not reloaded, the old one stays'}: ${msg}`);
}

/** The passed sockets the listeners take: none when the one configuration names its own address. */
function usedSockets(loaded: Loaded, passed: readonly PassedSocket[], log: Logger | null): readonly PassedSocket[] {
  const sockets = loaded.multi || loaded.services[0]!.listen === null ? passed : [];
  if (sockets.length < passed.length) log?.log('warning', `${passed.length} sockets passed by systemd are not used: the configuration names its own listen address`);
  return sockets;
}

/** How the primary tells a worker it is one: the worker count and the systemd sockets it serves. */
const WORKER_ENV = 'PROTOWRAP_WORKER';

function takeWorkerEnv(): { count: number; sockets: PassedSocket[] } | null {
  const text = process.env[WORKER_ENV];
  if (text === undefined) return null;
  delete process.env[WORKER_ENV];
  // Only a process the primary forked has the IPC channel; anything else ignores the variable.
  if (typeof process.send !== 'function') return null;
  const w = JSON.parse(text) as { count: number; sockets: PassedSocket[] };
  return { count: w.count, sockets: w.sockets };
}

/**
 * workers > 1: this process is the cluster primary (cluster-primary.ts).
 * Before forwarding a SIGHUP it validates the configuration as a worker
 * would (the file, the listeners' plan and the certificates), so that a
 * broken one is logged once and every worker keeps the old.
 */
async function runWorkers(argv: readonly string[], loaded: Loaded, passed: readonly PassedSocket[], log: Logger): Promise<never> {
  const count = loaded.services[0]!.workers;
  const sockets = usedSockets(loaded, passed, log);
  const validate = async (): Promise<boolean> => {
    try {
      const next = await load(argv);
      if (next.multi !== loaded.multi) throw new ConfigError('PW_ERR_CONFIG_VALUE', '--config', 'a single configuration and a multi-service file cannot replace each other: restart');
      const plan = planListeners(next.services, sockets, next.multi);
      for (const p of plan) if (p.cfg.tls) new ClientTlsContext(p.cfg.tls);
      const n = next.services[0]!.workers;
      if (n !== count) log.log('warning', `workers = ${n}: the count changes on a restart only; ${count} workers go on`);
      return true;
    } catch (err) {
      logReloadFailure(log, err);
      return false;
    }
  };
  const code = await runPrimary({ count, log, validate, env: { [WORKER_ENV]: JSON.stringify({ count, sockets }) } });
  return flushThenExit(log, code);
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
  if (!flushed) {
    // A stuck syslog: a logger(1) blocked on it must not outlive us.
    log.abandon();
    process.kill(process.pid, 'SIGKILL');
  }
  process.exit(code);
}

function writeLine(fd: number, s: string): void {
  try {
    writeSync(fd, s + '\n');
  } catch {
    // nowhere to say it
  }
}

void main(process.argv.slice(2));
