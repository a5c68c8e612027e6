import type { Protocol } from '../../core/protocol.js';
import { FingerSession } from './session.js';

/**
 * finger (RFC 1288). One query line per connection, `[/W] [user]`: no
 * forwarding (`@`), one user from a safe character set, no control bytes;
 * the server's reply relayed with its control bytes removed (section 3.3).
 * The line limit is the wrapper's choice (the RFC sets none): a user name
 * is at most 32 bytes on Linux, a query a few more.
 */
export const finger: Protocol = {
  name: 'finger',
  summary: 'finger: one [/W] [user] query, no forwarding, control bytes removed from the reply',
  defaultMaxLineLength: 256,
  // fingerd's own wait for the query (in.fingerd -t) is 60 s.
  defaultIdleTimeout: 60,
  options: {
    allowUserList: {
      kind: 'boolean',
      default: true,
      doc: 'allow the empty query (and /W alone), which lists the users logged in',
    },
    maxReplyBytes: {
      kind: 'integer',
      min: 1,
      max: 1073741824,
      default: 1048576,
      doc: 'bytes of the server reply relayed; past them the session is closed',
    },
  },
  createSession: (_ctx, options) =>
    new FingerSession(options, {
      allowUserList: options.extra['allowUserList'] as boolean,
      maxReplyBytes: options.extra['maxReplyBytes'] as number,
    }),
};
