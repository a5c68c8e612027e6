import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * A real rsyslogd for the tests, receiving on a unix socket in a temp folder
 * (imuxsock, the machine's own /dev/log untouched) and writing each message as
 * one JSON line with the fields a test asserts on. libc's syslog() writes only
 * to /dev/log, so the wrapper runs under `withDevLog()`: a private mount
 * namespace where /dev/log is this socket (test/helpers/devlog-ns.sh).
 */

/** One message as rsyslogd parsed it. */
export interface SyslogRecord {
  /** Facility name: daemon, local3, ... */
  readonly facility: string;
  /** Severity name: err, warning, notice, info, debug. */
  readonly severity: string;
  /** The program name from the tag ("protowrap" from "protowrap[123]:"). */
  readonly program: string;
  /** The pid from the tag (LOG_PID). */
  readonly pid: string;
  /** The pid the kernel vouches for (SCM_CREDENTIALS), to compare with `pid`. */
  readonly trustedPid: string;
  /** The message text, without the leading space. */
  readonly msg: string;
}

export interface Rsyslog {
  readonly dir: string;
  readonly socket: string;
  /** Every message written so far. */
  records(): SyslogRecord[];
  /** Waits for a message that matches, polling the output file. */
  waitFor(pred: (r: SyslogRecord) => boolean, what: string, timeoutMs?: number): Promise<SyslogRecord>;
  /** Command and arguments that run argv with /dev/log = this rsyslogd's socket. */
  withDevLog(argv: readonly string[]): { cmd: string; args: string[] };
  stop(): Promise<void>;
}

const NS_SCRIPT = fileURLToPath(new URL('./devlog-ns.sh', import.meta.url));
let scratchCount = 0;

export async function startRsyslog(): Promise<Rsyslog> {
  const dir = mkdtempSync(join(tmpdir(), 'pw-rsyslog-'));
  const socket = join(dir, 'log.sock');
  const out = join(dir, 'messages.jsonl');
  const conf = join(dir, 'rsyslog.conf');
  // RateLimit off: a test sends bursts. ParseTrusted adds the sender's real pid.
  writeFileSync(
    conf,
    `global(workDirectory="${dir}")
module(load="imuxsock" SysSock.Use="off")
input(type="imuxsock" Socket="${socket}" RateLimit.Interval="0" ParseTrusted="on" Annotate="on")
template(name="pwjson" type="list" option.jsonf="on") {
  property(outname="facility" name="syslogfacility-text" format="jsonf")
  property(outname="severity" name="syslogseverity-text" format="jsonf")
  property(outname="program" name="programname" format="jsonf")
  property(outname="pid" name="procid" format="jsonf")
  property(outname="trustedPid" name="$!pid" format="jsonf")
  property(outname="msg" name="msg" format="jsonf")
}
*.* action(type="omfile" file="${out}" template="pwjson")
`,
  );
  const child: ChildProcess = spawn('rsyslogd', ['-n', '-f', conf, '-i', join(dir, 'rsyslogd.pid')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (b: Buffer) => (err += b.toString()));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const deadline = Date.now() + 10_000;
  while (!existsSync(socket)) {
    if (child.exitCode !== null) throw new Error(`rsyslogd exited ${child.exitCode}: ${err}`);
    if (Date.now() > deadline) throw new Error(`rsyslogd did not create its socket: ${err}`);
    await new Promise((r) => setTimeout(r, 20));
  }

  const records = (): SyslogRecord[] => {
    if (!existsSync(out)) return [];
    return readFileSync(out, 'utf8')
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => {
        const r = JSON.parse(l) as Record<string, string>;
        // rsyslog keeps the space after "tag:" as part of the message.
        const msg = r['msg'] ?? '';
        return {
          facility: r['facility'] ?? '',
          severity: r['severity'] ?? '',
          program: r['program'] ?? '',
          pid: r['pid'] ?? '',
          trustedPid: r['trustedpid'] ?? r['trustedPid'] ?? '',
          msg: msg.startsWith(' ') ? msg.slice(1) : msg,
        };
      });
  };

  return {
    dir,
    socket,
    records,
    async waitFor(pred, what, timeoutMs = 10_000) {
      const end = Date.now() + timeoutMs;
      for (;;) {
        const hit = records().find(pred);
        if (hit) return hit;
        if (Date.now() > end) {
          throw new Error(`no syslog message ${what}; got:\n${records().map((r) => JSON.stringify(r)).join('\n')}`);
        }
        await new Promise((r) => setTimeout(r, 20));
      }
    },
    withDevLog(argv) {
      const scratch = join(dir, `ns${scratchCount++}`);
      return { cmd: 'unshare', args: ['-m', 'sh', NS_SCRIPT, socket, scratch, ...argv] };
    },
    async stop() {
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
