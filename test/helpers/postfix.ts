import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, closeSync, cpSync, existsSync, openSync, writeFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tcpClient, type TestClient } from './client.js';
import { freePort, waitFor } from './wrapper.js';

/**
 * Real Postfix peers for the SMTP end-to-end tests (Debian package postfix),
 * each started by the test in the foreground on a loopback port and stopped
 * by its pid: smtp-sink (logs every command it gets, dumps every message), and
 * a Postfix of the test's own (postfix -c DIR start-fg) delivering the
 * domain mydomain.org to one Maildir. The same DIR serves `sendmail -bs`
 * (MAIL_CONFIG=DIR), whose mail the running pickup daemon delivers.
 */

const NOBODY = 65534;

async function listening(port: number, what: string): Promise<void> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    try {
      const c = await tcpClient(port);
      c.sock.destroy();
      return;
    } catch {
      if (Date.now() > deadline) throw new Error(`${what} did not listen on ${port}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

function stopChild(child: ChildProcess, timeoutMs = 5000): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    const t = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('exit', () => {
      clearTimeout(t);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

export interface Sink {
  readonly port: number;
  /** smtp-sink's -v log: every command line it received, one per line. */
  log(): string;
  /** Commands smtp-sink received, in order (from its -v log). */
  commands(): string[];
  /** Message dumps (-d): smtp-sink's X- header block, then the message with LF endings. */
  dumps(): Buffer[];
  stop(): Promise<void>;
}

export async function startSink(extraArgs: readonly string[] = []): Promise<Sink> {
  const dir = mkdtempSync(join(tmpdir(), 'pw-sink-'));
  chmodSync(dir, 0o755); // smtp-sink writes its dumps as nobody
  const dumpDir = join(dir, 'd');
  mkdirSync(dumpDir);
  chownSync(dumpDir, NOBODY, NOBODY);
  const port = await freePort();
  const child = spawn('smtp-sink', ['-v', '-u', 'nobody', '-d', `${dumpDir}/%M.`, ...extraArgs, `127.0.0.1:${port}`, '100'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  child.stdout!.on('data', (b: Buffer) => (log += b.toString('latin1')));
  child.stderr!.on('data', (b: Buffer) => (log += b.toString('latin1')));
  await listening(port, 'smtp-sink');
  return {
    port,
    log: () => log,
    commands: () =>
      log
        .split('\n')
        .map((l) => l.replace(/^smtp-sink: /, ''))
        .filter((l) => /^[A-Z]{4}\b|^\.$|^[A-Z]+ /.test(l) && !/^(name_mask|trying|connect|vstream|fd=|smtp_stream|disconnect)/.test(l)),
    dumps: () =>
      readdirSync(dumpDir)
        .map((f) => join(dumpDir, f))
        .sort((a, b) => statSync(a).mtimeMs - statSync(b).mtimeMs)
        .map((f) => readFileSync(f)),
    stop: async () => {
      await stopChild(child);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface Postfix {
  readonly dir: string;
  readonly port: number;
  /** A second smtpd of the same Postfix that does not advertise PIPELINING (smtpd_discard_ehlo_keywords). */
  readonly noPipeliningPort: number;
  /** The smtpd started with opts.extraSmtpd's overrides, when asked for. */
  readonly extraPort?: number;
  /** Postfix's log (maillog_file=/dev/stdout). */
  log(): string;
  /** Delivered messages in the Maildir, oldest first. */
  delivered(): Buffer[];
  waitDelivered(n: number, timeoutMs?: number): Promise<Buffer[]>;
  stop(): Promise<void>;
}

/** The Postfix log line smtpd writes when a client disconnects, with its command counts. */
export function disconnectLines(log: string): string[] {
  return log.split('\n').filter((l) => l.includes('smtpd[') && l.includes('disconnect from'));
}

/**
 * SASL for Postfix's smtpd: a Dovecot (Debian dovecot-core) with no mail
 * protocols, only its auth service on a socket Postfix asks (smtpd_sasl_type
 * dovecot). One user: alice / secret.
 */
async function startDovecotAuth(dir: string): Promise<{ socket: string; stop: () => Promise<void> }> {
  for (const d of ['run', 'state']) mkdirSync(join(dir, d));
  const socket = join(dir, 'auth');
  writeFileSync(join(dir, 'users'), 'alice:{PLAIN}secret::::::\n');
  writeFileSync(
    join(dir, 'dovecot.conf'),
    [
      'protocols = none',
      `base_dir = ${join(dir, 'run')}`,
      `state_dir = ${join(dir, 'state')}`,
      `log_path = ${join(dir, 'dovecot.log')}`,
      'ssl = no',
      'disable_plaintext_auth = no',
      'auth_mechanisms = plain login',
      'auth_failure_delay = 0',
      'passdb {',
      '  driver = passwd-file',
      `  args = scheme=PLAIN username_format=%u ${join(dir, 'users')}`,
      '}',
      'userdb {',
      '  driver = static',
      '  args = uid=nobody gid=nogroup home=/nonexistent',
      '}',
      'service auth {',
      `  unix_listener ${socket} {`,
      '    mode = 0666',
      '  }',
      '}',
      // No per-IP auth penalty (anvil delays every later login after failures): tests fail logins on purpose.
      'service anvil {',
      '  unix_listener anvil-auth-penalty {',
      '    mode = 0',
      '  }',
      '}',
      '',
    ].join('\n'),
  );
  const child = spawn('dovecot', ['-F', '-c', join(dir, 'dovecot.conf')], { stdio: 'ignore' });
  await waitFor(() => existsSync(socket) || child.exitCode !== null, 'dovecot auth socket', 30_000);
  if (child.exitCode !== null) throw new Error('dovecot did not start');
  return { socket, stop: () => stopChild(child) };
}

export interface PostfixOptions {
  readonly sasl?: boolean;
  /** `-o name=value` overrides (no spaces: commas) for one more smtpd service, on extraPort. */
  readonly extraSmtpd?: readonly string[];
}

export async function startPostfix(opts: PostfixOptions = {}): Promise<Postfix> {
  const dir = mkdtempSync(join(tmpdir(), 'pw-postfix-'));
  chmodSync(dir, 0o755); // the delivery agent runs as nobody
  let dovecot: { socket: string; stop: () => Promise<void> } | null = null;
  if (opts.sasl) {
    const ddir = join(dir, 'dovecot');
    mkdirSync(ddir);
    dovecot = await startDovecotAuth(ddir);
  }
  try {
    return await postfixIn(dir, dovecot, opts.extraSmtpd);
  } catch (err) {
    await dovecot?.stop();
    throw err;
  }
}

async function postfixIn(dir: string, dovecot: { socket: string; stop: () => Promise<void> } | null, extraSmtpd?: readonly string[]): Promise<Postfix> {
  cpSync('/etc/postfix', dir, { recursive: true });
  for (const d of ['spool', 'data', 'mail']) mkdirSync(join(dir, d));
  chownSync(join(dir, 'data'), Number(execFileSync('id', ['-u', 'postfix']).toString().trim()), 0);
  chownSync(join(dir, 'mail'), NOBODY, NOBODY);
  const port = await freePort();
  const set = (...kv: string[]) => execFileSync('postconf', ['-c', dir, '-e', ...kv]);
  set(
    `queue_directory=${join(dir, 'spool')}`,
    `data_directory=${join(dir, 'data')}`,
    'maillog_file=/dev/stdout',
    'inet_interfaces=loopback-only',
    'myhostname=mx.test.example',
    'mydestination=',
    'alias_maps=',
    'alias_database=',
    'compatibility_level=3.6',
    'virtual_mailbox_domains=mydomain.org',
    `virtual_mailbox_base=${join(dir, 'mail')}`,
    'virtual_mailbox_maps=static:box/',
    `virtual_uid_maps=static:${NOBODY}`,
    `virtual_gid_maps=static:${NOBODY}`,
    'mynetworks=127.0.0.0/8',
    'smtpd_relay_restrictions=permit_mynetworks,reject_unauth_destination',
    'message_size_limit=10240000',
  );
  if (dovecot) set('smtpd_sasl_auth_enable=yes', 'smtpd_sasl_type=dovecot', `smtpd_sasl_path=${dovecot.socket}`);
  execFileSync('postconf', ['-c', dir, '-M', `smtp/inet=127.0.0.1:${port} inet n - n - - smtpd`]);
  const noPipeliningPort = await freePort();
  execFileSync('postconf', ['-c', dir, '-M', `127.0.0.1:${noPipeliningPort}/inet=127.0.0.1:${noPipeliningPort} inet n - n - - smtpd -o smtpd_discard_ehlo_keywords=pipelining`]);
  const extraPort = extraSmtpd ? await freePort() : undefined;
  if (extraSmtpd) {
    const o = extraSmtpd.map((kv) => `-o ${kv}`).join(' ');
    execFileSync('postconf', ['-c', dir, '-M', `127.0.0.1:${extraPort}/inet=127.0.0.1:${extraPort} inet n - n - - smtpd ${o}`]);
  }
  execFileSync('postconf', ['-c', dir, '-F', '*/*/chroot=n']);
  // Postfix's log goes to a file: with a pipe as its stdout, start-fg stalls and gives up.
  const logFile = join(dir, 'maillog');
  const fd = openSync(logFile, 'a');
  const child = spawn('postfix', ['-c', dir, 'start-fg'], { stdio: ['ignore', fd, fd] });
  closeSync(fd);
  const log = () => readFileSync(logFile, 'latin1');
  await waitFor(() => log().includes('daemon started') || child.exitCode !== null, 'postfix master', 60_000);
  if (child.exitCode !== null) throw new Error(`postfix did not start: ${log()}`);
  await listening(port, 'postfix smtpd');
  await listening(noPipeliningPort, 'postfix smtpd without PIPELINING');
  if (extraPort !== undefined) await listening(extraPort, 'postfix smtpd with overrides');
  const maildir = join(dir, 'mail', 'box', 'new');
  const delivered = () => {
    let files: string[] = [];
    try {
      files = readdirSync(maildir).map((f) => join(maildir, f));
    } catch {
      return [];
    }
    return files.sort((a, b) => statSync(a).mtimeMs - statSync(b).mtimeMs || a.localeCompare(b)).map((f) => readFileSync(f));
  };
  return {
    dir,
    port,
    noPipeliningPort,
    ...(extraPort !== undefined ? { extraPort } : {}),
    log,
    delivered,
    waitDelivered: async (n, timeoutMs = 15_000) => {
      await waitFor(() => delivered().length >= n, `${n} delivered messages`, timeoutMs);
      return delivered();
    },
    stop: async () => {
      try {
        execFileSync('postfix', ['-c', dir, 'stop'], { stdio: 'ignore' });
      } catch {
        // not running any more
      }
      await stopChild(child, 10_000);
      await dovecot?.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * The message as a delivery agent stores it: LF line endings and dot-stuffing
 * removed. Delivered files start with the headers the server adds (Return-Path,
 * Received...), so a delivered message must END with exactly these bytes.
 */
export function asDelivered(wire: string): Buffer {
  return Buffer.from(
    wire
      .split('\r\n')
      .map((l) => (l.startsWith('.') ? l.slice(1) : l))
      .join('\n'),
    'latin1',
  );
}

/** Counts final reply lines ("DDD " or "DDD" at a line start) in what the client received. */
export function finalReplies(text: string): string[] {
  return text.split('\r\n').filter((l) => /^\d{3}( |$)/.test(l));
}

/** A raw SMTP client: waits for the greeting (unless told not to), sends bytes, waits for n final replies. */
export async function smtpRaw(port: number, steps: { send: string | Buffer; replies: number }[], waitGreeting = true): Promise<{ text: string; client: TestClient }> {
  const c = await tcpClient(port);
  if (waitGreeting) await waitReplies(c, 1);
  let want = waitGreeting ? 1 : 0;
  for (const s of steps) {
    c.sock.write(s.send);
    want += s.replies;
    await waitReplies(c, want);
  }
  return { text: c.received().toString('latin1'), client: c };
}

async function waitReplies(c: TestClient, n: number, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (finalReplies(c.received().toString('latin1')).length < n) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${n} replies; got ${JSON.stringify(c.received().toString('latin1'))}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
