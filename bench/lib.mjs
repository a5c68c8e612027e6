// Shared by the bench parts: settings from the environment, the mission's
// targets, child-process bookkeeping, bounded waits, /proc readings, stats and
// the summary table. Plain Node ESM, no dependencies.
import { spawnSync } from 'node:child_process';
import { accessSync, constants, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

function intEnv(name, dflt, min, max) {
  const v = process.env[name];
  if (v === undefined || v === '') return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min || n > max) throw new Error(`${name} must be an integer in ${min}..${max}`);
  return n;
}

export const WRAPPER = process.env.BENCH_WRAPPER || fileURLToPath(new URL('../dist/protowrap.js', import.meta.url));
export const RUNS = intEnv('BENCH_RUNS', 30, 1, 1000);
export const WARMUP = 3;
export const STREAM_MB = intEnv('BENCH_MB', 50, 1, 1000);
export const REPEAT = intEnv('BENCH_REPEAT', 5, 1, 20);

// The mission's targets (issue 2 and the mission statement).
export const TARGET_START_OVERHEAD = 0.1; // inetd mode adds <= 10% to a bare `node -e 0`
export const TARGET_SMTP_MSGS = 0.7; // >= 0.7x HAProxy's message rate
export const TARGET_SMTP_BULK = 0.5; // >= 50% of HAProxy's bulk throughput
// With --workers 2 (issue 11): the 20-at-once and 20-connection workloads, and bulk.
export const TARGET_WORKERS_MSGS = 0.7;
export const TARGET_WORKERS_BULK = 0.9;
// Issue 11: the wrapper's own cost over the Node floor (a bare pipe proxy), wall time per message workload.
export const TARGET_VS_FLOOR = { generic: 1.05, smtp: 1.15 };
// Issue 11: inetd start-to-banner against `node -e 0`, and peak RSS against bare node.
export const TARGET_START_RATIO = 1.25;
export const TARGET_START_RSS = 1.15;
// Issue 11: idle sessions in one standalone process.
export const TARGET_IDLE_RSS = 200e6;

const children = new Set();
export const tmp = mkdtempSync(join(tmpdir(), 'protowrap-bench-'));
/** The summary rows, and whether bytes or messages were lost. */
export const report = { rows: [], failed: false };

export function cleanup() {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  rmSync(tmp, { recursive: true, force: true });
}

/** spawn() that remembers the child so that cleanup() can stop it. */
export function track(child) {
  children.add(child);
  child.once('exit', () => children.delete(child));
  child.on('error', () => {});
  return child;
}

export function timeout(promise, ms, what) {
  let t;
  return Promise.race([
    promise,
    new Promise((_, rej) => (t = setTimeout(() => rej(new Error(`timed out after ${ms} ms: ${what}`)), ms))),
  ]).finally(() => clearTimeout(t));
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export function freePort() {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => res(port));
    });
  });
}

/** True once something listens on 127.0.0.1:port (read from /proc: no connection is made). */
export function listening(port) {
  const hex = port.toString(16).toUpperCase().padStart(4, '0');
  const text = readFileSync('/proc/net/tcp', 'latin1');
  return text.split('\n').some((l) => {
    const f = l.trim().split(/\s+/);
    return f[1] === `0100007F:${hex}` && f[3] === '0A';
  });
}

export async function waitListening(port, child, what) {
  const deadline = Date.now() + 10_000;
  while (!listening(port)) {
    if (child.exitCode !== null) throw new Error(`${what} exited (${child.exitCode}) before listening`);
    if (Date.now() > deadline) throw new Error(`${what} did not listen on ${port}`);
    await sleep(10);
  }
}

export function which(cmd) {
  for (const dir of [...(process.env.PATH ?? '').split(':'), '/usr/sbin', '/sbin']) {
    if (!dir) continue;
    try {
      accessSync(join(dir, cmd), constants.X_OK);
      return join(dir, cmd);
    } catch {
      // not here
    }
  }
  return null;
}

export function stopChild(child, signal = 'SIGTERM') {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  const gone = new Promise((r) => child.once('exit', r));
  child.kill(signal);
  return timeout(gone, 5000, `stop pid ${child.pid}`).catch(() => child.kill('SIGKILL'));
}

const CLK_TCK = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'latin1' }).stdout) || 100;

/** User + system CPU seconds of a live process, all its threads (/proc/PID/stat utime + stime). */
export function cpuSeconds(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / CLK_TCK;
  } catch {
    return NaN;
  }
}

/** CPU seconds of a process and its children (a --workers primary and its workers), read from /proc. */
export function cpuSecondsTree(pid) {
  let kids = [];
  try {
    kids = readFileSync(`/proc/${pid}/task/${pid}/children`, 'latin1').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    // no children file: the process alone
  }
  return kids.reduce((sum, k) => sum + cpuSecondsTree(k), cpuSeconds(pid));
}

export function procStatus(pid, key) {
  try {
    const m = readFileSync(`/proc/${pid}/status`, 'latin1').match(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm'));
    return m ? Number(m[1]) * 1024 : null;
  } catch {
    return null;
  }
}

export function quantile(sorted, q) {
  const i = (sorted.length - 1) * q;
  const lo = Math.floor(i);
  const hi = Math.ceil(i);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (i - lo);
}

export function stats(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return { median: quantile(s, 0.5), p90: quantile(s, 0.9), n: s.length };
}

export const median = (xs) => stats(xs).median;
export const ms = (x) => `${x.toFixed(2)} ms`;
export const pct = (x) => `${x >= 0 ? '+' : ''}${(x * 100).toFixed(1)}%`;
export const mb = (bytes) => `${(bytes / 1e6).toFixed(1)} MB`;

export function row(name, value, target, pass) {
  report.rows.push({ name, value, target, mark: pass === null ? 'info' : pass ? 'PASS' : 'FAIL' });
}

export function printTable(rows, cols) {
  const widths = cols.map((c) => Math.max(c.length, ...rows.map((r) => String(r[c]).length)));
  const line = (vals) => vals.map((v, i) => String(v).padEnd(widths[i])).join('  ').trimEnd();
  console.log(line(cols));
  console.log(line(widths.map((w) => '-'.repeat(w))));
  for (const r of rows) console.log(line(cols.map((c) => r[c])));
}
