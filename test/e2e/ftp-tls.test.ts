import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeCert, type TestCert } from '../helpers/certs.js';
import { startVsftpd, type Vsftpd } from '../helpers/vsftpd.js';
import { curl, py, raw } from '../helpers/wire.js';
import { startStandalone, waitFor, type Standalone } from '../helpers/wrapper.js';

const FILE = 'secret data\r\n' + 'z'.repeat(150_000) + '\n';

/** python ftplib.FTP_TLS: AUTH TLS, login, PROT P (or not), then get, put and list, passive or active. */
const FTPLIB_TLS = `import ftplib, io, ssl, sys
port, passive, prot, name, ca = int(sys.argv[1]), sys.argv[2] == 'pasv', sys.argv[3], sys.argv[4], sys.argv[5]
f = ftplib.FTP_TLS(context=ssl.create_default_context(cafile=ca))
f.connect('127.0.0.1', port); print(f.auth()); print(f.login())
if prot == 'P': print(f.prot_p())
f.set_pasv(passive)
b = io.BytesIO(); print(f.retrbinary('RETR pub/a.txt', b.write)); print(len(b.getvalue()), b.getvalue()[:11])
print(f.storbinary('STOR up/' + name, io.BytesIO(b'tls upload ' * 3000)))
print(f.nlst('pub'))
print(f.quit())`;

describe('ftp AUTH TLS / PROT P through the wrapper, in front of a vsftpd that offers TLS itself', () => {
  let vs: Vsftpd;
  let cert: TestCert;
  let plain: Standalone;
  let tls: Standalone;

  beforeAll(async () => {
    cert = makeCert('ftp.test');
    // vsftpd offers AUTH TLS too, so that there is something for the wrapper to hide.
    vs = await startVsftpd({ ssl_enable: 'YES', rsa_cert_file: cert.cert, rsa_private_key_file: cert.key, allow_anon_ssl: 'YES', require_ssl_reuse: 'NO', force_local_logins_ssl: 'NO', force_local_data_ssl: 'NO' });
    writeFileSync(join(vs.root, 'pub', 'a.txt'), FILE);
    plain = await startStandalone(['--protocol', 'ftp', '--connect', `127.0.0.1:${vs.port}`]);
    tls = await startStandalone(['--protocol', 'ftp', '--connect', `127.0.0.1:${vs.port}`, '--tls', 'starttls', '--tls-cert', cert.cert, '--tls-key', cert.key, '--log-level', '2']);
  });
  afterAll(async () => {
    await plain?.stop();
    await tls?.stop();
    await vs?.stop();
  });

  async function feat(port: number): Promise<string> {
    const c = await raw(port);
    await c.until('220 ');
    c.send('FEAT\r\n');
    await c.until('211 End');
    c.send('QUIT\r\n');
    await c.closed;
    return c.received();
  }

  it('FEAT: the server\'s AUTH TLS, PBSZ, PROT hidden without --tls; the wrapper\'s own with --tls starttls', async () => {
    const direct = await feat(vs.port);
    expect(direct).toContain(' AUTH TLS\r\n');
    const without = await feat(plain.port);
    expect(without).not.toContain('AUTH');
    expect(without).not.toContain('PBSZ');
    expect(without).toContain(' EPSV\r\n');
    const withTls = await feat(tls.port);
    expect(withTls).toContain(' AUTH TLS\r\n PBSZ\r\n PROT\r\n211 End');
    expect(withTls.match(/AUTH TLS/g)!.length).toBe(1);
  });

  it('without --tls: curl --ssl-reqd gets no TLS and gives up; the server never saw AUTH', async () => {
    const start = vs.commands().length;
    await expect(curl('--ssl-reqd', '--cacert', cert.cert, `ftp://127.0.0.1:${plain.port}/pub/a.txt`)).rejects.toThrow();
    expect(vs.commands().slice(start).some((c) => c.startsWith('AUTH'))).toBe(false);
  });

  it('curl --ssl-reqd (PROT P), EPSV and PASV: the file arrives; vsftpd saw no AUTH, PBSZ or PROT', async () => {
    const start = vs.commands().length;
    const url = `ftp://127.0.0.1:${tls.port}/pub/a.txt`;
    expect(await curl('--ssl-reqd', '--cacert', cert.cert, url)).toBe(FILE);
    expect(await curl('--ssl-reqd', '--cacert', cert.cert, '--disable-epsv', url)).toBe(FILE);
    const got = vs.commands().slice(start);
    expect(got).toContain('RETR a.txt');
    expect(got.some((c) => /^(AUTH|PBSZ|PROT)/.test(c))).toBe(false);
    expect(tls.logs()).toContain('client TLS established');
  });

  it('python ftplib.FTP_TLS with prot_p, passive and active: get, put, list; with PROT C, passive', async () => {
    for (const [mode, prot] of [['pasv', 'P'], ['port', 'P'], ['pasv', 'C']] as const) {
      const out = await py(FTPLIB_TLS, String(tls.port), mode, prot, `tls-${mode}-${prot}`, cert.cert);
      expect(out, `${mode} ${prot}`).toContain('234 Proceed with negotiation.');
      if (prot === 'P') expect(out).toContain('200 Protection level set to P.');
      expect(out).toContain(`${FILE.length} b'secret data'`);
      expect(out).toContain("['pub/a.txt']");
      await waitFor(() => vs.commands().includes(`STOR up/tls-${mode}-${prot}`), 'the upload');
    }
  });
});

describe('ftp --tls require and implicit', () => {
  let vs: Vsftpd;
  let cert: TestCert;
  beforeAll(async () => {
    cert = makeCert('ftp.test');
    vs = await startVsftpd();
    writeFileSync(join(vs.root, 'pub', 'a.txt'), FILE);
  });
  afterAll(async () => vs?.stop());

  it('require: USER before AUTH TLS gets 530 and never reaches the server; curl --ssl-reqd works', async () => {
    const w = await startStandalone(['--protocol', 'ftp', '--connect', `127.0.0.1:${vs.port}`, '--tls', 'require', '--tls-cert', cert.cert, '--tls-key', cert.key]);
    try {
      const start = vs.commands().length;
      const c = await raw(w.port);
      await c.until('220 ');
      c.send('USER anonymous\r\n');
      await c.until('530 TLS required: use AUTH TLS first.\r\n');
      c.send('QUIT\r\n');
      await c.closed;
      expect(vs.commands().slice(start)).toEqual(['QUIT']);
      expect(await curl('--ssl-reqd', '--cacert', cert.cert, `ftp://127.0.0.1:${w.port}/pub/a.txt`)).toBe(FILE);
    } finally {
      await w.stop();
    }
  });

  it('implicit (ftps:// on its own port): curl, passive, PROT P', async () => {
    const w = await startStandalone(['--protocol', 'ftp', '--connect', `127.0.0.1:${vs.port}`, '--tls', 'implicit', '--tls-cert', cert.cert, '--tls-key', cert.key]);
    try {
      expect(await curl('--cacert', cert.cert, `ftps://127.0.0.1:${w.port}/pub/a.txt`)).toBe(FILE);
    } finally {
      await w.stop();
    }
  });
});
