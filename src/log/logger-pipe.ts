import { spawn, type ChildProcess } from 'node:child_process';
import type { Facility } from '../config.js';
import type { LogSink, Severity } from './logger.js';

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
const LOGGER_SCRIPT = 'trap "" HUP INT TERM; exec logger "$@"';

const SEVERITY_CODES: Record<Severity, number> = { err: 3, warning: 4, notice: 5, info: 6, debug: 7 };
const FACILITY_CODES: Record<Facility, number> = {
  kern: 0, user: 1, mail: 2, daemon: 3, auth: 4, syslog: 5, lpr: 6, news: 7, uucp: 8, cron: 9, authpriv: 10, ftp: 11,
  local0: 16, local1: 17, local2: 18, local3: 19, local4: 20, local5: 21, local6: 22, local7: 23,
};

/** Starts logger(1) for the pipe; a test passes its own. */
export type SpawnLogger = () => ChildProcess;

function spawnLogger(): ChildProcess {
  return spawn('/bin/sh', ['-c', LOGGER_SCRIPT, 'sh', '-t', 'protowrap', `--id=${process.pid}`, '--prio-prefix', '--size', String(MAX_MESSAGE)], {
    stdio: ['pipe', 'ignore', 'ignore'],
  });
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
 * If logger(1) cannot start or exits while we still log, the lines go to
 * `replacement()` (syslog(3) through the addon) from then on, and the first
 * of them says so; lines that were in the pipe may be lost.
 */
export class LoggerPipeSink implements LogSink {
  private readonly child: ChildProcess;
  private readonly facilityCode: number;
  private dropped = 0;
  private closing = false;
  /** After logger(1) is gone: where lines go instead (undefined while it runs; null: nowhere). */
  private instead: LogSink | null | undefined = undefined;

  constructor(
    facility: Facility,
    private readonly replacement: () => LogSink | null,
    start: SpawnLogger = spawnLogger,
  ) {
    this.facilityCode = FACILITY_CODES[facility];
    this.child = start();
    this.child.on('error', (e: NodeJS.ErrnoException) => this.lost(`logger(1) could not run (${e.code ?? e.message})`));
    this.child.on('exit', (code, signal) => {
      if (!this.closing) this.lost(`logger(1) exited (${signal ?? `exit ${code}`}); lines still in its pipe may be lost`);
    });
    const stdin = this.child.stdin!;
    stdin.on('error', () => {}); // EPIPE: the exit above says it
    stdin.on('drain', () => {
      if (this.dropped === 0) return;
      const n = this.dropped;
      this.dropped = 0;
      this.write('warning', `${n} log lines dropped: syslog too slow`);
    });
    // Never what keeps the daemon alive: main flushes before it exits.
    this.child.unref();
    (stdin as unknown as { unref?: () => void }).unref?.();
  }

  write(severity: Severity, message: string): void {
    if (this.instead !== undefined) {
      this.instead?.write(severity, message);
      return;
    }
    const stdin = this.child.stdin!;
    if (stdin.writableLength >= MAX_PIPED_LOG_BYTES) {
      this.dropped++;
      return;
    }
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
  }

  private corked = false;
  private readonly uncork = (): void => {
    this.corked = false;
    this.child.stdin!.uncork();
  };

  private lost(why: string): void {
    if (this.instead !== undefined || this.closing) return;
    this.instead = this.replacement();
    this.instead?.write('warning', `${why}: logging through syslog(3) now`);
  }

  flush(): Promise<void> {
    if (this.instead !== undefined) return this.instead?.flush() ?? Promise.resolve();
    this.closing = true;
    return new Promise((resolve) => {
      if (this.child.exitCode !== null || this.child.signalCode !== null) return resolve();
      this.child.once('exit', () => resolve());
      this.child.stdin!.end();
    });
  }
}
