import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { freePort } from './wrapper.js';

/**
 * A real Dovecot 2.3 (Debian dovecot-imapd + dovecot-pop3d) for end-to-end tests:
 * started in the foreground from a private temp dir, IMAP and POP3 on free loopback
 * ports, a passwd-file user database, maildir homes. One instance per test file
 * (beforeAll); stop() kills it by its pid and removes the dir.
 */

export interface DovecotUser {
  readonly name: string;
  readonly password: string;
}

export interface Dovecot {
  readonly imapPort: number;
  readonly pop3Port: number;
  /** With implicitTls: the imaps / pop3s ports; else null. */
  readonly imapsPort: number | null;
  readonly pop3sPort: number | null;
  /** With ssl: the self-signed certificate (a CA file for a client), else null; its CN is tlsName. */
  readonly certFile: string | null;
  readonly tlsName: string;
  readonly users: readonly DovecotUser[];
  /** The temp dir holding config, users file, homes, log. */
  readonly dir: string;
  readonly pid: number;
  /** DIR/home/USER/Maildir (created, with new/ cur/ tmp/, owned by the mail user). */
  maildirOf(user: string): string;
  /** Puts one message file into USER's Maildir/new (CRLF or LF as given); returns the file path. */
  addMessage(user: string, message: string | Buffer): string;
  /** Removes every message of USER (new/ and cur/) and Dovecot's index files, so the next session starts clean. */
  clearMailbox(user: string): void;
  /** Dovecot's log so far (auth_verbose: failed logins name the user; see logSince). */
  log(): string;
  /** A mark for logSince(): the current length of the log. */
  logMark(): number;
  /** The log written after mark. */
  logSince(mark: number): string;
  stop(): Promise<void>;
}

export interface DovecotOptions {
  users?: readonly DovecotUser[];
  /** auth_failure_delay; Dovecot's default is 2 secs, tests default to 0 to stay fast. */
  authFailureDelay?: string;
  /**
   * Dovecot's per-IP auth penalty (anvil delays every login from an IP after failures, up
   * to 15 s). Off by default so brute-force tests stay fast; the delay is not what they test.
   */
  authPenalty?: boolean;
  /**
   * ssl = yes with a fresh self-signed certificate (openssl): Dovecot then
   * advertises STLS / STARTTLS. Plaintext logins stay allowed.
   */
  ssl?: boolean;
  /** Extra dovecot.conf lines appended at the end. */
  extraConfig?: string;
  /**
   * The plain imap and pop3 listeners want a PROXY header (v1 or v2,
   * `haproxy = yes`) from 127.0.0.0/8 (haproxy_trusted_networks); the login
   * line's rip= is then the header's source address.
   */
  haproxy?: boolean;
  /** With ssl: also imaps and pop3s (TLS from the first byte) on free ports. */
  implicitTls?: boolean;
}

export const DEFAULT_USERS: readonly DovecotUser[] = Object.freeze([
  { name: 'alice', password: 'secret' },
  { name: 'bob', password: 'hunter2' },
]);

const START_TIMEOUT_MS = 15_000;
let messageSeq = 0;
const STOP_GRACE_MS = 1_500;
const STOP_TIMEOUT_MS = 5_000;

/** Signals the process group we started (dovecot master and its children); ignores "already gone". */
function signalGroup(child: ChildProcess, sig: NodeJS.Signals): void {
  try {
    process.kill(-child.pid!, sig);
  } catch {
    // ESRCH: the whole group has exited already.
  }
}

/** uid/gid the mail processes run as: nobody/nogroup as root, else ourselves (Dovecot allows that). */
function mailOwner(): { uid: number; gid: number; user: string; group: string; asRoot: boolean } {
  const uid = process.getuid?.() ?? 0;
  if (uid === 0) return { uid: 65534, gid: 65534, user: 'nobody', group: 'nogroup', asRoot: true };
  const gid = process.getgid?.() ?? uid;
  return { uid, gid, user: String(uid), group: String(gid), asRoot: false };
}

function config(dir: string, imapPort: number, pop3Port: number, opts: DovecotOptions, tlsPorts: { imaps: number; pop3s: number } | null = null): string {
  const own = mailOwner();
  // Unprivileged, Dovecot cannot chroot its login and anvil processes.
  const chroot = own.asRoot ? [] : ['  chroot ='];
  const lines = [
    'protocols = imap pop3',
    'listen = 127.0.0.1',
    `base_dir = ${dir}/run`,
    `state_dir = ${dir}/state`,
    `log_path = ${dir}/dovecot.log`,
    `info_log_path = ${dir}/dovecot.log`,
    ...(opts.ssl ? ['ssl = yes', `ssl_cert = <${dir}/cert.pem`, `ssl_key = <${dir}/key.pem`] : ['ssl = no']),
    'disable_plaintext_auth = no',
    'auth_mechanisms = plain login',
    'auth_verbose = yes',
    `auth_failure_delay = ${opts.authFailureDelay ?? '0'}`,
    'mail_debug = no',
    'passdb {',
    '  driver = passwd-file',
    `  args = scheme=PLAIN username_format=%u ${dir}/users`,
    '}',
    'userdb {',
    '  driver = passwd-file',
    `  args = username_format=%u ${dir}/users`,
    `  default_fields = uid=${own.user} gid=${own.group} home=${dir}/home/%u`,
    '}',
    'mail_location = maildir:~/Maildir',
    // Several files start their own Dovecot at once; nothing may use fixed ports (imaps/pop3s off).
    ...(opts.haproxy ? ['haproxy_trusted_networks = 127.0.0.0/8'] : []),
    'service imap-login {',
    '  inet_listener imap {',
    `    port = ${imapPort}`,
    ...(opts.haproxy ? ['    haproxy = yes'] : []),
    '  }',
    '  inet_listener imaps {',
    `    port = ${tlsPorts?.imaps ?? 0}`,
    ...(tlsPorts ? ['    ssl = yes'] : []),
    '  }',
    ...chroot,
    '}',
    'service pop3-login {',
    '  inet_listener pop3 {',
    `    port = ${pop3Port}`,
    ...(opts.haproxy ? ['    haproxy = yes'] : []),
    '  }',
    '  inet_listener pop3s {',
    `    port = ${tlsPorts?.pop3s ?? 0}`,
    ...(tlsPorts ? ['    ssl = yes'] : []),
    '  }',
    ...chroot,
    '}',
    'service anvil {',
    // Documented way to turn the penalty off: the auth process cannot reach anvil's socket.
    ...(opts.authPenalty ? [] : ['  unix_listener anvil-auth-penalty {', '    mode = 0', '  }']),
    ...chroot,
    '}',
  ];
  if (!own.asRoot) {
    // Unprivileged: every Dovecot process runs as us (Dovecot supports this for tests).
    const me = userInfo().username;
    const group = execFileSync('id', ['-gn'], { encoding: 'utf8' }).trim();
    lines.push(
      `default_login_user = ${me}`,
      `default_internal_user = ${me}`,
      `default_internal_group = ${group}`,
      `first_valid_uid = ${own.uid}`,
      `last_valid_uid = ${own.uid}`,
    );
  }
  if (opts.extraConfig) lines.push(opts.extraConfig);
  return lines.join('\n') + '\n';
}

function portOpen(port: number): Promise<boolean> {
  return new Promise((res) => {
    const s = connect({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.destroy();
      res(true);
    });
    s.once('error', () => res(false));
  });
}

function readLog(dir: string): string {
  const p = join(dir, 'dovecot.log');
  return existsSync(p) ? readFileSync(p, 'latin1') : '';
}

async function waitExit(child: ChildProcess, ms: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return true;
  return new Promise((res) => {
    const t = setTimeout(() => res(false), ms);
    child.once('exit', () => {
      clearTimeout(t);
      res(true);
    });
  });
}

async function startOnce(opts: DovecotOptions): Promise<Dovecot> {
  const users = opts.users ?? DEFAULT_USERS;
  const own = mailOwner();
  const dir = mkdtempSync(join(tmpdir(), 'pw-dovecot-'));
  // mkdtemp makes 0700; the mail processes (nobody) must reach their homes below it.
  chmodSync(dir, 0o755);
  for (const d of ['run', 'state', 'home']) mkdirSync(join(dir, d), { mode: 0o755 });
  const [imapPort, pop3Port] = [await freePort(), await freePort()];
  writeFileSync(join(dir, 'users'), users.map((u) => `${u.name}:{PLAIN}${u.password}::::::\n`).join(''), { mode: 0o644 });
  const tlsPorts = opts.ssl && opts.implicitTls ? { imaps: await freePort(), pop3s: await freePort() } : null;
  writeFileSync(join(dir, 'dovecot.conf'), config(dir, imapPort, pop3Port, opts, tlsPorts));
  if (opts.ssl) {
    // A throwaway certificate: only for Dovecot to offer STLS/STARTTLS on this test's ports.
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-days', '1', '-subj', '/CN=localhost'], {
      stdio: 'pipe',
      timeout: 30_000,
    });
  }

  const maildirOf = (user: string): string => join(dir, 'home', user, 'Maildir');
  for (const u of users) {
    const home = join(dir, 'home', u.name);
    for (const d of [home, maildirOf(u.name), ...['new', 'cur', 'tmp'].map((s) => join(maildirOf(u.name), s))]) {
      mkdirSync(d, { recursive: true, mode: 0o700 });
      if (own.asRoot) chownSync(d, own.uid, own.gid);
    }
  }

  let output = '';
  const child = spawn('dovecot', ['-F', '-c', join(dir, 'dovecot.conf')], { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  child.stdout!.on('data', (b: Buffer) => (output += b.toString('latin1')));
  child.stderr!.on('data', (b: Buffer) => (output += b.toString('latin1')));
  let spawnError: Error | undefined;
  child.once('error', (e) => (spawnError = e));

  const fail = async (why: string): Promise<never> => {
    signalGroup(child, 'SIGKILL');
    await waitExit(child, STOP_TIMEOUT_MS);
    const log = readLog(dir);
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`dovecot: ${why}\n--- dovecot output ---\n${output}\n--- dovecot.log ---\n${log}`);
  };

  const deadline = Date.now() + START_TIMEOUT_MS;
  for (;;) {
    if (spawnError) return fail(`could not spawn: ${spawnError.message}`);
    if (child.exitCode !== null || child.signalCode !== null) return fail(`exited early (code ${child.exitCode}, signal ${child.signalCode})`);
    if ((await portOpen(imapPort)) && (await portOpen(pop3Port))) break;
    if (Date.now() > deadline) return fail(`ports ${imapPort}/${pop3Port} did not open within ${START_TIMEOUT_MS} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }

  // If the test process ends without stop() (a crashed worker), take Dovecot and its dir with it.
  const onExit = (): void => {
    signalGroup(child, 'SIGKILL');
    try {
      rmSync(dir, { recursive: true, force: true });
    } catch {
      // best effort while the process exits
    }
  };
  process.once('exit', onExit);
  let stopped = false;
  return {
    imapPort,
    pop3Port,
    imapsPort: tlsPorts?.imaps ?? null,
    pop3sPort: tlsPorts?.pop3s ?? null,
    certFile: opts.ssl ? join(dir, 'cert.pem') : null,
    tlsName: 'localhost',
    users,
    dir,
    pid: child.pid!,
    maildirOf,
    addMessage(user, message) {
      // Dovecot numbers new mail in file name order: a running counter keeps the order of addMessage calls.
      const name = `${Math.floor(Date.now() / 1000)}.M${String(++messageSeq).padStart(8, '0')}P${process.pid}.test`;
      const tmp = join(maildirOf(user), 'tmp', name);
      const dst = join(maildirOf(user), 'new', name);
      writeFileSync(tmp, message, { mode: 0o600 });
      if (own.asRoot) chownSync(tmp, own.uid, own.gid);
      // Maildir delivery: write in tmp/, then rename into new/ (never a half-written file in new/).
      renameSync(tmp, dst);
      return dst;
    },
    clearMailbox(user) {
      const md = maildirOf(user);
      for (const sub of ['new', 'cur', 'tmp']) for (const f of readdirSync(join(md, sub))) rmSync(join(md, sub, f), { force: true });
      for (const f of readdirSync(md)) if (f.startsWith('dovecot')) rmSync(join(md, f), { recursive: true, force: true });
    },
    log: () => readLog(dir),
    logMark: () => readLog(dir).length,
    logSince: (mark) => readLog(dir).slice(mark),
    async stop() {
      if (stopped) return;
      stopped = true;
      process.removeListener('exit', onExit);
      // Dovecot runs in its own process group (detached); a login process that is still
      // starting up can ignore SIGTERM for seconds, so the group gets SIGKILL after a grace time.
      signalGroup(child, 'SIGTERM');
      if (!(await waitExit(child, STOP_GRACE_MS))) signalGroup(child, 'SIGKILL');
      await waitExit(child, STOP_TIMEOUT_MS);
      signalGroup(child, 'SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Starts Dovecot and waits until both ports accept connections. freePort() can race with
 * another process taking the port; a start that fails on "Address already in use" is retried.
 * On failure the error carries Dovecot's output and log.
 */
export async function startDovecot(opts: DovecotOptions = {}): Promise<Dovecot> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(opts);
    } catch (e) {
      if (attempt >= 3 || !/Address already in use/.test((e as Error).message)) throw e;
    }
  }
}
