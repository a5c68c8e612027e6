import type { LineEnding } from './framer.js';
import type { DataAnswer, DataOpened, DataRequest } from './data-channel.js';
import type { ByteSource, HoldLimits, HoldStore } from './hold.js';
import type { OptionTable, OptionValue } from './options.js';
import type { ServerStarttlsContext, ServerStarttlsDialogue } from './server-starttls.js';

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
  | 'smuggling'
  | 'no_storage'
  /** A connection from a client banned after maxAuthFailures failed logins (refused before the server is dialled). */
  | 'banned'
  | 'forwarding'
  | 'user_list'
  | 'too_many_queries'
  | 'telnet_iac'
  | 'bounce'
  | 'site_command';

/** How much of a client line the log may show: all (false), the first word (true), nothing ('line'). */
export type Secrecy = boolean | 'line';

/** The stronger of two secrecy levels. */
export function stronger(a: Secrecy | undefined, b: Secrecy | undefined): Secrecy {
  if (a === 'line' || b === 'line') return 'line';
  return a === true || b === true;
}

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
      /**
       * With raw: once the raw run is complete, stop reading client lines
       * until a serverData() release (hold itself would stop the raw bytes
       * too, and the server answers only after them: a deadlock).
       */
      readonly holdAfterRaw?: boolean;
      /** From the next line on, the line limit is this (SMTP DATA text lines). */
      readonly maxLineLength?: number;
      /**
       * The line carries credentials (AUTH): logs show its first word only;
       * 'line': the whole line is a credential (a SASL response), logs show none of it.
       */
      readonly secret?: boolean | 'line';
      /**
       * The protocol keeps the line itself instead of forwarding it now (e.g.
       * an SMTP message body held until a policy has seen all of it). This is
       * no violation; the protocol sends the bytes later through toServer.
       */
      readonly keep?: boolean;
      /** The protocol's own answer to the client (e.g. SMTP's 354 for a held body). */
      readonly toClient?: Buffer;
      /**
       * Bytes the protocol sends to the server after the line (if forwarded):
       * its own commands (SMTP DATA, RSET) or client bytes it kept and validated.
       */
      readonly toServer?: readonly Buffer[];
      /** A line for the log (notice), already escaped: e.g. a message's accounting. */
      readonly note?: string;
      /**
       * The protocol answered STARTTLS / STLS itself (toClient, with keep): the
       * shell sends that reply in plaintext, discards every client byte already
       * read after this line (command injection, CVE-2011-0411), drops server
       * bytes until the handshake is over (response injection), and switches
       * the client side to TLS under the running session.
       */
      readonly startTls?: boolean;
      /**
       * A data connection for the line (FTP PORT / EPRT): the shell opens a
       * listener and calls dataOpened(); the line itself is normally kept
       * (the protocol sends its own PORT / EPRT through the answer).
       */
      readonly data?: DataRequest;
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
      /** Bytes the protocol sends to the server after the reply (e.g. SMTP RSET after a discarded message). */
      readonly toServer?: readonly Buffer[];
      /** Stop reading client lines until a serverData() release. */
      readonly hold?: boolean;
      /** The line carries credentials: the log shows its first word only ('line': nothing of it). */
      readonly secret?: boolean | 'line';
      /** Context appended to the refusal's log line, already escaped (e.g. an SMTP envelope). */
      readonly note?: string;
      /**
       * The refused command announced this many bytes that follow it (an SMTP
       * BDAT chunk): they are read as a raw run and dropped, never forwarded
       * and never read as commands (RFC 3030: a server discards the chunk of
       * a BDAT it refuses; read as commands, a message's text would run).
       */
      readonly skipRaw?: number;
      /**
       * The refusal answers credentials the server refused already (POP3: a PASS
       * after a USER the server refused, answered by the wrapper): a failed
       * login, logged as ServerVerdict.loginFailed is. user: never the secret.
       */
      readonly loginFailed?: { readonly user: string | null };
    };

/** What to do with bytes from the server. */
export interface ServerVerdict {
  /** Bytes for the client instead of the chunk; null forwards the chunk unchanged. */
  readonly toClient: Buffer | readonly Buffer[] | null;
  /**
   * The server answered what a held client line was waiting for. A release
   * that comes while a holdAfterRaw is still pending (its raw run not
   * complete) cancels that hold: the answer came before the hold began.
   */
  readonly release?: boolean;
  /** Bytes the protocol sends to the server now (e.g. RSET after a DATA the server refused). */
  readonly toServer?: readonly Buffer[];
  /**
   * Bytes streamed to the server after toServer, block by block as the server
   * keeps up (a held SMTP body after the server's 354, possibly from a spool
   * file). Whatever is sent to the server later waits behind them.
   */
  readonly stream?: ByteSource;
  /** From the next client line on, the line limit is this (set before a release takes effect). */
  readonly maxLineLength?: number;
  /** Lines for the log (notice), already escaped: e.g. one accounting line per accepted message. */
  readonly notes?: readonly string[];
  /**
   * Drop the raw run a held line asked for: the server refused the command
   * (an IMAP tagged NO/BAD instead of `+`), so the client will not send it.
   */
  readonly cancelRaw?: boolean;
  /** Close the session after toClient (e.g. IMAP login attempts exhausted: `* BYE`). */
  readonly close?: boolean;
  /**
   * The server refused credentials (a failed login, the event maxLoginAttempts counts):
   * the shell logs `login_failed` and counts it toward maxAuthFailures. user: the name
   * tried when the protocol saw one (never the secret), else null.
   */
  readonly loginFailed?: { readonly user: string | null };
  /**
   * With close: why, for the `closing …` log line, when the server is to
   * blame (an ident reply out of grammar, a finger reply past its cap).
   * Absent: "closed by protocol after a server reply", which fail2ban's
   * filter counts against the client (failed logins end that way).
   */
  readonly closeWhy?: string;
  /**
   * The server switched protocols (HTTP's 101 to an Upgrade, a 2xx to a
   * CONNECT): from the next client byte on, everything the client sends is
   * one raw run to the end of the connection, relayed unjudged (the
   * protocol held the client until this answer, so no byte of the new
   * protocol was read as a line).
   */
  readonly tunnel?: boolean;
  /**
   * A data connection the reply asks for (an FTP 227 / 229): the shell stops
   * reading the server, opens a listener, calls dataOpened() (whose answer
   * carries the rewritten reply), then judges `rest` as server bytes.
   */
  readonly data?: DataRequest;
  /** With data: the bytes of the chunk after the reply, not yet judged. */
  readonly rest?: Buffer;
}

/**
 * Where a client is in a request/response protocol, for the shell's
 * deadlines (HTTP): 'head' (a request head is being read: headerTimeout),
 * 'body' (a body is being read: minBodyRate), 'idle' (between requests,
 * nothing owed: keepAliveTimeout), 'busy' (the server owes an answer, or
 * the connection is a tunnel: no client deadline beyond idleTimeout).
 */
export type ClientPhase = 'head' | 'body' | 'idle' | 'busy';

/** The deadlines of ClientPhase, in milliseconds (null: none). */
export interface PhaseTimers {
  readonly headMs: number | null;
  readonly idleMs: number | null;
  /** Bytes per second a body must average over each window of windowMs; null: no minimum. */
  readonly minBodyRate: number | null;
  readonly windowMs: number;
}

/** Replies the wrapper itself may need to send, in the protocol's own form. */
export type WrapperReply = 'unavailable' | 'timeout' | 'too_many_violations' | 'shutdown';

/** What a protocol session is told about its connection. Pure data. */
export interface SessionContext {
  /** Client address, normalised (v4-mapped IPv6 shown as IPv4); 'local' for pipes. */
  readonly clientAddress: string;
  /**
   * The address the client reached the wrapper at (the control socket's own
   * end, normalised); absent for pipes and unix sockets.
   */
  readonly localAddress?: string;
  readonly maxLineLength: number;
  /**
   * TLS toward the client: 'none'; 'implicit' (the session runs inside TLS
   * from the first byte); 'starttls' (the protocol offers STARTTLS / STLS
   * itself and answers it with a startTls verdict); 'require' (as starttls,
   * and no credentials before TLS). Absent: 'none'.
   */
  readonly tls?: 'none' | 'implicit' | 'starttls' | 'require';
  /**
   * The client is a pipe or a file (a session piped in by hand): no timing,
   * so no early-talker rule, and each command waits for the reply it needs,
   * as for a client without PIPELINING.
   */
  readonly piped?: boolean;
  /**
   * Where to keep held client bytes: the shell's process-wide store (memory
   * budget, then a spool). Absent (unit tests): plain memory.
   */
  readonly holdStore?: HoldStore;
}

/**
 * One client connection's protocol state machine. Pure: it never touches a
 * socket, a timer or a log. The I/O shell feeds it and acts on its verdicts.
 */
export interface ProtocolSession {
  /** The current state's name, for logs. */
  readonly state: string;
  /** The framer's line limit for the first line (HTTP: maxRequestLine); absent: SessionContext.maxLineLength. */
  readonly lineLimit?: number;
  /** Where the client is, for the shell's phase deadlines (Protocol.phaseTimers); asked after each chunk either way. */
  clientPhase?(): ClientPhase;
  /**
   * Raw client bytes as they arrive, before framing (e.g. SMTP: a byte before
   * the greeting is an early talker even when it is half a line). Absent on
   * most protocols: it runs on every chunk, so keep it a state check. null:
   * nothing to say. A refusal with close stops the chunk: nothing of it is
   * framed or forwarded; otherwise the chunk is framed after the verdict.
   */
  clientData?(chunk: Buffer): ClientVerdict | null;
  /**
   * Does this line carry credentials, in the state the session is in before
   * the line is judged? The shell asks first, so that no refusal path (a bad
   * byte, an overlong line, a wrong state) can log a password: 'line' hides
   * the whole line, true all but its first word. A verdict's own secret is
   * honoured too; the stronger of the two wins. Called for every line and for
   * the head of an overlong one: keep it a state check and a few byte
   * comparisons.
   */
  lineSecrecy?(line: Buffer, contentEnd: number): Secrecy;
  /** Judge one complete client line; `line` includes its ending bytes. */
  clientLine(line: Buffer, contentEnd: number, ending: LineEnding): ClientVerdict;
  /** A client line passed the length limit; it has been discarded. head: its first bytes. */
  clientOverlong(head?: Buffer): ClientVerdict;
  /** Bytes of a raw run the protocol asked for; they are forwarded unchanged. */
  clientRaw?(bytes: Buffer): void;
  /** Judge server bytes. Absent: server bytes pass through untouched. */
  serverData?(chunk: Buffer): ServerVerdict;
  /**
   * The server closed its side. Returns bytes the protocol still held back
   * for the client (e.g. the start of a reply line it was waiting to see
   * whole, to rewrite it), so that nothing the server sent is lost.
   */
  serverEnd?(): readonly Buffer[] | null;
  /**
   * Asked right after serverEnd(): true when nothing the client sends now can
   * reach anyone (an SMTP body arriving after the server left): the shell
   * stops reading the client and closes once the tail is written, instead of
   * reading on until the idle timeout.
   */
  stopOnServerEnd?(): boolean;
  /** The shell opened (or failed to open) the data listener a verdict asked for. */
  dataOpened?(result: DataOpened): DataAnswer;
  /** The session is over, however it ended: give back what the protocol holds (held bodies, their memory and disk). */
  close?(): void;
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
  /**
   * Seconds without traffic before closing when the configuration sets no
   * idleTimeout (finger and ident: 60, one short query per connection); absent:
   * the core's default.
   */
  readonly defaultIdleTimeout?: number;
  /** Syslog facility when the configuration names none (SMTP: mail). */
  readonly defaultFacility?: 'mail' | 'daemon' | 'ftp' | 'auth';
  /** The protocol's own configuration keys (seed names such as maxLoginAttempts). */
  readonly options?: OptionTable;
  /**
   * Checks the protocol's own option values once, when the configuration is
   * read (e.g. compiles regex lists); throws ConfigError. Optional.
   */
  checkOptions?(options: ProtocolOptions): void;
  /** The process-wide hold store this protocol wants (SMTP: when bodies are held), or null. */
  holdLimits?(options: ProtocolOptions): HoldLimits | null;
  createSession(ctx: SessionContext, options: ProtocolOptions): ProtocolSession;
  /** The deadlines of the session's phases (ProtocolSession.clientPhase), from the options; absent: none. */
  phaseTimers?(options: ProtocolOptions): PhaseTimers;
  /** The wrapper's own STARTTLS toward the server (serverTls = "starttls"); absent: the protocol has none. */
  serverStarttls?(ctx: ServerStarttlsContext): ServerStarttlsDialogue;
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
