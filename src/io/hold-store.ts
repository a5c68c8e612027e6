import type { Config } from '../config.js';
import { HOLD_BLOCK, type ByteSource, type HeldBytes, type HoldLimits, type HoldStore } from '../core/hold.js';
import type { Logger } from '../log/logger.js';
import { reclaimSoon } from './reclaim.js';
import { defaultSpoolDir, FileSpool, type Spool, type SpoolFile } from './spool.js';

/**
 * The process's store for held bodies: one per process (inetd mode: one
 * session; standalone: shared by all sessions).
 *
 * Without it, one accepted RCPT (no login needed) let a client make the
 * wrapper hold bodyHoldLimit (10 MiB) per session: 256 sessions, 2.7 GB. Here
 * all held bodies of the process share one memory budget (bodyHoldTotal,
 * counted in the 64 KiB blocks really allocated); past it a body goes on in
 * a spool file, and all spool files share one disk budget (spoolMax). When
 * both are spent, append() answers 'full' and the message is refused (452).
 *
 * Bounds: memory is bodyHoldTotal, plus one 64 KiB write buffer per spooled
 * body not yet sent (a session has one being received and at most one
 * waiting for the server's 354), plus, per body being sent, the
 * block read back from the file and what the server's socket still has
 * queued (the session writes the next block only after 'drain'). Disk is
 * spoolMax. Every byte and every descriptor is given back when a body is
 * sent, discarded, or its session ends in any way (release()).
 */

/** A running count against a cap. */
export class Budget {
  used = 0;
  constructor(readonly max: number) {}

  take(n: number): boolean {
    if (this.used + n > this.max) return false;
    this.used += n;
    return true;
  }

  give(n: number): void {
    this.used -= n;
    if (this.used < 0) throw new Error(`hold budget below zero (${this.used})`);
  }
}

const EMPTY = Buffer.alloc(0);

export interface StoreHooks {
  /** No body is held any more, after `bytes` were held since the last call. */
  readonly onIdle?: (bytes: number) => void;
}

/** Not carved from Node's shared 8 KiB pool: a block is its own allocation, freed whole. */
const alloc = (size: number): Buffer => Buffer.allocUnsafeSlow(size);

export class BudgetedHoldStore implements HoldStore {
  readonly memory: Budget;
  readonly disk: Budget;
  /** Spool files open now (tests: nothing leaks). */
  openFiles = 0;
  /** Bodies alive now (holders and their sources). */
  live = 0;
  private heldSinceIdle = 0;

  constructor(
    limits: Pick<HoldLimits, 'memory' | 'disk'>,
    private readonly spool: Spool | null,
    private readonly hooks: StoreHooks = {},
  ) {
    this.memory = new Budget(limits.memory);
    this.disk = new Budget(limits.disk);
  }

  /** A body is over (sent, discarded, or its session ended). */
  ended(size: number): void {
    this.live--;
    this.heldSinceIdle += size;
    if (this.live > 0) return;
    const bytes = this.heldSinceIdle;
    this.heldSinceIdle = 0;
    this.hooks.onIdle?.(bytes);
  }

  create(): HeldBytes {
    return new SpillingHold(this);
  }

  /** A new spool file, counted in openFiles until it is closed; null when there is no spool. */
  openFile(): SpoolFile | null {
    if (!this.spool || this.disk.max === 0) return null;
    const f = this.spool.open();
    if (!f) return null;
    this.openFiles++;
    let open = true;
    return {
      write: (b) => f.write(b),
      read: (into, pos) => f.read(into, pos),
      close: () => {
        if (!open) return;
        open = false;
        this.openFiles--;
        f.close();
      },
    };
  }
}

/**
 * One body: memory blocks while the budget lasts, then a spool file. In
 * memory mode `cur` is a counted block being filled; in spool mode it is the
 * body's write buffer (not counted), written out whenever it is full.
 */
class SpillingHold implements HeldBytes {
  private blocks: Buffer[] = [];
  private cur: Buffer | null = null;
  private curCounted = false;
  private used = 0;
  private file: SpoolFile | null = null;
  /** Bytes written to the file. */
  private fileSize = 0;
  /** Disk reserved: the file's bytes and those waiting in the write buffer. */
  private diskHeld = 0;
  private done = false;
  size = 0;

  constructor(private readonly store: BudgetedHoldStore) {
    store.live++;
  }

  append(bytes: Buffer): 'ok' | 'full' {
    if (this.done) return 'full';
    let pos = 0;
    while (pos < bytes.length) {
      if (this.file) {
        if (!this.spoolAppend(bytes, pos)) return this.fail();
        break;
      }
      if (!this.cur || this.used === this.cur.length) {
        if (!this.store.memory.take(HOLD_BLOCK)) {
          if (!this.spill()) return this.fail();
          continue;
        }
        if (this.cur) this.blocks.push(this.cur);
        this.cur = alloc(HOLD_BLOCK);
        this.curCounted = true;
        this.used = 0;
      }
      pos += this.copy(bytes, pos);
    }
    this.size += bytes.length;
    return 'ok';
  }

  take(trailer: Buffer): ByteSource {
    if (this.done) throw new Error('held body taken after release');
    this.done = true;
    const tail = this.cur ? this.cur.subarray(0, this.used) : EMPTY;
    const src = new SpillSource(this.store, this.size, this.blocks, this.file, this.fileSize, tail, this.curCounted, this.diskHeld, trailer);
    this.blocks = [];
    this.cur = null;
    this.file = null;
    this.size = 0;
    return src;
  }

  release(): void {
    if (this.done) return;
    this.done = true;
    this.store.memory.give(HOLD_BLOCK * (this.blocks.length + (this.curCounted ? 1 : 0)));
    this.blocks = [];
    this.cur = null;
    this.curCounted = false;
    this.file?.close();
    this.file = null;
    this.store.disk.give(this.diskHeld);
    this.diskHeld = 0;
    this.store.ended(this.size);
    this.size = 0;
  }

  private copy(bytes: Buffer, pos: number): number {
    const n = Math.min(bytes.length - pos, this.cur!.length - this.used);
    bytes.copy(this.cur!, this.used, pos, pos + n);
    this.used += n;
    return n;
  }

  /** Over the memory budget: the rest of the body goes to a spool file. */
  private spill(): boolean {
    const f = this.store.openFile();
    if (!f) return false;
    this.file = f;
    // Memory is spent only when a new block is needed: cur, if any, is full and counted.
    if (this.cur) this.blocks.push(this.cur);
    this.cur = alloc(HOLD_BLOCK);
    this.curCounted = false;
    this.used = 0;
    return true;
  }

  /** Disk is reserved for the bytes first: nothing is kept of an append that does not fit. */
  private spoolAppend(bytes: Buffer, pos: number): boolean {
    const n = bytes.length - pos;
    if (!this.store.disk.take(n)) return false;
    this.diskHeld += n;
    while (pos < bytes.length) {
      pos += this.copy(bytes, pos);
      if (this.used === HOLD_BLOCK) {
        try {
          this.file!.write(this.cur!);
        } catch {
          return false;
        }
        this.fileSize += HOLD_BLOCK;
        this.used = 0;
      }
    }
    return true;
  }

  private fail(): 'full' {
    this.release();
    return 'full';
  }
}

/** A taken body: memory blocks, then the file's bytes, then the last block's bytes, then the trailer. */
class SpillSource implements ByteSource {
  private i = 0;
  private readPos = 0;
  private released = false;
  size: number;

  constructor(
    private readonly store: BudgetedHoldStore,
    private readonly bodySize: number,
    private blocks: Buffer[],
    private file: SpoolFile | null,
    private readonly fileSize: number,
    private tail: Buffer | null,
    private tailCounted: boolean,
    private diskHeld: number,
    private trailer: Buffer | null,
  ) {
    this.size = blocks.length * HOLD_BLOCK + fileSize + (tail?.length ?? 0) + (trailer?.length ?? 0);
  }

  next(): Buffer | null {
    if (this.released) return null;
    const block = this.blocks[this.i];
    if (block) {
      // Its memory is handed to the server's socket, which the session fills only as fast as it drains.
      this.blocks[this.i++] = EMPTY;
      this.store.memory.give(HOLD_BLOCK);
      return this.out(block);
    }
    if (this.file && this.readPos < this.fileSize) {
      const want = Math.min(HOLD_BLOCK, this.fileSize - this.readPos);
      const buf = alloc(want);
      const n = this.file.read(buf, this.readPos);
      if (n <= 0) throw new Error(`spool file ended at ${this.readPos} of ${this.fileSize} bytes`);
      this.readPos += n;
      return this.out(n === want ? buf : buf.subarray(0, n));
    }
    const tail = this.tail;
    if (tail) {
      this.tail = null;
      if (this.tailCounted) this.store.memory.give(HOLD_BLOCK);
      this.tailCounted = false;
      if (tail.length > 0) return this.out(tail);
    }
    const trailer = this.trailer;
    if (trailer) {
      this.trailer = null;
      return this.out(trailer);
    }
    this.release();
    return null;
  }

  release(): void {
    if (this.released) return;
    this.released = true;
    this.store.memory.give(HOLD_BLOCK * (this.blocks.length - this.i + (this.tailCounted ? 1 : 0)));
    this.blocks = [];
    this.tail = null;
    this.tailCounted = false;
    this.trailer = null;
    this.file?.close();
    this.file = null;
    this.store.disk.give(this.diskHeld);
    this.diskHeld = 0;
    this.size = 0;
    this.store.ended(this.bodySize);
  }

  private out(b: Buffer): Buffer {
    this.size -= b.length;
    return b;
  }
}

/** Held bytes after which an idle store asks for a collection (see reclaim.ts); below it V8's own schedule will do. */
const RECLAIM_AFTER = 4 << 20;

/** The process's store, when the protocol holds bodies (else undefined). Call once per process. */
export function processHoldStore(cfg: Config, log: Logger): HoldStore | undefined {
  const limits = cfg.protocol.holdLimits?.(cfg.options);
  if (!limits) return undefined;
  const spool = limits.disk > 0 ? new FileSpool(limits.dir ?? defaultSpoolDir(), log) : null;
  return new BudgetedHoldStore(limits, spool, {
    onIdle: (bytes) => {
      if (bytes >= RECLAIM_AFTER) reclaimSoon();
    },
  });
}
