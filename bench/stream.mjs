// Parts 2 and 3: a 50 MB line stream through the standalone wrapper, socat and
// a direct connection into a sink process that counts and hashes the bytes;
// the wrapper's RSS meanwhile.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { connect } from 'node:net';
import { performance } from 'node:perf_hooks';
import { freePort, mb, median, printTable, procStatus, REPEAT, report, row, sleep, stopChild, STREAM_MB, timeout, track, waitListening, which, WRAPPER } from './lib.mjs';

const LINE_LEN = 100; // content bytes per line, CRLF comes on top

/** A deterministic stream of LINE_LEN-byte printable lines, each ending in CRLF. */
function makeStream() {
  const lines = Math.floor((STREAM_MB * 1e6) / (LINE_LEN + 2));
  const buf = Buffer.allocUnsafe(lines * (LINE_LEN + 2));
  const alphabet = Buffer.from('ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789 .,;:-_+=/');
  let seed = 12345;
  for (let i = 0, p = 0; i < lines; i++) {
    const head = `${i} `;
    p += buf.write(head, p, 'latin1');
    for (let j = head.length; j < LINE_LEN; j++) {
      seed = (seed * 1103515245 + 12345) >>> 0;
      buf[p++] = alphabet[(seed >>> 16) % alphabet.length];
    }
    buf[p++] = 13;
    buf[p++] = 10;
  }
  return { buf, lines, sha256: createHash('sha256').update(buf).digest('hex') };
}

// The sink runs in its own process so that it does not share a core with the source.
const SINK_JS = `
const net = require('net'), crypto = require('crypto');
const srv = net.createServer((s) => {
  let n = 0; const h = crypto.createHash('sha256');
  s.on('data', (b) => { n += b.length; h.update(b); });
  s.on('end', () => { process.stdout.write(JSON.stringify({ bytes: n, sha256: h.digest('hex') }) + '\\n'); s.end(); });
  s.on('error', () => {});
});
srv.listen(0, '127.0.0.1', () => process.stdout.write(JSON.stringify({ port: srv.address().port }) + '\\n'));
`;

async function startSink() {
  const child = track(spawn(process.execPath, ['-e', SINK_JS], { stdio: ['ignore', 'pipe', 'inherit'] }));
  const waiters = [];
  let buf = '';
  child.stdout.on('data', (b) => {
    buf += b;
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const msg = JSON.parse(buf.slice(0, i));
      buf = buf.slice(i + 1);
      waiters.shift()?.(msg);
    }
  });
  const next = () => new Promise((r) => waiters.push(r));
  const { port } = await timeout(next(), 10_000, 'sink start');
  return { child, port, next };
}

/** Sends the stream to port in 64 KiB writes; resolves the seconds until the sink has it all. */
async function pushStream(port, stream, sink) {
  const done = timeout(sink.next(), 120_000, `stream to port ${port}`);
  const t0 = performance.now();
  await timeout(
    new Promise((resolve, reject) => {
      const s = connect(port, '127.0.0.1');
      s.on('error', reject);
      s.resume(); // the sink sends nothing, but EOF must be read
      s.on('close', resolve);
      s.on('connect', async () => {
        const CHUNK = 64 * 1024;
        for (let off = 0; off < stream.buf.length; off += CHUNK) {
          if (!s.write(stream.buf.subarray(off, off + CHUNK))) await new Promise((r) => s.once('drain', r));
        }
        s.end();
      });
    }),
    120_000,
    `client on port ${port}`,
  );
  const got = await done;
  const secs = (performance.now() - t0) / 1000;
  const ok = got.bytes === stream.buf.length && got.sha256 === stream.sha256;
  return { secs, ok, got };
}

/** RSS of a bare node process that does nothing: the floor any Node wrapper starts from. */
async function idleNodeRss() {
  const c = track(spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' }));
  await sleep(300);
  const rss = procStatus(c.pid, 'VmHWM');
  await stopChild(c);
  return rss ?? NaN;
}

export async function benchStream() {
  console.log(`\n== 2. throughput: ${mb(STREAM_MB * 1e6)} of ${LINE_LEN}-byte lines + CRLF into a byte-counting TCP sink (${REPEAT} runs each, median)`);
  const stream = makeStream();
  console.log(`stream: ${stream.lines} lines, ${stream.buf.length} bytes, sha256 ${stream.sha256.slice(0, 16)}…`);
  const sink = await startSink();
  const socat = which('socat');
  const wport = await freePort();
  const wrapper = track(
    spawn(process.execPath, [WRAPPER, '--listen', `127.0.0.1:${wport}`, '--connect', `127.0.0.1:${sink.port}`, '--max-line-length', String(LINE_LEN + 28)], {
      stdio: ['ignore', 'ignore', 'pipe'],
    }),
  );
  let werr = '';
  wrapper.stderr.on('data', (b) => (werr += b));
  let peak = 0;
  try {
    await waitListening(wport, wrapper, 'wrapper');
    const idleRss = procStatus(wrapper.pid, 'VmRSS');
    const poll = setInterval(() => (peak = Math.max(peak, procStatus(wrapper.pid, 'VmRSS') ?? 0)), 20);
    const targets = {
      direct: async () => pushStream(sink.port, stream, sink),
      wrapper: async () => pushStream(wport, stream, sink),
    };
    if (socat) {
      targets.socat = async () => {
        // One socat per run, as Debian ships it (default 8 KiB buffer), no fork.
        const p = await freePort();
        const c = track(spawn(socat, [`TCP-LISTEN:${p},bind=127.0.0.1,reuseaddr`, `TCP:127.0.0.1:${sink.port}`], { stdio: 'ignore' }));
        await waitListening(p, c, 'socat');
        const r = await pushStream(p, stream, sink);
        await stopChild(c);
        return r;
      };
    } else {
      console.log('socat not found: its column is skipped (apt-get install -y socat)');
    }
    const rates = Object.fromEntries(Object.keys(targets).map((k) => [k, []]));
    for (let i = 0; i < REPEAT; i++) {
      for (const [name, run] of Object.entries(targets)) {
        const r = await run();
        if (!r.ok) {
          report.failed = true;
          console.log(`DATA MISMATCH via ${name}: sink got ${r.got.bytes} bytes sha256 ${r.got.sha256}, sent ${stream.buf.length} ${stream.sha256}`);
        }
        rates[name].push(stream.buf.length / 1e6 / r.secs);
      }
    }
    clearInterval(poll);
    const hwm = procStatus(wrapper.pid, 'VmHWM');
    const med = Object.fromEntries(Object.entries(rates).map(([k, v]) => [k, median(v)]));
    printTable(
      Object.entries(rates).map(([k, v]) => ({ path: k, 'MB/s (median)': med[k].toFixed(1), runs: v.map((x) => x.toFixed(0)).join(' '), intact: report.failed ? '?' : 'yes' })),
      ['path', 'MB/s (median)', 'runs', 'intact'],
    );
    row('stream: wrapper / direct', `${(med.wrapper / med.direct).toFixed(2)}x`, '-', null);
    if (med.socat) row('stream: wrapper / socat', `${(med.wrapper / med.socat).toFixed(2)}x`, '-', null);
    const nodeRss = await idleNodeRss();
    console.log(`\n== 3. wrapper RSS: idle after start ${mb(idleRss)}, peak polled VmRSS ${mb(peak)}, VmHWM ${mb(hwm)}; an idle bare node process: ${mb(nodeRss)}`);
    row('peak RSS of the wrapper (VmHWM)', `${mb(hwm)} (${(hwm / nodeRss).toFixed(2)}x idle node)`, '-', null);
  } finally {
    await stopChild(wrapper);
    await stopChild(sink.child);
  }
  if (werr.trim()) console.log(`wrapper stderr:\n${werr}`);
}
