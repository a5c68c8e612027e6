// Part 4: Postfix smtp-source into smtp-sink, directly and through four
// proxies, interleaved run by run: HAProxy (mode tcp), the Node floor (a bare
// pipe proxy, pipe-proxy.mjs), the standalone wrapper with --protocol generic
// and with --protocol smtp (full validation), alone and with --workers 2.
// Four workloads (issue 11).
import { spawn, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import {
  cpuSecondsTree, freePort, median, printTable, REPEAT, report, row, sleep, stopChild, TARGET_SMTP_BULK, TARGET_SMTP_MSGS, TARGET_VS_FLOOR, TARGET_WORKERS_BULK, TARGET_WORKERS_MSGS,
  timeout, tmp, track, waitListening, which, WRAPPER,
} from './lib.mjs';

/** smtp-source's flags per workload: -s sessions at once, -m messages in all, -l bytes each, -d keep the connection. */
export const WORKLOADS = [
  { label: 'newconn', what: '300 msgs, a new connection each', sessions: 1, messages: 300, length: 1024, reuse: false },
  { label: 'parallel', what: '2000 msgs, 20 at once', sessions: 20, messages: 2000, length: 1024, reuse: false },
  { label: 'reuse', what: '10000 msgs on 20 connections', sessions: 20, messages: 10000, length: 1024, reuse: true },
  { label: 'bulk', what: '10 x 10 MB on one connection', sessions: 1, messages: 10, length: 10_000_000, reuse: true },
];
const SMTP_WARMUP = { sessions: 20, messages: 300, length: 1024, reuse: false };
const PIPE_PROXY = fileURLToPath(new URL('./pipe-proxy.mjs', import.meta.url));

/** True when the built wrapper knows --protocol smtp (validated like a real start). */
function wrapperHasSmtp() {
  const r = spawnSync(process.execPath, [WRAPPER, '--protocol', 'smtp', '--connect', '127.0.0.1:25', '--check'], { encoding: 'latin1', timeout: 10_000 });
  return r.status === 0;
}

/** Runs smtp-source against port; resolves seconds, and whether the sink counted every message. */
async function smtpRun(tool, port, load, sink) {
  const before = sink.count();
  const t0 = performance.now();
  const args = ['-s', String(load.sessions), '-m', String(load.messages), '-l', String(load.length)];
  if (load.reuse) args.unshift('-d');
  const child = track(spawn(tool, [...args, `127.0.0.1:${port}`], { stdio: ['ignore', 'pipe', 'pipe'] }));
  let out = '';
  child.stdout.on('data', (b) => (out += b));
  child.stderr.on('data', (b) => (out += b));
  const code = await timeout(new Promise((r) => child.once('exit', r)), 120_000, `smtp-source to ${port}`).catch(async (e) => {
    await stopChild(child, 'SIGKILL');
    throw e;
  });
  const secs = (performance.now() - t0) / 1000;
  // smtp-sink updates its counter after QUIT; give the last one a moment.
  const deadline = Date.now() + 2000;
  while (sink.count() - before < load.messages && Date.now() < deadline) await sleep(5);
  const got = sink.count() - before;
  return { secs, ok: code === 0 && got === load.messages, got, code, out };
}

/** smtp-sink on a free port, with its message counter (-c). */
export async function startSink(tool) {
  const port = await freePort();
  const child = track(spawn(tool, ['-c', '-u', 'nobody', `127.0.0.1:${port}`, '1024'], { stdio: ['ignore', 'pipe', 'pipe'] }));
  let counter = '';
  child.stdout.on('data', (b) => (counter = (counter + b).slice(-200)));
  child.stderr.on('data', (b) => process.stderr.write(`smtp-sink: ${b}`));
  await waitListening(port, child, 'smtp-sink');
  return {
    port,
    child,
    count: () => {
      const m = [...counter.matchAll(/mesg=(\d+)/g)].pop();
      return m ? Number(m[1]) : 0;
    },
  };
}

export async function benchSmtp() {
  console.log('\n== 4. SMTP: smtp-source -> (direct | HAProxy mode tcp | Node floor | wrapper generic | wrapper smtp) -> smtp-sink');
  const tools = { haproxy: which('haproxy'), source: which('smtp-source'), sink: which('smtp-sink') };
  const missing = Object.entries(tools).filter(([, p]) => !p).map(([k]) => k);
  if (missing.length) {
    console.log(`skipped: ${missing.join(', ')} not found (apt-get install -y haproxy postfix)`);
    row('smtp: all rows', 'skipped', '-', null);
    return;
  }
  const hasSmtp = wrapperHasSmtp();
  if (!hasSmtp) console.log('wrapper has no --protocol smtp: its rows are skipped');

  const sink = await startSink(tools.sink);
  const sinkPort = sink.port;
  const hport = await freePort();
  const cfg = join(tmp, 'haproxy.cfg');
  writeFileSync(
    cfg,
    ['global', '  maxconn 4096', 'defaults', '  mode tcp', '  timeout connect 5s', '  timeout client 60s', '  timeout server 60s',
      'listen smtp', `  bind 127.0.0.1:${hport}`, `  server sink 127.0.0.1:${sinkPort}`, ''].join('\n'),
  );
  const procs = [sink.child];
  try {
    const haproxy = track(spawn(tools.haproxy, ['-db', '-f', cfg], { stdio: ['ignore', 'ignore', 'inherit'] }));
    procs.push(haproxy);
    await waitListening(hport, haproxy, 'haproxy');
    const targets = { direct: sinkPort, haproxy: hport };
    const pids = { haproxy: haproxy.pid };
    const startNode = async (name, args, env = process.env) => {
      const p = await freePort();
      const w = track(spawn(process.execPath, args(p), { stdio: ['ignore', 'ignore', 'inherit'], env }));
      procs.push(w);
      await waitListening(p, w, name);
      targets[name] = p;
      pids[name] = w.pid;
    };
    await startNode('node floor', (p) => [PIPE_PROXY, String(p), String(sinkPort)]);
    await startNode('wrapper generic', (p) => [WRAPPER, '--protocol', 'generic', '--listen', `127.0.0.1:${p}`, '--connect', `127.0.0.1:${sinkPort}`]);
    if (hasSmtp) await startNode('wrapper smtp', (p) => [WRAPPER, '--protocol', 'smtp', '--listen', `127.0.0.1:${p}`, '--connect', `127.0.0.1:${sinkPort}`]);
    if (hasSmtp && process.env.BENCH_TRY_SCHED_NONE) await startNode('workers 2 sched none', (p) => [WRAPPER, '--protocol', 'smtp', '--workers', '2', '--listen', `127.0.0.1:${p}`, '--connect', `127.0.0.1:${sinkPort}`], { ...process.env, NODE_CLUSTER_SCHED_POLICY: 'none' });
    // The primary listens once its first worker does; the warm-up below reaches both (round robin).
    if (hasSmtp) await startNode('smtp workers 2', (p) => [WRAPPER, '--protocol', 'smtp', '--workers', '2', '--listen', `127.0.0.1:${p}`, '--connect', `127.0.0.1:${sinkPort}`]);

    // A standalone proxy is a long-running daemon: let its JIT warm up first (not timed).
    for (const [name, port] of Object.entries(targets)) {
      for (const load of [SMTP_WARMUP, { ...SMTP_WARMUP, reuse: true }]) {
        const r = await smtpRun(tools.source, port, load, sink);
        if (!r.ok) {
          report.failed = true;
          console.log(`LOST MESSAGES via ${name} (warm-up): sink counted ${r.got}/${load.messages}, smtp-source exit ${r.code}\n${r.out.slice(-600)}`);
        }
      }
    }
    const secs = Object.fromEntries(WORKLOADS.map((w) => [w.label, Object.fromEntries(Object.keys(targets).map((k) => [k, []]))]));
    const cpu = Object.fromEntries(WORKLOADS.map((w) => [w.label, Object.fromEntries(Object.keys(targets).map((k) => [k, 0]))]));
    // Interleaved: run i of every workload through every path, then run i + 1.
    for (let i = 0; i < REPEAT; i++) {
      for (const load of WORKLOADS) {
        for (const [name, port] of Object.entries(targets)) {
          const before = pids[name] ? cpuSecondsTree(pids[name]) : 0;
          const r = await smtpRun(tools.source, port, load, sink);
          if (pids[name]) cpu[load.label][name] += cpuSecondsTree(pids[name]) - before;
          if (!r.ok) {
            report.failed = true;
            console.log(`LOST MESSAGES via ${name} (${load.label}): sink counted ${r.got}/${load.messages}, smtp-source exit ${r.code}\n${r.out.slice(-600)}`);
          }
          secs[load.label][name].push(r.secs);
        }
      }
    }
    for (const load of WORKLOADS) {
      const med = Object.fromEntries(Object.entries(secs[load.label]).map(([k, v]) => [k, median(v)]));
      const cpuPer = Object.fromEntries(Object.entries(cpu[load.label]).map(([k, v]) => [k, v / (REPEAT * load.messages)]));
      console.log(`\n${load.label} (${load.what}): smtp-source${load.reuse ? ' -d' : ''} -s ${load.sessions} -m ${load.messages} -l ${load.length} (${REPEAT} runs each, median)`);
      printTable(
        Object.entries(secs[load.label]).map(([k, v]) => ({
          path: k,
          's (median)': med[k].toFixed(2),
          'x floor': (med[k] / med['node floor']).toFixed(2),
          'x haproxy': (med[k] / med.haproxy).toFixed(2),
          'runs (s)': v.map((x) => x.toFixed(2)).join(' '),
          'proxy CPU/msg': pids[k] ? `${(cpuPer[k] * 1e6).toFixed(0)} µs` : '-',
          'CPU x floor': pids[k] ? (cpuPer[k] / cpuPer['node floor']).toFixed(2) : '-',
        })),
        ['path', 's (median)', 'x floor', 'x haproxy', 'runs (s)', 'proxy CPU/msg', 'CPU x floor'],
      );
      const message = load.label !== 'bulk';
      const vsFloor = (name, target) => {
        const t = med[name] / med['node floor'];
        row(`smtp ${load.label}: ${name} time / floor`, `${t.toFixed(2)}x`, message ? `<= ${target}x` : '-', message ? t <= target : null);
        row(`smtp ${load.label}: ${name} CPU/msg / floor`, `${(cpuPer[name] / cpuPer['node floor']).toFixed(2)}x`, '-', null);
      };
      vsFloor('wrapper generic', TARGET_VS_FLOOR.generic);
      if (hasSmtp) vsFloor('wrapper smtp', TARGET_VS_FLOOR.smtp);
      row(`smtp ${load.label}: node floor time / haproxy`, `${(med['node floor'] / med.haproxy).toFixed(2)}x`, '-', null);
      if (hasSmtp) {
        // The older targets (issue 2): rate against HAProxy's = HAProxy's time / ours.
        const rate = med.haproxy / med['wrapper smtp'];
        const target = message ? TARGET_SMTP_MSGS : TARGET_SMTP_BULK;
        row(`smtp ${load.label}: wrapper smtp rate / haproxy`, `${rate.toFixed(2)}x`, `>= ${target}x`, rate >= target);
        // --workers 2 (issue 11): 20 at once, 20 connections and bulk have a target; newconn (one at a time) none.
        const w2 = med.haproxy / med['smtp workers 2'];
        const t2 = load.label === 'bulk' ? TARGET_WORKERS_BULK : load.label === 'newconn' ? null : TARGET_WORKERS_MSGS;
        row(`smtp ${load.label}: smtp workers 2 rate / haproxy`, `${w2.toFixed(2)}x`, t2 === null ? '-' : `>= ${t2}x`, t2 === null ? null : w2 >= t2);
      }
    }
  } finally {
    for (const p of procs.reverse()) await stopChild(p);
  }
}
