// Part 1: start-up in inetd mode, spawn until the server's banner reaches the
// client, against a bare `node -e 0` and against the server reached directly.
import { spawn } from 'node:child_process';
import { chmodSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { ms, pct, printTable, row, RUNS, stats, TARGET_START_OVERHEAD, timeout, tmp, track, WARMUP, WRAPPER } from './lib.mjs';

const BANNER = '220 bench ready\r\n';

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
}
