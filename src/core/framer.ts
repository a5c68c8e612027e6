import { CR, LF } from './bytes.js';

/** How a line ended, exactly as received. 'none' is an unterminated tail at end of input. */
export type LineEnding = 'crlf' | 'lf' | 'none';

/**
 * What the framer hands out. Every callback runs synchronously inside push()
 * or end(); a callback may change the framer's mode or pause it before it
 * returns, and the framer honours that for the very next byte.
 */
export interface FramerSink {
  /**
   * A complete line. `line` holds the line's bytes including its ending, as
   * received; `contentEnd` is where the ending starts. The buffer is the
   * caller's to keep (it is a slice of the input chunk, or a fresh copy when
   * the line spanned chunks): it is never reused by the framer.
   */
  line(line: Buffer, contentEnd: number, ending: LineEnding): void;
  /**
   * A line grew past the limit. Called once per such line, as soon as the
   * limit is passed; the rest of that line, up to and including its LF, is
   * discarded without being handed out. `head` is the line's first bytes
   * (at most OVERLONG_HEAD_BYTES), for the log only.
   */
  overlong(head: Buffer): void;
  /** Bytes of a raw run (see rawBytes), handed out as they arrive. */
  raw(bytes: Buffer): void;
  /** The raw run is complete; the framer is back in line mode. */
  rawDone(): void;
}

type Mode = 'line' | 'discard' | 'raw';

/** How much of an overlong line is kept to show in the log. */
export const OVERLONG_HEAD_BYTES = 200;

/**
 * Cuts a byte stream into lines, bounded.
 *
 * The limit stops memory exhaustion by an endless line and keeps any line
 * longer than the server's buffer from reaching it (the buffer-overflow
 * attack the 2002 ProtoWrap paper was written against): a line whose content
 * exceeds maxLineLength is reported once and discarded whole, never cut.
 * Only LF ends a line, as it does for the servers behind us; whether the
 * ending was CRLF or a bare LF is reported so that the protocol can judge it,
 * and the bytes are handed out unchanged.
 *
 * Memory: at most maxLineLength + 1 bytes of one unfinished line are kept,
 * plus, while paused, the unread rest of the chunk being processed.
 */
export class LineFramer {
  private mode: Mode = 'line';
  private maxLine: number;
  /** Slices of the unfinished line, from earlier chunks. */
  private parts: Buffer[] = [];
  private partLen = 0;
  private rawLeft = 0;
  private paused = false;
  private pending: Buffer | null = null;
  private pendingPos = 0;

  constructor(
    private readonly sink: FramerSink,
    maxLineLength: number,
  ) {
    if (!Number.isInteger(maxLineLength) || maxLineLength < 1) throw new RangeError('maxLineLength must be a positive integer');
    this.maxLine = maxLineLength;
  }

  /** The longest line content (line ending excluded) accepted from now on. */
  setMaxLineLength(n: number): void {
    if (!Number.isInteger(n) || n < 1) throw new RangeError('maxLineLength must be a positive integer');
    this.maxLine = n;
  }

  get maxLineLength(): number {
    return this.maxLine;
  }

  /** Switch to a raw run of exactly n bytes (an IMAP literal, a BDAT chunk, an HTTP body). */
  rawBytes(n: number): void {
    if (!Number.isSafeInteger(n) || n < 0) throw new RangeError('raw run length must be a non-negative integer');
    if (this.partLen !== 0) throw new Error('raw run requested in the middle of a line');
    if (n === 0) {
      this.sink.rawDone();
      return;
    }
    this.mode = 'raw';
    this.rawLeft = n;
  }

  /**
   * Abandon a raw run that has not been handed out yet (an IMAP synchronizing
   * literal the server refused): the bytes that follow are lines again.
   */
  cancelRaw(): void {
    if (this.mode !== 'raw') return;
    this.mode = 'line';
    this.rawLeft = 0;
  }

  /** Stop handing out data; the rest of the current chunk is kept until resume(). */
  pause(): void {
    this.paused = true;
  }

  get isPaused(): boolean {
    return this.paused;
  }

  /**
   * Drops what the framer holds and has not handed out: the unread rest of a
   * paused chunk and an unfinished line (after STARTTLS, bytes the client
   * sent in the same plaintext write must never be read as commands).
   * Returns how many bytes were dropped; the framer stays paused.
   */
  discardPending(): number {
    const n = this.bufferedBytes;
    this.pending = null;
    this.pendingPos = 0;
    this.parts = [];
    this.partLen = 0;
    if (this.mode === 'discard') this.mode = 'line';
    return n;
  }

  /** Bytes held: the unfinished line plus the unread rest of a paused chunk. */
  get bufferedBytes(): number {
    return this.partLen + (this.pending ? this.pending.length - this.pendingPos : 0);
  }

  /** Hand out what was kept while paused, then go on with new input. */
  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    const chunk = this.pending;
    if (chunk) {
      const pos = this.pendingPos;
      this.pending = null;
      this.pendingPos = 0;
      this.process(chunk, pos);
    }
  }

  /**
   * Feed input. While paused, one chunk is kept whole until resume() (a
   * verdict on the raw chunk, before framing, may hold); the caller pauses
   * its source, so a second one is a bug.
   */
  push(chunk: Buffer): void {
    if (this.pending) throw new Error('push() while paused');
    if (this.paused) {
      this.pending = chunk;
      this.pendingPos = 0;
      return;
    }
    this.process(chunk, 0);
  }

  /**
   * End of input: an unfinished line is handed out with ending 'none', so the
   * protocol decides whether a server would have read it. Returns false when
   * the input ended inside a raw run or a discarded overlong line.
   */
  end(): boolean {
    if (this.paused || this.pending) throw new Error('end() while paused');
    if (this.mode === 'raw') return false;
    if (this.mode === 'discard') return false;
    if (this.partLen > 0) {
      const line = this.takeParts(null, 0, 0);
      this.sink.line(line, line.length, 'none');
    }
    return true;
  }

  private process(chunk: Buffer, pos: number): void {
    const len = chunk.length;
    while (pos < len) {
      if (this.paused) {
        this.pending = chunk;
        this.pendingPos = pos;
        return;
      }
      switch (this.mode) {
        case 'line':
          pos = this.lineStep(chunk, pos);
          break;
        case 'discard': {
          const lf = chunk.indexOf(LF, pos);
          if (lf < 0) return;
          this.mode = 'line';
          pos = lf + 1;
          break;
        }
        case 'raw': {
          const take = Math.min(this.rawLeft, len - pos);
          this.rawLeft -= take;
          const slice = chunk.subarray(pos, pos + take);
          pos += take;
          if (this.rawLeft === 0) this.mode = 'line';
          this.sink.raw(slice);
          if (this.rawLeft === 0 && this.mode === 'line') this.sink.rawDone();
          break;
        }
        default: {
          const never: never = this.mode;
          throw new Error(`unknown framer mode ${String(never)}`);
        }
      }
    }
  }

  /** Processes one line (or the start of one) in chunk from pos; returns the next position. */
  private lineStep(chunk: Buffer, pos: number): number {
    const max = this.maxLine;
    // A line's content may be max bytes, plus a CR that may turn out to be
    // the start of CRLF: anything beyond max + 1 bytes without LF is overlong.
    const window = max + 2 - this.partLen;
    const lf = chunk.indexOf(LF, pos);
    if (lf < 0 || lf - pos >= window) {
      const avail = chunk.length - pos;
      if (lf < 0 && avail < window) {
        // Unfinished line: keep the slice, without copying, until its end arrives.
        this.parts.push(chunk.subarray(pos));
        this.partLen += avail;
        return chunk.length;
      }
      const first = this.parts.length > 0 ? this.parts[0]! : chunk.subarray(pos, lf < 0 ? chunk.length : lf + 1);
      return this.overlong(first, chunk, lf);
    }
    let line: Buffer;
    if (this.partLen === 0) {
      line = chunk.subarray(pos, lf + 1);
    } else {
      line = this.takeParts(chunk, pos, lf + 1);
    }
    const total = line.length;
    const crlf = total >= 2 && line[total - 2] === CR;
    const contentEnd = crlf ? total - 2 : total - 1;
    if (contentEnd > max) return this.overlong(line, chunk, lf);
    this.sink.line(line, contentEnd, crlf ? 'crlf' : 'lf');
    return lf + 1;
  }

  private overlong(first: Buffer, chunk: Buffer, lf: number): number {
    const head = first.subarray(0, OVERLONG_HEAD_BYTES);
    this.parts = [];
    this.partLen = 0;
    this.mode = lf < 0 ? 'discard' : 'line';
    this.sink.overlong(head);
    return lf < 0 ? chunk.length : lf + 1;
  }

  private takeParts(chunk: Buffer | null, start: number, end: number): Buffer {
    if (chunk) this.parts.push(chunk.subarray(start, end));
    const line = this.parts.length === 1 ? this.parts[0]! : Buffer.concat(this.parts);
    this.parts = [];
    this.partLen = 0;
    return line;
  }
}
