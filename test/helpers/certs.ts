import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TestCert {
  readonly dir: string;
  readonly cert: string;
  readonly key: string;
  /** The name in the certificate (CN and DNS SAN); 127.0.0.1 is an IP SAN too. */
  readonly name: string;
}

/**
 * A fresh self-signed certificate and key (openssl), for TLS toward the
 * client: real clients (openssl s_client, python's ssl, curl) are pointed at
 * it as their CA.
 */
export function makeCert(name = 'mail.test'): TestCert {
  const dir = mkdtempSync(join(tmpdir(), 'pw-cert-'));
  const cert = join(dir, 'cert.pem');
  const key = join(dir, 'key.pem');
  execFileSync(
    'openssl',
    ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '2', '-subj', `/CN=${name}`, '-addext', `subjectAltName=DNS:${name},IP:127.0.0.1`],
    { stdio: 'pipe', timeout: 30_000 },
  );
  return { dir, cert, key, name };
}
