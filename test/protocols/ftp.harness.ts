import type { DataOpened } from '../../src/core/data-channel.js';
import type { ClientVerdict, ServerVerdict } from '../../src/core/protocol.js';
import { buildConfig } from '../../src/config.js';
import { ftp } from '../../src/protocols/ftp/index.js';
import type { FtpSession } from '../../src/protocols/ftp/session.js';

export interface Driver {
  readonly session: FtpSession;
  /** Client line (with its ending) → verdict. */
  client(line: string | Buffer): ClientVerdict;
  /** Server bytes → verdict. */
  server(bytes: string | Buffer): ServerVerdict;
  /** What the client got from a server verdict (toClient, or the chunk itself). */
  shown(v: ServerVerdict, chunk: string | Buffer): string;
  opened(r: DataOpened): ReturnType<FtpSession['dataOpened']>;
}

export function ftpDriver(flags: Record<string, unknown> = {}, ctx: { clientAddress?: string; localAddress?: string | null; tls?: 'none' | 'starttls' | 'require' | 'implicit' } = {}): Driver {
  const cfg = buildConfig(null, { protocol: 'ftp', ...flags }, { connect: '127.0.0.1:21' });
  const session = ftp.createSession(
    {
      clientAddress: ctx.clientAddress ?? '192.0.2.7',
      ...(ctx.localAddress === null ? {} : { localAddress: ctx.localAddress ?? '198.51.100.1' }),
      maxLineLength: cfg.options.maxLineLength,
      tls: ctx.tls ?? 'none',
    },
    cfg.options,
  ) as FtpSession;
  const buf = (x: string | Buffer) => (typeof x === 'string' ? Buffer.from(x, 'latin1') : x);
  return {
    session,
    client(line) {
      const b = buf(line);
      const lf = b.indexOf(0x0a);
      const ending = lf < 0 ? 'none' : lf > 0 && b[lf - 1] === 0x0d ? 'crlf' : 'lf';
      const contentEnd = ending === 'none' ? b.length : ending === 'crlf' ? lf - 1 : lf;
      return session.clientLine(b, contentEnd, ending);
    },
    server: (bytes) => session.serverData(buf(bytes)),
    shown(v, chunk) {
      if (v.toClient === null) return buf(chunk).toString('latin1');
      const parts = Array.isArray(v.toClient) ? v.toClient : [v.toClient as Buffer];
      return Buffer.concat(parts).toString('latin1');
    },
    opened: (r) => session.dataOpened(r),
  };
}

/** Greeting, then an anonymous login. */
export function loggedIn(d: Driver): Driver {
  d.server('220 (vsFTPd 3.0.3)\r\n');
  d.client('USER anonymous\r\n');
  d.server('331 Please specify the password.\r\n');
  d.client('PASS x@example.org\r\n');
  d.server('230 Login successful.\r\n');
  return d;
}

/** A verdict in a few words: forward[+hold][+keep], or the refusal code. */
export function word(v: ClientVerdict): string {
  if (v.kind === 'refuse') return v.code;
  return ['forward', v.hold ? 'hold' : '', v.keep ? 'keep' : ''].filter(Boolean).join('+');
}

/** A refusal's reply (sent now or queued). */
export function replyOf(v: ClientVerdict): string {
  return v.kind === 'refuse' ? (v.reply?.toString('latin1') ?? '(queued)') : '';
}
