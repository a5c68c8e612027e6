import type { Protocol } from '../../core/protocol.js';
import { Pop3Session } from './session.js';
import { Pop3ServerStarttls } from './server-starttls.js';

/**
 * POP3 (RFC 1939, RFC 2449 CAPA, RFC 5034 AUTH). The default line limit is
 * RFC 2449's 255 octets including CRLF, so 253 here (our limit excludes the
 * ending).
 */
export const pop3: Protocol = {
  name: 'pop3',
  summary: 'POP3: command table per state, login attempt limit, STLS removed, replies followed',
  defaultMaxLineLength: 253,
  defaultFacility: 'mail',
  options: {
    maxLoginAttempts: {
      kind: 'integer',
      min: 1,
      max: 1000,
      default: 3,
      doc: 'failed PASS/APOP/AUTH (server -ERR) before the session is closed (seed: brute force)',
    },
    maxAuthLineLength: {
      kind: 'integer',
      min: 253,
      max: 65536,
      default: 8192,
      doc: 'line limit for SASL responses during AUTH (GSSAPI tokens exceed 255 octets)',
    },
  },
  serverStarttls: () => new Pop3ServerStarttls(),
  createSession: (ctx, options) =>
    new Pop3Session(options, {
      tls: ctx.tls ?? 'none',
      piped: ctx.piped === true,
      maxLoginAttempts: options.extra['maxLoginAttempts'] as number,
      maxAuthLineLength: options.extra['maxAuthLineLength'] as number,
    }),
};
