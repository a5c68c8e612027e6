import { connect as tlsConnect } from 'node:tls';
import { Wire } from '../helpers/tls-wire.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeCert, type TestCert } from '../helpers/certs.js';
import { startDovecot, type Dovecot } from '../helpers/dovecot.js';
import { curl, py } from '../helpers/wire.js';
import { runPiped, startStandalone, waitFor, type Standalone } from '../helpers/wrapper.js';
import { socketActivated } from '../helpers/socket-activate.js';
import { startHaproxy } from '../helpers/haproxy.js';

/**
 * TLS toward the client for POP3 and IMAP (issue 7), in front of a Dovecot
 * with ssl = no: every TLS byte the clients see is the wrapper's. Real
 * clients (python's poplib/imaplib, openssl s_client) check the wrapper's
 * certificate; hostile cases use a raw socket that goes TLS mid-stream.
 */

describe('TLS toward the client: POP3 and IMAP in front of Dovecot (ssl = no)', () => {
  let dc: Dovecot;
  let cert: TestCert;
  let pop3: Standalone;
  let imap: Standalone;
  let imapReq: Standalone;
  let pop3Req: Standalone;
  let imaps: Standalone;
  let pop3s: Standalone;

  beforeAll(async () => {
    cert = makeCert();
    dc = await startDovecot();
    const tls = (mode: string) => ['--tls', mode, '--tls-cert', cert.cert, '--tls-key', cert.key, '--log-level', '2'];
    [pop3, imap, pop3Req, imapReq, imaps, pop3s] = await Promise.all([
      startStandalone(['-p', 'pop3', '--connect', `127.0.0.1:${dc.pop3Port}`, ...tls('starttls')]),
      startStandalone(['-p', 'imap', '--connect', `127.0.0.1:${dc.imapPort}`, ...tls('starttls')]),
      startStandalone(['-p', 'pop3', '--connect', `127.0.0.1:${dc.pop3Port}`, ...tls('require')]),
      startStandalone(['-p', 'imap', '--connect', `127.0.0.1:${dc.imapPort}`, ...tls('require')]),
      startStandalone(['-p', 'imap', '--connect', `127.0.0.1:${dc.imapPort}`, ...tls('implicit')]),
      startStandalone(['-p', 'pop3', '--connect', `127.0.0.1:${dc.pop3Port}`, ...tls('implicit')]),
    ]);
  }, 60_000);
  afterAll(async () => {
    await Promise.all([pop3?.stop(), imap?.stop(), pop3Req?.stop(), imapReq?.stop(), imaps?.stop(), pop3s?.stop()]);
    await dc?.stop();
  });

  it('python poplib: CAPA offers STLS, stls() with the CA verifies the wrapper, login and STAT inside TLS', async () => {
    const out = await py(
      `import poplib,ssl,sys
ctx=ssl.create_default_context(cafile=sys.argv[2])
p=poplib.POP3('127.0.0.1',int(sys.argv[1]))
print('CAPA', sorted(p.capa().keys()))
print(p.stls(ctx))
print('CAPA2', sorted(p.capa().keys()))
print(p.user('alice')); print(p.pass_('secret')); print(p.stat()); print(p.quit())`,
      String(pop3.port),
      cert.cert,
    );
    expect(out).toMatch(/^CAPA \[.*'STLS'/m);
    expect(out).toContain("b'+OK Begin TLS negotiation'");
    expect(out).not.toMatch(/^CAPA2 .*STLS/m);
    expect(out).toMatch(/\(\d+, \d+\)/);
    expect(pop3.logs()).toMatch(/client TLS established .*TLSv1\.[23]/);
  });

  it('python imaplib: CAPABILITY offers STARTTLS, starttls() verifies the wrapper, login and SELECT inside TLS', async () => {
    const out = await py(
      `import imaplib,ssl,sys
ctx=ssl.create_default_context(cafile=sys.argv[2])
m=imaplib.IMAP4('127.0.0.1',int(sys.argv[1]))
print('PRE', sorted(m.capabilities))
print(m.starttls(ctx))
print('POST', sorted(m.capabilities))
print(m.login('alice','secret')); print(m.select('INBOX')); print(m.logout())`,
      String(imap.port),
      cert.cert,
    );
    expect(out).toMatch(/^PRE .*'STARTTLS'/m);
    expect(out).toMatch(/^POST /m);
    expect(out).not.toMatch(/^POST .*STARTTLS/m);
    expect(out).toMatch(/\('OK', \[b'.*Logged in/);
    expect(out).toContain("('OK', [b'0'])");
  });

  it('openssl s_client -starttls imap and -starttls pop3 complete the handshake against the wrapper', async () => {
    const run = async (proto: string, port: number, input: string) => {
      const { execFile } = await import('node:child_process');
      return new Promise<string>((res) => {
        const c = execFile('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, '-starttls', proto, '-CAfile', cert.cert, '-verify_return_error', '-ign_eof', '-quiet'], { timeout: 15_000 }, (_e, stdout, stderr) => res(stdout + stderr));
        c.stdin!.end(input);
      });
    };
    const i = await run('imap', imap.port, 'a LOGIN alice secret\r\nb LOGOUT\r\n');
    expect(i).toMatch(/verify return:1/);
    expect(i).toMatch(/a OK .*Logged in/);
    const p = await run('pop3', pop3.port, 'USER alice\r\nPASS secret\r\nQUIT\r\n');
    expect(p).toMatch(/verify return:1/);
    expect(p).toMatch(/\+OK Logged in/);
  });

  it('command injection: plaintext pipelined after STLS / STARTTLS is discarded, never run inside TLS', async () => {
    const mark = dc.logMark();
    const p = await Wire.open(pop3.port);
    await p.until('+OK');
    p.send('STLS\r\nUSER alice\r\nPASS secret\r\n');
    await p.until('+OK Begin TLS negotiation\r\n');
    await p.startTls(cert.cert);
    p.send('STAT\r\n');
    await p.until('<TLS>');
    await waitFor(() => /<TLS>-ERR/.test(p.text()), 'STAT refused: not logged in');
    p.close();
    const i = await Wire.open(imap.port);
    await i.until(' ready.');
    i.send('s STARTTLS\r\nx LOGIN alice secret\r\ny SELECT INBOX\r\n');
    await i.until('s OK Begin TLS negotiation now\r\n');
    await i.startTls(cert.cert);
    i.send('z SELECT INBOX\r\n');
    await waitFor(() => /<TLS>[^]*z BAD/.test(i.text()), 'SELECT refused: not logged in');
    expect(i.text()).not.toContain('x OK');
    i.close();
    await waitFor(() => /discarded \d+ bytes the client sent after STARTTLS/.test(imap.logs()), 'the discard logged');
    expect(pop3.logs()).toMatch(/discarded 25 bytes the client sent after STARTTLS/);
    await new Promise((r) => setTimeout(r, 200));
    expect(dc.logSince(mark)).not.toMatch(/Login: user=<alice>/);
  });

  it('STLS / STARTTLS with a command still in flight is refused (no server byte may land inside the handshake)', async () => {
    const i = await Wire.open(imap.port);
    await i.until(' ready.');
    i.send('n NOOP\r\ns STARTTLS\r\n');
    await i.until('s BAD STARTTLS must be sent alone');
    i.close();
  });

  it('tls = require: no credentials before TLS (POP3 -ERR, IMAP LOGINDISABLED and NO), allowed after it', async () => {
    const p = await Wire.open(pop3Req.port);
    await p.until('+OK');
    p.send('USER alice\r\n');
    await p.until('-ERR TLS required');
    p.send('STLS\r\n');
    await p.until('+OK Begin TLS');
    await p.startTls(cert.cert);
    p.send('USER alice\r\nPASS secret\r\nQUIT\r\n');
    await p.until('+OK Logged in');
    p.close();
    const i = await Wire.open(imapReq.port);
    await i.until(' ready.');
    expect(i.text()).toMatch(/STARTTLS LOGINDISABLED\]/);
    i.send('a LOGIN alice secret\r\n');
    await i.until('a NO [PRIVACYREQUIRED]');
    i.send('b AUTHENTICATE PLAIN\r\n');
    await i.until('b NO [PRIVACYREQUIRED]');
    i.send('c STARTTLS\r\n');
    await i.until('c OK');
    await i.startTls(cert.cert);
    i.send('d CAPABILITY\r\ne LOGIN alice secret\r\n');
    await i.until('e OK');
    const after = i.text().split('<TLS>')[1]!;
    expect(after).toMatch(/\* CAPABILITY /);
    expect(after).not.toMatch(/STARTTLS|LOGINDISABLED/);
    i.close();
  });

  it('implicit TLS (993/995-style): python IMAP4_SSL and POP3_SSL, curl imaps:// and pop3s:// verify the wrapper', async () => {
    const out = await py(
      `import imaplib,poplib,ssl,sys
ctx=ssl.create_default_context(cafile=sys.argv[3])
m=imaplib.IMAP4_SSL('127.0.0.1',int(sys.argv[1]),ssl_context=ctx)
print(m.login('alice','secret')); print(m.select('INBOX')); print(m.logout())
p=poplib.POP3_SSL('127.0.0.1',int(sys.argv[2]),context=ctx)
print(p.user('alice')); print(p.pass_('secret')); print(p.stat()); print(p.quit())`,
      String(imaps.port),
      String(pop3s.port),
      cert.cert,
    );
    expect(out).toMatch(/\('OK', \[b'.*Logged in/);
    expect(out).toMatch(/b'\+OK Logged in\.'/);
    // Implicit TLS: STARTTLS/STLS are not offered inside it.
    expect(out).not.toMatch(/STARTTLS|STLS/);
    const list = await curl('--cacert', cert.cert, '-u', 'alice:secret', `imaps://127.0.0.1:${imaps.port}/`);
    expect(list).toMatch(/\* LIST .*INBOX/);
    const stat = await curl('--cacert', cert.cert, '-u', 'alice:secret', `pop3s://127.0.0.1:${pop3s.port}/`);
    expect(stat.trim()).toBe('');
    expect(imaps.logs()).toMatch(/session open client=127\.0\.0\.1 protocol=imap/);
  });

  it('curl --ssl-reqd imap:// and pop3:// go through STARTTLS / STLS offered by the wrapper', async () => {
    const list = await curl('--ssl-reqd', '--cacert', cert.cert, '-u', 'alice:secret', `imap://127.0.0.1:${imap.port}/`);
    expect(list).toMatch(/\* LIST .*INBOX/);
    await curl('--ssl-reqd', '--cacert', cert.cert, '-u', 'alice:secret', `pop3://127.0.0.1:${pop3.port}/`);
    expect(imap.logs()).toMatch(/client TLS established/);
  });

  it('inetd mode (systemd-socket-activate): implicit TLS and STARTTLS over the inherited socket', async () => {
    for (const mode of ['implicit', 'starttls']) {
      const sa = await socketActivated(['-p', 'imap', '--connect', `127.0.0.1:${dc.imapPort}`, '--tls', mode, '--tls-cert', cert.cert, '--tls-key', cert.key]);
      try {
        const out = await py(
          `import imaplib,ssl,sys
ctx=ssl.create_default_context(cafile=sys.argv[2])
if sys.argv[3]=='implicit': m=imaplib.IMAP4_SSL('127.0.0.1',int(sys.argv[1]),ssl_context=ctx)
else:
  m=imaplib.IMAP4('127.0.0.1',int(sys.argv[1])); m.starttls(ctx)
print(m.login('alice','secret')); print(m.logout())`,
          String(sa.port),
          cert.cert,
          mode,
        );
        expect(out, mode).toMatch(/\('OK', \[b'.*Logged in/);
      } finally {
        await sa.stop();
      }
    }
  });

  it('a session piped by hand cannot do TLS: refused at start-up with a clear message (78)', async () => {
    const r = await runPiped(['-p', 'imap', '--connect', `127.0.0.1:${dc.imapPort}`, '--tls', 'starttls', '--tls-cert', cert.cert, '--tls-key', cert.key], 'a LOGOUT\r\n');
    expect(r.code).toBe(78);
    expect(r.stderr).toMatch(/tls: TLS needs a socket client/);
    expect(r.stdout.length).toBe(0);
  });

  it('a certificate and key that do not match, or do not load, stop the start (78)', async () => {
    const other = makeCert('other.test');
    const r = await runPiped(['-p', 'imap', '--connect', '127.0.0.1:1', '--tls', 'implicit', '--tls-cert', cert.cert, '--tls-key', other.key], '');
    expect(r.code).toBe(78);
    expect(r.stderr).toMatch(/tlsCert: certificate and key do not load as a pair/);
    const r2 = await runPiped(['-p', 'imap', '--connect', '127.0.0.1:1', '--tls', 'implicit', '--tls-cert', '/nonexistent.pem', '--tls-key', other.key], '');
    expect(r2.code).toBe(78);
    expect(r2.stderr).toMatch(/tlsCert: cannot read/);
  });

  it('HAProxy (send-proxy-v2) in front of implicit TLS: the PROXY header first, then the handshake, whatever the segments', async () => {
    const w = await startStandalone(['-p', 'imap', '--connect', `127.0.0.1:${dc.imapPort}`, '--tls', 'implicit', '--tls-cert', cert.cert, '--tls-key', cert.key, '--proxy-from', '127.0.0.1', '--log-level', '2']);
    const hp = await startHaproxy(w.port, 'send-proxy-v2');
    try {
      for (let k = 0; k < 3; k++) {
        const out = await py(
          `import imaplib,ssl,sys
ctx=ssl.create_default_context(cafile=sys.argv[2]); ctx.check_hostname=False
m=imaplib.IMAP4_SSL('127.0.0.1',int(sys.argv[1]),ssl_context=ctx)
print(m.login('alice','secret')); print(m.logout())`,
          String(hp.port),
          cert.cert,
        );
        expect(out).toMatch(/\('OK', \[b'.*Logged in/);
      }
      expect(w.logs()).toMatch(/proxy v2 header from peer=127\.0\.0\.1/);
      expect(w.logs()).toMatch(/client TLS established/);
    } finally {
      await hp.stop();
      await w.stop();
    }
  });
});

describe('TLS toward the client: certificates re-read on SIGHUP (standalone)', () => {
  it('new connections get the new certificate; a pair that does not load is logged and the old one stays', async () => {
    const { copyFileSync, writeFileSync: write } = await import('node:fs');
    const { join } = await import('node:path');
    const a = makeCert('one.test');
    const b = makeCert('two.test');
    const cert = join(a.dir, 'live-cert.pem');
    const key = join(a.dir, 'live-key.pem');
    copyFileSync(a.cert, cert);
    copyFileSync(a.key, key);
    const w = await startStandalone(['-p', 'pop3', '--connect', '127.0.0.1:1', '--tls', 'implicit', '--tls-cert', cert, '--tls-key', key]);
    const subject = () =>
      new Promise<string>((res, rej) => {
        const t = tlsConnect({ host: '127.0.0.1', port: w.port, rejectUnauthorized: false }, () => {
          res(t.getPeerCertificate().subject.CN as string);
          t.destroy();
        });
        t.once('error', rej);
      });
    try {
      expect(await subject()).toBe('one.test');
      copyFileSync(b.cert, cert);
      copyFileSync(b.key, key);
      w.child.kill('SIGHUP');
      await waitFor(() => w.logs().includes('TLS certificate and key reloaded'), 'the reload');
      expect(await subject()).toBe('two.test');
      write(key, 'not a key\n');
      w.child.kill('SIGHUP');
      await waitFor(() => w.logs().includes('TLS certificate not reloaded, the old one stays'), 'the failed reload');
      expect(await subject()).toBe('two.test');
      expect(w.child.exitCode).toBeNull();
    } finally {
      await w.stop();
    }
  });

  it('openssl s_client against implicit TLS verifies the wrapper', async () => {
    const c = makeCert();
    const w = await startStandalone(['-p', 'pop3', '--connect', '127.0.0.1:1', '--tls', 'implicit', '--tls-cert', c.cert, '--tls-key', c.key]);
    try {
      const { execFile } = await import('node:child_process');
      const out = await new Promise<string>((res) => {
        const p = execFile('openssl', ['s_client', '-connect', `127.0.0.1:${w.port}`, '-CAfile', c.cert, '-verify_return_error', '-ign_eof', '-quiet'], { timeout: 15_000 }, (_e, o, er) => res(o + er));
        p.stdin!.end('QUIT\r\n');
      });
      expect(out).toMatch(/verify return:1/);
      // The server on port 1 is unreachable: the wrapper's own reply, inside TLS.
      expect(out).toMatch(/-ERR \[SYS\/TEMP\] service temporarily unavailable/);
    } finally {
      await w.stop();
    }
  });
});
