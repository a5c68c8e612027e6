import type { Protocol, ProtocolOptions } from '../../core/protocol.js';
import { compileLinear } from '../../core/safe-regex.js';
import { ConfigError } from '../../errors.js';
import { TCHAR } from './grammar.js';
import { HttpSession, type HttpLimits } from './session.js';

const DEFAULT_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'OPTIONS', 'PATCH'];

/** Compiled once per configuration (the options object is frozen), not per session. */
const compiled = new WeakMap<ProtocolOptions, HttpLimits>();

function limits(o: ProtocolOptions): HttpLimits {
  const known = compiled.get(o);
  if (known) return known;
  const x = o.extra;
  const l: HttpLimits = {
    methods: new Set(x['httpMethods'] as readonly string[]),
    maxRequestLine: x['maxRequestLine'] as number,
    maxHeaderBytes: x['maxHeaderBytes'] as number,
    maxHeaders: x['maxHeaders'] as number,
    maxBodySize: x['maxBodySize'] as number | null,
    allowUpgrade: x['allowUpgrade'] as boolean,
    allowConnect: x['allowConnect'] as boolean,
    allowAsteriskForm: x['allowAsteriskForm'] as boolean,
    denyHeaders: (x['denyHeaders'] as readonly string[]).map((p) => compileLinear('denyHeaders', p)),
  };
  compiled.set(o, l);
  return l;
}

/**
 * HTTP/1.0 and HTTP/1.1 (RFC 9110, RFC 9112) in front of a web server: each
 * request head is read whole and checked before the server sees any of it,
 * bodies are framed exactly as the RFC says (no request smuggling), the
 * server's responses are followed, and slow heads and bodies time out.
 */
export const http: Protocol = {
  name: 'http',
  summary: 'HTTP/1.x: request heads checked whole, strict body framing (no smuggling), responses followed, slowloris deadlines',
  // Only the default of the shared key; the request line's limit is maxRequestLine (lineLimit).
  defaultMaxLineLength: 8000,
  options: {
    httpMethods: { kind: 'stringList', default: DEFAULT_METHODS, doc: 'request methods forwarded (case-sensitive); others get 501' },
    maxRequestLine: { kind: 'integer', min: 64, max: 1048576, default: 8000, doc: 'octets of the request line, CRLF excluded (414)' },
    maxHeaderBytes: { kind: 'integer', min: 256, max: 16777216, default: 65536, doc: 'octets of the header section, and of a trailer section (431)' },
    maxHeaders: { kind: 'integer', min: 1, max: 10000, default: 100, doc: 'header fields per request, and trailer fields (431)' },
    maxBodySize: { kind: 'integer', min: 0, max: Number.MAX_SAFE_INTEGER, default: null, doc: 'octets of a request body, Content-Length or chunked (413); none: no limit' },
    allowUpgrade: { kind: 'boolean', default: false, doc: 'forward Upgrade requests (WebSocket, h2c); after the server\'s 101 the connection is relayed raw' },
    allowConnect: { kind: 'boolean', default: false, doc: 'forward CONNECT (also needs CONNECT in httpMethods); after a 2xx the connection is relayed raw' },
    allowAsteriskForm: { kind: 'boolean', default: false, doc: 'forward OPTIONS * (the asterisk-form target)' },
    denyHeaders: { kind: 'stringList', default: [], regex: true, doc: 'a request whose header or trailer line ("Name: value") matches one of these is refused (403)' },
    headerTimeout: { kind: 'integer', min: 1, max: 3600, default: 20, doc: 'seconds for a whole request head, from its first byte (the first from the connection) (408)' },
    minBodyRate: { kind: 'integer', min: 0, max: 1073741824, default: 64, doc: 'bytes/s a request body must average over each minBodyRateWindow (408); 0: no minimum' },
    minBodyRateWindow: { kind: 'integer', min: 1, max: 3600, default: 20, doc: 'seconds over which minBodyRate is measured' },
    keepAliveTimeout: { kind: 'integer', min: 1, max: 86400, default: 75, doc: 'seconds a connection may idle between requests, nothing owed, before it is closed' },
  },
  checkOptions(o) {
    for (const m of o.extra['httpMethods'] as readonly string[]) {
      if (m.length === 0 || m.length > 32 || [...Buffer.from(m, 'latin1')].some((b) => !TCHAR[b])) {
        throw new ConfigError('PW_ERR_CONFIG_VALUE', 'httpMethods', `${JSON.stringify(m)} is not a method token`);
      }
    }
    limits(o);
  },
  phaseTimers(o) {
    const x = o.extra;
    const rate = x['minBodyRate'] as number;
    return {
      headMs: (x['headerTimeout'] as number) * 1000,
      idleMs: (x['keepAliveTimeout'] as number) * 1000,
      minBodyRate: rate === 0 ? null : rate,
      windowMs: (x['minBodyRateWindow'] as number) * 1000,
    };
  },
  createSession: (_ctx, options) => new HttpSession(options, limits(options)),
};
