import type { Protocol, ProtocolOptions } from '../../core/protocol.js';
import { ConfigError } from '../../errors.js';
import { parsePortRange } from '../../core/data-channel.js';
import { addressBytes } from '../../core/ip.js';
import { FtpSession } from './session.js';

function checkFtpOptions(o: ProtocolOptions): void {
  const range = o.extra['pasvPortRange'] as string | null;
  if (range !== null && !parsePortRange(range)) throw new ConfigError('PW_ERR_CONFIG_VALUE', 'pasvPortRange', `expected "low-high" ports (e.g. "50000-50100"), got ${JSON.stringify(range)}`);
  const addr = o.extra['pasvAddress'] as string | null;
  if (addr !== null && !addressBytes(addr)) throw new ConfigError('PW_ERR_CONFIG_VALUE', 'pasvAddress', `expected an IPv4 or IPv6 address, got ${JSON.stringify(addr)}`);
  for (const s of o.extra['siteCommands'] as readonly string[]) {
    if (!/^[A-Za-z0-9]{1,16}$/.test(s)) throw new ConfigError('PW_ERR_CONFIG_VALUE', 'siteCommands', `expected SITE subcommand names (letters and digits), got ${JSON.stringify(s)}`);
  }
}

/**
 * FTP (RFC 959, 2228, 2389, 2428, 3659, 4217). Command lines: 512 octets
 * with CRLF (the common server buffer; vsftpd reads 4 KiB, many others 512),
 * so 510 here (our limit excludes the ending).
 */
export const ftp: Protocol = {
  name: 'ftp',
  summary: 'FTP: command table per state, bounce and IAC refused, SITE allow list, data connections relayed, AUTH TLS',
  defaultMaxLineLength: 510,
  defaultFacility: 'ftp',
  options: {
    maxLoginAttempts: {
      kind: 'integer',
      min: 1,
      max: 1000,
      default: 3,
      doc: 'failed PASS (server 530) before the session is closed with 421 (seed: brute force)',
    },
    siteCommands: {
      kind: 'stringList',
      default: ['CHMOD', 'UMASK', 'IDLE', 'HELP'],
      doc: 'SITE subcommands let through (any other, e.g. SITE EXEC, is refused)',
    },
    pasvPortRange: {
      kind: 'string',
      default: null,
      doc: 'ports of the wrapper\'s passive data listeners, "low-high" (default: any free port)',
    },
    pasvAddress: {
      kind: 'string',
      default: null,
      doc: 'address announced in 227 replies (default: the local address of the control connection)',
    },
    minDataPort: {
      kind: 'integer',
      min: 1,
      max: 65535,
      default: 1024,
      doc: 'PORT / EPRT to a lower port is refused (FTP bounce)',
    },
    dataTimeout: {
      kind: 'integer',
      min: 1,
      max: 3600,
      default: 30,
      doc: 'seconds a data listener waits for its one connection',
    },
  },
  checkOptions: checkFtpOptions,
  createSession: (ctx, options) =>
    new FtpSession(
      options,
      {
        tls: ctx.tls ?? 'none',
        maxLoginAttempts: options.extra['maxLoginAttempts'] as number,
        siteCommands: new Set((options.extra['siteCommands'] as readonly string[]).map((s) => s.toUpperCase())),
        pasvAddress: options.extra['pasvAddress'] as string | null,
        minDataPort: options.extra['minDataPort'] as number,
      },
      { clientAddress: ctx.clientAddress, localAddress: ctx.localAddress ?? null },
    ),
};
