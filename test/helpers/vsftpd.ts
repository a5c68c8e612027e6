import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { freePort, waitFor } from './wrapper.js';

export interface Vsftpd {
  readonly port: number;
  readonly dir: string;
  /** The anonymous root: pub/ (read only) and up/ (anonymous uploads). */
  readonly root: string;
  /** The FTP commands vsftpd received so far (log_ftp_protocol), in order: "USER anonymous", "PASS <password>", … */
  commands(): string[];
  /** The whole log. */
  log(): string;
  stop(): Promise<void>;
}

/** The uid/gid of the ftp user (the anonymous uploads' owner), else nobody's. */
function ftpIds(): { uid: number; gid: number } {
  for (const name of ['ftp', 'nobody']) {
    try {
      const uid = Number(execFileSync('id', ['-u', name], { encoding: 'utf8' }).trim());
      const gid = Number(execFileSync('id', ['-g', name], { encoding: 'utf8' }).trim());
      return { uid, gid };
    } catch {
      // next
    }
  }
  throw new Error('no ftp or nobody user');
}

/**
 * A real vsftpd 3 on a loopback port (PEERS.md), foreground, its config in
 * a temp folder: anonymous logins with uploads into up/, local users on (a
 * wrong password gets 530 from PAM), pasv_promiscuous and port_promiscuous
 * off (a data connection must come from the control connection's address),
 * and every command it received in its log.
 */
export async function startVsftpd(extra: Record<string, string> = {}): Promise<Vsftpd> {
  if (userInfo().uid !== 0) throw new Error('vsftpd needs root here');
  const dir = mkdtempSync(join(tmpdir(), 'pw-vsftpd-'));
  chmodSync(dir, 0o755);
  const root = join(dir, 'root');
  mkdirSync(join(root, 'pub'), { recursive: true });
  mkdirSync(join(root, 'up'));
  chmodSync(root, 0o755);
  chmodSync(join(root, 'pub'), 0o755);
  const { uid, gid } = ftpIds();
  chownSync(join(root, 'up'), uid, gid);
  const port = await freePort();
  const pasvLo = 30000 + Math.floor(Math.random() * 20000);
  const logFile = join(dir, 'vsftpd.log');
  const settings: Record<string, string> = {
    listen: 'YES',
    listen_address: '127.0.0.1',
    listen_port: String(port),
    background: 'NO',
    anonymous_enable: 'YES',
    anon_root: root,
    local_enable: 'YES',
    write_enable: 'YES',
    anon_upload_enable: 'YES',
    anon_mkdir_write_enable: 'YES',
    anon_other_write_enable: 'YES',
    pasv_address: '127.0.0.1',
    pasv_min_port: String(pasvLo),
    pasv_max_port: String(pasvLo + 50),
    pasv_promiscuous: 'NO',
    port_promiscuous: 'NO',
    connect_from_port_20: 'NO',
    seccomp_sandbox: 'NO',
    log_ftp_protocol: 'YES',
    xferlog_enable: 'YES',
    xferlog_std_format: 'NO',
    vsftpd_log_file: logFile,
    max_login_fails: '10',
    delay_failed_login: '0',
    ...extra,
  };
  const conf = join(dir, 'vsftpd.conf');
  writeFileSync(conf, Object.entries(settings).map(([k, v]) => `${k}=${v}\n`).join(''));
  writeFileSync(logFile, '');
  const child: ChildProcess = spawn('vsftpd', [conf], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (b: Buffer) => (err += b.toString('latin1')));
  const up = async () =>
    new Promise<boolean>((r) => {
      const s = connect({ host: '127.0.0.1', port });
      s.once('data', () => {
        s.destroy();
        r(true);
      });
      s.once('error', () => r(false));
    });
  const deadline = Date.now() + 10_000;
  while (!(await up())) {
    if (child.exitCode !== null) throw new Error(`vsftpd exited ${child.exitCode}: ${err}`);
    if (Date.now() > deadline) throw new Error(`vsftpd did not start: ${err}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  const log = () => readFileSync(logFile, 'latin1');
  return {
    port,
    dir,
    root,
    log,
    commands: () =>
      log()
        .split('\n')
        .map((l) => /FTP command: Client "[^"]*", "(.*)"$/.exec(l)?.[1])
        .filter((c): c is string => c !== undefined),
    stop: async () => {
      if (child.exitCode === null) {
        const gone = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await gone;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Waits until vsftpd logged n commands in all (its log is written as it goes). */
export async function commandsAtLeast(v: Vsftpd, n: number): Promise<string[]> {
  await waitFor(() => v.commands().length >= n, `${n} commands in the vsftpd log`);
  return v.commands();
}
