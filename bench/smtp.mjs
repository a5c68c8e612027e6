// Part 4: Postfix smtp-source into smtp-sink through HAProxy (mode tcp) and
// through the standalone wrapper (--protocol smtp): message rate and bulk.
import { spawn, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { cpuSeconds, freePort, median, printTable, REPEAT, report, row, sleep, stopChild, TARGET_SMTP_BULK, TARGET_SMTP_MSGS, timeout, tmp, track, waitListening, which, WRAPPER } from './lib.mjs';

const SMTP_MSGS = { sessions: 20, messages: 2000, length: 1024 };
const SMTP_BULK = { sessions: 10, messages: 50, length: 1_000_000 };
const SMTP_WARMUP = { sessions: 20, messages: 300, length: 1024 };

/** True when the built wrapper knows --protocol smtp (validated like a real start). */
function wrapperHasSmtp() {
  const r = spawnSync(process.execPath, [WRAPPER, '--protocol', 'smtp', '--connect', '127.0.0.1:25', '--check'], { encoding: 'latin1', timeout: 10_000 });
  return r.status === 0;
}

/** Runs smtp-source against port; resolves seconds, and whether the sink counted every message. */
async function smtpRun(tool, port, load, sink) {
  const before = sink.count();
  const t0 = performance.now();
  const child = track(spawn(tool, ['-s', String(load.sessions), '-m', String(load.messages), '-l', String(load.length), `127.0.0.1:${port}`], { stdio: ['ignore', 'pipe', 'pipe'] }));
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

export async function benchSmtp() {
  console.log('\n== 4. SMTP: smtp-source -> (HAProxy mode tcp | wrapper standalone --protocol smtp) -> smtp-sink');
  const tools = { haproxy: which('haproxy'), source: which('smtp-source'), sink: which('smtp-sink') };
  const missing = Object.entries(tools).filter(([, p]) => !p).map(([k]) => k);
  if (missing.length) {
    console.log(`skipped: ${missing.join(', ')} not found (apt-get install -y haproxy postfix)`);
    row('smtp msgs: wrapper / haproxy', 'skipped', `>= ${TARGET_SMTP_MSGS}x`, null);
    row('smtp bulk: wrapper / haproxy', 'skipped', `>= ${TARGET_SMTP_BULK}x`, null);
    return;
  }
  const hasSmtp = wrapperHasSmtp();
  if (!hasSmtp) console.log('wrapper has no --protocol smtp yet: the SMTP target is skipped; the generic protocol is shown for information only');

  const sinkPort = await freePort();
  const sinkChild = track(spawn(tools.sink, ['-c', '-u', 'nobody', `127.0.0.1:${sinkPort}`, '256'], { stdio: ['ignore', 'pipe', 'pipe'] }));
  let counter = '';
  sinkChild.stdout.on('data', (b) => (counter = (counter + b).slice(-200)));
  sinkChild.stderr.on('data', (b) => process.stderr.write(`smtp-sink: ${b}`));
  const sink = {
    count: () => {
      const m = [...counter.matchAll(/mesg=(\d+)/g)].pop();
      return m ? Number(m[1]) : 0;
    },
  };
  const hport = await freePort();
  const cfg = join(tmp, 'haproxy.cfg');
  writeFileSync(
    cfg,
    ['global', '  maxconn 4096', 'defaults', '  mode tcp', '  timeout connect 5s', '  timeout client 60s', '  timeout server 60s',
      'listen smtp', `  bind 127.0.0.1:${hport}`, `  server sink 127.0.0.1:${sinkPort}`, ''].join('\n'),
  );
  const procs = [sinkChild];
  try {
    await waitListening(sinkPort, sinkChild, 'smtp-sink');
    const haproxy = track(spawn(tools.haproxy, ['-db', '-f', cfg], { stdio: ['ignore', 'ignore', 'inherit'] }));
    procs.push(haproxy);
    await waitListening(hport, haproxy, 'haproxy');
    const targets = { direct: sinkPort, haproxy: hport };
    const pids = { haproxy: haproxy.pid };
    const startWrapper = async (name, proto) => {
      const p = await freePort();
      const w = track(spawn(process.execPath, [WRAPPER, '--protocol', proto, '--listen', `127.0.0.1:${p}`, '--connect', `127.0.0.1:${sinkPort}`], { stdio: ['ignore', 'ignore', 'inherit'] }));
      procs.push(w);
      await waitListening(p, w, `wrapper (${proto})`);
      targets[name] = p;
      pids[name] = w.pid;
    };
    if (hasSmtp) await startWrapper('wrapper smtp', 'smtp');
    await startWrapper('wrapper generic', 'generic');

    // A standalone wrapper is a long-running daemon: let its JIT warm up first (not timed).
    for (const [name, port] of Object.entries(targets)) {
      const r = await smtpRun(tools.source, port, SMTP_WARMUP, sink);
      if (!r.ok) {
        report.failed = true;
        console.log(`LOST MESSAGES via ${name} (warm-up): sink counted ${r.got}/${SMTP_WARMUP.messages}, smtp-source exit ${r.code}\n${r.out.slice(-600)}`);
      }
    }
    const results = {};
    const cpuPer = {};
    for (const [label, load] of [['msgs', SMTP_MSGS], ['bulk', SMTP_BULK]]) {
      const secs = Object.fromEntries(Object.keys(targets).map((k) => [k, []]));
      const cpu = Object.fromEntries(Object.keys(targets).map((k) => [k, 0]));
      for (let i = 0; i < REPEAT; i++) {
        for (const [name, port] of Object.entries(targets)) {
          const before = pids[name] ? cpuSeconds(pids[name]) : 0;
          const r = await smtpRun(tools.source, port, load, sink);
          if (pids[name]) cpu[name] += cpuSeconds(pids[name]) - before;
          if (!r.ok) {
            report.failed = true;
            console.log(`LOST MESSAGES via ${name} (${label}): sink counted ${r.got}/${load.messages}, smtp-source exit ${r.code}\n${r.out.slice(-600)}`);
          }
          secs[name].push(r.secs);
        }
      }
      results[label] = Object.fromEntries(Object.entries(secs).map(([k, v]) => [k, median(v)]));
      cpuPer[label] = Object.fromEntries(Object.entries(cpu).map(([k, v]) => [k, v / (REPEAT * load.messages)]));
      console.log(`\n${label}: smtp-source -s ${load.sessions} -m ${load.messages} -l ${load.length} (${REPEAT} runs each, median)`);
      printTable(
        Object.entries(secs).map(([k, v]) => ({
          path: k,
          'msgs/s': (load.messages / results[label][k]).toFixed(0),
          'MB/s': ((load.messages * load.length) / 1e6 / results[label][k]).toFixed(1),
          'runs (s)': v.map((x) => x.toFixed(2)).join(' '),
          'proxy CPU/msg': pids[k] ? `${(cpuPer[label][k] * 1e6).toFixed(0)} µs` : '-',
        })),
        ['path', 'msgs/s', 'MB/s', 'runs (s)', 'proxy CPU/msg'],
      );
    }
    const ratio = (label, name) => results[label].haproxy / results[label][name]; // rate ratio = inverse time ratio
    if (hasSmtp) {
      row('smtp msgs/s: wrapper smtp / haproxy', `${ratio('msgs', 'wrapper smtp').toFixed(2)}x`, `>= ${TARGET_SMTP_MSGS}x`, ratio('msgs', 'wrapper smtp') >= TARGET_SMTP_MSGS);
      row('smtp bulk MB/s: wrapper smtp / haproxy', `${ratio('bulk', 'wrapper smtp').toFixed(2)}x`, `>= ${TARGET_SMTP_BULK}x`, ratio('bulk', 'wrapper smtp') >= TARGET_SMTP_BULK);
    } else {
      row('smtp msgs/s: wrapper smtp / haproxy', 'skipped (no smtp)', `>= ${TARGET_SMTP_MSGS}x`, null);
      row('smtp bulk MB/s: wrapper smtp / haproxy', 'skipped (no smtp)', `>= ${TARGET_SMTP_BULK}x`, null);
    }
    if (hasSmtp) {
      // CPU per message suffers far less than wall time from a busy machine.
      for (const label of ['msgs', 'bulk']) {
        const c = cpuPer[label]['haproxy'] / cpuPer[label]['wrapper smtp'];
        row(`smtp ${label} CPU/msg: haproxy / wrapper smtp`, `${c.toFixed(2)}x`, '-', null);
      }
    }
    row('smtp msgs/s: wrapper generic / haproxy', `${ratio('msgs', 'wrapper generic').toFixed(2)}x`, '-', null);
    row('smtp bulk MB/s: wrapper generic / haproxy', `${ratio('bulk', 'wrapper generic').toFixed(2)}x`, '-', null);
  } finally {
    for (const p of procs.reverse()) await stopChild(p);
  }
}
