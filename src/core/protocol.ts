import type { LineEnding } from './framer.js';
import type { OptionTable, OptionValue } from './options.js';

/**
 * Why a client line was refused. Stable: logs and tests use these codes.
 * A protocol adds its own codes here so that the union stays closed.
 */
export type RefusalCode =
  | 'line_too_long'
  | 'nul_byte'
  | 'bare_cr'
  | 'bare_lf'
  | 'unterminated'
  | 'denied_by_rule'
  | 'not_allowed_by_rule'
  | 'unknown_command'
  | 'bad_state'
  | 'bad_argument'
  | 'too_many_logins'
  | 'early_talker'
  | 'not_supported'
  | 'policy'
  | 'bad_syntax'
  | 'pipelining'
  | 'literal'
  | 'too_large'
  | 'blocked_sender'
  | 'blocked_body'
  | 'relay_denied'
  | 'too_many_recipients'
  | 'smuggling';

/** What to do with one client line. */
export type ClientVerdict =
  | {
      readonly kind: 'forward';
      /**
       * Stop reading client lines after this one until a serverData() result
       * says release (the line's effect depends on the server's answer).
       */
      readonly hold?: boolean;
      /** After this line, the next n client bytes are a raw run, not lines. */
      readonly raw?: number;
      /** From the next line on, the line limit is this (SMTP DATA text lines). */
      readonly maxLineLength?: number;
    }
  | {
      readonly kind: 'refuse';
      readonly code: RefusalCode;
      /** For the log: what was wrong, in a few words. Never echoes client text. */
      readonly reason: string;
      /** The protocol's own error reply, sent to the client. */
      readonly reply?: Buffer;
      /** Close the session after the reply (e.g. login attempts exhausted). */
      readonly close?: boolean;
    };

/** What to do with bytes from the server. */
export interface ServerVerdict {
  /** Bytes for the client instead of the chunk; null forwards the chunk unchanged. */
  readonly toClient: Buffer | readonly Buffer[] | null;
  /** The server answered what a held client line was waiting for. */
  readonly release?: boolean;
}

/** Replies the wrapper itself may need to send, in the protocol's own form. */
export type WrapperReply = 'unavailable' | 'timeout' | 'too_many_violations' | 'shutdown';

/** What a protocol session is told about its connection. Pure data. */
export interface SessionContext {
  /** Client address, normalised (v4-mapped IPv6 shown as IPv4); 'local' for pipes. */
  readonly clientAddress: string;
  readonly maxLineLength: number;
}

/**
 * One client connection's protocol state machine. Pure: it never touches a
 * socket, a timer or a log. The I/O shell feeds it and acts on its verdicts.
 */
export interface ProtocolSession {
  /** The current state's name, for logs. */
  readonly state: string;
  /** Judge one complete client line; `line` includes its ending bytes. */
  clientLine(line: Buffer, contentEnd: number, ending: LineEnding): ClientVerdict;
  /** A client line passed the length limit; it has been discarded. */
  clientOverlong(): ClientVerdict;
  /** Bytes of a raw run the protocol asked for; they are forwarded unchanged. */
  clientRaw?(bytes: Buffer): void;
  /** Judge server bytes. Absent: server bytes pass through untouched. */
  serverData?(chunk: Buffer): ServerVerdict;
  /** The wrapper's own reply for an event, or undefined to say nothing. */
  reply(kind: WrapperReply): Buffer | undefined;
}

/** A protocol: its defaults and a session factory. One entry in the registry. */
export interface Protocol {
  readonly name: string;
  /** One line for --help. */
  readonly summary: string;
  /** Default line limit in octets, line ending excluded. */
  readonly defaultMaxLineLength: number;
  /** Syslog facility when the configuration names none (SMTP: mail). */
  readonly defaultFacility?: 'mail' | 'daemon' | 'ftp' | 'auth';
  /** The protocol's own configuration keys (seed names such as maxLoginAttempts). */
  readonly options?: OptionTable;
  createSession(ctx: SessionContext, options: ProtocolOptions): ProtocolSession;
}

/** The validated, frozen options a protocol session reads. */
export interface ProtocolOptions {
  readonly maxLineLength: number;
  readonly lineEnding: 'any' | 'crlf' | 'lf';
  readonly allowNul: boolean;
  readonly allowBareCr: boolean;
  readonly allow: readonly LineMatcher[];
  readonly deny: readonly LineMatcher[];
  readonly forwardUnterminated: boolean;
  /** Values of the protocol's own keys (Protocol.options), validated, defaults filled in. */
  readonly extra: Readonly<Record<string, OptionValue>>;
}

/** A compiled configuration regex, guaranteed to run in linear time. */
export interface LineMatcher {
  readonly source: string;
  test(text: string): boolean;
}
