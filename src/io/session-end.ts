/** Why a session ended: the session close log line's end=… and the inetd exit code. */
export type SessionEnd =
  | 'done'
  | 'server_unavailable'
  | 'banned'
  | 'idle_timeout'
  | 'header_timeout'
  | 'body_too_slow'
  | 'keepalive_timeout'
  | 'session_timeout'
  | 'too_many_violations'
  | 'protocol_close'
  | 'client_closed'
  | 'client_error'
  | 'server_error'
  | 'server_closed'
  | 'spool_error'
  | 'shutdown';

export interface SessionResult {
  readonly end: SessionEnd;
  readonly refused: number;
}
