import type { Protocol } from '../../core/protocol.js';
import { ImapSession } from './session.js';
import { ImapServerStarttls } from './server-starttls.js';

/** 64 MiB: a large message with attachments; the literal is streamed, never buffered. */
export const DEFAULT_MAX_LITERAL_SIZE = 64 * 1024 * 1024;
/** 128 MiB: a whole command with its literals (MULTIAPPEND may carry several messages). */
export const DEFAULT_MAX_COMMAND_SIZE = 128 * 1024 * 1024;

/**
 * IMAP (RFC 9051, RFC 3501): tags and commands per state, literals counted
 * and never read as commands, capabilities the wrapper cannot follow hidden
 * and refused, failed logins counted.
 */
export const imap: Protocol = {
  name: 'imap',
  summary: 'IMAP4rev1/rev2: commands per state, literals, LITERAL+, IDLE, AUTHENTICATE, no STARTTLS/COMPRESS',
  // RFC 7162 recommends that servers accept command lines of at least 8192 octets.
  defaultMaxLineLength: 8192,
  defaultFacility: 'mail',
  options: {
    maxLoginAttempts: {
      kind: 'integer',
      min: 1,
      max: 1000,
      default: 3,
      doc: 'failed LOGIN/AUTHENTICATE (tagged NO) before the wrapper says BYE and closes',
    },
    maxLiteralSize: {
      kind: 'integer',
      min: 0,
      max: 2 ** 40,
      default: DEFAULT_MAX_LITERAL_SIZE,
      doc: 'octets in one literal (e.g. one APPENDed message)',
    },
    maxCommandSize: {
      kind: 'integer',
      min: 1024,
      max: 2 ** 41,
      default: DEFAULT_MAX_COMMAND_SIZE,
      doc: 'octets in one command, its lines and literals together',
    },
    serverCommandLimit: {
      kind: 'integer',
      min: 1024,
      max: 2 ** 30,
      default: 65536,
      doc: "the server's limit on one command with its literals (Dovecot imap_max_line_length); APPEND excepted",
    },
  },
  serverStarttls: () => new ImapServerStarttls(),
  createSession: (ctx, options) =>
    new ImapSession(options, {
      tls: ctx.tls ?? 'none',
      maxLoginAttempts: options.extra['maxLoginAttempts'] as number,
      maxLiteralSize: options.extra['maxLiteralSize'] as number,
      maxCommandSize: options.extra['maxCommandSize'] as number,
      serverCommandLimit: options.extra['serverCommandLimit'] as number,
    }),
};
