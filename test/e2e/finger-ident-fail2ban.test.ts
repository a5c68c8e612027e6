import { execFile } from 'node:child_process';
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeFingerd } from '../helpers/fingerd.js';
import { startOidentd, type Oidentd } from '../helpers/oidentd.js';
import { startStandalone, waitFor, type Standalone } from '../helpers/wrapper.js';

const FILTER = fileURLToPath(new URL('../../fail2ban/filter.d/protowrap.conf', import.meta.url));
const COMMON = '/etc/fail2ban/filter.d/common.conf';
const CLIENT = '127.0.0.2';

/** A raw session from CLIENT: sends the bytes, half-closes, waits for the close. */
function session(port: number, bytes: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = connect({ port, host: '127.0.0.1', localAddress: CLIENT, allowHalfOpen: true });
    let got = '';
    sock.on('data', (b: Buffer) => (got += b.toString('latin1')));
    sock.on('error', reject);
    sock.on('end', () => sock.end());
    sock.on('close', () => resolve(got));
    sock.once('connect', () => sock.end(bytes, 'latin1'));
  });
}

/**
 * The fail2ban filter counts hostile clients, not broken servers: a finger
 * or ident query the wrapper refused matches with the client as host; a
 * close the server caused (a finger reply past maxReplyBytes, an ident
 * reply out of grammar, both from the real servers) does not. Checked with
 * the real fail2ban-regex on the wrapper's log lines.
 */
describe('fail2ban and the finger and ident modes', () => {
  let dir: string;
  let oid: Oidentd;
  let finger: Standalone;
  let ident: Standalone;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'pw-fi-f2b-'));
    copyFileSync(FILTER, join(dir, 'protowrap.conf'));
    copyFileSync(COMMON, join(dir, 'common.conf'));
    const fd = makeFingerd(dir);
    oid = await startOidentd(['-R', 'ev\x1b[2Jil']);
    [finger, ident] = await Promise.all([
      startStandalone(['-p', 'finger', '--max-reply-bytes', '32', '--exec', fd.fingerd]),
      startStandalone(['-p', 'ident', '--connect', `127.0.0.1:${oid.port}`]),
    ]);
  });
  afterAll(async () => {
    await Promise.all([finger?.stop(), ident?.stop()]);
    await oid?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('refused queries match with the client as host; server-caused closes do not', async () => {
    expect(await session(finger.port, 'root@elsewhere\r\n')).toBe('finger: forwarding service denied\r\n');
    expect((await session(finger.port, '/W root\r\n')).length).toBe(32);
    expect(await session(ident.port, 'garbage\r\n')).toBe('0 , 0 : ERROR : INVALID-PORT\r\n');
    expect(await session(ident.port, '5 , 6\r\n')).toBe('5 , 6 : ERROR : UNKNOWN-ERROR\r\n');
    const logs = () => finger.logs() + ident.logs();
    await waitFor(() => logs().match(/session close client=127\.0\.0\.2/g)?.length === 4, 'four session close lines');
    expect(logs()).toMatch(/closing client=127\.0\.0\.2 protocol=finger session=[0-9a-f]{12}: server reply past maxReplyBytes/);
    expect(logs()).toMatch(/closing client=127\.0\.0\.2 protocol=ident session=[0-9a-f]{12}: server reply refused/);

    const file = join(dir, 'protowrap.log');
    const lines = logs()
      .split('\n')
      .filter((l) => /^protowrap\[\d+\]: /.test(l))
      .map((l) => `Dec  1 12:00:00 testhost ${l}\n`);
    writeFileSync(file, lines.join(''));
    const out = await new Promise<string>((res, rej) =>
      execFile('fail2ban-regex', ['-o', '<ip> <msg>', file, join(dir, 'protowrap.conf')], (err, stdout, stderr) => (err ? rej(new Error(`${err.message}\n${stderr}`)) : res(stdout))),
    );
    const matched = out.split('\n').filter((l) => l !== '');
    expect(matched).toHaveLength(2);
    expect(matched[0]).toMatch(/^127\.0\.0\.2 .* refused client=127\.0\.0\.2 protocol=finger state=query code=forwarding /);
    expect(matched[1]).toMatch(/^127\.0\.0\.2 .* refused client=127\.0\.0\.2 protocol=ident state=done code=bad_syntax /);
  });
});
