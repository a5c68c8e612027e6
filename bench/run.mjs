// protowrap benchmark: `npm run bench` (builds first, then runs this file).
//
// Every figure is a ratio against a baseline measured in the same run on the
// same machine, never an absolute time: (1) spawn-to-banner start-up of the
// wrapper in inetd mode vs a direct connection vs a bare `node -e 0`,
// (2) throughput of a 50 MB line stream through the standalone wrapper vs
// socat vs direct, (3) the wrapper's peak RSS during (2), (4) smtp-source
// into smtp-sink directly, through HAProxy (mode tcp), the Node floor (a bare
// pipe proxy) and the wrapper (generic and smtp), four workloads, (5) 10,000
// idle and 1,000 active sessions in one standalone wrapper. Loopback only;
// every loop and every wait is bounded.
//
// Knobs (environment): BENCH_RUNS (start-up runs per variant, default 30),
// BENCH_MB (stream size, default 50), BENCH_REPEAT (stream and SMTP runs per
// target, default 5), BENCH_WRAPPER (another build to compare, default
// dist/protowrap.js). Exit code: 0 for a complete report (targets missed or
// not), 1 when bytes or messages were lost or the harness failed.
//
// The parts live in startup.mjs, stream.mjs, smtp.mjs and sessions.mjs; lib.mjs holds the
// settings, the targets and the shared helpers.
import { spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { accessSync, constants } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import { cleanup, printTable, report, track, which, WRAPPER } from './lib.mjs';
import { benchSessions } from './sessions.mjs';
import { benchSmtp } from './smtp.mjs';
import { benchStartup } from './startup.mjs';
import { benchStream } from './stream.mjs';
import { startSyslog, syslogUnavailable, withDevLog } from './syslog.mjs';

// NODE_EXTRA_CA_CERTS makes every node start parse a CA bundle (tens of ms
// here), inflating the `node -e 0` baseline and flattering every start-up
// ratio; inetd and xinetd start servers with a clean environment.
if (process.env.NODE_EXTRA_CA_CERTS) {
  delete process.env.NODE_EXTRA_CA_CERTS;
  console.log('NODE_EXTRA_CA_CERTS unset for this run (it would inflate the node -e 0 baseline)');
}

/** The whole run is cut off here, whatever hangs. */
const WATCHDOG_MS = 900_000;

const watchdog = setTimeout(() => {
  console.error(`bench: gave up after ${WATCHDOG_MS / 1000} s`);
  cleanup();
  process.exit(1);
}, WATCHDOG_MS);
watchdog.unref();
process.on('SIGINT', () => {
  cleanup();
  process.exit(130);
});

function version(cmd, args) {
  const r = spawnSync(cmd, args, { encoding: 'latin1', timeout: 5000 });
  return (r.stdout + r.stderr).split('\n').find((l) => l.trim())?.trim() ?? '?';
}

function socatVersion(socat) {
  const r = spawnSync(socat, ['-V'], { encoding: 'latin1', timeout: 5000 });
  return r.stdout.match(/socat version (\S+)/)?.[1] ?? '?';
}

/**
 * Runs this script again with a real syslog daemon behind /dev/log (see
 * syslog.mjs); resolves with its exit code, or null when that cannot be done
 * here (then the bench runs as it is, and says so).
 */
async function underSyslog() {
  if (process.env.BENCH_IN_NS) return null;
  const why = syslogUnavailable();
  if (why) {
    console.log(`syslog: none (${why}): every log line of the wrapper costs a failed connect to /dev/log`);
    return null;
  }
  const sys = await startSyslog();
  const [cmd, args] = withDevLog(sys.socket, [process.execPath, fileURLToPath(import.meta.url)]);
  const child = track(spawn(cmd, args, { stdio: 'inherit', env: { ...process.env, BENCH_IN_NS: '1' } }));
  const code = await new Promise((r) => child.once('exit', (c, sig) => r(c ?? (sig ? 1 : 0))));
  console.log(`syslog: rsyslogd wrote ${sys.lines()} lines from the run`);
  sys.child.kill('SIGTERM');
  return code;
}

async function main() {
  const outer = await underSyslog();
  if (outer !== null) {
    cleanup();
    process.exitCode = outer;
    return;
  }
  accessSync(WRAPPER, constants.R_OK);
  const socat = which('socat');
  const haproxy = which('haproxy');
  console.log(`protowrap bench: node ${process.version}, ${cpus().length} CPUs (${cpus()[0]?.model ?? '?'})`);
  console.log(`wrapper: ${WRAPPER}`);
  if (process.env.BENCH_IN_NS) console.log('syslog: a real rsyslogd behind /dev/log (private mount namespace), writing every line to a file');
  console.log(`socat: ${socat ? socatVersion(socat) : 'missing'}; haproxy: ${haproxy ? version(haproxy, ['-v']) : 'missing'}`);
  const load = loadavg()[0];
  console.log(`load average ${load.toFixed(2)}${load > 0.5 ? ': the machine is busy, expect noisy figures (variants are interleaved, so ratios suffer least)' : ''}`);
  const t0 = performance.now();
  try {
    await benchStartup();
    await benchStream();
    await benchSmtp();
    await benchSessions();
  } finally {
    cleanup();
  }
  console.log(`\n== summary (ratios against baselines from this run; took ${((performance.now() - t0) / 1000).toFixed(0)} s)`);
  printTable(report.rows, ['name', 'value', 'target', 'mark']);
  console.log(`load average now ${loadavg()[0].toFixed(2)}`);
  if (report.failed) console.log('\nDATA WAS LOST OR ALTERED: see above');
  process.exitCode = report.failed ? 1 : 0;
}

main().catch((err) => {
  console.error(`bench failed: ${err.stack ?? err}`);
  cleanup();
  process.exit(1);
});
