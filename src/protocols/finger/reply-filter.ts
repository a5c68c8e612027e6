/**
 * The finger server's reply on its way to the client, filtered (RFC 1288
 * section 3.3: a .plan or a GECOS field can carry bytes that reprogram the
 * client's terminal). Removed: C0 control bytes except TAB, LF and CR; DEL;
 * and the C1 controls in their UTF-8 form (C2 80 to C2 9F: U+009B is CSI to
 * xterm in UTF-8 mode). Every other byte passes unchanged, UTF-8 text
 * included. Pure, and chunking-independent: the output for a stream is the
 * same however it is cut, because a C2 at the end of a chunk is kept back
 * until the next byte says whether it starts a C1 control.
 *
 * Bounded: at most maxBytes server bytes are read; the rest is cut (the
 * "finger bomb" of a huge listing or an endless .plan FIFO stops here).
 */
export class FingerReplyFilter {
  private total = 0;
  /** A C2 held back from the end of the last chunk. */
  private carry = false;
  private capped = false;

  constructor(private readonly maxBytes: number) {}

  /**
   * Filters one chunk. out: the bytes for the client (the chunk itself when
   * nothing changed). full: this chunk reached the cap; its bytes past the cap
   * are gone.
   */
  feed(chunk: Buffer): { out: Buffer; full: boolean } {
    if (this.capped) return { out: EMPTY, full: true };
    let data = chunk;
    const room = this.maxBytes - this.total;
    if (chunk.length > room) {
      data = chunk.subarray(0, room);
      this.capped = true;
    }
    this.total += data.length;
    let out = this.filter(data);
    if (this.capped && this.carry) {
      // The stream ends at the cap: a held C2 is no control, so it is the client's.
      this.carry = false;
      out = out.length === 0 ? C2_BYTE : Buffer.concat([out, C2_BYTE]);
    }
    return { out, full: this.capped };
  }

  /** The server closed: what was still held back (a last C2), or null. */
  end(): Buffer | null {
    if (!this.carry) return null;
    this.carry = false;
    return C2_BYTE;
  }

  private filter(data: Buffer): Buffer {
    let start = 0;
    let prefix = false;
    if (this.carry) {
      if (data.length === 0) return EMPTY;
      this.carry = false;
      const b = data[0]!;
      // C2 and this byte are one C1 control: both go. Else the C2 was text.
      if (b >= 0x80 && b <= 0x9f) start = 1;
      else prefix = true;
    }
    const body = needsWork(data, start) ? this.runs(data, start) : start === 0 ? data : data.subarray(start);
    return prefix ? Buffer.concat([C2_BYTE, body]) : body;
  }

  /** The kept runs of data[from..], the held-back C2 recorded. */
  private runs(data: Buffer, from: number): Buffer {
    const parts: Buffer[] = [];
    let runStart = from;
    let i = from;
    while (i < data.length) {
      const b = data[i]!;
      if (STRIP[b] === 1) {
        if (i > runStart) parts.push(data.subarray(runStart, i));
        runStart = ++i;
        continue;
      }
      if (b === 0xc2) {
        if (i + 1 === data.length) {
          if (i > runStart) parts.push(data.subarray(runStart, i));
          this.carry = true;
          return Buffer.concat(parts);
        }
        const next = data[i + 1]!;
        if (next >= 0x80 && next <= 0x9f) {
          if (i > runStart) parts.push(data.subarray(runStart, i));
          i += 2;
          runStart = i;
          continue;
        }
      }
      i++;
    }
    if (runStart < data.length) parts.push(data.subarray(runStart));
    return parts.length === 1 ? parts[0]! : Buffer.concat(parts);
  }
}

const EMPTY = Buffer.alloc(0);
const C2_BYTE = Buffer.from([0xc2]);

/** C0 controls but TAB, LF, CR; and DEL. */
const STRIP = (() => {
  const t = new Uint8Array(256);
  for (let b = 0; b < 0x20; b++) t[b] = b === 0x09 || b === 0x0a || b === 0x0d ? 0 : 1;
  t[0x7f] = 1;
  return t;
})();

/** Does data[from..] hold a byte to strip or a C2 (a possible C1 control)? One pass, no allocation. */
function needsWork(data: Buffer, from: number): boolean {
  for (let i = from; i < data.length; i++) {
    const b = data[i]!;
    if (STRIP[b] === 1 || b === 0xc2) return true;
  }
  return false;
}
