// Part 5: many sessions in one standalone wrapper (--protocol smtp) in front
// of a tiny SMTP server (tiny-smtp.mjs). (a) N idle sessions (default 10,000; a client and a
// server socket each): the wrapper's RSS once all are open, against its RSS
// at start. (b) 1,000 sessions at once, each sending messages: no errors.
// Every process here runs under `ulimit -n` raised (the bench runs as root
// or with a hard limit high enough), and the wrapper's maxConnections is lifted.
import { spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { freePort, mb, procStatus, report, row, sleep, stopChild, TARGET_IDLE_RSS, timeout, track, waitListening, WRAPPER } from './lib.mjs';

const WANT_IDLE = Number(process.env.BENCH_IDLE_SESSIONS || 10_000);
const ACTIVE = Number(process.env.BENCH_ACTIVE_SESSIONS || 1_000);
/** The hard fd limit: without CAP_SYS_RESOURCE (a container) even root cannot raise it. */
const HARD = (() => {
  const h = spawnSync('/bin/sh', ['-c', 'ulimit -Hn'], { encoding: 'latin1' }).stdout.trim();
  return h === 'unlimited' ? Infinity : Number(h) || 1024;
})();
const NOFILE = Math.min(HARD, Math.max(65536, WANT_IDLE * 2 + 1000));
/** The wrapper holds two sockets a session and some 30 other descriptors. */
const IDLE = Math.min(WANT_IDLE, Math.floor((NOFILE - 100) / 2));
const TINY = fileURLToPath(new URL('./tiny-smtp.mjs', import.meta.url));
const CLIENTS = fileURLToPath(new URL('./session-clients.mjs', import.meta.url));

/** spawn() through sh with the fd limit raised (ulimit -n fails loudly if the hard limit is lower). */
function spawnUlimit(argv, stdio) {
  return track(spawn('/bin/sh', ['-c', `ulimit -n ${NOFILE} && exec "$@"`, 'sh', ...argv], { stdio }));
}

/** Collects the JSON lines a client process prints. */
function jsonLines(child) {
  const waiters = [];
  let buf = '';
  child.stdout.on('data', (b) => {
    buf += b;
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      waiters.shift()?.(JSON.parse(line));
    }
  });
  return () => new Promise((r) => waiters.push(r));
}

export async function benchSessions() {
  if (IDLE < WANT_IDLE) console.log(`\nthe hard fd limit is ${HARD} (ulimit -Hn): ${IDLE} idle sessions instead of ${WANT_IDLE}; the RSS row is scaled to ${WANT_IDLE}`);
  console.log(`\n== 5. many sessions: ${IDLE} idle, then ${ACTIVE} active SMTP sessions through one standalone wrapper (--protocol smtp) into a tiny SMTP server`);
  // Postfix's smtp-sink stops accepting at about 256 open sessions: a tiny server instead (tiny-smtp.mjs).
  const sink = spawnUlimit([process.execPath, TINY], ['ignore', 'pipe', 'inherit']);
  const procs = [sink];
  try {
    const { port: sinkPort } = await timeout(jsonLines(sink)(), 10_000, 'tiny-smtp start');
    const wport = await freePort();
    const wrapper = spawnUlimit(
      [process.execPath, WRAPPER, '--protocol', 'smtp', '--listen', `127.0.0.1:${wport}`, '--connect', `127.0.0.1:${sinkPort}`, '--max-connections', String(Math.max(IDLE, ACTIVE) + 100)],
      ['ignore', 'ignore', 'inherit'],
    );
    procs.push(wrapper);
    await waitListening(wport, wrapper, 'wrapper');
    // One session first, so that the code it runs is loaded before the start figure.
    await runClients('active', 1, wport, 60_000);
    await sleep(200);
    const rssStart = procStatus(wrapper.pid, 'VmRSS');

    const clients = spawnUlimit([process.execPath, CLIENTS, 'idle', String(IDLE), String(wport)], ['pipe', 'pipe', 'inherit']);
    procs.push(clients);
    const next = jsonLines(clients);
    const t0 = Date.now();
    const ready = await timeout(next(), 180_000, `${IDLE} idle sessions`);
    const openSecs = (Date.now() - t0) / 1000;
    await sleep(1000);
    const rssIdle = procStatus(wrapper.pid, 'VmRSS');
    const hwm = procStatus(wrapper.pid, 'VmHWM');
    clients.stdin.end();
    const closed = await timeout(next(), 30_000, 'idle clients closing');
    await stopChild(clients);
    const perSession = (rssIdle - rssStart) / ready.ready;
    console.log(
      `idle: ${ready.ready}/${IDLE} sessions open in ${openSecs.toFixed(1)} s (${ready.errors} failed${ready.firstError ? `, first: ${ready.firstError}` : ''}; ` +
        `${closed.closedEarly} closed before the end); wrapper RSS ${mb(rssStart)} at start, ${mb(rssIdle)} with all open (VmHWM ${mb(hwm)}): ` +
        `${(perSession / 1024).toFixed(1)} KB a session`,
    );
    if (ready.ready !== IDLE || closed.closedEarly) report.failed = true;
    // Scaled to WANT_IDLE when the fd limit cut the count (the per-session cost is linear).
    const rssWant = rssStart + perSession * WANT_IDLE;
    const scaled = IDLE < WANT_IDLE ? ` (${mb(rssIdle)} measured with ${IDLE})` : '';
    row(`sessions: RSS with ${WANT_IDLE} idle`, `${mb(rssWant)}${scaled}, ${(perSession / 1024).toFixed(1)} KB each`, `< ${mb(TARGET_IDLE_RSS)}`, ready.ready === IDLE && rssWant < TARGET_IDLE_RSS);

    // Let the wrapper see the idle sessions end before the active part.
    await sleep(2000);
    const act = await runClients('active', ACTIVE, wport, 180_000);
    console.log(`active: ${act.ok}/${ACTIVE} sessions of 5 messages each without error (${act.errors} errors${act.firstError ? `, first: ${act.firstError}` : ''}) in ${act.secs.toFixed(1)} s`);
    if (act.errors) report.failed = true;
    row(`sessions: ${ACTIVE} active, errors`, String(act.errors), '0', act.errors === 0);
  } finally {
    for (const p of procs.reverse()) await stopChild(p);
  }
}

async function runClients(mode, n, port, ms) {
  const c = spawnUlimit([process.execPath, CLIENTS, mode, String(n), String(port)], ['ignore', 'pipe', 'inherit']);
  const next = jsonLines(c);
  const t0 = Date.now();
  try {
    const r = await timeout(next(), ms, `${n} ${mode} sessions`);
    return { ...r, secs: (Date.now() - t0) / 1000 };
  } finally {
    await stopChild(c);
  }
}
