import type { Protocol } from '../../core/protocol.js';
import { SMTP_OPTIONS, smtpPolicy } from './policy.js';
import { SmtpSession } from './session.js';
import { SmtpServerStarttls } from './server-starttls.js';

/**
 * SMTP (RFC 5321 with SIZE, PIPELINING, 8BITMIME, SMTPUTF8, CHUNKING, AUTH;
 * STARTTLS taken out), with the seed's anti-spam policy (Listing 3).
 * Command lines: 512 octets with CRLF (510 without); text lines in DATA:
 * 1000 with CRLF (textLineLength 998).
 */
export const smtp: Protocol = {
  name: 'smtp',
  summary: 'SMTP: command table, envelope policy (seed Listing 3), DATA held for body checks, smuggling refused',
  defaultMaxLineLength: 510,
  defaultFacility: 'mail',
  options: SMTP_OPTIONS,
  // Compiles blockBodyList and checks relayIpList when the configuration is read.
  checkOptions: (options) => void smtpPolicy(options),
  // The process-wide budget and spool for held bodies; none when bodies stream.
  holdLimits: (options) => {
    const p = smtpPolicy(options);
    return p.holdBody ? p.hold : null;
  },
  serverStarttls: (ctx) => new SmtpServerStarttls(ctx),
  createSession: (ctx, options) => new SmtpSession(ctx, options),
};
