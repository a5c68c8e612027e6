import { execFile } from 'node:child_process';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { Wire } from '../helpers/tls-wire.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeCert, type TestCert } from '../helpers/certs.js';
import { startPostfix, type Postfix } from '../helpers/postfix.js';
import { py } from '../helpers/wire.js';
import { startStandalone, waitFor, type Standalone } from '../helpers/wrapper.js';
import { socketActivated } from '../helpers/socket-activate.js';

/**
 * TLS toward the client for SMTP (issue 7), in front of a Postfix without
 * TLS: the wrapper offers STARTTLS itself (RFC 3207), or speaks implicit TLS
 * (465-style). Real clients verify the wrapper's certificate; what Postfix
 * delivered is compared with what was sent.
 */

const SMTPLIB = `import smtplib,ssl,sys
ctx=ssl.create_default_context(cafile=sys.argv[2])
s=smtplib.SMTP('127.0.0.1',int(sys.argv[1]))
s.ehlo(); print('PRE', s.has_extn('starttls'))
print(s.starttls(context=ctx))
s.ehlo(); print('POST', s.has_extn('starttls'))
s.sendmail('a@example.org',['alice@mydomain.org'],b'Subject: via starttls\\r\\n\\r\\nhello inside TLS\\r\\n')
print(s.quit())`;

describe('TLS toward the client: SMTP in front of Postfix (no TLS of its own)', () => {
  let pf: Postfix;
  let cert: TestCert;
  let starttls: Standalone;
  let implicit: Standalone;
  let require: Standalone;

  beforeAll(async () => {
    cert = makeCert();
    pf = await startPostfix({ sasl: true });
    const tls = (mode: string) => ['--tls', mode, '--tls-cert', cert.cert, '--tls-key', cert.key, '--log-level', '2'];
    [starttls, implicit, require] = await Promise.all([
      startStandalone(['-p', 'smtp', '--connect', `127.0.0.1:${pf.port}`, ...tls('starttls')]),
      startStandalone(['-p', 'smtp', '--connect', `127.0.0.1:${pf.port}`, ...tls('implicit')]),
      startStandalone(['-p', 'smtp', '--connect', `127.0.0.1:${pf.port}`, ...tls('require')]),
    ]);
  }, 60_000);
  afterAll(async () => {
    await Promise.all([starttls?.stop(), implicit?.stop(), require?.stop()]);
    await pf?.stop();
  });

  it('python smtplib: STARTTLS offered by the wrapper, verified, then a message delivered byte for byte', async () => {
    const before = pf.delivered().length;
    const out = await py(SMTPLIB, String(starttls.port), cert.cert);
    expect(out).toMatch(/^PRE True$/m);
    expect(out).toMatch(/^\(220, b'2\.0\.0 Ready to start TLS'\)$/m);
    expect(out).toMatch(/^POST False$/m);
    const got = await pf.waitDelivered(before + 1);
    const msg = got.at(-1)!.toString('latin1');
    expect(msg).toContain('Subject: via starttls');
    expect(msg).toMatch(/\r?\n\r?\nhello inside TLS\r?\n$/);
  });

  it('implicit TLS (465-style): smtplib SMTP_SSL and curl smtps:// deliver', async () => {
    const before = pf.delivered().length;
    const out = await py(
      `import smtplib,ssl,sys
ctx=ssl.create_default_context(cafile=sys.argv[2])
s=smtplib.SMTP_SSL('127.0.0.1',int(sys.argv[1]),context=ctx)
s.ehlo(); print('STARTTLS', s.has_extn('starttls'))
s.sendmail('a@example.org',['alice@mydomain.org'],b'Subject: implicit\\r\\n\\r\\nbody\\r\\n'); print(s.quit())`,
      String(implicit.port),
      cert.cert,
    );
    expect(out).toMatch(/^STARTTLS False$/m);
    await new Promise<void>((res, rej) => {
      const c = execFile('curl', ['-sS', '--cacert', cert.cert, '--mail-from', 'a@example.org', '--mail-rcpt', 'alice@mydomain.org', '-T', '-', `smtps://127.0.0.1:${implicit.port}/wrapper.test`], { timeout: 15_000 }, (e) => (e ? rej(e) : res()));
      c.stdin!.end('Subject: curl smtps\r\n\r\nbody\r\n');
    });
    await pf.waitDelivered(before + 2);
    const texts = pf.delivered().slice(before).map((m) => m.toString('latin1'));
    expect(texts.some((t) => t.includes('Subject: implicit'))).toBe(true);
    expect(texts.some((t) => t.includes('Subject: curl smtps'))).toBe(true);
  });

  it('curl --ssl-reqd smtp:// and swaks --tls, and openssl s_client -starttls smtp', async () => {
    const before = pf.delivered().length;
    await new Promise<void>((res, rej) => {
      const c = execFile('curl', ['-sS', '--ssl-reqd', '--cacert', cert.cert, '--mail-from', 'a@example.org', '--mail-rcpt', 'alice@mydomain.org', '-T', '-', `smtp://127.0.0.1:${starttls.port}/wrapper.test`], { timeout: 15_000 }, (e) => (e ? rej(e) : res()));
      c.stdin!.end('Subject: curl starttls\r\n\r\nbody\r\n');
    });
    const swaks = await new Promise<string>((res) =>
      execFile('swaks', ['--server', `127.0.0.1:${starttls.port}`, '--tls', '--tls-verify', '--tls-ca-path', cert.cert, '--to', 'alice@mydomain.org', '--from', 'a@example.org', '--header', 'Subject: swaks tls'], { timeout: 15_000 }, (_e, o, er) => res(o + er)),
    );
    expect(swaks).toMatch(/TLS started/);
    expect(swaks).toMatch(/250 2\.0\.0 Ok: queued/);
    const s = await new Promise<string>((res) => {
      const c = execFile('openssl', ['s_client', '-connect', `127.0.0.1:${starttls.port}`, '-starttls', 'smtp', '-CAfile', cert.cert, '-verify_return_error', '-ign_eof', '-quiet'], { timeout: 15_000 }, (_e, o, er) => res(o + er));
      c.stdin!.end('EHLO x\r\nQUIT\r\n');
    });
    expect(s).toMatch(/verify return:1/);
    expect(s).toMatch(/221 2\.0\.0 Bye/);
    await pf.waitDelivered(before + 2);
  });

  it('command injection: a MAIL pipelined behind STARTTLS in plaintext is discarded; inside TLS the session is back before EHLO', async () => {
    const w = await Wire.open(starttls.port);
    await w.until('220 ');
    w.send('EHLO x\r\n');
    await w.until('250 ');
    w.send('STARTTLS\r\nMAIL FROM:<injected@example.org>\r\nRCPT TO:<alice@mydomain.org>\r\n');
    await w.until('220 2.0.0 Ready to start TLS\r\n');
    await w.startTls(cert.cert);
    w.send('MAIL FROM:<a@example.org>\r\n');
    await w.until('503 5.5.1');
    w.send('EHLO x\r\nMAIL FROM:<a@example.org>\r\nQUIT\r\n');
    await w.until('221');
    const inside = w.text().split('<TLS>')[1]!;
    expect(inside).toMatch(/^503 5\.5\.1 Error: send HELO\/EHLO first/);
    expect(inside).not.toMatch(/STARTTLS/);
    w.close();
    await waitFor(() => /discarded \d+ bytes the client sent after STARTTLS/.test(starttls.logs()), 'the discard logged');
    expect(pf.log()).not.toContain('injected@example.org');
  });

  it('tls = require: AUTH before TLS gets 530 5.7.0 and is not advertised; after STARTTLS it is and works', async () => {
    const w = await Wire.open(require.port);
    await w.until('220 ');
    w.send('EHLO x\r\n');
    await w.until('250 ');
    expect(w.text()).toMatch(/250[- ]STARTTLS/);
    expect(w.text()).not.toMatch(/AUTH/);
    w.send(`AUTH PLAIN ${Buffer.from('\0alice\0secret').toString('base64')}\r\n`);
    await w.until('530 5.7.0 Must issue a STARTTLS command first');
    w.send('STARTTLS\r\n');
    await w.until('220 2.0.0');
    await w.startTls(cert.cert);
    w.send('EHLO x\r\n');
    await w.until('<TLS>');
    await waitFor(() => /<TLS>[^]*250 /.test(w.text()), 'EHLO inside TLS');
    expect(w.text().split('<TLS>')[1]).toMatch(/250-AUTH PLAIN/);
    w.send(`AUTH PLAIN ${Buffer.from('\0alice\0secret').toString('base64')}\r\nQUIT\r\n`);
    await w.until('235 2.7.0');
    w.close();
  });

  it('inetd mode (systemd-socket-activate): smtplib STARTTLS over the inherited socket', async () => {
    const sa = await socketActivated(['-p', 'smtp', '--connect', `127.0.0.1:${pf.port}`, '--tls', 'starttls', '--tls-cert', cert.cert, '--tls-key', cert.key]);
    try {
      const before = pf.delivered().length;
      const out = await py(SMTPLIB, String(sa.port), cert.cert);
      expect(out).toMatch(/^POST False$/m);
      await pf.waitDelivered(before + 1);
    } finally {
      await sa.stop();
    }
  });
});

describe('TLS toward the client: response injection (a server that talks during the handshake)', () => {
  let fake: Server;
  let w: Standalone;
  let cert: TestCert;
  beforeAll(async () => {
    cert = makeCert();
    // No real server sends unasked bytes on cue; this one answers EHLO, then 100 ms later
    // sends a reply nobody asked for, while the client is still negotiating TLS.
    fake = createServer((s) => {
      s.write('220 fake ESMTP\r\n');
      s.on('data', (b: Buffer) => {
        if (b.toString('latin1').startsWith('EHLO')) {
          s.write('250-fake\r\n250 PIPELINING\r\n');
          setTimeout(() => s.write('250 2.0.0 injected reply\r\n'), 100);
        } else if (b.toString('latin1').startsWith('QUIT')) s.end('221 bye\r\n');
      });
      s.on('error', () => {});
    });
    await new Promise<void>((r) => fake.listen(0, '127.0.0.1', () => r()));
    w = await startStandalone(['-p', 'smtp', '--connect', `127.0.0.1:${(fake.address() as AddressInfo).port}`, '--tls', 'starttls', '--tls-cert', cert.cert, '--tls-key', cert.key]);
  });
  afterAll(async () => {
    await w?.stop();
    fake?.close();
  });

  it('server bytes between the go-ahead and the end of the handshake never reach the client, in TLS or out', async () => {
    const c = await Wire.open(w.port);
    await c.until('220 ');
    c.send('EHLO x\r\n');
    await c.until('250 ');
    c.send('STARTTLS\r\n');
    await c.until('220 2.0.0');
    // The client takes its time before the handshake; the server's bytes arrive meanwhile.
    await new Promise((r) => setTimeout(r, 300));
    await c.startTls(cert.cert);
    c.send('QUIT\r\n');
    await c.until('221');
    expect(c.text()).not.toContain('injected');
    expect(w.logs()).toMatch(/dropped \d+ server bytes sent during the client's TLS handshake/);
    c.close();
  });
});
