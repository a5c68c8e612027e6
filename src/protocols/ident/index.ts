import type { Protocol } from '../../core/protocol.js';
import { IdentSession } from './session.js';

/**
 * ident (RFC 1413). `<port> , <port>` queries, replies checked against the
 * RFC's grammar. The line limit is the wrapper's choice (the RFC sets none):
 * a port pair is 13 bytes, the rest is room for the white space the RFC
 * allows.
 */
export const ident: Protocol = {
  name: 'ident',
  summary: 'ident: <port> , <port> queries only, replies checked against the RFC 1413 grammar',
  defaultMaxLineLength: 64,
  // A query is one short line: a connection that sends none is dropped soon.
  defaultIdleTimeout: 60,
  options: {
    maxQueries: {
      kind: 'integer',
      min: 1,
      max: 1000,
      default: 1,
      doc: 'queries per connection; the next one closes the session',
    },
    maxReplyLineLength: {
      kind: 'integer',
      min: 64,
      max: 65536,
      default: 1000,
      doc: 'bytes of a server reply line, CRLF excluded; a longer one is replaced by UNKNOWN-ERROR',
    },
  },
  createSession: (_ctx, options) =>
    new IdentSession(options, {
      maxQueries: options.extra['maxQueries'] as number,
      maxReplyLineLength: options.extra['maxReplyLineLength'] as number,
    }),
};
