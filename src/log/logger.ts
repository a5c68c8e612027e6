/** Syslog severities the wrapper uses. */
export type Severity = 'err' | 'warning' | 'notice' | 'info' | 'debug';

/** Where log lines go: syslog, stderr, a test's array. */
export interface LogSink {
  write(severity: Severity, message: string): void;
  /** Resolves when every line written so far has been handed to the system. */
  flush(): Promise<void>;
}

/**
 * The seed's logLevel: what is worth a line.
 *   0 refusals and errors, 1 + session open/close, 2 + state changes,
 *   3 + every line (credentials hidden).
 */
export type LogLevel = 0 | 1 | 2 | 3;

/** Log lines, gated by level. Costly strings are built only when the level wants them. */
export class Logger {
  constructor(
    private readonly sinks: readonly LogSink[],
    readonly level: LogLevel,
    /** Appended to every line (` service=NAME` for a service's listener lines). */
    private readonly suffix = '',
  ) {}

  /** The same sinks at another level and with a suffix on every line (one per service). */
  derive(level: LogLevel, suffix: string): Logger {
    return new Logger(this.sinks, level, suffix);
  }

  wants(level: LogLevel): boolean {
    return level <= this.level;
  }

  log(severity: Severity, message: string): void {
    const line = this.suffix === '' ? message : message + this.suffix;
    for (const s of this.sinks) s.write(severity, line);
  }

  async flush(): Promise<void> {
    await Promise.all(this.sinks.map((s) => s.flush()));
  }
}

/** A sink that keeps lines in memory (tests, and --check). */
export class MemorySink implements LogSink {
  readonly lines: { severity: Severity; message: string }[] = [];
  write(severity: Severity, message: string): void {
    this.lines.push({ severity, message });
  }
  flush(): Promise<void> {
    return Promise.resolve();
  }
}
