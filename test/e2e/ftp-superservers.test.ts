import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRsyslog, type Rsyslog } from '../helpers/rsyslog.js';
import { socketActivated } from '../helpers/socket-activate.js';
import { argAfter, inetdConf, inetdEntries, startDaemon, xinetdConf, type Substitutions } from '../helpers/superservers.js';
import { startVsftpd, type Vsftpd } from '../helpers/vsftpd.js';
import { curl, raw } from '../helpers/wire.js';
import { freePort, waitFor, WRAPPER } from '../helpers/wrapper.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const read = (p: string) => readFileSync(join(ROOT, p), 'utf8');
const FILE = 'through a superserver\r\n' + 'y'.repeat(100_000) + '\n';

/**
 * The shipped ftp entry of inetd.conf.example (only --connect changed),
 * run in inetd mode under the real systemd-socket-activate --inetd (one
 * wrapper per connection, the accepted socket on stdin/stdout, as inetd and
 * xinetd hand it over), in front of a real vsftpd: the data listeners are
 * bound to that socket's local address.
 */
describe('ftp in inetd mode, from the shipped example entry', () => {
  let vs: Vsftpd;
  beforeAll(async () => {
    vs = await startVsftpd();
    writeFileSync(join(vs.root, 'pub', 'a.txt'), FILE);
  });
  afterAll(async () => vs?.stop());

  it('the example entries name the ftp module with a passive range', () => {
    const e = inetdEntries(read('inetd.conf.example')).find((x) => argAfter(x.argv, '--protocol') === 'ftp')!;
    expect(argAfter(e.argv, '--pasv-port-range')).toBe('50000-50100');
    expect(argAfter(e.argv, '--syslog-facility')).toBe('ftp');
    expect(read('xinetd.d/protowrap-ftp')).toContain('server_args\t= --protocol ftp --syslog-facility ftp --pasv-port-range 50000-50100 --connect 127.0.0.1:10021');
  });

  it('systemd-socket-activate --inetd: passive and active downloads, a SITE EXEC refused', async () => {
    const e = inetdEntries(read('inetd.conf.example')).find((x) => argAfter(x.argv, '--protocol') === 'ftp')!;
    const args = e.argv.slice(1);
    args[args.indexOf('--connect') + 1] = `127.0.0.1:${vs.port}`;
    const sa = await socketActivated([...args, '--log-stderr', '--log-level', '2']);
    try {
      const url = `ftp://127.0.0.1:${sa.port}/pub/a.txt`;
      expect(await curl(url)).toBe(FILE);
      expect(await curl('--disable-epsv', url)).toBe(FILE);
      expect(await curl('-P', '127.0.0.1', url)).toBe(FILE);
      expect(await curl('-P', '127.0.0.1', '--disable-eprt', url)).toBe(FILE);
      const c = await raw(sa.port);
      await c.until('220 ');
      c.send('USER anonymous\r\nPASS x@example.org\r\n');
      await c.until('230 ');
      c.send('EPSV\r\n');
      await c.until('229 ');
      const port = Number(/\(\|\|\|(\d+)\|\)/.exec(c.received())![1]);
      // The passive range of the example entry.
      expect(port).toBeGreaterThanOrEqual(50000);
      expect(port).toBeLessThanOrEqual(50100);
      c.send('SITE EXEC via-inetd\r\n');
      await c.until('500 Unknown SITE command.\r\n');
      c.send('QUIT\r\n');
      await c.closed;
      await waitFor(() => sa.logs().includes('code=site_command'), 'the refusal in the log');
      expect(vs.commands().some((x) => x.includes('via-inetd'))).toBe(false);
      expect(sa.logs()).toContain('data connection server -> client 127.0.0.1:');
    } finally {
      await sa.stop();
    }
  });
});

/**
 * inetutils-inetd and xinetd with the shipped ftp entries (only the port,
 * the path, the user and the server's address substituted), the wrapper's
 * log read from a real rsyslogd: the refusal carries the ftp facility.
 */
describe('ftp under inetutils-inetd and xinetd, from the shipped examples', () => {
  let rs: Rsyslog;
  let vs: Vsftpd;
  let dir: string;
  beforeAll(async () => {
    rs = await startRsyslog();
    vs = await startVsftpd();
    writeFileSync(join(vs.root, 'pub', 'a.txt'), FILE);
    dir = mkdtempSync(join(tmpdir(), 'pw-ftp-super-'));
  });
  afterAll(async () => {
    await vs?.stop();
    await rs?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const subst = async (): Promise<Substitutions> => ({ port: await freePort(), wrapper: WRAPPER, user: userInfo().username, connect: `127.0.0.1:${vs.port}` });

  /** Passive and active downloads, and a SITE EXEC refused and logged under the ftp facility. */
  async function drive(port: number, marker: string): Promise<void> {
    const url = `ftp://127.0.0.1:${port}/pub/a.txt`;
    expect(await curl(url)).toBe(FILE);
    expect(await curl('--disable-epsv', url)).toBe(FILE);
    expect(await curl('-P', '127.0.0.1', url)).toBe(FILE);
    const c = await raw(port);
    await c.until('220 ');
    c.send('USER anonymous\r\n');
    await c.until('331 ');
    c.send('PASS x@example.org\r\n');
    await c.until('230 ');
    c.send(`SITE EXEC ${marker}\r\n`);
    await c.until('500 Unknown SITE command.\r\n');
    c.send('QUIT\r\n');
    await c.closed;
    const r = await rs.waitFor((x) => x.program === 'protowrap' && x.msg.includes(marker), `refusal for ${marker}`);
    expect(r.facility).toBe('ftp');
    expect(r.severity).toBe('warning');
    expect(r.msg).toContain('client=127.0.0.1 protocol=ftp');
    expect(r.msg).toContain('code=site_command');
    expect(vs.commands().some((x) => x.includes(marker))).toBe(false);
  }

  it('inetutils-inetd with the ftp entry of inetd.conf.example', async () => {
    const s = await subst();
    const conf = join(dir, 'inetd.conf');
    writeFileSync(conf, inetdConf(read('inetd.conf.example'), 'ftp', s));
    const w = rs.withDevLog(['inetutils-inetd', '-d', `--pidfile=${join(dir, 'inetd.pid')}`, conf]);
    const d = await startDaemon(w.cmd, w.args, s.port);
    try {
      await drive(s.port, 'via-inetd');
    } finally {
      await d.stop();
    }
  });

  it('xinetd with xinetd.d/protowrap-ftp', async () => {
    const xinetd = execFileSync('sh', [join(ROOT, 'test/helpers/fetch-xinetd.sh')], { encoding: 'utf8' }).trim();
    const s = await subst();
    const conf = join(dir, 'xinetd.conf');
    writeFileSync(conf, xinetdConf(read('xinetd.d/protowrap-ftp'), s, join(dir, 'xinetd.log')));
    const w = rs.withDevLog([xinetd, '-dontfork', '-f', conf, '-pidfile', join(dir, 'xinetd.pid')]);
    const d = await startDaemon(w.cmd, w.args, s.port);
    try {
      await drive(s.port, 'via-xinetd');
    } finally {
      await d.stop();
    }
  });
});
