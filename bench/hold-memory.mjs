// Held-body memory (issue 13 item 6): `npm run bench:hold` (builds first).
//
// The standalone wrapper (--protocol smtp, maxMsgSize set so bodies are held,
// bodyHoldTotal and spoolMax at their defaults, spoolDir in the bench's temp
// directory) in front of Postfix's smtp-sink. HOLD_SESSIONS (default 40)
// clients each send a ~10 MB body slowly, so that all of them are held at
// once; the wrapper's RSS (/proc/PID/status VmRSS) is read at start (after
// one warm-up message), polled for its peak while the bodies are held, and
// read again HOLD_SETTLE_S (default 5) seconds after every session has
// ended. Also shown: spool files open at the peak, VmHWM, and whether every
// message was accepted. A build that does not know bodyHoldTotal (e.g.
// BENCH_WRAPPER=old/dist/protowrap.js) runs with maxMsgSize only, for the
// before/after comparison. Plain Node, no dependencies; every wait bounded.
import { spawn, spawnSync } from 'node:child_process';
import { readdirSync, readlinkSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { cleanup, freePort, mb, printTable, procStatus, sleep, stopChild, timeout, tmp, track, waitListening, which, WRAPPER } from './lib.mjs';

function intEnv(name, dflt, min, max) {
  const n = Number(process.env[name] ?? dflt);
  if (!Number.isInteger(n) || n < min || n > max) throw new Error(`${name} must be an integer in ${min}..${max}`);
  return n;
}

const SESSIONS = intEnv('HOLD_SESSIONS', 40, 1, 250);
const LINE = 'QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ejAxMjM0NTY3\r\n';
/** Whole lines only: the body's last line must end with CRLF for the "." after it to end the data. */
const BODY = Math.floor(intEnv('HOLD_BODY', 10_000_000, 1000, 10_400_000) / LINE.length) * LINE.length;
const SETTLE_S = intEnv('HOLD_SETTLE_S', 5, 0, 120);
/** Each client writes a chunk this often: 10 MB take about 8 s, so that all bodies are held together. */
const CHUNK = 128 * 1024;
const CHUNK_EVERY_MS = 100;

/** About 64 KiB of message text in whole lines (base64-like, no dots at line starts). */
function textBlock() {
  return Buffer.from(LINE.repeat(Math.floor(65536 / LINE.length)), 'latin1');
}

/** One client: EHLO, MAIL, RCPT, DATA, a slow body, ".", QUIT; resolves with the reply codes it read. */
function client(port, block) {
  return new Promise((resolve, reject) => {
    const s = connect({ port, host: '127.0.0.1' });
    let text = '';
    let stage = 0;
    const codes = () => text.split('\r\n').filter((l) => /^\d{3} /.test(l)).map((l) => l.slice(0, 3));
    s.on('error', reject);
    s.on('close', () => resolve(codes()));
    s.on('data', async (b) => {
      text += b.toString('latin1');
      const n = codes().length;
      if (stage === 0 && n >= 1) {
        stage = 1;
        s.write('EHLO bench.example\r\nMAIL FROM:<a@bench.example>\r\nRCPT TO:<b@bench.example>\r\nDATA\r\n');
      } else if (stage === 1 && n >= 5) {
        stage = 2;
        let sent = 0;
        while (sent < BODY) {
          let burst = 0;
          while (burst < CHUNK && sent < BODY) {
            const piece = block.subarray(0, Math.min(block.length, BODY - sent));
            if (!s.write(piece)) await new Promise((r) => s.once('drain', r));
            sent += piece.length;
            burst += piece.length;
          }
          await sleep(CHUNK_EVERY_MS);
        }
        s.write('.\r\nQUIT\r\n');
      }
    });
  });
}

/** Spool files the wrapper has open in dir (unlinked: their links end in "(deleted)"). */
function spoolFds(pid, dir) {
  let n = 0;
  try {
    for (const fd of readdirSync(`/proc/${pid}/fd`)) {
      try {
        if (readlinkSync(`/proc/${pid}/fd/${fd}`).startsWith(`${dir}/`)) n++;
      } catch {
        // closed meanwhile
      }
    }
  } catch {
    // the process is gone
  }
  return n;
}

async function main() {
  const sinkTool = which('smtp-sink');
  if (!sinkTool) {
    console.log('skipped: smtp-sink not found (apt-get install -y postfix)');
    return;
  }
  const spoolDir = join(tmp, 'spool');
  const cfg = join(tmp, 'hold.toml');
  writeFileSync(cfg, `protocol = "smtp"\nmaxMsgSize = 10485760\nspoolDir = "${spoolDir}"\n`);
  const knowsBudget = spawnSync(process.execPath, [WRAPPER, '-f', cfg, '--connect', '127.0.0.1:25', '--check'], { encoding: 'latin1', timeout: 10_000 }).status === 0;
  if (!knowsBudget) writeFileSync(cfg, 'protocol = "smtp"\nmaxMsgSize = 10485760\n');
  console.log(`hold-memory bench: node ${process.version}, wrapper ${WRAPPER}`);
  console.log(`${SESSIONS} sessions x ${mb(BODY)} held bodies, ${knowsBudget ? 'bodyHoldTotal/spoolMax defaults, spoolDir in the bench dir' : 'a build without bodyHoldTotal (maxMsgSize only)'}`);

  const sinkPort = await freePort();
  const sink = track(spawn(sinkTool, ['-u', 'nobody', `127.0.0.1:${sinkPort}`, '100'], { stdio: ['ignore', 'ignore', 'inherit'] }));
  const port = await freePort();
  const w = track(spawn(process.execPath, [WRAPPER, '-f', cfg, '--listen', `127.0.0.1:${port}`, '--connect', `127.0.0.1:${sinkPort}`], { stdio: ['ignore', 'ignore', 'inherit'] }));
  try {
    await waitListening(sinkPort, sink, 'smtp-sink');
    await waitListening(port, w, 'wrapper');
    const block = textBlock();
    const rssNow = () => procStatus(w.pid, 'VmRSS');
    const idle = rssNow();
    // One small held message first: the start figure includes the code paths and buffers of a session.
    const warm = await timeout(clientSmall(port), 10_000, 'warm-up message');
    if (!warm.includes('250')) throw new Error(`warm-up message not accepted: ${warm}`);
    await sleep(1000);
    const start = rssNow();
    let peak = start;
    let peakFiles = 0;
    const poll = setInterval(() => {
      peak = Math.max(peak, rssNow() ?? 0);
      peakFiles = Math.max(peakFiles, spoolFds(w.pid, spoolDir));
    }, 100);
    const t0 = Date.now();
    const results = await timeout(Promise.all(Array.from({ length: SESSIONS }, () => client(port, block))), 180_000, 'held sessions');
    const secs = (Date.now() - t0) / 1000;
    clearInterval(poll);
    const accepted = results.filter((c) => c.join(' ') === '220 250 250 250 354 250 221').length;
    await sleep(SETTLE_S * 1000);
    const after = rssNow();
    const hwm = procStatus(w.pid, 'VmHWM');
    const filesAfter = spoolFds(w.pid, spoolDir);
    console.log(`\n${SESSIONS} sessions took ${secs.toFixed(1)} s; ${accepted}/${SESSIONS} messages accepted`);
    printTable(
      [
        { when: 'idle, just started', VmRSS: mb(idle) },
        { when: 'start (after one warm-up message)', VmRSS: mb(start) },
        { when: 'peak while bodies are held (polled)', VmRSS: mb(peak) },
        { when: `${SETTLE_S} s after all sessions ended`, VmRSS: mb(after) },
        { when: 'VmHWM (kernel high-water mark)', VmRSS: mb(hwm) },
      ],
      ['when', 'VmRSS'],
    );
    console.log(`spool files open: at most ${peakFiles} at once, ${filesAfter} after the sessions`);
    console.log(`after - start: ${mb(after - start)}; peak - start: ${mb(peak - start)}`);
    if (accepted !== SESSIONS) process.exitCode = 1;
  } finally {
    await stopChild(w);
    await stopChild(sink);
  }
}

/** A short held message (the warm-up); resolves with what the client read. */
function clientSmall(port) {
  return new Promise((resolve, reject) => {
    const s = connect({ port, host: '127.0.0.1' });
    let text = '';
    s.on('error', reject);
    s.on('close', () => resolve(text));
    s.on('data', (b) => {
      const had = text;
      text += b.toString('latin1');
      if (!had.includes('220 ') && text.includes('220 ')) s.write('EHLO bench.example\r\nMAIL FROM:<a@bench.example>\r\nRCPT TO:<b@bench.example>\r\nDATA\r\n');
      if (!had.includes('354 ') && text.includes('354 ')) s.write('Subject: warm-up\r\n\r\nhello\r\n.\r\nQUIT\r\n');
    });
  });
}

main()
  .catch((err) => {
    console.error(`bench failed: ${err.stack ?? err}`);
    process.exitCode = 1;
  })
  .finally(cleanup);
