import { CR, LF } from '../../core/bytes.js';
import type { CommandKind } from './commands.js';

/** How a server status line began. 'cont' is a SASL challenge ("+ base64"). */
export type Outcome = 'ok' | 'err' | 'cont' | 'other';

/** One reply the server owes, in the order the commands went out. */
export interface Expected {
  readonly kind: CommandKind | 'greeting' | 'sasl';
  /** A +OK reply runs to a '.' line. */
  readonly multi: boolean;
  /** The client's line was held until this reply came. */
  readonly held: boolean;
  /** A -ERR reply is replaced by these bytes (same answer for every failed login), unless it carries a kept code. */
  readonly rewriteErr?: Buffer;
}

/** A wrapper reply to a refused pipelined line, sent when the replies before it are through. */
interface Injected {
  readonly kind: 'inject';
  readonly bytes: Buffer;
}

type Entry = Expected | Injected;

export interface Completed {
  readonly expected: Expected;
  readonly outcome: Outcome;
  /** The server's -ERR line was replaced by rewriteErr. */
  readonly rewritten: boolean;
}

/** Status-line bytes looked at: enough for "-ERR [LOGIN-DELAY]"; the rest of a line streams through. */
const STATUS_HEAD = 32;
/** Data-line bytes looked at: enough for "STLS\r\n" and the ".\r\n" end. */
const DATA_HEAD = 6;

/**
 * Response codes (RFC 2449, RFC 3206) that speak about the server, not the
 * password: a -ERR carrying them reaches the client unchanged.
 */
const KEPT_CODES = ['-ERR [SYS/', '-ERR [IN-USE]', '-ERR [LOGIN-DELAY]'];

function startsWith(b: Buffer, s: string): boolean {
  if (b.length < s.length) return false;
  for (let i = 0; i < s.length; i++) if (b[i] !== s.charCodeAt(i)) return false;
  return true;
}

function outcomeOf(head: Buffer): Outcome {
  if (startsWith(head, '+OK')) return 'ok';
  if (startsWith(head, '-ERR')) return 'err';
  // RFC 5034: a challenge is "+" SP base64; some servers send a bare "+".
  if (head[0] === 0x2b && (head[1] === 0x20 || head[1] === CR || head[1] === LF)) return 'cont';
  return 'other';
}

const STLS_LINE = Buffer.from('STLS\r\n');

/** True when the data line in head is exactly "STLS" and its ending (capability names are case-insensitive). */
function isStlsLine(head: Buffer): boolean {
  const n = head.length;
  const end = n >= 2 && head[n - 2] === CR ? n - 2 : n - 1;
  if (end !== 4 || head[n - 1] !== LF) return false;
  const word = 'STLS';
  for (let i = 0; i < 4; i++) if ((head[i]! & 0xdf) !== word.charCodeAt(i)) return false;
  return true;
}

/**
 * Follows the server's side of a POP3 session: which status line answers
 * which command, where a multi-line reply ends, so that no message line is
 * ever taken for a status line. Bytes stream through: only the first bytes
 * of a line are looked at (copied across chunks, at most STATUS_HEAD; held
 * back only where the line may be rewritten), the rest is passed or skipped
 * up to its LF without a copy. So a 50 MB RETR
 * costs no memory, and a line of any length cannot grow a buffer.
 *
 * The only rewrites: STLS lines dropped from a CAPA list (and the wrapper's
 * own STLS added when it offers TLS), a -ERR to a login
 * command replaced by the one answer for every failed login, and wrapper
 * replies to refused pipelined lines put in their place in the reply order.
 */
export class ReplyTracker {
  /** Add STLS to CAPA lists: the wrapper offers STLS itself (tls = starttls/require, before TLS). */
  offerStls = false;
  private readonly queue: Entry[] = [];
  /** Inside the current reply's multi-line body. */
  private inData = false;
  /** What the current line does: look at its head, pass its rest, or skip its rest. */
  private mode: 'head' | 'pass' | 'skip' = 'head';
  /** The current status line completes a reply when it ends. */
  private completeAtEol: Completed | null = null;
  private readonly carry = Buffer.alloc(STATUS_HEAD);
  private carryLen = 0;
  /** The carried head bytes were held back (not yet sent to the client). */
  private carryHeld = false;
  /** The current line began while a reply was owed (else it is unsolicited). */
  private lineOwned = false;
  // Per feed() call.
  private out: Buffer[] = [];
  private done: Completed[] = [];
  private chunk: Buffer = Buffer.alloc(0);
  private runStart = 0;

  constructor(greeting: Expected) {
    this.queue.push(greeting);
  }

  /** Replies owed plus queued wrapper replies. */
  get pending(): number {
    return this.queue.length;
  }

  /** A held line's reply is still owed. */
  get awaitingHeld(): boolean {
    return this.queue.some((e) => e.kind !== 'inject' && (e as Expected).held);
  }

  expect(e: Expected): void {
    this.queue.push(e);
  }

  /**
   * A wrapper reply: returns true when it was queued behind owed replies
   * (the caller must not send it now), false when nothing is owed.
   */
  inject(bytes: Buffer): boolean {
    // Never inside a server line either (an unsolicited one still arriving).
    if (this.queue.length === 0 && this.mode === 'head' && this.carryLen === 0) return false;
    this.queue.push({ kind: 'inject', bytes });
    return true;
  }

  /**
   * The server closed: what is still held back for the client, so that
   * nothing it sent is lost: the head of a line that was waiting to be seen
   * whole, then wrapper replies still queued behind replies that will never come.
   */
  end(): Buffer[] {
    const out: Buffer[] = [];
    if (this.carryLen > 0 && this.carryHeld) out.push(Buffer.from(this.carry.subarray(0, this.carryLen)));
    this.carryLen = 0;
    for (const e of this.queue) if (e.kind === 'inject') out.push(e.bytes);
    this.queue.length = 0;
    return out;
  }

  feed(chunk: Buffer): { out: Buffer[]; done: Completed[] } {
    this.out = [];
    this.done = [];
    this.chunk = chunk;
    this.runStart = 0;
    const len = chunk.length;
    let i = 0;
    while (i < len) {
      if (this.mode !== 'head') {
        const lf = chunk.indexOf(LF, i);
        const end = lf < 0 ? len : lf + 1;
        if (this.mode === 'skip') {
          this.flush(i);
          this.runStart = end;
        }
        i = end;
        if (lf >= 0) {
          this.mode = 'head';
          this.lineEnded(end);
        }
        continue;
      }
      const from = i;
      const limit = this.inData ? DATA_HEAD : STATUS_HEAD;
      // A line that began while no reply was owed stays unsolicited, even if a command goes out meanwhile.
      if (this.carryLen === 0) this.lineOwned = this.current() !== undefined;
      // Hold a head back only when the line may be replaced or dropped; else it streams on and is only looked at.
      const defer = this.carryLen > 0 ? this.carryHeld : this.mayRewrite();
      while (i < len && this.carryLen + (i - from) < limit) {
        if (chunk[i++] === LF) break;
      }
      const complete = i > from && chunk[i - 1] === LF;
      if (!complete && this.carryLen + (i - from) < limit) {
        // The chunk ended inside a line's head: keep a copy of these few bytes to look at with the rest.
        if (defer) {
          this.flush(from);
          this.runStart = len;
        }
        chunk.copy(this.carry, this.carryLen, from, len);
        this.carryLen += len - from;
        this.carryHeld = defer;
        break;
      }
      const head = this.carryLen > 0 ? Buffer.concat([this.carry.subarray(0, this.carryLen), chunk.subarray(from, i)]) : chunk.subarray(from, i);
      const replacement = this.inData ? this.dataHead(head, complete) : this.statusHead(head);
      if (replacement === undefined) {
        if (defer && this.carryLen > 0) this.out.push(Buffer.from(this.carry.subarray(0, this.carryLen)));
      } else {
        if (!defer) throw new Error('pop3 reply tracker: rewrite of a line already sent');
        this.flush(from);
        if (replacement) this.out.push(replacement);
        this.runStart = i;
      }
      this.carryLen = 0;
      if (complete) this.lineEnded(i);
      else this.mode = replacement === undefined ? 'pass' : 'skip';
    }
    this.flush(len);
    const r = { out: this.out, done: this.done };
    this.out = [];
    this.done = [];
    this.chunk = Buffer.alloc(0);
    return r;
  }

  /**
   * The reply owed now. A wrapper reply at the head of the queue waits for
   * the end of an unsolicited line: that line answers nothing.
   */
  private current(): Expected | undefined {
    const h = this.queue[0];
    return h && h.kind !== 'inject' ? h : undefined;
  }

  /** Whether the line starting now may be replaced (a login reply) or dropped (a CAPA line). */
  private mayRewrite(): boolean {
    const cur = this.lineOwned ? this.current() : undefined;
    if (!cur) return false;
    return this.inData ? cur.kind === 'capa' : cur.rewriteErr !== undefined;
  }

  /** Emits the unchanged run of the chunk up to pos. */
  private flush(pos: number): void {
    if (pos > this.runStart) this.out.push(this.chunk.subarray(this.runStart, pos));
    this.runStart = Math.max(this.runStart, pos);
  }

  /** A data line's head: the '.' end, a CAPA STLS line to drop, or plain data. undefined: keep. */
  private dataHead(head: Buffer, complete: boolean): Buffer | null | undefined {
    const cur = this.current();
    if (!cur) throw new Error('pop3 reply tracker: reply data with no reply owed');
    if (complete && head[0] === 0x2e && (head.length === 2 || (head.length === 3 && head[1] === CR))) {
      this.inData = false;
      this.completeAtEol = { expected: cur, outcome: 'ok', rewritten: false };
      // Our own STLS goes last in the list (the server's was dropped).
      return cur.kind === 'capa' && this.offerStls ? Buffer.concat([STLS_LINE, head]) : undefined;
    }
    if (complete && cur.kind === 'capa' && isStlsLine(head)) return null;
    return undefined;
  }

  /** A status line's head: classify it against the reply owed. undefined: keep the line. */
  private statusHead(head: Buffer): Buffer | undefined {
    const cur = this.lineOwned ? this.current() : undefined;
    // Nothing owed: an unsolicited line (e.g. a server's goodbye before it closes). Passed on.
    if (!cur) return undefined;
    const outcome = outcomeOf(head);
    if (outcome === 'ok' && cur.multi) {
      this.inData = true;
      return undefined;
    }
    const rewrite = outcome === 'err' && cur.rewriteErr !== undefined && !KEPT_CODES.some((c) => startsWith(head, c));
    this.completeAtEol = { expected: cur, outcome, rewritten: rewrite };
    return rewrite ? cur.rewriteErr : undefined;
  }

  /**
   * A line ended at pos: finish the reply it completed and send the wrapper
   * replies queued behind it (or behind an unsolicited line that was arriving).
   */
  private lineEnded(pos: number): void {
    const c = this.completeAtEol;
    if (c) {
      this.completeAtEol = null;
      this.queue.shift();
      this.done.push(c);
    }
    let head = this.queue[0];
    if (head?.kind !== 'inject') return;
    this.flush(pos);
    while (head?.kind === 'inject') {
      this.out.push((head as Injected).bytes);
      this.queue.shift();
      head = this.queue[0];
    }
  }
}
