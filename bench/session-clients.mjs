// Client side of part 5 (many sessions), run by sessions.mjs in its own
// process so that it may raise its fd limit (through `ulimit -n` in sh).
//   node session-clients.mjs idle N PORT    opens N SMTP sessions, waits for
//     each banner, prints {"ready":N,...}, keeps them open until stdin ends.
//   node session-clients.mjs active N PORT  runs N sessions at once, each a
//     full EHLO / MAIL / RCPT / DATA / QUIT dialogue; prints {"ok":..,"errors":..}.
// At most BATCH connection attempts are in flight at any time; every wait is bounded.
import net from 'node:net';

const [mode, nArg, portArg] = process.argv.slice(2);
const N = Number(nArg);
const PORT = Number(portArg);
const BATCH = 200;
const out = (o) => process.stdout.write(`${JSON.stringify(o)}\n`);

/** Reads CRLF reply lines; resolves each complete reply (the line without '-' after the code). */
function replies(sock) {
  let buf = '';
  const waiters = [];
  const ready = [];
  sock.on('data', (b) => {
    buf += b.toString('latin1');
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i + 1);
      buf = buf.slice(i + 1);
      if (line[3] === '-') continue;
      const w = waiters.shift();
      if (w) w(line);
      else ready.push(line);
    }
  });
  return () => (ready.length ? Promise.resolve(ready.shift()) : new Promise((r) => waiters.push(r)));
}

function withTimeout(p, ms, what) {
  let t;
  return Promise.race([p, new Promise((_, rej) => (t = setTimeout(() => rej(new Error(what)), ms)))]).finally(() => clearTimeout(t));
}

/** Opens one session and waits for its 220 banner; resolves the socket and its reply reader. */
function open() {
  return new Promise((resolve, reject) => {
    const sock = net.connect(PORT, '127.0.0.1');
    const next = replies(sock);
    sock.once('error', reject);
    withTimeout(next(), 30_000, 'no banner')
      .then((l) => (l.startsWith('220') ? resolve({ sock, next }) : reject(new Error(`banner: ${l.trim()}`))))
      .catch(reject);
  });
}

async function pool(count, job) {
  let started = 0;
  const results = [];
  const worker = async () => {
    while (started < count) {
      const i = started++;
      results[i] = await job(i).then(
        (v) => ({ ok: true, v }),
        (e) => ({ ok: false, e: String(e.message ?? e) }),
      );
    }
  };
  await Promise.all(Array.from({ length: Math.min(BATCH, count) }, worker));
  return results;
}

async function idle() {
  const rs = await pool(N, () => open());
  const socks = rs.filter((r) => r.ok).map((r) => r.v.sock);
  const errors = rs.filter((r) => !r.ok).map((r) => r.e);
  let closedEarly = 0;
  for (const s of socks) {
    s.on('error', () => {});
    s.on('close', () => closedEarly++);
  }
  out({ ready: socks.length, errors: errors.length, firstError: errors[0] ?? null });
  process.stdin.resume();
  process.stdin.on('end', () => {
    out({ closedEarly });
    for (const s of socks) s.destroy();
    process.exit(0);
  });
}

/** Messages per active session: enough that the sessions overlap. */
const MESSAGES = 5;
const BODY = `Subject: bench\r\n\r\n${'x'.repeat(70)}\r\n`.repeat(14);

async function session() {
  const { sock, next } = await open();
  const ask = async (line, code) => {
    sock.write(line);
    const r = await withTimeout(next(), 30_000, `no reply to ${line.trim()}`);
    if (!r.startsWith(code)) throw new Error(`${line.trim()} -> ${r.trim()}`);
  };
  try {
    await ask('EHLO bench.example\r\n', '250');
    for (let m = 0; m < MESSAGES; m++) {
      await ask('MAIL FROM:<a@bench.example>\r\n', '250');
      await ask('RCPT TO:<b@bench.example>\r\n', '250');
      await ask('DATA\r\n', '354');
      await ask(`${BODY}.\r\n`, '250');
    }
    await ask('QUIT\r\n', '221');
  } finally {
    sock.destroy();
  }
}

async function active() {
  // All N at once: each holds its connection for the whole dialogue.
  let started = 0;
  const results = await Promise.all(
    Array.from({ length: N }, async () => {
      // Stagger the connects a little (BATCH per tick) so the listen backlog is not the limit.
      await new Promise((r) => setTimeout(r, Math.floor(started++ / BATCH) * 20));
      return session().then(() => null, (e) => String(e.message ?? e));
    }),
  );
  const errors = results.filter((e) => e !== null);
  out({ ok: N - errors.length, errors: errors.length, firstError: errors[0] ?? null });
  process.exit(0);
}

if (mode === 'idle') idle();
else if (mode === 'active') active();
else throw new Error('usage: session-clients.mjs idle|active N PORT');
