// A real syslog daemon for the bench. The wrapper logs every session (and
// SMTP every accepted message) through syslog(3), which writes only to
// /dev/log. On a machine without a syslog daemon (this container) each line
// costs a failed socket + connect inside glibc, a cost no real deployment
// pays; with one, it costs the send. So, where it can, run.mjs starts
// rsyslogd on a socket in its temp folder, writing every line to a file as
// a real mail server's syslog would, and runs itself again inside a private
// mount namespace where /dev/log is that socket (test/helpers/devlog-ns.sh,
// the tests' own way; the machine's /dev is untouched). rsyslogd's CPU is
// on the same two cores as everything else, as it would be in production.
// BENCH_SYSLOG=none skips it: then the figures include the failed connects.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { sleep, tmp, track, which } from './lib.mjs';

const NS_SCRIPT = fileURLToPath(new URL('../test/helpers/devlog-ns.sh', import.meta.url));

/** Why the bench cannot give the wrapper a syslog daemon here, or null when it can. */
export function syslogUnavailable() {
  if (process.env.BENCH_SYSLOG === 'none') return 'BENCH_SYSLOG=none';
  if (!which('rsyslogd')) return 'no rsyslogd';
  if (!which('unshare')) return 'no unshare (util-linux)';
  if (process.getuid?.() !== 0) return 'not root (a private mount namespace needs it)';
  return null;
}

/** Starts rsyslogd; resolves once its socket exists. */
export async function startSyslog() {
  const dir = join(tmp, 'syslog');
  mkdirSync(dir, { recursive: true });
  const socket = join(dir, 'log.sock');
  const out = join(dir, 'messages');
  const conf = join(dir, 'rsyslog.conf');
  // No rate limit: a benchmark is a burst. The traditional file format, as /var/log/mail.log.
  writeFileSync(
    conf,
    `global(workDirectory="${dir}")
module(load="imuxsock" SysSock.Use="off")
input(type="imuxsock" Socket="${socket}" RateLimit.Interval="0")
*.* action(type="omfile" file="${out}" template="RSYSLOG_TraditionalFileFormat")
`,
  );
  const child = track(spawn('rsyslogd', ['-n', '-f', conf, '-i', join(dir, 'rsyslogd.pid')], { stdio: ['ignore', 'ignore', 'pipe'] }));
  let err = '';
  child.stderr.on('data', (b) => (err += b));
  for (const end = Date.now() + 10_000; !existsSync(socket); ) {
    if (child.exitCode !== null) throw new Error(`rsyslogd exited ${child.exitCode}: ${err}`);
    if (Date.now() > end) throw new Error(`rsyslogd made no socket: ${err}`);
    await sleep(20);
  }
  return {
    socket,
    /** Lines written so far (rsyslogd's file). */
    lines() {
      if (!existsSync(out)) return 0;
      const text = readFileSync(out, 'latin1');
      let n = 0;
      for (let i = text.indexOf('\n'); i >= 0; i = text.indexOf('\n', i + 1)) n++;
      return n;
    },
    child,
  };
}

/** argv run with /dev/log = socket, in a mount namespace of its own. */
export function withDevLog(socket, argv) {
  return ['unshare', ['-m', 'sh', NS_SCRIPT, socket, join(tmp, 'syslog', 'olddev'), ...argv]];
}
