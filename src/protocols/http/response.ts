import { CR, LF } from '../../core/bytes.js';
import { parseChunkSize, parseCodings, parseContentLength, parseField } from './grammar.js';

/** What the response framer must know of the request a response answers. */
export interface Asked {
  /** HEAD: the response has no body, whatever its fields say. */
  readonly head: boolean;
  /** CONNECT: a 2xx turns the connection into a tunnel. */
  readonly connect: boolean;
  /** The request asked for an Upgrade (allowUpgrade): a 101 turns the connection into a tunnel. */
  readonly upgrade: boolean;
}

/**
 * Bytes of one response head (status line and fields) the framer reads
 * before it gives up: a server that never ends its head cannot make the
 * wrapper buffer without end (only the unfinished line is kept, and only
 * up to this bound).
 */
export const MAX_RESPONSE_HEAD = 65536;
/** The longest chunk-size line of a response (size and extensions). */
export const MAX_CHUNK_LINE = 4096;

/** What a line finished; a fault is the reason the response cannot be framed. */
type Outcome = 'none' | 'final' | 'continue' | 'tunnel' | { readonly fault: string };

type Mode = 'status' | 'fields' | 'length' | 'chunk-size' | 'chunk-data' | 'chunk-end' | 'trailers' | 'close' | 'tunnel';

/** What one chunk of server bytes did. */
export interface ResponseProgress {
  /** Final responses completed in this chunk (each answers the oldest request). */
  readonly completed: number;
  /** A 100 Continue arrived: the client may now send the body it announced. */
  readonly continued: boolean;
  /** The server switched protocols (101 to an Upgrade, 2xx to a CONNECT): everything from here on is a tunnel. */
  readonly tunnel: boolean;
  /** The server sent what the wrapper cannot frame: forward only the bytes before `at`, then close. */
  readonly fault: { readonly at: number; readonly reason: string } | null;
}

/**
 * Follows the server's responses (RFC 9112 section 6.3) so that the wrapper
 * knows where each one ends and which request it answers: HEAD, 1xx, 204
 * and 304 have no body; Transfer-Encoding chunked, Content-Length, or the
 * close of the connection ends the rest. Pure and incremental: it reads
 * chunks as they come, keeps no more than one unfinished line (bounded),
 * never copies a body byte; the bytes themselves are forwarded unchanged
 * by the caller.
 */
export class ResponseFramer {
  private mode: Mode = 'status';
  private readonly asked: Asked[] = [];
  private parts: Buffer[] = [];
  private partLen = 0;
  private headBytes = 0;
  private left = 0;
  // The response being read.
  private status = 0;
  private length: number | null = null;
  private codings: string[] = [];
  private lengthSeen = false;

  /** A request was forwarded: its response comes after those of the requests before it. */
  expect(a: Asked): void {
    this.asked.push(a);
  }

  /** Requests forwarded and not answered yet. */
  get outstanding(): number {
    return this.asked.length;
  }

  /** A close-delimited body or a tunnel: the server's end is the end of the message. */
  get endsAtClose(): boolean {
    return this.mode === 'close' || this.mode === 'tunnel';
  }

  /** Inside a response (some of it seen, not all). */
  get midResponse(): boolean {
    return this.mode !== 'status' || this.partLen > 0;
  }

  feed(chunk: Buffer): ResponseProgress {
    let completed = 0;
    let continued = false;
    let tunnel = false;
    let pos = 0;
    const len = chunk.length;
    while (pos < len) {
      switch (this.mode) {
        case 'close':
        case 'tunnel':
          return { completed, continued, tunnel, fault: null };
        case 'length':
        case 'chunk-data': {
          const take = Math.min(this.left, len - pos);
          this.left -= take;
          pos += take;
          if (this.left === 0) {
            if (this.mode === 'length') {
              completed++;
              this.next();
            } else this.mode = 'chunk-end';
          }
          break;
        }
        default: {
          const lf = chunk.indexOf(LF, pos);
          const limit = this.mode === 'chunk-size' || this.mode === 'chunk-end' ? MAX_CHUNK_LINE : MAX_RESPONSE_HEAD - this.headBytes;
          if (lf < 0) {
            if (this.partLen + len - pos > limit) return { completed, continued, tunnel, fault: { at: pos, reason: 'response line or head too long' } };
            this.parts.push(chunk.subarray(pos));
            this.partLen += len - pos;
            return { completed, continued, tunnel, fault: null };
          }
          let line = chunk.subarray(pos, lf + 1);
          if (this.partLen + line.length > limit) return { completed, continued, tunnel, fault: { at: pos, reason: 'response line or head too long' } };
          if (this.partLen > 0) {
            this.parts.push(line);
            line = Buffer.concat(this.parts);
            this.parts = [];
            this.partLen = 0;
          }
          const start = pos;
          pos = lf + 1;
          if (line.length < 2 || line[line.length - 2] !== CR) return { completed, continued, tunnel, fault: { at: start, reason: 'response line without CRLF' } };
          const r = this.line(line, line.length - 2);
          if (typeof r === 'object') return { completed, continued, tunnel, fault: { at: start, reason: r.fault } };
          if (r === 'final') completed++;
          else if (r === 'continue') continued = true;
          else if (r === 'tunnel') {
            tunnel = true;
            completed++;
          }
        }
      }
    }
    return { completed, continued, tunnel, fault: null };
  }

  /** One complete line of a head, chunk line or trailer. Returns what it finished, or a fault. */
  private line(b: Buffer, end: number): Outcome {
    switch (this.mode) {
      case 'status':
        return this.statusLine(b, end);
      case 'fields':
        this.headBytes += b.length;
        return end === 0 ? this.headEnd() : this.field(b, end);
      case 'chunk-size': {
        const n = parseChunkSize(b, end);
        if (typeof n !== 'number') return { fault: `bad chunk size line (${n.reason})` };
        if (n === 0) {
          this.headBytes = 0;
          this.mode = 'trailers';
        } else {
          this.left = n;
          this.mode = 'chunk-data';
        }
        return 'none';
      }
      case 'chunk-end':
        if (end !== 0) return { fault: 'chunk data longer than its size' };
        this.mode = 'chunk-size';
        return 'none';
      case 'trailers': {
        this.headBytes += b.length;
        if (end === 0) {
          this.next();
          return 'final';
        }
        const f = parseField(b, end);
        return 'name' in f ? 'none' : { fault: `bad trailer field (${f.reason})` };
      }
      case 'length':
      case 'chunk-data':
      case 'close':
      case 'tunnel':
        throw new Error(`line in response mode ${this.mode}`);
      default: {
        const never: never = this.mode;
        throw new Error(`unknown response mode ${String(never)}`);
      }
    }
  }

  /** status-line = HTTP-version SP 3DIGIT SP [reason-phrase] (RFC 9112 section 4); a missing reason's SP is tolerated. */
  private statusLine(b: Buffer, end: number): Outcome {
    if (this.asked.length === 0) return { fault: 'a response to no request' };
    if (end < 12 || b.toString('latin1', 0, 7) !== 'HTTP/1.' || (b[7] !== 0x30 && b[7] !== 0x31) || b[8] !== 0x20) return { fault: 'malformed status line' };
    let status = 0;
    for (let i = 9; i < 12; i++) {
      const c = b[i]!;
      if (c < 0x30 || c > 0x39) return { fault: 'malformed status code' };
      status = status * 10 + c - 0x30;
    }
    if (status < 100 || (end > 12 && b[12] !== 0x20)) return { fault: 'malformed status line' };
    for (let i = 13; i < end; i++) if ((b[i]! < 0x20 && b[i] !== 0x09) || b[i] === 0x7f) return { fault: 'control byte in the reason phrase' };
    this.status = status;
    this.length = null;
    this.lengthSeen = false;
    this.codings = [];
    this.headBytes = b.length;
    this.mode = 'fields';
    return 'none';
  }

  private field(b: Buffer, end: number): Outcome {
    const f = parseField(b, end);
    if (!('name' in f)) return { fault: `bad response field (${f.reason})` };
    if (f.name === 'content-length') {
      const n = parseContentLength(b, f.valueStart, f.valueEnd);
      if (typeof n !== 'number') return { fault: 'bad Content-Length in a response' };
      if (this.lengthSeen && n !== this.length) return { fault: 'two different Content-Length in a response' };
      this.length = n;
      this.lengthSeen = true;
    } else if (f.name === 'transfer-encoding') {
      // Unknown codings are the client's business: without chunked last, the body ends at the close.
      const fault = parseCodings(b, f.valueStart, f.valueEnd, this.codings);
      if (fault && fault.status === 400) return { fault: 'malformed Transfer-Encoding in a response' };
      if (fault) this.codings.push('?');
    }
    return 'none';
  }

  /** The empty line after a response head: where its body ends (RFC 9112 section 6.3). */
  private headEnd(): Outcome {
    const asked = this.asked[0]!;
    const s = this.status;
    if (s < 200) {
      if (s === 101) {
        if (!asked.upgrade) return { fault: '101 Switching Protocols to a request that asked for no upgrade' };
        this.asked.shift();
        this.mode = 'tunnel';
        return 'tunnel';
      }
      // Interim (100, 102, 103): the final response is still to come.
      this.mode = 'status';
      return s === 100 ? 'continue' : 'none';
    }
    if (asked.connect && s < 300) {
      this.asked.shift();
      this.mode = 'tunnel';
      return 'tunnel';
    }
    if (asked.head || s === 204 || s === 304) {
      this.next();
      return 'final';
    }
    // RFC 9112 section 6.3: both frame the body differently; an intermediary must not pass the two on
    // (and the wrapper forwards bytes unchanged, so it cannot take Content-Length out): a client that
    // reads the length would take the rest of the chunked body for the next response.
    if (this.codings.length > 0 && this.lengthSeen) return { fault: 'both Transfer-Encoding and Content-Length in a response' };
    if (this.codings.length > 0) {
      if (this.codings[this.codings.length - 1] === 'chunked') {
        this.mode = 'chunk-size';
        return 'none';
      }
      this.mode = 'close';
      this.asked.shift();
      return 'final';
    }
    if (this.length !== null) {
      if (this.length === 0) {
        this.next();
        return 'final';
      }
      this.left = this.length;
      this.mode = 'length';
      return 'none';
    }
    this.mode = 'close';
    this.asked.shift();
    return 'final';
  }

  /** A final response is over: the next one answers the next request. */
  private next(): void {
    this.asked.shift();
    this.mode = 'status';
    this.headBytes = 0;
  }
}
