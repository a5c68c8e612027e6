import { filterCapabilities, type CapabilityFlags } from './capability.js';
import { MAX_TAG_LENGTH } from './syntax.js';

const LF = 0x0a;
const CR = 0x0d;
const SP = 0x20;
const LBRACE = 0x7b;
const RBRACE = 0x7d;

/**
 * Bytes of a response's start kept to classify it (tag or '*' or '+', the
 * status word, a `[CAPABILITY` code). Held back from the client only while a
 * chunk ends before the response could be classified.
 */
const HEAD_MAX = 160;
/** Bytes of a data line's end kept to see a literal `{n}` there, across chunks. */
const TAIL_MAX = 64;
/**
 * The longest capability line the wrapper filters. It is held until complete
 * (it has to be rewritten); one that grows past this is passed on unfiltered
 * (the hidden commands are refused anyway), so a server cannot make the
 * wrapper buffer without bound.
 */
export const CAP_LINE_MAX = 16384;

/** One complete server response line, as the state machine needs it. */
export interface ServerResponse {
  readonly kind: 'tagged' | 'untagged' | 'continuation';
  /** The tag of a tagged response; '' otherwise. */
  readonly tag: string;
  /** The upper-cased second word: OK, NO, BAD, BYE, PREAUTH, CAPABILITY, a message number... */
  readonly word: string;
  /** Capabilities the line carried (CAPABILITY data or a [CAPABILITY] code), else null. */
  readonly caps: CapabilityFlags | null;
}

interface Classified {
  readonly kind: ServerResponse['kind'];
  readonly tag: string;
  readonly word: string;
  /** A data response: its line may end with a literal. Status lines and '+' never do. */
  readonly data: boolean;
  /** Where a capability list starts, or -1. */
  readonly capListStart: number;
  readonly inCode: boolean;
}

const STATUS = new Set(['OK', 'NO', 'BAD', 'BYE', 'PREAUTH']);
const CAP_CODE = '[CAPABILITY';

function upper(buf: Uint8Array, start: number, end: number): string {
  if (end - start > 16) return '';
  let s = '';
  for (let i = start; i < end; i++) {
    const b = buf[i]!;
    s += String.fromCharCode(b >= 0x61 && b <= 0x7a ? b - 0x20 : b);
  }
  return s;
}

/**
 * Classifies a response from its first len bytes. Returns null while more
 * bytes are needed (and the head is neither complete nor at HEAD_MAX).
 */
function classify(buf: Buffer, len: number, complete: boolean): Classified | null {
  const final = complete || len >= HEAD_MAX;
  let end = len;
  if (complete) {
    end--;
    if (end > 0 && buf[end - 1] === CR) end--;
  }
  let sp1 = buf.indexOf(SP);
  if (sp1 >= end) sp1 = -1;
  if (sp1 < 0 && !final) return null;
  const w1End = sp1 < 0 ? end : sp1;
  if (w1End === 1 && buf[0] === 0x2b) return { kind: 'continuation', tag: '', word: '', data: false, capListStart: -1, inCode: false };
  const star = w1End === 1 && buf[0] === 0x2a;
  if (sp1 < 0) return { kind: star ? 'untagged' : 'tagged', tag: '', word: '', data: star, capListStart: -1, inCode: false };
  let sp2 = buf.indexOf(SP, sp1 + 1);
  if (sp2 >= end) sp2 = -1;
  if (sp2 < 0 && !final) return null;
  const w2End = sp2 < 0 ? end : sp2;
  const word = upper(buf, sp1 + 1, w2End);
  const tag = !star && sp1 <= MAX_TAG_LENGTH ? buf.toString('latin1', 0, sp1) : '';
  if (star && word === 'CAPABILITY') {
    return { kind: 'untagged', tag: '', word, data: false, capListStart: sp2 < 0 ? end : sp2 + 1, inCode: false };
  }
  if (star && !STATUS.has(word)) return { kind: 'untagged', tag: '', word, data: true, capListStart: -1, inCode: false };
  // A status line: look for a [CAPABILITY ...] response code.
  let capListStart = -1;
  if (sp2 >= 0) {
    const codeStart = sp2 + 1;
    const avail = end - codeStart;
    let m = 0;
    while (m < CAP_CODE.length && m < avail) {
      const b = buf[codeStart + m]!;
      if ((b >= 0x61 && b <= 0x7a ? b - 0x20 : b) !== CAP_CODE.charCodeAt(m)) break;
      m++;
    }
    if (m === avail && !final) return null; // all seen so far could be "[CAPABILITY ": wait for more
    if (m === CAP_CODE.length && m < avail) {
      const b = buf[codeStart + m];
      if (b === SP) capListStart = codeStart + m + 1;
      else if (b === 0x5d) capListStart = codeStart + m;
    }
  }
  return { kind: star ? 'untagged' : 'tagged', tag, word, data: false, capListStart, inCode: true };
}

type Mode = 'head' | 'pass' | 'cap' | 'literal';

/**
 * Follows the server's output: where each response starts, which lines end
 * with a literal and how many bytes that literal holds (FETCH bodies), so
 * that no literal data is ever taken for a status line. Works across any
 * chunking, keeps at most HEAD_MAX + TAIL_MAX + CAP_LINE_MAX bytes, and
 * passes bytes on as slices of the input wherever it does not rewrite.
 */
export class ServerScanner {
  /** Capabilities the wrapper adds to every list (STARTTLS it offers itself; LOGINDISABLED before TLS). */
  addCapabilities: readonly string[] = [];
  private mode: Mode = 'head';
  private readonly head = Buffer.alloc(HEAD_MAX);
  private headLen = 0;
  private readonly tail = Buffer.alloc(TAIL_MAX);
  private tailLen = 0;
  private lineLen = 0;
  private literalLeft = 0;
  private dataLine = false;
  private current: Classified | null = null;
  private capParts: Buffer[] = [];
  private capLen = 0;

  /** Between two responses: wrapper replies may be inserted here. */
  get atBoundary(): boolean {
    return this.mode === 'head' && this.headLen === 0;
  }

  /** Server bytes held back (head of an unclassified response, an unfinished capability line). */
  get bufferedBytes(): number {
    return this.headLen + this.capLen;
  }

  /**
   * Scans a chunk. onResponse is called for each complete response line;
   * atBoundary() is asked at each point between responses for bytes to
   * insert there. Returns the bytes for the client, or null when they are
   * exactly the chunk.
   */
  feed(chunk: Buffer, onResponse: (r: ServerResponse) => void, atBoundary: () => readonly Buffer[] | null): Buffer[] | null {
    const out: Buffer[] = [];
    let changed = false;
    let passFrom = -1;
    const flush = (to: number) => {
      if (passFrom >= 0 && to > passFrom) out.push(chunk.subarray(passFrom, to));
      passFrom = -1;
    };
    const endLine = (caps: CapabilityFlags | null) => {
      if (this.endLine(onResponse, caps)) {
        const extra = atBoundary();
        if (extra && extra.length > 0) {
          out.push(...extra);
          changed = true;
        }
      }
    };
    const len = chunk.length;
    let pos = 0;
    while (pos < len) {
      switch (this.mode) {
        case 'literal': {
          const take = Math.min(this.literalLeft, len - pos);
          if (passFrom < 0) passFrom = pos;
          pos += take;
          this.literalLeft -= take;
          if (this.literalLeft === 0) this.startContinuation();
          break;
        }
        case 'head': {
          const lf = chunk.indexOf(LF, pos);
          const segEnd = lf < 0 ? len : lf + 1;
          if (this.headLen === 0) {
            // Fast path: classify in place, without copying or holding back.
            const viewEnd = Math.min(segEnd, pos + HEAD_MAX);
            const view = chunk.subarray(pos, viewEnd);
            const c = classify(view, view.length, viewEnd === lf + 1);
            if (c) {
              this.begin(c);
              break;
            }
          }
          flush(pos);
          changed = true;
          const take = Math.min(segEnd - pos, HEAD_MAX - this.headLen);
          chunk.copy(this.head, this.headLen, pos, pos + take);
          this.headLen += take;
          pos += take;
          const complete = this.head[this.headLen - 1] === LF;
          const c = classify(this.head, this.headLen, complete);
          if (!c) break; // the chunk ended before the response could be classified
          const headCopy = Buffer.from(this.head.subarray(0, this.headLen));
          this.headLen = 0;
          this.begin(c);
          if (c.capListStart >= 0) {
            this.capParts.push(headCopy);
            this.capLen += headCopy.length;
            if (complete) endLine(this.finishCap(out));
          } else {
            out.push(headCopy);
            this.lineLen = 0;
            if (this.dataLine) this.addTail(headCopy, 0, headCopy.length);
            if (complete) endLine(null);
          }
          break;
        }
        case 'pass': {
          const lf = chunk.indexOf(LF, pos);
          const segEnd = lf < 0 ? len : lf + 1;
          if (passFrom < 0) passFrom = pos;
          if (this.dataLine) this.addTail(chunk, pos, segEnd);
          pos = segEnd;
          if (lf >= 0) {
            flush(pos);
            endLine(null);
          }
          break;
        }
        case 'cap': {
          flush(pos);
          changed = true;
          const lf = chunk.indexOf(LF, pos);
          const segEnd = lf < 0 ? len : lf + 1;
          // Copied: a held slice would keep its whole chunk alive.
          const slice = Buffer.from(chunk.subarray(pos, segEnd));
          pos = segEnd;
          if (this.capLen + slice.length > CAP_LINE_MAX) {
            // Too long to hold: pass it on unfiltered.
            out.push(...this.capParts, slice);
            this.capParts = [];
            this.capLen = 0;
            this.mode = 'pass';
            this.dataLine = false;
            if (lf >= 0) endLine(null);
            break;
          }
          this.capParts.push(slice);
          this.capLen += slice.length;
          if (lf >= 0) endLine(this.finishCap(out));
          break;
        }
        default: {
          const never: never = this.mode;
          throw new Error(`unknown server scanner mode ${String(never)}`);
        }
      }
    }
    flush(len);
    return changed ? out : null;
  }

  /**
   * The server closed: bytes still held back, so that nothing it sent is
   * lost: an unfinished capability line (filtered like a whole one) or the
   * head of a response that could not be classified yet.
   */
  end(): Buffer[] {
    const out: Buffer[] = [];
    if (this.mode === 'cap' && this.capLen > 0) this.finishCap(out);
    else if (this.headLen > 0) out.push(Buffer.from(this.head.subarray(0, this.headLen)));
    this.headLen = 0;
    return out;
  }

  private begin(c: Classified): void {
    this.current = c;
    this.dataLine = c.data;
    this.tailLen = 0;
    this.lineLen = 0;
    this.mode = c.capListStart >= 0 ? 'cap' : 'pass';
  }

  private startContinuation(): void {
    // The line after a literal goes on with the same response.
    this.mode = 'pass';
    this.dataLine = true;
    this.tailLen = 0;
    this.lineLen = 0;
  }

  private finishCap(out: Buffer[]): CapabilityFlags {
    const line = this.capParts.length === 1 ? this.capParts[0]! : Buffer.concat(this.capParts);
    this.capParts = [];
    this.capLen = 0;
    const c = this.current!;
    const f = filterCapabilities(line, Math.min(c.capListStart, line.length), c.inCode, this.addCapabilities);
    out.push(f.line);
    return f.flags;
  }

  /** A line ended. Returns true when a response ended (a boundary), false when a literal follows. */
  private endLine(onResponse: (r: ServerResponse) => void, caps: CapabilityFlags | null): boolean {
    if (this.dataLine) {
      const n = this.literalInTail();
      if (n >= 0) {
        this.literalLeft = n;
        if (n === 0) this.startContinuation();
        else this.mode = 'literal';
        this.current = null;
        return false;
      }
    }
    const c = this.current;
    this.current = null;
    this.mode = 'head';
    this.dataLine = false;
    this.tailLen = 0;
    this.lineLen = 0;
    if (c) onResponse({ kind: c.kind, tag: c.tag, word: c.word, caps });
    return true;
  }

  private addTail(buf: Buffer, start: number, end: number): void {
    const n = end - start;
    this.lineLen += n;
    if (n >= TAIL_MAX) {
      buf.copy(this.tail, 0, end - TAIL_MAX, end);
      this.tailLen = TAIL_MAX;
      return;
    }
    if (this.tailLen + n > TAIL_MAX) {
      const keep = TAIL_MAX - n;
      this.tail.copyWithin(0, this.tailLen - keep, this.tailLen);
      this.tailLen = keep;
    }
    buf.copy(this.tail, this.tailLen, start, end);
    this.tailLen += n;
  }

  /**
   * The size of a literal announced at the end of the line in the tail, or
   * -1. A size too long to fit the tail (only possible with absurd leading
   * zeros) is taken as endless: the rest of the stream is passed on unparsed
   * rather than risk reading literal data as responses.
   */
  private literalInTail(): number {
    const t = this.tail;
    let e = this.tailLen;
    if (e > 0 && t[e - 1] === LF) e--;
    if (e > 0 && t[e - 1] === CR) e--;
    if (e === 0 || t[e - 1] !== RBRACE) return -1;
    e--;
    let d = e;
    while (d > 0 && t[d - 1]! >= 0x30 && t[d - 1]! <= 0x39) d--;
    if (d === e) return -1;
    if (d === 0) return this.lineLen > this.tailLen ? Number.MAX_SAFE_INTEGER : -1;
    if (t[d - 1] !== LBRACE) return -1;
    while (d < e - 1 && t[d] === 0x30) d++;
    if (e - d > 15) return Number.MAX_SAFE_INTEGER;
    let n = 0;
    for (let i = d; i < e; i++) n = n * 10 + (t[i]! - 0x30);
    return n;
  }
}
