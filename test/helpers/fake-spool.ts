import type { Spool, SpoolFile } from '../../src/io/spool.js';

/**
 * A spool in memory for unit tests of the hold store: records every file
 * (its bytes, whether it is closed) and can be told to fail.
 */
export class FakeSpool implements Spool {
  readonly files: { bytes: Buffer[]; closed: boolean; writes: number }[] = [];
  /** open() answers null (an unusable directory). */
  refuse = false;
  /** write() throws after this many bytes in one file (ENOSPC). */
  failWriteAfter = Infinity;
  /** read() throws (EIO). */
  failRead = false;

  open(): SpoolFile | null {
    if (this.refuse) return null;
    const f = { bytes: [] as Buffer[], closed: false, writes: 0 };
    this.files.push(f);
    let size = 0;
    return {
      write: (b) => {
        if (f.closed) throw new Error('write after close');
        if (size + b.length > this.failWriteAfter) throw Object.assign(new Error('ENOSPC'), { code: 'ENOSPC' });
        // The caller reuses its buffer: keep a copy, as a file would.
        f.bytes.push(Buffer.from(b));
        f.writes++;
        size += b.length;
      },
      read: (into, pos) => {
        if (f.closed) throw new Error('read after close');
        if (this.failRead) throw Object.assign(new Error('EIO'), { code: 'EIO' });
        return Buffer.concat(f.bytes).copy(into, 0, pos, pos + into.length);
      },
      close: () => {
        f.closed = true;
      },
    };
  }

  get openCount(): number {
    return this.files.filter((f) => !f.closed).length;
  }
}

/** Every block a source gives, concatenated. */
export function drain(src: { next(): Buffer | null }): Buffer {
  const out: Buffer[] = [];
  for (let b = src.next(); b; b = src.next()) out.push(Buffer.from(b));
  return Buffer.concat(out);
}

/** Deterministic bytes: lines of text, CRLF-terminated, n bytes in all (n >= 2). */
export function textBytes(n: number, seed = 0): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = 0x41 + ((i * 7 + seed) % 26);
  for (let i = 98; i < n - 1; i += 100) {
    b[i] = 0x0d;
    b[i + 1] = 0x0a;
  }
  b[n - 2] = 0x0d;
  b[n - 1] = 0x0a;
  return b;
}
