import { DIGIT, LF } from '../../core/bytes.js';
import { decimal } from './path.js';

/**
 * Server replies (RFC 5321 §4.2): "DDD-text" continuation lines, then a
 * final "DDD text" (or "DDD") line. The reader cuts the server's bytes into
 * whole replies so that the protocol can match each one to the command it
 * answers, and hands the bytes back unchanged.
 */
export interface Reply {
  /** The reply code, or null for bytes that are not a reply (passed through as they are). */
  readonly code: number | null;
  /** The reply's lines, each with its ending, exactly as received. */
  readonly lines: readonly Buffer[];
}

/** A server line longer than this is not a reply line: it is passed through, not parsed. */
export const MAX_REPLY_LINE = 4096;
/** A multi-line reply holding more than this is passed through as it stands. */
export const MAX_REPLY_BYTES = 65536;

function codeOf(line: Buffer): number | null {
  if (line.length < 4) return null;
  if (DIGIT[line[0]!] !== 1 || DIGIT[line[1]!] !== 1 || DIGIT[line[2]!] !== 1) return null;
  const sep = line[3];
  if (sep !== 0x20 && sep !== 0x2d && sep !== 0x0d && sep !== LF) return null;
  return (line[0]! - 0x30) * 100 + (line[1]! - 0x30) * 10 + (line[2]! - 0x30);
}

export class ReplyReader {
  private partial: Buffer[] = [];
  private partialLen = 0;
  /** Passing an overlong line through until its LF. */
  private skipping = false;
  private lines: Buffer[] = [];
  private linesLen = 0;
  private code: number | null = null;

  /** Feeds server bytes; returns the replies (and pass-through pieces) completed, in order. */
  feed(chunk: Buffer): Reply[] {
    const out: Reply[] = [];
    let pos = 0;
    while (pos < chunk.length) {
      const lf = chunk.indexOf(LF, pos);
      if (this.skipping) {
        const stop = lf < 0 ? chunk.length : lf + 1;
        out.push({ code: null, lines: [chunk.subarray(pos, stop)] });
        if (lf >= 0) this.skipping = false;
        pos = stop;
        continue;
      }
      if (lf < 0) {
        const rest = chunk.subarray(pos);
        if (this.partialLen + rest.length > MAX_REPLY_LINE) {
          this.flushJunk(out, rest);
          this.skipping = true;
        } else {
          this.partial.push(rest);
          this.partialLen += rest.length;
        }
        return out;
      }
      let line = chunk.subarray(pos, lf + 1);
      pos = lf + 1;
      if (this.partialLen > 0) {
        line = Buffer.concat([...this.partial, line]);
        this.partial = [];
        this.partialLen = 0;
      }
      this.takeLine(line, out);
    }
    return out;
  }

  /** The server is gone: the bytes of an unfinished reply, as received, so that none is lost. */
  end(): Buffer[] {
    const rest = [...this.lines, ...this.partial];
    this.lines = [];
    this.linesLen = 0;
    this.code = null;
    this.partial = [];
    this.partialLen = 0;
    return rest;
  }

  private flushJunk(out: Reply[], rest: Buffer): void {
    const pieces = [...this.lines, ...this.partial, rest];
    this.lines = [];
    this.linesLen = 0;
    this.code = null;
    this.partial = [];
    this.partialLen = 0;
    out.push({ code: null, lines: pieces });
  }

  private takeLine(line: Buffer, out: Reply[]): void {
    const code = codeOf(line);
    if (code === null || line.length > MAX_REPLY_LINE) {
      // Not a reply line: whatever was gathered goes through unparsed.
      this.flushJunk(out, line);
      return;
    }
    if (this.code === null) this.code = code;
    this.lines.push(line);
    this.linesLen += line.length;
    if (line[3] === 0x2d) {
      if (this.linesLen > MAX_REPLY_BYTES) {
        out.push({ code: null, lines: this.lines });
        this.lines = [];
        this.linesLen = 0;
        this.code = null;
      }
      return;
    }
    out.push({ code: this.code, lines: this.lines });
    this.lines = [];
    this.linesLen = 0;
    this.code = null;
  }
}

/** What the server's EHLO reply offers, after our filter. */
export interface Capabilities {
  pipelining: boolean;
  chunking: boolean;
  smtputf8: boolean;
  auth: Set<string>;
}

export interface EhloFilter {
  /** Take CHUNKING (and BINARYMIME) out: a body policy must see a DATA body. */
  readonly dropChunking: boolean;
  /** Advertise at most this SIZE (0: leave SIZE alone). */
  readonly maxSize: number;
  /** Add STARTTLS: the wrapper offers it itself (tls = starttls/require, before TLS). */
  readonly starttls?: boolean;
  /** Leave the AUTH line out (tls = require, before TLS); its mechanisms are still recorded. */
  readonly hideAuth?: boolean;
}

/**
 * Extensions we can follow. Everything else is taken out of the EHLO reply
 * (deny by default): STARTTLS (the session would go blind), ETRN, XCLIENT,
 * XFORWARD, vendor extensions.
 */
const KNOWN = new Set(['PIPELINING', 'SIZE', '8BITMIME', 'SMTPUTF8', 'ENHANCEDSTATUSCODES', 'DSN', 'AUTH', 'CHUNKING', 'BINARYMIME', 'VRFY', 'HELP']);

function keywordOf(line: Buffer): { word: string; argStart: number; contentEnd: number } {
  let end = line.length;
  if (end > 0 && line[end - 1] === LF) end--;
  if (end > 0 && line[end - 1] === 0x0d) end--;
  let i = 4;
  while (i < end && line[i] !== 0x20) i++;
  return { word: line.toString('latin1', 4, i).toUpperCase(), argStart: i, contentEnd: end };
}

/**
 * Filters a 250 EHLO reply: unknown extensions and STARTTLS out, CHUNKING out
 * when asked, SIZE lowered to our limit. The last line kept gets the final
 * "250 " separator. Returns the new lines and what is offered.
 */
export function filterEhlo(lines: readonly Buffer[], f: EhloFilter): { lines: Buffer[]; caps: Capabilities } {
  const caps: Capabilities = { pipelining: false, chunking: false, smtputf8: false, auth: new Set() };
  const kept: Buffer[] = [lines[0]!];
  let sized = false;
  for (let n = 1; n < lines.length; n++) {
    const line = lines[n]!;
    const { word, argStart, contentEnd } = keywordOf(line);
    if (!KNOWN.has(word)) continue;
    if (f.dropChunking && (word === 'CHUNKING' || word === 'BINARYMIME')) continue;
    switch (word) {
      case 'PIPELINING':
        caps.pipelining = true;
        break;
      case 'CHUNKING':
        caps.chunking = true;
        break;
      case 'SMTPUTF8':
        caps.smtputf8 = true;
        break;
      case 'AUTH':
        for (const m of line.toString('latin1', argStart, contentEnd).split(' ')) if (m.length > 0) caps.auth.add(m.toUpperCase());
        if (f.hideAuth) continue;
        break;
      case 'SIZE': {
        sized = true;
        if (f.maxSize > 0) {
          const text = line.toString('latin1', argStart, contentEnd).trim();
          const server = decimal(text) ?? 0;
          if (server === 0 || server > f.maxSize) {
            kept.push(Buffer.from(`${line.toString('latin1', 0, 3)}-SIZE ${f.maxSize}\r\n`, 'latin1'));
            continue;
          }
        }
        break;
      }
      default:
        break;
    }
    kept.push(line);
  }
  // A server that states no limit still gets ours announced (RFC 1870), so clients can declare SIZE=.
  if (!sized && f.maxSize > 0) kept.push(Buffer.from(`${lines[0]!.toString('latin1', 0, 3)}-SIZE ${f.maxSize}\r\n`, 'latin1'));
  if (f.starttls) kept.push(Buffer.from(`${lines[0]!.toString('latin1', 0, 3)}-STARTTLS\r\n`, 'latin1'));
  // Separators: "-" on every line but the last, " " on the last.
  const out = kept.map((l, i) => {
    const want = i === kept.length - 1 ? 0x20 : 0x2d;
    if (l.length > 3 && l[3] === want) return l;
    if (l.length > 3 && (l[3] === 0x20 || l[3] === 0x2d)) {
      const c = Buffer.from(l);
      c[3] = want;
      return c;
    }
    // "250\r\n" (no text): only possible as a lone final line.
    return want === 0x20 ? l : Buffer.concat([l.subarray(0, 3), Buffer.from('-'), l.subarray(3)]);
  });
  return { lines: out, caps };
}
