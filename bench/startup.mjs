// Part 1: start-up in inetd mode, spawn until the server's banner reaches the
// client, against a bare `node -e 0` and against the server reached directly.
import { spawn } from 'node:child_process';
import { chmodSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import { mb, median, ms, pct, printTable, procStatus, row, RUNS, sleep, stats, TARGET_START_OVERHEAD, TARGET_START_RATIO, TARGET_START_RSS, timeout, tmp, track, WARMUP, WRAPPER } from './lib.mjs';

const BANNER = '220 bench ready\r\n';
const EXEC_FLOOR = fileURLToPath(new URL('./exec-floor.cjs', import.meta.url));

/** Spawns argv with piped stdio; resolves ms from spawn to `until` (banner or exit). */
function timeSpawn(argv, until) {
  return timeout(
    new Promise((resolve, reject) => {
      const t0 = performance.now();
      const child = track(spawn(argv[0], argv.slice(1), { stdio: ['pipe', 'pipe', 'pipe'] }));
      let out = '';
      let t1 = null;
      let err = '';
      child.stderr.on('data', (b) => (err += b));
      child.stdin.on('error', () => {});
      child.once('error', reject);
      if (until === 'banner') {
        child.stdout.on('data', (b) => {
          out += b.toString('latin1');
          if (t1 === null && out.includes(BANNER)) {
            t1 = performance.now();
            child.stdin.end(); // the session ends; the process should exit
          }
        });
      } else {
        child.stdout.resume();
        child.stdin.end();
      }
      child.once('close', (code) => {
        if (until === 'exit') return code === 0 ? resolve(performance.now() - t0) : reject(new Error(`${argv.join(' ')} exited ${code}: ${err}`));
        if (t1 === null) return reject(new Error(`no banner from ${argv.join(' ')} (exit ${code}): ${out}${err}`));
        resolve(t1 - t0);
      });
    }),
    10_000,
    argv.join(' '),
  );
}

/** Connect-to-banner time of a direct TCP connection. */
function timeConnect(port) {
  return timeout(
    new Promise((resolve, reject) => {
      const t0 = performance.now();
      const s = connect(port, '127.0.0.1');
      let out = '';
      s.on('error', reject);
      s.on('data', (b) => {
        out += b.toString('latin1');
        if (out.includes(BANNER)) {
          const t = performance.now() - t0;
          s.destroy();
          resolve(t);
        }
      });
    }),
    10_000,
    'direct connect',
  );
}

export async function benchStartup() {
  console.log(`\n== 1. start-up: spawn until the banner reaches the client (${RUNS} runs each, interleaved, ${WARMUP} warm-up)`);
  const script = join(tmp, 'banner.sh');
  writeFileSync(script, `#!/bin/sh\nprintf '220 bench ready\\r\\n'\nexec cat >/dev/null\n`);
  chmodSync(script, 0o755);
  const banner = createServer((s) => {
    s.on('error', () => {});
    s.end(BANNER);
    s.resume();
  });
  await new Promise((r) => banner.listen(0, '127.0.0.1', r));
  const port = banner.address().port;
  const node = process.execPath;
  const variants = [
    ['node -e 0 (spawn to exit)', () => timeSpawn([node, '-e', '0'], 'exit')],
    ['wrapper --version (spawn to exit)', () => timeSpawn([node, WRAPPER, '--version'], 'exit')],
    ['direct: banner.sh over pipes', () => timeSpawn([script], 'banner')],
    ['wrapper inetd --exec banner.sh', () => timeSpawn([node, WRAPPER, '--exec', script], 'banner')],
    // How inetd runs it: the file itself, through its #!/usr/bin/env node line.
    ['  same, run through its #! line', () => timeSpawn([WRAPPER, '--exec', script], 'banner')],
    ['direct: TCP connect to banner server', () => timeConnect(port)],
    ['wrapper inetd --connect tcp', () => timeSpawn([node, WRAPPER, '--connect', `127.0.0.1:${port}`], 'banner')],
    ['node exec floor (exec-floor.cjs)', () => timeSpawn([node, EXEC_FLOOR, script], 'banner')],
  ];
  const times = variants.map(() => []);
  try {
    for (let i = 0; i < WARMUP + RUNS; i++) {
      for (const [k, [, run]] of variants.entries()) {
        const t = await run();
        if (i >= WARMUP) times[k].push(t);
      }
    }
  } finally {
    banner.close();
  }
  const st = times.map(stats);
  printTable(
    variants.map(([name], k) => ({ variant: name, median: ms(st[k].median), p90: ms(st[k].p90) })),
    ['variant', 'median', 'p90'],
  );
  const node0 = st[0].median;
  const show = (label, wrap, direct) => {
    // What the wrapper adds to the server's own start, against what node alone costs.
    const net = (wrap - direct) / node0 - 1;
    console.log(
      `${label}: wrapper/node -e 0 = ${(wrap / node0).toFixed(2)}x (raw ${pct(wrap / node0 - 1)}), ` +
        `net of the direct path ${ms(direct)}: ${pct(net)} over node -e 0`,
    );
    row(`start-up ${label}: added over node -e 0`, pct(net), `<= ${pct(TARGET_START_OVERHEAD)}`, net <= TARGET_START_OVERHEAD);
  };
  console.log(`bundle load + CLI (wrapper --version vs node -e 0): ${pct(st[1].median / node0 - 1)}`);
  show('inetd --exec', st[3].median, st[2].median);
  show('inetd --connect', st[6].median, st[5].median);
  console.log(`the #! line (/usr/bin/env node) adds ${ms(st[4].median - st[3].median)} (median) to --exec`);
  // Issue 11: the plain ratio, start to banner against a bare node start.
  const r = st[3].median / node0;
  row('start-up inetd --exec: to banner / node -e 0', `${r.toFixed(2)}x`, `<= ${TARGET_START_RATIO}x`, r <= TARGET_START_RATIO);
  row('start-up inetd --connect: to banner / node -e 0', `${(st[6].median / node0).toFixed(2)}x`, '-', null);
  // The floor any Node exec proxy starts from (exec-floor.cjs), and the wrapper against it.
  row('start-up node exec floor: to banner / node -e 0', `${(st[7].median / node0).toFixed(2)}x`, '-', null);
  row('start-up inetd --exec: to banner / exec floor', `${(st[3].median / st[7].median).toFixed(2)}x`, '-', null);
  await benchStartupRss(script);
}

/** Peak RSS (VmHWM) of a process that holds its stdin open, read holdMs after `ready`. */
function peakRss(argv, ready, holdMs) {
  return timeout(
    new Promise((resolve, reject) => {
      const child = track(spawn(argv[0], argv.slice(1), { stdio: ['pipe', 'pipe', 'ignore'] }));
      child.once('error', reject);
      child.stdin.on('error', () => {});
      let out = '';
      let done = false;
      const take = async () => {
        if (done) return;
        done = true;
        await sleep(holdMs);
        const hwm = procStatus(child.pid, 'VmHWM');
        child.stdin.end();
        child.once('close', () => (hwm ? resolve(hwm) : reject(new Error(`no VmHWM for ${argv.join(' ')}`))));
      };
      child.stdout.on('data', (b) => {
        out += b.toString('latin1');
        if (ready === 'banner' && out.includes(BANNER)) void take();
      });
      if (ready === 'spawn') void take();
    }),
    10_000,
    argv.join(' '),
  );
}

/**
 * Peak RSS of a whole short inetd session (the wrapper with --exec banner.sh,
 * read 300 ms after the banner: syslog is open by then) against a bare node
 * process that only waits on its stdin, read 300 ms after spawn.
 */
async function benchStartupRss(script) {
  const node = process.execPath;
  const bare = [];
  const wrap = [];
  for (let i = 0; i < 5; i++) {
    bare.push(await peakRss([node, '-e', 'process.stdin.resume()'], 'spawn', 300));
    wrap.push(await peakRss([node, WRAPPER, '--exec', script], 'banner', 300));
  }
  const b = median(bare);
  const w = median(wrap);
  console.log(`peak RSS (VmHWM, median of 5): inetd session ${mb(w)}, bare node waiting on stdin ${mb(b)}`);
  row('start-up inetd peak RSS / bare node', `${(w / b).toFixed(2)}x (${mb(w)})`, `<= ${TARGET_START_RSS}x`, w / b <= TARGET_START_RSS);
}
