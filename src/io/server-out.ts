import type { ByteSource } from '../core/hold.js';

/** Where the queue writes: the server's side of a session. */
export interface ServerSink {
  write(bytes: Buffer): void;
  /** The last write was not taken at once: wait for pump() (after 'drain'). */
  busy(): boolean;
  /** The server takes no more bytes (closed or destroyed). */
  gone(): boolean;
}

/**
 * The order of bytes to the server when some of them are streamed (a held
 * body, possibly from a spool file): a source is written one block at a
 * time, the next only once the server has drained the last (so a 10 MiB body
 * is never read into memory at once), and every byte sent after it (its
 * final ".", a later command) waits behind it, in order.
 *
 * The queue behind a source stays small: the session does not read the
 * client while a source is being written (see streaming), so only the
 * protocol's own few bytes can join it.
 */
export class ServerOut {
  private current: ByteSource | null = null;
  private readonly after: (Buffer | ByteSource)[] = [];
  private dead = false;

  constructor(
    private readonly sink: ServerSink,
    /** A source failed to read back (spool I/O error): the rest is dropped; the session must end. */
    private readonly onFail: (err: unknown) => void,
  ) {}

  /** A source is being written: the client is not read meanwhile. */
  get streaming(): boolean {
    return this.current !== null;
  }

  write(bytes: Buffer): void {
    if (this.dead) return;
    if (this.current) this.after.push(bytes);
    else this.sink.write(bytes);
  }

  stream(src: ByteSource): void {
    if (this.dead) {
      src.release();
      return;
    }
    if (this.current) {
      this.after.push(src);
      return;
    }
    this.current = src;
    this.pump();
  }

  /** Writes on until the server is busy or the queue is empty (call after 'drain'). */
  pump(): void {
    while (this.current) {
      if (this.sink.gone()) {
        this.release();
        return;
      }
      if (this.sink.busy()) return;
      let block: Buffer | null;
      try {
        block = this.current.next();
      } catch (err) {
        // The message cannot be sent whole: nothing after it (its ".") may follow.
        this.release();
        this.onFail(err);
        return;
      }
      if (block) {
        this.sink.write(block);
        continue;
      }
      this.current = null;
      while (!this.current && this.after.length > 0) {
        const next = this.after.shift()!;
        if (Buffer.isBuffer(next)) this.sink.write(next);
        else this.current = next;
      }
    }
  }

  /** The session is over: drop everything queued and give back what the sources hold. Idempotent. */
  release(): void {
    this.dead = true;
    this.current?.release();
    this.current = null;
    for (const x of this.after) if (!Buffer.isBuffer(x)) x.release();
    this.after.length = 0;
  }
}
