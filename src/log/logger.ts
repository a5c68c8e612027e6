import { renderJson, renderText, type LogEventName, type LogFields } from './event.js';

/** Syslog severities the wrapper uses. */
export type Severity = 'err' | 'warning' | 'notice' | 'info' | 'debug';

/** Where log lines go: syslog, stderr, a test's array. */
export interface LogSink {
  write(severity: Severity, message: string): void;
  /** Resolves when every line written so far has been handed to the system. */
  flush(): Promise<void>;
  /** The process gives up waiting for flush() and exits: drop any helper process that would outlive it. */
  abandon?(): void;
}

/** The line that counts lines a sink had to drop (every sink words it the same). */
export function droppedLines(n: number): string {
  return `${n} log lines dropped: syslog too slow`;
}

/**
 * The seed's logLevel: what is worth a line.
 *   0 refusals and errors, 1 + session open/close, 2 + state changes,
 *   3 + every line (credentials hidden).
 */
export type LogLevel = 0 | 1 | 2 | 3;

/** The form of a log line (logFormat): text (key=value) or one JSON object per line. */
export type LogFormat = 'text' | 'json';

/**
 * Log lines, gated by level. Every line is an event (a name and fields),
 * rendered once, in the configured form, for all sinks: the text and JSON
 * forms carry the same information by construction. Costly fields (a client
 * line for level 3) are built only when the level wants them: callers ask
 * wants() first.
 */
export class Logger {
  constructor(
    private readonly sinks: readonly LogSink[],
    readonly level: LogLevel,
    readonly format: LogFormat = 'text',
    /** The service's name, in every line (a multi-service process); null: none. */
    private readonly service: string | null = null,
  ) {}

  /** The same sinks and form at another level, naming a service in every line (one per service). */
  derive(level: LogLevel, service: string | null): Logger {
    return new Logger(this.sinks, level, this.format, service);
  }

  wants(level: LogLevel): boolean {
    return level <= this.level;
  }

  event(severity: Severity, event: LogEventName, fields: LogFields): void {
    if (this.service !== null && fields.service === undefined) fields = { ...fields, service: this.service };
    const line = this.format === 'json' ? renderJson(event, severity, fields, new Date()) : renderText(event, fields);
    for (const s of this.sinks) s.write(severity, line);
  }

  /** A line in words only (event "message"): the text form is the message itself. */
  log(severity: Severity, message: string): void {
    this.event(severity, 'message', { message });
  }

  /** See LogSink.abandon. */
  abandon(): void {
    for (const s of this.sinks) s.abandon?.();
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
