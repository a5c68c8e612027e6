import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { protocolNames } from '../../src/protocols/index.js';
import { startRecorder, type Recorder } from '../helpers/recorder.js';
import { startRsyslog, type Rsyslog } from '../helpers/rsyslog.js';
import {
  argAfter,
  clientSession,
  inetdConf,
  inetdEntries,
  startDaemon,
  systemdArgv,
  unitKeys,
  xinetdAttributes,
  xinetdConf,
  type Substitutions,
} from '../helpers/superservers.js';
import { freePort, waitFor, WRAPPER } from '../helpers/wrapper.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const read = (p: string) => readFileSync(join(ROOT, p), 'utf8');

/**
 * The shipped service files, run for real: inetutils-inetd, xinetd and
 * systemd-socket-activate start the built wrapper per connection with the
 * accepted socket as stdin/stdout, configured from inetd.conf.example,
 * xinetd.d/ and systemd/ with only port, path, user and server substituted.
 * The superservers run in a mount namespace where /dev/log is a real
 * rsyslogd's socket, so the wrapper's log is read where an admin would.
 */
describe('under real superservers, configured from the shipped examples', () => {
  let rs: Rsyslog;
  let rec: Recorder;
  let dir: string;
  beforeAll(async () => {
    rs = await startRsyslog();
    rec = await startRecorder({ banner: 'WELCOME\r\n' });
    dir = mkdtempSync(join(tmpdir(), 'pw-superservers-'));
  });
  afterAll(async () => {
    await rec?.close();
    await rs?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const subst = async (): Promise<Substitutions> => ({
    port: await freePort(),
    wrapper: WRAPPER,
    user: userInfo().username,
    connect: `127.0.0.1:${rec.port}`,
  });

  /**
   * One hostile session: a good line, an overlong line carrying `marker`, a
   * last good line. The client must get the server's banner and nothing
   * else; the server must get exactly the good lines; the refusal must be in
   * syslog with the client's address.
   */
  async function driveSession(port: number, marker: string): Promise<void> {
    const before = rec.received().length;
    const overlong = `${marker} ${'X'.repeat(2000)}`;
    const got = await clientSession(port, Buffer.from(`good line\r\n${overlong}\r\nafter\r\n`));
    expect(got.toString('latin1')).toBe('WELCOME\r\n');
    await waitFor(() => rec.received()[before]?.toString('latin1') === 'good line\r\nafter\r\n', 'the server to receive the good lines');
    expect(rec.received().length).toBe(before + 1);
    const r = await rs.waitFor((x) => x.program === 'protowrap' && x.msg.includes(`line="${marker} `), `refusal for ${marker}`);
    expect(r.severity).toBe('warning');
    expect(r.facility).toBe('daemon');
    expect(r.msg).toContain('client=127.0.0.1 protocol=generic');
    expect(r.msg).toContain('code=line_too_long');
  }

  it('inetutils-inetd with the generic entry of inetd.conf.example', async () => {
    const s = await subst();
    const conf = join(dir, 'inetd.conf');
    writeFileSync(conf, inetdConf(read('inetd.conf.example'), 'generic', s));
    const w = rs.withDevLog(['inetutils-inetd', '-d', `--pidfile=${join(dir, 'inetd.pid')}`, conf]);
    const d = await startDaemon(w.cmd, w.args, s.port);
    try {
      await driveSession(s.port, 'via-inetd');
    } finally {
      await d.stop();
    }
  });

  it('xinetd with xinetd.d/protowrap-generic', async () => {
    const xinetd = execFileSync('sh', [join(ROOT, 'test/helpers/fetch-xinetd.sh')], { encoding: 'utf8' }).trim();
    const s = await subst();
    const conf = join(dir, 'xinetd.conf');
    writeFileSync(conf, xinetdConf(read('xinetd.d/protowrap-generic'), s, join(dir, 'xinetd.log')));
    const w = rs.withDevLog([xinetd, '-dontfork', '-f', conf, '-pidfile', join(dir, 'xinetd.pid')]);
    const d = await startDaemon(w.cmd, w.args, s.port);
    try {
      await driveSession(s.port, 'via-xinetd');
    } finally {
      await d.stop();
    }
  });

  it('systemd-socket-activate --inetd -a with systemd/protowrap@.service and protowrap.socket', async () => {
    const socketUnit = unitKeys(read('systemd/protowrap.socket'));
    const serviceText = read('systemd/protowrap@.service');
    const service = unitKeys(serviceText);
    expect(socketUnit.get('Accept')).toBe('yes');
    expect(socketUnit.get('ListenStream')).toMatch(/^\d+$/);
    expect(service.get('StandardInput')).toBe('socket');
    expect(service.get('StandardOutput')).toBe('socket');
    // stderr must never be the client's connection.
    expect(service.get('StandardError')).not.toMatch(/^(socket|inherit)$/);
    const s = await subst();
    const w = rs.withDevLog(['systemd-socket-activate', '--inetd', '-a', '-E', 'PATH', '-l', `127.0.0.1:${s.port}`, '--', ...systemdArgv(serviceText, s)]);
    const d = await startDaemon(w.cmd, w.args, s.port);
    try {
      await driveSession(s.port, 'via-systemd');
    } finally {
      await d.stop();
    }
  });

  it('every example entry is a valid command line once its protocol exists (--check), and is refused as bad usage before', async () => {
    const known = new Set(protocolNames());
    const lines: string[][] = inetdEntries(read('inetd.conf.example')).map((e) => e.argv.slice(1));
    for (const f of readdirSync(join(ROOT, 'xinetd.d'))) {
      const args = xinetdAttributes(read(`xinetd.d/${f}`)).find((a) => a.name === 'server_args');
      expect(args, f).toBeDefined();
      lines.push(args!.value.split(/\s+/));
    }
    lines.push(unitKeys(read('systemd/protowrap@.service')).get('ExecStart')!.split(/\s+/).slice(1));
    const protocols = new Set(lines.map((a) => argAfter(a, '--protocol')));
    for (const p of ['generic', 'pop3', 'imap', 'smtp', 'ftp', 'http', 'finger', 'ident']) expect(protocols.has(p), p).toBe(true);
    const results = await Promise.all(lines.map((args) => runCheck(args)));
    lines.forEach((args, i) => {
      const exists = known.has(argAfter(args, '--protocol')!);
      expect(results[i]!.code, `${args.join(' ')}\n${results[i]!.output}`).toBe(exists ? 0 : 64);
    });
  });
});

/** protowrap --check ARGS: exit code and output. */
function runCheck(args: readonly string[]): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [WRAPPER, '--check', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (b: Buffer) => (output += b.toString()));
    child.stderr.on('data', (b: Buffer) => (output += b.toString()));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, output }));
  });
}
