import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { join } from 'node:path';
import type { Facility } from '../config.js';
import { droppedLines, type LogSink, type Severity } from './logger.js';

/**
 * Most bytes waiting in the pipe to logger(1) (Node's buffer, beyond the
 * kernel's): past this, lines are counted and dropped, and the count is
 * logged once the pipe drains. A flood of refusals must not grow memory
 * when syslog is slow.
 */
export const MAX_PIPED_LOG_BYTES = 256 * 1024;

/**
 * How long a line may wait for others to share its write to the pipe. Short
 * beside what a reader of the log notices; flush() (before every exit) sends
 * what waits at once.
 */
export const LOG_BATCH_MS = 10;

/**
 * logger(1) takes one message per line; it would cut longer lines into
 * several messages at its default of 1 KiB. Ours are bounded well below this
 * (client text is cut at 200 bytes); syslog may still truncate as it does for
 * syslog(3).
 */
const MAX_MESSAGE = 65536;

/**
 * logger(1) ignores these, so that a SIGTERM from systemd (sent to every
 * process of the unit) or a Ctrl-C at a terminal does not end it before the
 * daemon's last lines (shutdownGrace, session close) are through: it ends
 * when the daemon closes its stdin, or the daemon itself ends.
 */
const LOGGER_SCRIPT = 'trap "" HUP INT TERM; exec "$0" "$@"';

/**
 * How long after logger(1) starts the lines sent to it are also kept: if it
 * exits that early (options this logger does not know, a broken install),
 * they are sent again through syslog(3) rather than lost with the pipe.
 */
export const PROBATION_MS = 1000;

/** Most lines kept while logger(1) starts or is on probation (see PROBATION_MS). */
const MAX_KEPT_LINES = 1000;

const SEVERITY_CODES: Record<Severity, number> = { err: 3, warning: 4, notice: 5, info: 6, debug: 7 };
const FACILITY_CODES: Record<Facility, number> = {
  kern: 0, user: 1, mail: 2, daemon: 3, auth: 4, syslog: 5, lpr: 6, news: 7, uucp: 8, cron: 9, authpriv: 10, ftp: 11,
  local0: 16, local1: 17, local2: 18, local3: 19, local4: 20, local5: 21, local6: 22, local7: 23,
};

/** Starts logger(1) for the pipe, or returns why it cannot; a test passes its own. */
export type SpawnLogger = () => ChildProcess | string;

/** logger on PATH, as the shell would find it, or null. */
function findLogger(): string | null {
  for (const dir of (process.env['PATH'] ?? '/usr/bin:/bin').split(':')) {
    if (!dir) continue;
    const file = join(dir, 'logger');
    try {
      accessSync(file, constants.X_OK);
      return file;
    } catch {
      // not here
    }
  }
  return null;
}

function spawnLogger(): ChildProcess | string {
  const logger = findLogger();
  if (!logger) return 'logger(1) not found on PATH';
  return spawn('/bin/sh', ['-c', LOGGER_SCRIPT, logger, '-t', 'protowrap', `--id=${process.pid}`, '--prio-prefix', '--size', String(MAX_MESSAGE)], {
    stdio: ['pipe', 'ignore', 'ignore'],
  });
}

interface Line {
  readonly severity: Severity;
  readonly message: string;
}

/**
 * Log lines through one long-lived logger(1) process reading them on its
 * stdin (ident protowrap, the wrapper's pid, `<PRI>` per line). A write to a
 * pipe costs the daemon a few microseconds a line; modern-syslog's syslog(3)
 * goes through libuv's thread pool, one line at a time for order, some 30 µs
 * of CPU a line here, a large part of what a session or an SMTP message
 * costs (bench/README.md). Used by the standalone daemon; an inetd process,
 * which writes a few lines and exits, keeps syslog(3). Also the fallback
 * when the native addon cannot load.
 *
 * Nothing is lost to a logger(1) that cannot work: lines wait (bounded)
 * until it has started, and for PROBATION_MS after that a copy is kept; if
 * it cannot start, or exits, the lines go to `replacement()` (syslog(3)
 * through the addon) from then on, the kept ones first, after a line that
 * says so (a line logger had already sent may then appear twice). Later,
 * only what was still in the pipe can be lost. Info and debug lines wait up
 * to LOG_BATCH_MS to share a write; a warning or an error goes at once, with
 * what waits before it, so a crash (SIGKILL, the OOM killer) loses no
 * refusal or error, and at most LOG_BATCH_MS of session lines.
 */
export class LoggerPipeSink implements LogSink {
  private readonly child: ChildProcess | null = null;
  private readonly facilityCode: number;
  private dropped = 0;
  private closing = false;
  /** Not started yet: lines wait here. */
  private starting: Line[] | null = [];
  /** Sent while on probation (null once it is over). */
  private probation: Line[] | null = [];
  /** After logger(1) is gone: where lines go instead (undefined while it runs; null: nowhere). */
  private instead: LogSink | null | undefined = undefined;
  private corked = false;
  private flushing = false;
  /** Who waits in flush() for logger(1) to be done (or gone). */
  private settled: (() => void)[] = [];

  constructor(
    facility: Facility,
    private readonly replacement: () => LogSink | null,
    start: SpawnLogger = spawnLogger,
  ) {
    this.facilityCode = FACILITY_CODES[facility];
    let child: ChildProcess | string;
    try {
      child = start();
    } catch (e) {
      child = `logger(1) could not run (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`;
    }
    if (typeof child === 'string' || !child.stdin) {
      this.lost(typeof child === 'string' ? child : 'logger(1) could not run (no pipe)');
      return;
    }
    this.child = child;
    child.on('error', (e: NodeJS.ErrnoException) => this.lost(`logger(1) could not run (${e.code ?? e.message})`));
    child.once('spawn', () => this.started());
    child.on('exit', (code, signal) => {
      const how = signal ?? `exit ${code}`;
      // The end flush() asked for: everything was read.
      const done = this.closing && code === 0;
      if (!done && this.probation) this.lost(`logger(1) exited (${how}) right after it started`);
      else if (!done && !this.closing) this.lost(`logger(1) exited (${how}); lines still in its pipe may be lost`);
      this.settle();
    });
    const stdin = child.stdin;
    stdin.on('error', () => {}); // EPIPE: the exit above says it
    stdin.on('drain', () => {
      if (this.dropped > 0 && !this.closing) this.writeDropped();
    });
    // Never what keeps the daemon alive: main flushes before it exits.
    child.unref();
    (stdin as unknown as { unref?: () => void }).unref?.();
  }

  write(severity: Severity, message: string): void {
    if (this.instead !== undefined) {
      this.instead?.write(severity, message);
      return;
    }
    if (this.starting) {
      if (this.starting.length < MAX_KEPT_LINES) this.starting.push({ severity, message });
      else this.dropped++;
      return;
    }
    const stdin = this.child!.stdin!;
    if (stdin.writableLength >= MAX_PIPED_LOG_BYTES) {
      this.dropped++;
      return;
    }
    this.send(severity, message);
  }

  private send(severity: Severity, message: string): void {
    const stdin = this.child!.stdin!;
    if (this.probation && this.probation.length < MAX_KEPT_LINES) this.probation.push({ severity, message });
    const pri = this.facilityCode * 8 + SEVERITY_CODES[severity];
    // One line is one message: a newline in it would make two.
    const text = message.includes('\n') ? message.replaceAll('\n', ' ') : message;
    // The lines of LOG_BATCH_MS leave in one write: a write to a pipe whose
    // reader sleeps wakes it, and a busy daemon writing each line alone paid
    // that wake-up per line (20-odd µs on a loaded machine, bench/README.md).
    if (!this.corked) {
      this.corked = true;
      stdin.cork();
      setTimeout(this.uncork, LOG_BATCH_MS).unref();
    }
    stdin.write(`<${pri}>${text}\n`);
    if (severity === 'err' || severity === 'warning') this.uncork();
  }

  private readonly uncork = (): void => {
    if (!this.corked) return;
    this.corked = false;
    this.child?.stdin?.uncork();
  };

  private writeDropped(): void {
    const n = this.dropped;
    this.dropped = 0;
    this.send('warning', droppedLines(n));
  }

  private started(): void {
    const waiting = this.starting;
    this.starting = null;
    if (this.instead !== undefined) return;
    for (const l of waiting ?? []) this.send(l.severity, l.message);
    setTimeout(() => (this.probation = null), PROBATION_MS).unref();
    if (this.flushing) this.end();
  }

  /** logger(1) is not there (any more): the kept lines, then every later one, go to syslog(3). */
  private lost(why: string): void {
    if (this.instead !== undefined) return;
    const kept = [...(this.starting ?? []), ...(this.probation ?? [])];
    this.starting = null;
    this.probation = null;
    this.instead = this.replacement();
    const to = this.instead;
    if (to) {
      to.write('warning', `${why}: logging through syslog(3) now${kept.length > 0 ? `; the last ${kept.length} lines again` : ''}`);
      for (const l of kept) to.write(l.severity, l.message);
      if (this.dropped > 0) to.write('warning', droppedLines(this.dropped));
    }
    this.dropped = 0;
    this.settle();
  }

  private settle(): void {
    const s = this.settled;
    this.settled = [];
    for (const f of s) f();
  }

  /** The last call (main flushes before it exits): what waits is sent, and logger(1) ends once it has sent it. */
  flush(): Promise<void> {
    if (this.instead !== undefined || !this.child) return this.instead?.flush() ?? Promise.resolve();
    const child = this.child;
    this.flushing = true;
    return new Promise<void>((resolve) => {
      this.settled.push(resolve);
      if (child.exitCode !== null || child.signalCode !== null) return this.settle();
      if (this.starting) return; // started() ends it, or lost() settles
      this.end();
    }).then(() => (this.instead !== undefined ? this.instead?.flush() : undefined));
  }

  private end(): void {
    this.closing = true;
    // The count, over the bound: these are the last lines.
    if (this.dropped > 0) this.writeDropped();
    this.uncork();
    this.child!.stdin!.end();
  }

  /** Gives up on logger(1) (syslog is stuck and main exits anyway): it must not outlive us blocked. */
  abandon(): void {
    this.child?.kill('SIGKILL');
  }
}
