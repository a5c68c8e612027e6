import { createRequire } from 'node:module';
import { writeSync } from 'node:fs';
import type { Facility } from '../config.js';
import { LoggerPipeSink } from './logger-pipe.js';
import { droppedLines, type LogSink, type Severity } from './logger.js';

/**
 * Most lines waiting for syslog. A client that provokes refusals faster than
 * syslog takes them must not grow our memory: past this, lines are counted
 * and dropped, and the count is logged when the queue drains.
 */
export const MAX_QUEUED_LOG_LINES = 1000;

interface NativeSyslog {
  open(ident: string, option: number, facility: string): void;
  log(level: string, msg: string, cb: () => void): void;
  option: Record<string, number>;
}

/**
 * syslog(3) through modern-syslog (ident "protowrap", LOG_PID, the configured
 * facility). modern-syslog hands each line to a libuv worker thread; with
 * more than one in flight, lines could reach syslog out of order, so they are
 * sent one at a time from a bounded queue.
 */
export class SyslogSink implements LogSink {
  private readonly queue: { level: Severity; msg: string }[] = [];
  private busy = false;
  private dropped = 0;
  private waiters: (() => void)[] = [];

  constructor(
    private readonly native: NativeSyslog,
    facility: Facility,
  ) {
    // modern-syslog knows facilities and levels by their C names (LOG_DAEMON,
    // LOG_WARNING); any other string would reach syslog(3) as 0: kern.emerg.
    native.open('protowrap', native.option['LOG_PID'] ?? 1, `LOG_${facility.toUpperCase()}`);
  }

  write(severity: Severity, message: string): void {
    if (this.queue.length >= MAX_QUEUED_LOG_LINES) {
      this.dropped++;
      return;
    }
    this.queue.push({ level: severity, msg: message });
    if (!this.busy) this.next();
  }

  private next(): void {
    let item = this.queue.shift();
    if (!item && this.dropped > 0) {
      item = { level: 'warning', msg: droppedLines(this.dropped) };
      this.dropped = 0;
    }
    if (!item) {
      this.busy = false;
      const w = this.waiters;
      this.waiters = [];
      for (const f of w) f();
      return;
    }
    this.busy = true;
    this.native.log(`LOG_${item.level.toUpperCase()}`, item.msg, () => this.next());
  }

  flush(): Promise<void> {
    if (!this.busy) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }
}

/**
 * How lines reach syslog: `native`, syslog(3) through the modern-syslog
 * addon (an inetd process: a few lines, then it exits), or `pipe`, one
 * long-lived logger(1) (the standalone daemon; see logger-pipe.ts). Each
 * falls back to the other when it cannot work.
 */
export type SyslogVia = 'native' | 'pipe';

/** syslog(3) through the native addon, or null when it cannot load. */
function nativeSink(facility: Facility): LogSink | null {
  try {
    const require = createRequire(import.meta.url);
    const native = require('modern-syslog') as NativeSyslog;
    return new SyslogSink(native, facility);
  } catch {
    return null;
  }
}

/** Opens syslog now, the way `via` says (see SyslogVia). */
export function openSyslogNow(facility: Facility, via: SyslogVia = 'native'): LogSink {
  if (via === 'pipe') return new LoggerPipeSink(facility, () => nativeSink(facility));
  return nativeSink(facility) ?? new LoggerPipeSink(facility, () => null);
}

/**
 * Syslog for the wrapper, opened off the start-up path. Under inetd every
 * connection starts a process, and loading the native addon (dlopen, libuv's
 * thread pool on the first line) costs milliseconds before the server's
 * banner could reach the client. So lines are queued here, bounded like the
 * sink's own queue, and the real sink is opened once the session is under way
 * (`OPEN_DELAY_MS` after the first line), or at once by flush(): main flushes
 * before every exit, so a configuration error logged before any session
 * still reaches syslog. Lines keep their order across the switch.
 */
export function openSyslog(facility: Facility, via: () => SyslogVia = () => 'native'): LogSink {
  return new DeferredSink(() => openSyslogNow(facility, via()));
}

/**
 * How long after the first line the real sink is opened, unless a flush comes
 * first. Long enough for the server's banner to have been relayed (the first
 * line, "session open", comes as soon as the server is reached), short enough
 * that lines do not wait in memory where a crash would lose them.
 */
export const OPEN_DELAY_MS = 50;

/** Queues lines until the real sink is opened; see openSyslog(). */
export class DeferredSink implements LogSink {
  private sink: LogSink | null = null;
  private pending: { severity: Severity; message: string }[] = [];
  private dropped = 0;
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly open: () => LogSink) {}

  write(severity: Severity, message: string): void {
    if (this.sink) return this.sink.write(severity, message);
    if (this.pending.length >= MAX_QUEUED_LOG_LINES) {
      this.dropped++;
      return;
    }
    this.pending.push({ severity, message });
    if (!this.timer) {
      this.timer = setTimeout(() => this.opened(), OPEN_DELAY_MS);
      // Never what keeps the process alive: main flushes before it exits.
      this.timer.unref();
    }
  }

  /** True once the real sink is open. */
  get isOpen(): boolean {
    return this.sink !== null;
  }

  private opened(): LogSink {
    if (this.sink) return this.sink;
    if (this.timer) clearTimeout(this.timer);
    const sink = this.open();
    this.sink = sink;
    const lines = this.pending;
    this.pending = [];
    for (const l of lines) sink.write(l.severity, l.message);
    if (this.dropped > 0) sink.write('warning', droppedLines(this.dropped));
    this.dropped = 0;
    return sink;
  }

  flush(): Promise<void> {
    if (!this.sink && this.pending.length === 0) return Promise.resolve();
    return this.opened().flush();
  }

  abandon(): void {
    this.sink?.abandon?.();
  }
}

/**
 * Log lines on stderr, for by-hand use (--log-stderr). Written synchronously
 * so that nothing is lost at exit. Never used when stderr is a socket: under
 * inetd that is the client's connection.
 */
export class StderrSink implements LogSink {
  /** bare: the line alone (JSON lines carry their own severity), else syslog's look. */
  constructor(private readonly bare = false) {}

  write(severity: Severity, message: string): void {
    try {
      writeSync(2, this.bare ? `${message}\n` : `protowrap[${process.pid}]: ${severity}: ${message}\n`);
    } catch {
      // stderr closed: nothing to do.
    }
  }
  flush(): Promise<void> {
    return Promise.resolve();
  }
}
