import { DIGIT, LF } from '../../core/bytes.js';
import type { CommandKind } from './commands.js';

/** One reply the server owes, in the order the commands went out. */
export interface Expected {
  readonly kind: CommandKind | 'greeting' | 'wrapper-port';
  /** The client is held until the first line of this reply (1xx or final). */
  readonly held: boolean;
  /** EPSV ALL: a 2xx locks the session to EPSV (RFC 2428 section 4). */
  readonly all?: boolean;
  /** REST 0: a marker that restarts nothing (clients send it to probe REST STREAM). */
  readonly zero?: boolean;
}

interface Injected {
  readonly kind: 'inject';
  readonly bytes: Buffer;
}

type Entry = Expected | Injected;

/** A reply line came (the first of a reply, or its last). */
export interface ReplyEvent {
  readonly expected: Expected | null;
  readonly code: number;
  /** The reply is a 1xx: the final one is still to come. */
  readonly preliminary: boolean;
  /** The whole reply, when it was collected (227, 229); else null. */
  readonly text: Buffer | null;
}

/** Most bytes of a reply line kept when it must be seen whole (227/229, FEAT); longer ones are cut there. */
export const REPLY_LINE_MAX = 512;
/** Most bytes of a collected reply (a multi-line 227 / 229 / FEAT reply). */
const REPLY_MAX = 8192;

/** How a FEAT body line is treated: kept as it is, or dropped. */
export type FeatFilter = (line: Buffer) => boolean;

/**
 * Follows the server's side of an FTP control connection (RFC 959 section
 * 4.2): which reply answers which command, where a multi-line reply ends
 * ("123-" … "123 "). Bytes stream through: only the first four bytes of a
 * line are looked at, the rest is passed on without a copy, except in the
 * replies the wrapper rewrites, which are collected (bounded): the replies to
 * PASV and EPSV (their address is the server's, the client gets the
 * wrapper's) and FEAT (filtered to what the wrapper follows).
 */
export class ReplyTracker {
  private readonly queue: Entry[] = [];
  /** The code of the multi-line reply being read, or -1 between replies. */
  private multi = -1;
  /** The current line: 'head' until its first 4 bytes are seen, then pass or collect its rest. */
  private mode: 'head' | 'pass' | 'collect' = 'head';
  private readonly head = Buffer.alloc(4);
  private headLen = 0;
  /** The head bytes were sent already (pass mode) or are part of the collected line. */
  private line: Buffer[] = [];
  private lineLen = 0;
  private cut = false;
  /** A collected reply's lines so far. */
  private collected: Buffer[] = [];
  private collectedLen = 0;
  /** The code of the reply being read (its first line). */
  private code = 0;
  private firstLine = true;
  private out: Buffer[] = [];
  private events: ReplyEvent[] = [];

  constructor(
    greeting: Expected,
    private readonly featFilter: FeatFilter,
    /** Lines the wrapper adds to a FEAT reply (AUTH TLS, PBSZ, PROT when it offers TLS). */
    private readonly featExtra: () => readonly Buffer[],
  ) {
    this.queue.push(greeting);
  }

  get pending(): number {
    return this.queue.length;
  }

  get awaitingHeld(): boolean {
    return this.queue.some((e) => e.kind !== 'inject' && (e as Expected).held);
  }

  /** Replies owed by the server (not counting queued wrapper replies). */
  get owed(): number {
    return this.queue.filter((e) => e.kind !== 'inject').length;
  }

  expect(e: Expected): void {
    this.queue.push(e);
  }

  /** Queues a wrapper reply behind owed replies: true when queued, false when nothing is owed (send it now). */
  inject(bytes: Buffer): boolean {
    if (this.queue.length === 0 && this.mode === 'head' && this.headLen === 0 && this.multi < 0) return false;
    this.queue.push({ kind: 'inject', bytes });
    return true;
  }

  /** The server closed: wrapper replies still queued (the replies before them will never come). */
  end(): Buffer[] {
    const out: Buffer[] = [];
    if (this.mode === 'collect') out.push(...this.collected, ...this.line);
    for (const e of this.queue) if (e.kind === 'inject') out.push(e.bytes);
    this.queue.length = 0;
    return out;
  }

  private get current(): Expected | null {
    const e = this.queue[0];
    return e && e.kind !== 'inject' ? e : null;
  }

  /**
   * Feeds server bytes. Stops after a reply to PASV / EPSV (the caller needs
   * to answer it before the rest is read): `rest` then holds the bytes after it.
   */
  feed(chunk: Buffer): { out: Buffer[]; events: ReplyEvent[]; rest: Buffer | null } {
    this.out = [];
    this.events = [];
    let i = 0;
    let passFrom = 0;
    const n = chunk.length;
    while (i < n) {
      if (this.mode === 'head') {
        const b = chunk[i++]!;
        this.head[this.headLen++] = b;
        if (this.headLen < 4 && b !== LF) continue;
        if (this.decide() === 'pass') {
          this.out.push(Buffer.from(this.head.subarray(0, this.headLen)));
          passFrom = i;
        } else {
          this.addToLine(this.head.subarray(0, this.headLen));
        }
        this.headLen = 0;
        if (b === LF) {
          this.mode = 'head';
          if (this.lineEnd()) return this.stop(chunk, i);
        }
        continue;
      }
      const lf = chunk.indexOf(LF, i);
      const end = lf < 0 ? n : lf + 1;
      if (this.mode === 'pass') {
        if (end > passFrom) this.out.push(chunk.subarray(passFrom, end));
      } else {
        this.addToLine(chunk.subarray(i, end));
      }
      i = end;
      if (lf >= 0) {
        this.mode = 'head';
        if (this.lineEnd()) return this.stop(chunk, i);
      }
      passFrom = i;
    }
    return { out: this.out, events: this.events, rest: null };
  }

  private stop(chunk: Buffer, at: number): { out: Buffer[]; events: ReplyEvent[]; rest: Buffer | null } {
    return { out: this.out, events: this.events, rest: at < chunk.length ? chunk.subarray(at) : Buffer.alloc(0) };
  }

  /** The line's first bytes are in head: is it a reply's first line, its last, and must it be collected? */
  private decide(): 'pass' | 'collect' {
    const h = this.head;
    const isCode = this.headLen >= 3 && DIGIT[h[0]!] === 1 && DIGIT[h[1]!] === 1 && DIGIT[h[2]!] === 1;
    const code = isCode ? (h[0]! - 0x30) * 100 + (h[1]! - 0x30) * 10 + (h[2]! - 0x30) : -1;
    this.firstLine = this.multi < 0;
    if (this.firstLine) this.code = code;
    const kind = this.current?.kind;
    const collect = (kind === 'pasv' || kind === 'epsv' || kind === 'feat') && this.code > 0;
    this.mode = collect ? 'collect' : 'pass';
    this.lineLen = 0;
    this.line = [];
    this.cut = false;
    return this.mode;
  }

  private addToLine(bytes: Buffer): void {
    const room = REPLY_LINE_MAX - this.lineLen;
    if (room <= 0) {
      this.cut = true;
      return;
    }
    const take = bytes.length <= room ? bytes : bytes.subarray(0, room);
    if (take.length < bytes.length) this.cut = true;
    // A copy: the chunk's buffer is the socket's, and this line outlives it.
    this.line.push(Buffer.from(take));
    this.lineLen += take.length;
  }

  /** A line ended. Returns true when the feed must stop (a reply to PASV / EPSV is complete). */
  private lineEnd(): boolean {
    const collecting = this.line.length > 0 || this.cut;
    let lineBuf: Buffer | null = null;
    if (collecting) {
      lineBuf = Buffer.concat(this.line);
      // A cut line keeps its ending, so that the client still reads a line.
      if (this.cut) lineBuf = Buffer.concat([lineBuf.subarray(0, REPLY_LINE_MAX - 2), Buffer.from('\r\n')]);
    }
    const h = lineBuf ?? this.head;
    const sep = h[3];
    let endsReply: boolean;
    if (this.firstLine) {
      if (this.code < 0) {
        // Not a reply line (no code): passed on, it answers nothing.
        if (lineBuf) this.out.push(lineBuf);
        return false;
      }
      endsReply = sep !== 0x2d;
      if (!endsReply) this.multi = this.code;
    } else {
      endsReply = h.length >= 4 && this.lineCode(h) === this.multi && sep === 0x20;
    }
    const e = this.current;
    if (lineBuf) {
      if (e?.kind === 'feat' && this.code === 211) this.featLine(lineBuf, this.firstLine, endsReply);
      else this.collectLine(lineBuf, endsReply);
    }
    const preliminary = this.code >= 100 && this.code < 200;
    if (this.firstLine && preliminary && !endsReply) {
      // A multi-line 1xx: the held client may go on at its first line.
      this.events.push({ expected: e, code: this.code, preliminary: true, text: null });
    }
    if (!endsReply) return false;
    this.multi = -1;
    const text = this.collected.length > 0 ? Buffer.concat(this.collected) : null;
    this.collected = [];
    this.collectedLen = 0;
    if (preliminary) {
      if (this.firstLine) this.events.push({ expected: e, code: this.code, preliminary: true, text });
      else if (text) this.out.push(text);
      return false;
    }
    if (e) this.queue.shift();
    const stop = e !== null && (e.kind === 'pasv' || e.kind === 'epsv');
    this.events.push({ expected: e, code: this.code, preliminary: false, text });
    if (!stop && text) this.out.push(text);
    // Wrapper replies queued behind this one go out now, in order.
    if (!stop) this.out.push(...this.flushInjected());
    return stop;
  }

  /** After the caller answered a stopping reply: wrapper replies queued behind it. */
  flushInjected(): Buffer[] {
    const out: Buffer[] = [];
    while (this.queue[0]?.kind === 'inject') out.push((this.queue.shift() as Injected).bytes);
    return out;
  }

  private lineCode(h: Buffer): number {
    if (DIGIT[h[0]!] !== 1 || DIGIT[h[1]!] !== 1 || DIGIT[h[2]!] !== 1) return -1;
    return (h[0]! - 0x30) * 100 + (h[1]! - 0x30) * 10 + (h[2]! - 0x30);
  }

  /**
   * Past REPLY_MAX the middle lines of a collected reply are left out (a
   * hostile server's endless 227-); its last line (itself at most
   * REPLY_LINE_MAX) is always kept: it ends the reply for the client, and a
   * 227's address is usually there.
   */
  private collectLine(line: Buffer, last: boolean): void {
    if (!last && this.collectedLen + line.length > REPLY_MAX) return;
    this.collected.push(line);
    this.collectedLen += line.length;
  }

  /** A FEAT reply line (RFC 2389 section 3.2): feature lines start with a space; filtered and extended. */
  private featLine(line: Buffer, first: boolean, last: boolean): void {
    if (first && last) {
      // "211 no features" in one line: with features of the wrapper's own, a list.
      const extra = this.featExtra();
      if (extra.length === 0) this.out.push(line);
      else this.out.push(Buffer.from('211-Features:\r\n'), ...extra, Buffer.from('211 End\r\n'));
      return;
    }
    if (first) {
      this.out.push(line);
      return;
    }
    if (last) {
      this.out.push(...this.featExtra(), line);
      return;
    }
    if (this.featFilter(line)) this.out.push(line);
  }
}
