/**
 * Where a protocol keeps client bytes it may not forward yet (an SMTP body
 * held until its policy has seen all of it). The protocol only sees these
 * interfaces; the I/O shell implements them with a process-wide memory budget
 * and a spool on disk (src/io/hold-store.ts), so the protocol stays pure. The
 * in-memory default below is for sessions built without a shell (unit tests).
 */

/** One held block of memory: the unit of allocation and of accounting. */
export const HOLD_BLOCK = 65536;

/**
 * Bytes for the server that the shell pulls block by block, writing the next
 * one only when the server keeps up (a held body may be 10 MiB, most of it in
 * a spool file: it is never read into memory at once). Implemented by the
 * store; the protocol only hands it on (ServerVerdict.stream).
 */
export interface ByteSource {
  /** Bytes still to come. */
  readonly size: number;
  /**
   * The next block, or null at the end (the source has released everything
   * then). Throws when the bytes cannot be read back (a spool I/O error): the
   * message cannot be sent whole, so the session must end without its end.
   */
  next(): Buffer | null;
  /** Drops what is left and returns its memory and disk. Safe to call more than once. */
  release(): void;
}

/** The bytes of one message being held. */
export interface HeldBytes {
  readonly size: number;
  /**
   * Keeps a copy of the bytes. 'full': neither the memory budget nor the spool
   * has room (or the spool failed); nothing more can be kept, and the caller
   * should refuse the message and release() what is held.
   */
  append(bytes: Buffer): 'ok' | 'full';
  /**
   * Everything held, then trailer, as one source for the server. The holder
   * gives its accounting to the source and must not be used again.
   */
  take(trailer: Buffer): ByteSource;
  /** Drops what is held, returns its memory and disk. Safe to call more than once. */
  release(): void;
}

export interface HoldStore {
  create(): HeldBytes;
}

/** What a protocol asks of the shell's store (one per process), from its options. */
export interface HoldLimits {
  /** Bytes of memory all held bodies of the process may take (in HOLD_BLOCK blocks). */
  readonly memory: number;
  /** Bytes all spool files of the process may take; 0: no spool. */
  readonly disk: number;
  /** The spool directory; null: the default (see src/io/spool.ts). */
  readonly dir: string | null;
}

/** A source over blocks already in memory (the pure default's). */
export class BlockSource implements ByteSource {
  private i = 0;
  size: number;

  constructor(private blocks: Buffer[]) {
    this.size = blocks.reduce((n, b) => n + b.length, 0);
  }

  next(): Buffer | null {
    const b = this.blocks[this.i];
    if (!b) {
      this.release();
      return null;
    }
    this.blocks[this.i++] = EMPTY;
    this.size -= b.length;
    return b;
  }

  release(): void {
    this.blocks = [];
    this.size = 0;
  }
}

const EMPTY = Buffer.alloc(0);

/**
 * The pure default: bytes copied into HOLD_BLOCK blocks, memory is the
 * message's size plus at most one block however many small lines it has. No
 * budget of its own: the caller bounds each message (SMTP's holdLimit).
 */
export class MemoryHold implements HeldBytes {
  private blocks: Buffer[] = [];
  private cur: Buffer | null = null;
  private used = 0;
  size = 0;

  append(bytes: Buffer): 'ok' {
    let pos = 0;
    while (pos < bytes.length) {
      if (!this.cur || this.used === this.cur.length) {
        if (this.cur) this.blocks.push(this.cur);
        this.cur = Buffer.allocUnsafeSlow(HOLD_BLOCK);
        this.used = 0;
      }
      const n = Math.min(bytes.length - pos, this.cur.length - this.used);
      bytes.copy(this.cur, this.used, pos, pos + n);
      this.used += n;
      pos += n;
    }
    this.size += bytes.length;
    return 'ok';
  }

  take(trailer: Buffer): ByteSource {
    const out = this.blocks;
    if (this.cur && this.used > 0) out.push(this.cur.subarray(0, this.used));
    out.push(trailer);
    this.release();
    return new BlockSource(out);
  }

  release(): void {
    this.blocks = [];
    this.cur = null;
    this.used = 0;
    this.size = 0;
  }
}

export const memoryHoldStore: HoldStore = { create: () => new MemoryHold() };
