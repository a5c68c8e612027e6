import type { Severity } from './logger.js';

/**
 * What a log line reports. Stable: the JSON form's `event` field, and what
 * fail2ban and other log readers key on. Add new names here, so the union
 * stays closed and every name has a text head (TEXT_HEADS).
 */
export type LogEventName =
  | 'refused'
  | 'session_open'
  | 'session_close'
  | 'login_failed'
  | 'banning'
  | 'message_accepted'
  | 'note'
  | 'closing'
  | 'server_unavailable'
  | 'server_stderr'
  | 'server_exited'
  | 'line'
  | 'kept'
  | 'session_state'
  | 'data_connection'
  | 'client_tls'
  | 'tls_failed'
  | 'refused_connection'
  | 'proxy'
  | 'listening'
  | 'shutdown'
  | 'error'
  | 'message';

/**
 * The fields a line may carry, in the order both forms show them. Client
 * text (line, user, detail, message from a peer) is escaped and cut before
 * it gets here (escape.ts); credentials never do.
 */
export interface LogFields {
  /** The client's address ('stdin' for a piped session); peer: a PROXY-speaking peer. */
  readonly client?: string;
  readonly peer?: string;
  readonly protocol?: string;
  /** The service's name, when the configuration names several services. */
  readonly service?: string;
  readonly state?: string;
  /** A refusal's stable code (RefusalCode). */
  readonly code?: string;
  /** Why, in our own words (never client text). */
  readonly reason?: string;
  /** The client line as the log may show it: escaped, cut, credentials hidden. */
  readonly line?: string;
  /** The name a failed login tried (escaped); null when the protocol saw none. */
  readonly user?: string | null;
  /** The real server (tcp:host:port, unix:/path, exec:argv0). */
  readonly server?: string;
  /** TLS parameters, as describeTls() gives them. */
  readonly tls?: string;
  /** How a session ended (SessionEnd). */
  readonly end?: string;
  readonly bytes_in?: number;
  readonly bytes_out?: number;
  readonly refused?: number;
  readonly duration_ms?: number;
  /** Protocol context already escaped (an SMTP envelope: from=<…> nrcpt=… rcpt=… size=…). */
  readonly detail?: string;
  /** Anything else, in words; shown after ': ' in the text form. */
  readonly message?: string;
  /** An id unique per session: the same in every line of that session, in both forms. */
  readonly session?: string;
}

/** The field order of both forms (the text form moves session and message to the end, see renderText). */
const ORDER: readonly (keyof LogFields)[] = [
  'session', 'client', 'peer', 'protocol', 'service', 'state', 'code', 'reason', 'line', 'user', 'server', 'tls', 'end',
  'bytes_in', 'bytes_out', 'refused', 'duration_ms', 'detail', 'message',
];

/** Fields the text form quotes: they hold spaces (reason, and client text already escaped). */
const QUOTED: ReadonlySet<keyof LogFields> = new Set(['reason', 'line', 'user']);

/**
 * The fields the text form writes as key=value, in ORDER, with their " key="
 * made once: every session writes two lines or more, and this loop was the
 * wrapper's busiest JavaScript function on a connection per message (bench).
 * session, detail and message have places of their own.
 */
const TEXT_FIELDS: readonly { key: keyof LogFields; prefix: string; quoted: boolean }[] = ORDER.filter(
  (k) => k !== 'session' && k !== 'message' && k !== 'detail',
).map((key) => ({ key, prefix: ` ${key}=`, quoted: QUOTED.has(key) }));

/**
 * The words a text line starts with. null: the event's message is the head
 * (e.g. `client closed its side client=… protocol=…`), as the lines read
 * before the log had a JSON form.
 */
const TEXT_HEADS: Readonly<Record<LogEventName, string | null>> = {
  refused: 'refused',
  session_open: 'session open',
  session_close: 'session close',
  login_failed: 'login failed',
  banning: 'banning',
  message_accepted: 'note',
  note: 'note',
  closing: 'closing',
  server_unavailable: 'server unavailable',
  server_stderr: 'server stderr',
  server_exited: 'server exited',
  line: 'line',
  kept: 'kept',
  session_state: null,
  data_connection: null,
  client_tls: 'client TLS established',
  tls_failed: 'TLS handshake failed',
  refused_connection: 'refused connection',
  proxy: null,
  listening: null,
  shutdown: 'shutting down',
  error: null,
  message: null,
};

/** What each event reports, for the man page's LOGGING section (build/manpage.mjs) and README's table. */
export const EVENT_DOCS: Readonly<Record<LogEventName, string>> = {
  refused: 'a refused client line: state, code, reason, the line (escaped, credentials hidden); SMTP adds its envelope',
  session_open: 'the server is reached (level 1)',
  session_close: 'the session is over: end, bytes_in, bytes_out, refused, duration_ms (level 1)',
  login_failed: 'the server refused credentials: the user name tried (never the secret), or none',
  banning: 'a client reached maxAuthFailures: its new connections are refused for banTime (refused_connection with code=banned)',
  message_accepted: 'SMTP: an accepted message, its envelope and size (level 1)',
  note: 'a protocol\'s note (level 1)',
  closing: 'the wrapper closes the session, and why',
  server_unavailable: 'the server cannot be reached',
  server_stderr: 'a line a spawned server wrote to its stderr',
  server_exited: 'a spawned server exited (level 1)',
  line: 'a forwarded client line, credentials hidden (level 3)',
  kept: 'a client line the protocol keeps to send later, e.g. a held SMTP body line (level 3)',
  session_state: 'half-closes, connection errors, dropped bytes (level 2, some at 0)',
  data_connection: 'FTP data connections: a refused or failed one, a listener that timed out, a reply passed on unrewritten',
  client_tls: 'TLS toward the client is established',
  tls_failed: 'a client\'s TLS handshake failed',
  refused_connection: 'a connection refused before any session: a bad PROXY header, or maxConnections',
  proxy: 'a PROXY header read (level 1) or missing (level 2)',
  listening: 'the daemon listens',
  shutdown: 'the daemon shuts down',
  error: 'a fatal error (configuration, internal)',
  message: 'any other line in words',
};

/** Every event with the words its text form starts with (null: its message), in the union's order. */
export function logEvents(): { name: LogEventName; head: string | null; doc: string }[] {
  return (Object.keys(TEXT_HEADS) as LogEventName[]).map((name) => ({ name, head: TEXT_HEADS[name], doc: EVENT_DOCS[name] }));
}

/**
 * The text form: `<head> client=… protocol=… [service=…] key=value … session=…[: message]`.
 * The first fields keep the shape fail2ban's filter anchors on (`refused
 * client=<HOST> protocol=…`); session= is the last key=value field, and a
 * message in words (possibly a peer's text, escaped) comes after ': ', last,
 * so that nothing it holds can stand between the head and client=. A
 * message_accepted line reads `note … session=…: accepted <detail>`; any
 * other detail (an SMTP envelope after a refusal) follows the fields.
 */
export function renderText(event: LogEventName, f: LogFields): string {
  const head = TEXT_HEADS[event];
  // A debug line's client text is its words: `line … session=…: USER alice`.
  const trailing: keyof LogFields = event === 'line' || event === 'kept' ? 'line' : 'message';
  let s = head ?? f.message ?? event;
  for (const { key, prefix, quoted } of TEXT_FIELDS) {
    if (key === trailing) continue;
    const v = f[key];
    if (v === undefined || v === null) continue;
    s += quoted ? `${prefix}"${v}"` : prefix + v;
  }
  if (f.detail !== undefined && event !== 'message_accepted') s += ` ${f.detail}`;
  if (f.session !== undefined) s += ` session=${f.session}`;
  const words = f[trailing];
  if (event === 'message_accepted') s += `: accepted ${f.detail ?? ''}`;
  else if ((head !== null || trailing !== 'message') && words !== undefined) s += `: ${words}`;
  return s;
}

/**
 * The JSON form: one object per line, `time`, `severity`, `event`, then the
 * fields that are set, in ORDER. A user the protocol could not name is
 * `"user": null` (the key is there for every login_failed line).
 */
export function renderJson(event: LogEventName, severity: Severity, f: LogFields, time: Date): string {
  const o: Record<string, unknown> = { time: time.toISOString(), severity, event };
  for (const k of ORDER) {
    const v = f[k];
    if (v !== undefined) o[k] = v;
  }
  return JSON.stringify(o);
}
