/**
 * Errors with stable codes. Tests assert the code, never the message.
 * Who is to blame is part of the code's meaning: PW_ERR_CONFIG_* is the
 * administrator's configuration, PW_ERR_USAGE_* the command line,
 * PW_ERR_SERVER_* the real server, PW_ERR_INTERNAL a bug of ours.
 */
export const ExitCode = {
  ok: 0,
  usage: 64, // EX_USAGE
  unavailable: 69, // EX_UNAVAILABLE
  software: 70, // EX_SOFTWARE
  config: 78, // EX_CONFIG
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

export type ErrorCode =
  | 'PW_ERR_USAGE'
  | 'PW_ERR_CONFIG_FILE'
  | 'PW_ERR_CONFIG_UNKNOWN_KEY'
  | 'PW_ERR_CONFIG_TYPE'
  | 'PW_ERR_CONFIG_VALUE'
  | 'PW_ERR_CONFIG_DEST'
  | 'PW_ERR_CONFIG_REGEX'
  | 'PW_ERR_SERVER_UNAVAILABLE'
  | 'PW_ERR_INTERNAL';

const exitFor: Record<ErrorCode, ExitCode> = {
  PW_ERR_USAGE: ExitCode.usage,
  PW_ERR_CONFIG_FILE: ExitCode.config,
  PW_ERR_CONFIG_UNKNOWN_KEY: ExitCode.config,
  PW_ERR_CONFIG_TYPE: ExitCode.config,
  PW_ERR_CONFIG_VALUE: ExitCode.config,
  PW_ERR_CONFIG_DEST: ExitCode.config,
  PW_ERR_CONFIG_REGEX: ExitCode.config,
  PW_ERR_SERVER_UNAVAILABLE: ExitCode.unavailable,
  PW_ERR_INTERNAL: ExitCode.software,
};

export class ProtowrapError extends Error {
  readonly code: ErrorCode;
  readonly exitCode: ExitCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ProtowrapError';
    this.code = code;
    this.exitCode = exitFor[code];
  }
}

/** A configuration problem: the message names the offending key. */
export class ConfigError extends ProtowrapError {
  readonly key: string;
  constructor(code: Extract<ErrorCode, `PW_ERR_CONFIG_${string}`>, key: string, message: string) {
    super(code, `${key}: ${message}`);
    this.name = 'ConfigError';
    this.key = key;
  }
}

export class UsageError extends ProtowrapError {
  constructor(message: string) {
    super('PW_ERR_USAGE', message);
    this.name = 'UsageError';
  }
}

/** Builds the "expected X, got Y" phrase used by every validation error. */
export function expected(what: string, got: unknown): string {
  const shown = typeof got === 'string' ? JSON.stringify(got) : Array.isArray(got) ? 'an array' : typeof got;
  return `expected ${what}, got ${shown}`;
}
