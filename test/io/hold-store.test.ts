import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readlinkSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { HOLD_BLOCK, type ByteSource } from '../../src/core/hold.js';
import { BudgetedHoldStore } from '../../src/io/hold-store.js';
import { ServerOut } from '../../src/io/server-out.js';
import { ensurePrivateDir, FileSpool } from '../../src/io/spool.js';
import { Logger, MemorySink } from '../../src/log/logger.js';
import { drain, FakeSpool, textBytes } from '../helpers/fake-spool.js';

const TRAILER = Buffer.from('.\r\n');

/** Appends in line-sized pieces, as the SMTP core does; returns the first 'full' or 'ok'. */
function fill(h: { append(b: Buffer): 'ok' | 'full' }, bytes: Buffer, piece = 1000): 'ok' | 'full' {
  for (let i = 0; i < bytes.length; i += piece) if (h.append(bytes.subarray(i, i + piece)) === 'full') return 'full';
  return 'ok';
}

const zero = (s: BudgetedHoldStore) => ({ memory: s.memory.used, disk: s.disk.used, files: s.openFiles, live: s.live });
const ZERO = { memory: 0, disk: 0, files: 0, live: 0 };

describe('BudgetedHoldStore: one memory budget, then the spool, then 452', () => {
  it('within the budget: memory only, counted in 64 KiB blocks, given back block by block as it is sent', () => {
    const spool = new FakeSpool();
    const s = new BudgetedHoldStore({ memory: 4 * HOLD_BLOCK, disk: 1 << 20 }, spool);
    const body = textBytes(3 * HOLD_BLOCK + 100);
    const h = s.create();
    expect(fill(h, body)).toBe('ok');
    expect(s.memory.used).toBe(4 * HOLD_BLOCK);
    expect(spool.files).toHaveLength(0);
    const src = h.take(TRAILER);
    expect(src.size).toBe(body.length + 3);
    src.next();
    expect(s.memory.used).toBe(3 * HOLD_BLOCK);
    expect(Buffer.concat([body.subarray(0, HOLD_BLOCK), drain(src)]).equals(Buffer.concat([body, TRAILER]))).toBe(true);
    expect(zero(s)).toEqual(ZERO);
  });

  it('over the budget: the rest of the body spills to one spool file, written in 64 KiB blocks; the source gives exactly the bytes held', () => {
    const spool = new FakeSpool();
    const s = new BudgetedHoldStore({ memory: 2 * HOLD_BLOCK, disk: 1 << 22 }, spool);
    const body = textBytes(1 << 20, 3);
    const h = s.create();
    expect(fill(h, body)).toBe('ok');
    expect(s.memory.used).toBe(2 * HOLD_BLOCK);
    expect(spool.files).toHaveLength(1);
    expect(spool.files[0]!.bytes.every((b) => b.length === HOLD_BLOCK)).toBe(true);
    expect(s.disk.used).toBe(body.length - 2 * HOLD_BLOCK);
    // A second body finds no memory left: all of it goes to its own file.
    const h2 = s.create();
    expect(h2.append(Buffer.from('x\r\n'))).toBe('ok');
    expect(spool.files).toHaveLength(2);
    expect(drain(h.take(TRAILER)).equals(Buffer.concat([body, TRAILER]))).toBe(true);
    expect(spool.files[0]!.closed).toBe(true);
    expect(drain(h2.take(TRAILER)).toString()).toBe('x\r\n.\r\n');
    expect(zero(s)).toEqual(ZERO);
  });

  it('budget and spool both spent: full; what was held is given back at once; other bodies go on', () => {
    const spool = new FakeSpool();
    const s = new BudgetedHoldStore({ memory: HOLD_BLOCK, disk: 2 * HOLD_BLOCK }, spool);
    const small = s.create();
    expect(fill(small, textBytes(1000))).toBe('ok');
    const big = s.create();
    expect(fill(big, textBytes(1 << 20))).toBe('full');
    expect(big.append(Buffer.from('more\r\n'))).toBe('full');
    big.release();
    expect(spool.files[0]!.closed).toBe(true);
    expect(zero(s)).toEqual({ memory: HOLD_BLOCK, disk: 0, files: 0, live: 1 });
    expect(drain(small.take(TRAILER)).equals(Buffer.concat([textBytes(1000), TRAILER]))).toBe(true);
    expect(zero(s)).toEqual(ZERO);
  });

  it('spoolMax 0 or an unusable spool: full as soon as memory is spent', () => {
    for (const [disk, refuse] of [[0, false], [1 << 20, true]] as const) {
      const spool = new FakeSpool();
      spool.refuse = refuse;
      const s = new BudgetedHoldStore({ memory: HOLD_BLOCK, disk }, spool);
      const h = s.create();
      expect(fill(h, textBytes(HOLD_BLOCK + 10))).toBe('full');
      expect(zero(s)).toEqual(ZERO);
    }
  });

  it('a failing spool write (ENOSPC) is full; a failing read throws and release gives everything back', () => {
    const spool = new FakeSpool();
    spool.failWriteAfter = HOLD_BLOCK;
    const s = new BudgetedHoldStore({ memory: HOLD_BLOCK, disk: 1 << 22 }, spool);
    expect(fill(s.create(), textBytes(1 << 20))).toBe('full');
    expect(zero(s)).toEqual(ZERO);
    spool.failWriteAfter = Infinity;
    const h = s.create();
    expect(fill(h, textBytes(4 * HOLD_BLOCK))).toBe('ok');
    const src = h.take(TRAILER);
    spool.failRead = true;
    expect(src.next()!.length).toBe(HOLD_BLOCK);
    expect(() => src.next()).toThrow('EIO');
    src.release();
    src.release();
    expect(zero(s)).toEqual(ZERO);
  });

  it('released anywhere (before take, mid-stream, twice): memory, disk and files all come back', () => {
    const spool = new FakeSpool();
    const s = new BudgetedHoldStore({ memory: 3 * HOLD_BLOCK, disk: 1 << 22 }, spool);
    const a = s.create();
    fill(a, textBytes(5 * HOLD_BLOCK));
    const b = s.create();
    fill(b, textBytes(5 * HOLD_BLOCK));
    a.release();
    a.release();
    const src = b.take(TRAILER);
    src.next();
    src.next();
    src.release();
    expect(zero(s)).toEqual(ZERO);
    expect(spool.openCount).toBe(0);
  });
});

describe('FileSpool: a private directory, files unlinked once open', () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });
  const base = () => {
    const d = mkdtempSync(join(tmpdir(), 'pw-spool-test-'));
    dirs.push(d);
    return d;
  };

  it('creates a missing directory with mode 0700; the file has no name while it is open; bytes round-trip', () => {
    const dir = join(base(), 'spool');
    const sink = new MemorySink();
    const spool = new FileSpool(dir, new Logger([sink], 1));
    const f = spool.open()!;
    expect(f).not.toBeNull();
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    expect(readdirSync(dir)).toEqual([]);
    const mine = readdirSync('/proc/self/fd').map((fd) => {
      try {
        return readlinkSync(`/proc/self/fd/${fd}`);
      } catch {
        return '';
      }
    });
    expect(mine.some((l) => l.startsWith(`${dir}/hold-`) && l.endsWith(' (deleted)'))).toBe(true);
    const bytes = textBytes(200_000);
    f.write(bytes.subarray(0, 150_000));
    f.write(bytes.subarray(150_000));
    const back = Buffer.alloc(bytes.length);
    expect(f.read(back, 0)).toBe(bytes.length);
    expect(back.equals(bytes)).toBe(true);
    f.close();
    f.close();
    expect(sink.lines).toEqual([]);
  });

  it.each([
    ['open to others (0755)', (d: string) => chmodSync(d, 0o755), /open to group or others/],
    ['owned by another user', (d: string) => chownSync(d, 65534, 65534), /owned by uid 65534/],
    ['a symbolic link to a private directory', (d: string) => {
      const real = `${d}-real`;
      mkdirSync(real, { mode: 0o700 });
      dirs.push(real);
      rmSync(d, { recursive: true });
      symlinkSync(real, d);
    }, /not a directory/],
  ])('refuses a directory %s: no file, one log line, 452 follows', (_what, spoil, why) => {
    if (process.getuid?.() !== 0 && _what.startsWith('owned')) return;
    const dir = join(base(), 'spool');
    mkdirSync(dir, { mode: 0o700 });
    spoil(dir);
    const sink = new MemorySink();
    const spool = new FileSpool(dir, new Logger([sink], 1));
    expect(spool.open()).toBeNull();
    expect(spool.open()).toBeNull();
    expect(sink.lines).toHaveLength(1);
    expect(sink.lines[0]!.message).toMatch(why);
    expect(existsSync(dir) ? readdirSync(dir) : []).toEqual([]);
    expect(() => ensurePrivateDir(dir)).toThrow(why);
  });
});

describe('ServerOut: a streamed source keeps its place; later bytes wait behind it', () => {
  /** A fake server side; with pushBack, every write fills it until the next drain. */
  function sink(pushBack = false) {
    const got: Buffer[] = [];
    let busy = false;
    let gone = false;
    return {
      got,
      text: () => Buffer.concat(got).toString(),
      drain: () => (busy = false),
      setBusy: () => (busy = true),
      setGone: () => (gone = true),
      sink: {
        write: (b: Buffer) => {
          got.push(b);
          if (pushBack) busy = true;
        },
        busy: () => busy,
        gone: () => gone,
      },
    };
  }
  const source = (parts: string[]): ByteSource & { released: boolean } => {
    const q = parts.map((p) => Buffer.from(p));
    const s = {
      released: false,
      get size() {
        return q.reduce((n, b) => n + b.length, 0);
      },
      next: () => q.shift() ?? null,
      release: () => void (s.released = true),
    };
    return s;
  };

  it('writes one block per drain when the server pushes back, then what came after, in order', () => {
    const k = sink(true);
    const out = new ServerOut(k.sink, () => {});
    out.write(Buffer.from('DATA\r\n'));
    k.drain();
    out.stream(source(['a', 'b', 'c']));
    out.write(Buffer.from('.\r\n'));
    out.stream(source(['d']));
    expect(out.streaming).toBe(true);
    const seen = [k.text()];
    for (let i = 0; i < 5; i++) {
      k.drain();
      out.pump();
      seen.push(k.text());
    }
    // Plain bytes behind a source go out as soon as it ends; the next source waits for a drain.
    expect(seen).toEqual(['DATA\r\na', 'DATA\r\nab', 'DATA\r\nabc', 'DATA\r\nabc.\r\n', 'DATA\r\nabc.\r\nd', 'DATA\r\nabc.\r\nd']);
    expect(out.streaming).toBe(false);
    out.write(Buffer.from('QUIT\r\n'));
    expect(k.text()).toBe('DATA\r\nabc.\r\ndQUIT\r\n');
  });

  it('a source that fails to read: nothing after it is written, the session is told', () => {
    const k = sink();
    const errors: unknown[] = [];
    const out = new ServerOut(k.sink, (e) => errors.push(e));
    const bad: ByteSource = { size: 1, next: () => { throw new Error('EIO'); }, release: () => {} };
    out.stream(bad);
    out.write(Buffer.from('.\r\n'));
    expect(k.text()).toBe('');
    expect(errors).toHaveLength(1);
  });

  it('the server gone or the session over: every queued source is released', () => {
    const k = sink();
    const out = new ServerOut(k.sink, () => {});
    k.setBusy();
    const a = source(['a']);
    const b = source(['b']);
    out.stream(a);
    out.stream(b);
    k.setGone();
    out.pump();
    expect(a.released && b.released).toBe(true);
    const c = source(['c']);
    out.stream(c);
    expect(c.released).toBe(true);
    expect(k.text()).toBe('');
  });
});

describe('BudgetedHoldStore: idle hook', () => {
  it('says when the last body is over, with the bytes held since it last said so', () => {
    const idle: number[] = [];
    const s = new BudgetedHoldStore({ memory: 2 * HOLD_BLOCK, disk: 1 << 22 }, new FakeSpool(), { onIdle: (bytes) => idle.push(bytes) });
    const a = s.create();
    const b = s.create();
    fill(a, textBytes(1000));
    fill(b, textBytes(300_000));
    a.release();
    expect(idle).toEqual([]);
    drain(b.take(TRAILER));
    expect(idle).toEqual([301_000]);
    expect(zero(s)).toEqual(ZERO);
  });
});
