import { describe, expect, it } from 'vitest';
import { buildConfig } from '../../src/config.js';
import type { ClientVerdict, ProtocolSession, SessionContext } from '../../src/core/protocol.js';

/**
 * STARTTLS / STLS offered and answered by the protocol cores (issue 7): the
 * verdict that asks the shell for the upgrade, what is advertised before and
 * after, and tls = require. The shell's part (discarding pipelined bytes,
 * the handshake) is tested end to end in test/e2e/tls-mail.test.ts.
 */

function session(protocol: string, tls: SessionContext['tls']): ProtocolSession {
  const cfg = buildConfig(null, { protocol }, { connect: '127.0.0.1:1' });
  return cfg.protocol.createSession({ clientAddress: 'test', maxLineLength: cfg.options.maxLineLength, tls }, cfg.options);
}

const line = (p: ProtocolSession, s: string): ClientVerdict => {
  const b = Buffer.from(s, 'latin1');
  return p.clientLine(b, b.length - 2, 'crlf');
};
const fromServer = (p: ProtocolSession, s: string): string => {
  const v = p.serverData!(Buffer.from(s, 'latin1'));
  const out = v.toClient === null ? [Buffer.from(s, 'latin1')] : Array.isArray(v.toClient) ? v.toClient : [v.toClient as Buffer];
  return Buffer.concat(out).toString('latin1');
};

describe('IMAP STARTTLS answered by the wrapper', () => {
  const GREETING = '* OK [CAPABILITY IMAP4rev1 STARTTLS LITERAL+ AUTH=PLAIN] ready\r\n';

  it('starttls: STARTTLS is added to capability lists, answered with OK and an upgrade, then no longer offered', () => {
    const p = session('imap', 'starttls');
    expect(fromServer(p, GREETING)).toBe('* OK [CAPABILITY IMAP4rev1 LITERAL+ AUTH=PLAIN STARTTLS] ready\r\n');
    const v = line(p, 's STARTTLS\r\n');
    expect(v).toMatchObject({ kind: 'forward', keep: true, startTls: true });
    expect(v.kind === 'forward' && v.toClient?.toString()).toBe('s OK Begin TLS negotiation now\r\n');
    expect(fromServer(p, '* CAPABILITY IMAP4rev1 STARTTLS AUTH=PLAIN\r\n')).toBe('* CAPABILITY IMAP4rev1 AUTH=PLAIN\r\n');
    expect(line(p, 't STARTTLS\r\n')).toMatchObject({ kind: 'refuse', code: 'not_supported' });
    // The capabilities known before TLS are forgotten: LITERAL+ counts again only once re-read.
    expect(line(p, 'a LOGIN {5+}\r\n')).toMatchObject({ kind: 'refuse', code: 'literal' });
  });

  it('require: LOGINDISABLED is added and LOGIN/AUTHENTICATE get NO [PRIVACYREQUIRED] before TLS', () => {
    const p = session('imap', 'require');
    expect(fromServer(p, GREETING)).toContain('STARTTLS LOGINDISABLED]');
    const l = line(p, 'a LOGIN alice secret\r\n');
    expect(l).toMatchObject({ kind: 'refuse', code: 'policy', secret: true });
    expect(l.kind === 'refuse' && l.reply?.toString()).toBe('a NO [PRIVACYREQUIRED] Use STARTTLS first\r\n');
    expect(line(p, 'b AUTHENTICATE PLAIN\r\n')).toMatchObject({ kind: 'refuse', code: 'policy' });
    expect(line(p, 'c STARTTLS\r\n')).toMatchObject({ kind: 'forward', startTls: true });
    expect(line(p, 'd LOGIN alice secret\r\n')).toMatchObject({ kind: 'forward', hold: true });
  });

  it('none and implicit: STARTTLS is neither offered nor answered', () => {
    for (const mode of ['none', 'implicit'] as const) {
      const p = session('imap', mode);
      expect(fromServer(p, GREETING)).toBe('* OK [CAPABILITY IMAP4rev1 LITERAL+ AUTH=PLAIN] ready\r\n');
      expect(line(p, 's STARTTLS\r\n')).toMatchObject({ kind: 'refuse', code: 'not_supported' });
    }
  });

  it('STARTTLS with a command in flight or arguments is refused', () => {
    const p = session('imap', 'starttls');
    fromServer(p, GREETING);
    line(p, 'n NOOP\r\n');
    expect(line(p, 's STARTTLS\r\n')).toMatchObject({ kind: 'refuse', code: 'pipelining' });
    fromServer(p, 'n OK done\r\n');
    expect(line(p, 's STARTTLS x\r\n')).toMatchObject({ kind: 'refuse', code: 'bad_argument' });
    expect(line(p, 's STARTTLS\r\n')).toMatchObject({ kind: 'forward', startTls: true });
  });
});

describe('POP3 STLS answered by the wrapper', () => {
  it('starttls: STLS is added at the end of CAPA, answered with +OK and an upgrade, then no longer offered', () => {
    const p = session('pop3', 'starttls');
    fromServer(p, '+OK ready\r\n');
    expect(line(p, 'CAPA\r\n')).toMatchObject({ kind: 'forward' });
    expect(fromServer(p, '+OK\r\nUSER\r\nSTLS\r\nSASL PLAIN\r\n.\r\n')).toBe('+OK\r\nUSER\r\nSASL PLAIN\r\nSTLS\r\n.\r\n');
    const v = line(p, 'STLS\r\n');
    expect(v).toMatchObject({ kind: 'forward', keep: true, startTls: true });
    expect(v.kind === 'forward' && v.toClient?.toString()).toBe('+OK Begin TLS negotiation\r\n');
    line(p, 'CAPA\r\n');
    expect(fromServer(p, '+OK\r\nUSER\r\n.\r\n')).toBe('+OK\r\nUSER\r\n.\r\n');
    expect(line(p, 'STLS\r\n')).toMatchObject({ kind: 'refuse', code: 'not_supported' });
  });

  it('require: USER, PASS, APOP and AUTH get -ERR before TLS', () => {
    const p = session('pop3', 'require');
    fromServer(p, '+OK ready\r\n');
    for (const l of ['USER alice\r\n', 'APOP alice 0123456789abcdef0123456789abcdef\r\n', 'AUTH PLAIN\r\n']) {
      const v = line(p, l);
      expect(v).toMatchObject({ kind: 'refuse', code: 'policy' });
    }
    expect(line(p, 'STLS\r\n')).toMatchObject({ kind: 'forward', startTls: true });
    expect(line(p, 'USER alice\r\n')).toMatchObject({ kind: 'forward' });
  });

  it('STLS after USER or with a reply owed is refused', () => {
    const p = session('pop3', 'starttls');
    expect(line(p, 'STLS\r\n')).toMatchObject({ kind: 'refuse', code: 'pipelining' }); // the greeting is still owed
    fromServer(p, '+OK ready\r\n');
    line(p, 'USER alice\r\n');
    fromServer(p, '+OK\r\n');
    expect(line(p, 'STLS\r\n')).toMatchObject({ kind: 'refuse', code: 'bad_state' });
  });
});

describe('SMTP STARTTLS answered by the wrapper', () => {
  const EHLO_REPLY = '250-mx.example\r\n250-PIPELINING\r\n250-STARTTLS\r\n250-AUTH PLAIN LOGIN\r\n250 8BITMIME\r\n';

  it('starttls: the EHLO reply offers STARTTLS, the answer is 220 with an upgrade, and the session is back before EHLO', () => {
    const p = session('smtp', 'starttls');
    fromServer(p, '220 mx ESMTP\r\n');
    line(p, 'EHLO x\r\n');
    expect(fromServer(p, EHLO_REPLY)).toBe('250-mx.example\r\n250-PIPELINING\r\n250-AUTH PLAIN LOGIN\r\n250-8BITMIME\r\n250 STARTTLS\r\n');
    const v = line(p, 'STARTTLS\r\n');
    expect(v).toMatchObject({ kind: 'forward', keep: true, startTls: true });
    expect(v.kind === 'forward' && v.toClient?.toString()).toBe('220 2.0.0 Ready to start TLS\r\n');
    expect(line(p, 'MAIL FROM:<a@b.example>\r\n')).toMatchObject({ kind: 'refuse', code: 'bad_state' });
    line(p, 'EHLO x\r\n');
    expect(fromServer(p, EHLO_REPLY)).not.toContain('STARTTLS');
  });

  it('STARTTLS inside a transaction, with arguments, or with replies outstanding is refused', () => {
    const p = session('smtp', 'starttls');
    fromServer(p, '220 mx ESMTP\r\n');
    line(p, 'EHLO x\r\n');
    fromServer(p, EHLO_REPLY);
    expect(line(p, 'STARTTLS now\r\n')).toMatchObject({ kind: 'refuse', code: 'bad_argument' });
    line(p, 'NOOP\r\n');
    expect(line(p, 'STARTTLS\r\n')).toMatchObject({ kind: 'refuse', code: 'pipelining' });
    fromServer(p, '250 2.0.0 Ok\r\n');
    line(p, 'MAIL FROM:<a@b.example>\r\n');
    fromServer(p, '250 2.1.0 Ok\r\n');
    expect(line(p, 'STARTTLS\r\n')).toMatchObject({ kind: 'refuse', code: 'bad_state' });
  });

  it('require: AUTH is left out of the EHLO reply and refused with 530 5.7.0 before TLS', () => {
    const p = session('smtp', 'require');
    fromServer(p, '220 mx ESMTP\r\n');
    line(p, 'EHLO x\r\n');
    expect(fromServer(p, EHLO_REPLY)).toBe('250-mx.example\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 STARTTLS\r\n');
    const a = line(p, 'AUTH PLAIN AGFsaWNlAHNlY3JldA==\r\n');
    expect(a).toMatchObject({ kind: 'refuse', code: 'policy', secret: true });
    expect(a.kind === 'refuse' && a.reply?.toString()).toBe('530 5.7.0 Must issue a STARTTLS command first\r\n');
  });

  it('none: STARTTLS is hidden and refused with 502', () => {
    const p = session('smtp', 'none');
    fromServer(p, '220 mx ESMTP\r\n');
    line(p, 'EHLO x\r\n');
    expect(fromServer(p, EHLO_REPLY)).not.toContain('STARTTLS');
    expect(line(p, 'STARTTLS\r\n')).toMatchObject({ kind: 'refuse', code: 'not_supported' });
  });
});
