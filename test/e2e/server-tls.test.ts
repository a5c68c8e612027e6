import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDovecot, type Dovecot } from '../helpers/dovecot.js';
import { startPostfix, type Postfix } from '../helpers/postfix.js';
import { proxyClient } from '../helpers/proxy-client.js';
import { py } from '../helpers/wire.js';
import { startStandalone, waitFor, type Standalone } from '../helpers/wrapper.js';

/**
 * TLS toward the server with real servers: Dovecot (ssl = yes; STLS and
 * STARTTLS on the plain ports, imaps and pop3s) and Postfix
 * (smtpd_tls_security_level = may). A full python client session runs
 * through the wrapper in plaintext while the server logs a TLS connection;
 * a wrong CA or name fails closed with the protocol's unavailable reply.
 */

/** A throwaway self-signed certificate; returns [cert, key]. */
function selfSigned(dir: string, name: string, cn: string): [string, string] {
  const cert = join(dir, `${name}.pem`);
  const key = join(dir, `${name}.key`);
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', `/CN=${cn}`], { stdio: 'pipe', timeout: 30_000 });
  return [cert, key];
}

const POP3 = `
import poplib, sys
p = poplib.POP3('127.0.0.1', int(sys.argv[1]), timeout=15)
print(p.getwelcome().decode())
p.user('alice'); p.pass_('secret')
print('stat', p.stat())
print(p.quit().decode())
`;
const IMAP = `
import imaplib, sys
m = imaplib.IMAP4('127.0.0.1', int(sys.argv[1]), timeout=15)
print(m.login('alice', 'secret')[0])
print(m.select('INBOX')[0])
print(m.logout()[0])
`;
const SMTP = `
import smtplib, sys
s = smtplib.SMTP('127.0.0.1', int(sys.argv[1]), timeout=15)
print(s.ehlo('client.example')[0])
s.sendmail('a@example.org', ['box@mydomain.org'], 'Subject: over tls\\r\\n\\r\\nhello through server-side TLS\\r\\n')
print(s.quit()[0])
`;

describe('TLS toward the server', () => {
  let dir: string;
  let dc: Dovecot;
  let pf: Postfix;
  let otherCa: string;
  /** The CA a wrapper trusts for Postfix: its own self-signed certificate. */
  let pfCa: string;
  const wrappers: Standalone[] = [];
  const wrap = async (args: readonly string[]): Promise<Standalone> => {
    const w = await startStandalone(['--log-level', '1', ...args]);
    wrappers.push(w);
    return w;
  };
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'pw-server-tls-'));
    const [pfCert, pfKey] = selfSigned(dir, 'postfix', 'localhost');
    pfCa = pfCert;
    [otherCa] = selfSigned(dir, 'other', 'localhost');
    [dc, pf] = await Promise.all([
      startDovecot({ ssl: true, implicitTls: true }),
      startPostfix({ extraSmtpd: [`smtpd_tls_cert_file=${pfCert}`, `smtpd_tls_key_file=${pfKey}`, 'smtpd_tls_security_level=may', 'smtpd_tls_loglevel=1'] }),
    ]);
  });
  afterAll(async () => {
    await Promise.all(wrappers.map((w) => w.stop()));
    await Promise.all([dc?.stop(), pf?.stop()]);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const verified = () => ['--server-tls-ca', dc.certFile!, '--server-tls-name', dc.tlsName];

  for (const mode of ['starttls', 'implicit'] as const) {
    it(`POP3 ${mode}: a poplib session through the wrapper; Dovecot logs a TLS login`, async () => {
      const port = mode === 'starttls' ? dc.pop3Port : dc.pop3sPort!;
      const w = await wrap(['-p', 'pop3', '--connect', `127.0.0.1:${port}`, '--server-tls', mode, ...verified()]);
      const mark = dc.logMark();
      const out = await py(POP3, String(w.port));
      expect(out).toMatch(/^\+OK/);
      expect(out).toContain('stat (0, 0)');
      await waitFor(() => /pop3-login: Info: Login: user=<alice>.*\bTLS\b/.test(dc.logSince(mark)), `a TLS login in Dovecot's log: ${dc.logSince(mark)}`);
      expect(w.logs()).toMatch(new RegExp(`session open client=127\\.0\\.0\\.1 protocol=pop3 server=tcp:127\\.0\\.0\\.1:${port} tls=TLSv1\\.[23] \\(${mode}, localhost\\)`));
    });

    it(`IMAP ${mode}: an imaplib session through the wrapper; Dovecot logs a TLS login`, async () => {
      const port = mode === 'starttls' ? dc.imapPort : dc.imapsPort!;
      const w = await wrap(['-p', 'imap', '--connect', `127.0.0.1:${port}`, '--server-tls', mode, ...verified()]);
      const mark = dc.logMark();
      const out = await py(IMAP, String(w.port));
      expect(out.split('\n').slice(0, 3)).toEqual(['OK', 'OK', 'BYE']);
      await waitFor(() => /imap-login: Info: Login: user=<alice>.*\bTLS\b/.test(dc.logSince(mark)), `a TLS login in Dovecot's log: ${dc.logSince(mark)}`);
    });
  }

  it('IMAP starttls: the replayed greeting carries no pre-TLS capability list', async () => {
    const w = await wrap(['-p', 'imap', '--connect', `127.0.0.1:${dc.imapPort}`, '--server-tls', 'starttls', ...verified()]);
    const c = await proxyClient(w.port);
    await c.until('\r\n');
    expect(c.received()).toMatch(/^\* OK (?!\[CAPABILITY)/);
    c.send('a CAPABILITY\r\n');
    await c.until('a OK');
    expect(c.received()).not.toMatch(/STARTTLS|LOGINDISABLED/);
    c.sock.destroy();
  });

  it('SMTP starttls: an smtplib session through the wrapper; Postfix logs "Anonymous TLS connection established" and delivers', async () => {
    const w = await wrap(['-p', 'smtp', '--connect', `127.0.0.1:${pf.extraPort}`, '--server-tls', 'starttls', '--server-tls-ca', pfCa, '--server-tls-name', 'localhost']);
    const before = pf.log().length;
    const n = pf.delivered().length;
    const out = await py(SMTP, String(w.port));
    expect(out.split('\n').slice(0, 2)).toEqual(['250', '221']);
    await waitFor(() => pf.log().slice(before).includes('Anonymous TLS connection established'), `Postfix's TLS line: ${pf.log().slice(before)}`);
    const got = await pf.waitDelivered(n + 1);
    expect(got.at(-1)!.toString('latin1')).toContain('hello through server-side TLS');
  });

  it('a wrong CA fails closed: the client gets the unavailable reply, the log says why', async () => {
    const w = await wrap(['-p', 'pop3', '--connect', `127.0.0.1:${dc.pop3Port}`, '--server-tls', 'starttls', '--server-tls-ca', otherCa, '--server-tls-name', 'localhost']);
    const c = await proxyClient(w.port);
    await c.closed;
    expect(c.received()).toBe('-ERR [SYS/TEMP] service temporarily unavailable\r\n');
    await waitFor(() => /server unavailable .*TLS handshake/.test(w.logs()), 'the failure in the log');
  });

  it('a wrong name fails closed (IMAP implicit: * BYE)', async () => {
    const w = await wrap(['-p', 'imap', '--connect', `127.0.0.1:${dc.imapsPort}`, '--server-tls', 'implicit', '--server-tls-ca', dc.certFile!, '--server-tls-name', 'mail.example']);
    const c = await proxyClient(w.port);
    await c.closed;
    expect(c.received()).toMatch(/^\* BYE /);
    await waitFor(() => /server unavailable .*ERR_TLS_CERT_ALTNAME_INVALID/.test(w.logs()), `the failure in the log: ${w.logs()}`);
  });

  it('--no-server-tls-verify: a certificate no CA signed is accepted, with a warning', async () => {
    const w = await wrap(['-p', 'pop3', '--connect', `127.0.0.1:${dc.pop3Port}`, '--server-tls', 'starttls', '--no-server-tls-verify']);
    const out = await py(POP3, String(w.port));
    expect(out).toContain('stat (0, 0)');
    expect(w.logs()).toContain('TLS toward the server without verification');
    expect(w.logs()).toMatch(/tls=TLSv1\.[23] \(starttls, unverified\)/);
  });

  it('STARTTLS toward a server that does not offer it fails closed', async () => {
    // Postfix's main smtpd has no certificate: its EHLO lists no STARTTLS.
    const w = await wrap(['-p', 'smtp', '--connect', `127.0.0.1:${pf.port}`, '--server-tls', 'starttls', '--no-server-tls-verify']);
    const c = await proxyClient(w.port);
    await c.closed;
    expect(c.received()).toMatch(/^421 /);
    expect(w.logs()).toContain('STARTTLS: server does not offer STARTTLS');
  });
});
