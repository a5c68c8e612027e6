import { CR, findNulOrBareCr, LF } from '../../core/bytes.js';
import type { LineEnding } from '../../core/framer.js';
import type { LineMatcher, RefusalCode } from '../../core/protocol.js';
import { decodedHeader } from './mime.js';

/**
 * The DATA body, line by line. Only CRLF "." CRLF ends it (RFC 5321
 * §4.1.1.4), the CR of both line endings really sent; a bare CR or a NUL
 * anywhere in it poisons the message: those are the end-of-data ambiguities
 * SMTP smuggling (CVE-2023-51764/51765/51766) uses to slip a second message
 * past a filter. A line ending in a bare LF poisons it too (bareLineFeed =
 * "refuse"), or (bareLineFeed = "normalize", the default, as Postfix 3.9's
 * smtpd_forbid_bare_newline) goes on with CRLF in place of its LF: the server
 * then reads CRLF endings only, so no ending can mean one thing to it and
 * another to us. Every other line is kept or forwarded exactly as received,
 * dot-stuffing included.
 */

/** Why a message is discarded. */
export interface Poison {
  readonly code: RefusalCode;
  readonly reason: string;
  readonly reply: string;
}

/**
 * Most bytes of one unfolded header kept for matching. A longer folded header
 * cannot be checked whole, so its message is refused (fail closed): dropping
 * the rest would let padding push a file name out of the rule's sight.
 */
export const MAX_UNFOLDED = 65536;

/**
 * The message could not be kept whole: the process's held bodies have spent
 * bodyHoldTotal and the spool (spoolMax) is full or unusable. A temporary
 * failure (RFC 3463 4.3.1): the client may try again later.
 */
export const NO_STORAGE: Poison = {
  code: 'no_storage',
  reason: 'held bodies of the process over bodyHoldTotal and the spool full (spoolMax) or unusable',
  reply: '452 4.3.1 Insufficient system storage\r\n',
};

/** Stands for "a header too long to check" where a matching rule is expected. */
const TOO_LONG: LineMatcher = { source: `<a folded header longer than ${MAX_UNFOLDED} bytes>`, test: () => true };

/** RFC 5322 §2.2: a header field starts with a name of printable ASCII but ":", then ":". */
function isField(text: string): boolean {
  let i = 0;
  for (; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 33 || c > 126 || c === 0x3a) break;
  }
  return i > 0 && text.charCodeAt(i) === 0x3a;
}

/** How a line ending in a bare LF is taken (the bareLineFeed key). */
export type BareLineFeed = 'normalize' | 'refuse';

/**
 * 'line': `bytes` are what the server is to get for the line: the line itself
 * (a slice of the input, nothing copied), or a rebuilt one (see BodyScan.line).
 */
export type BodyStep = { readonly kind: 'end' } | { readonly kind: 'line'; readonly poison: Poison | null; readonly bytes: Buffer };

/** A "." line that does not end the data, as the server must get it: stuffed, so that it cannot end it either. */
const STUFFED_DOT = Buffer.from('..\r\n', 'latin1');

/** content + CRLF: the one rebuilt line (its bare LF normalised). */
function withCrlf(line: Buffer, contentEnd: number): Buffer {
  const out = Buffer.allocUnsafe(contentEnd + 2);
  line.copy(out, 0, 0, contentEnd);
  out[contentEnd] = CR;
  out[contentEnd + 1] = LF;
  return out;
}

/**
 * Follows one message body: finds the real end, counts its size (RFC 1870:
 * CRLFs counted, stuffing dots and the final "." not), and tests every line,
 * and every header unfolded (message and MIME part headers), against the
 * body patterns.
 */
export class BodyScan {
  /** The previous line ended with CRLF (the DATA command's own CRLF counts). */
  private prevCrlf = true;
  size = 0;
  poison: Poison | null = null;
  /** In a header block: the message's or a MIME part's (after a "--" boundary line). */
  private inHeader = true;
  private unfolded: string | null = null;
  private folded = false;
  /**
   * The header block being read is a MIME part's: the part's content may
   * itself start with a header (an attached message/rfc822), so the block
   * after it is read as a header block too.
   */
  private partHeader = false;
  /** The block being read is a part's content, read as a header while its lines look like header fields. */
  private embedded = false;

  constructor(
    private readonly matchers: readonly LineMatcher[],
    /** Size limit in bytes, 0 for none. */
    private readonly limit: number,
    private readonly bareLf: BareLineFeed = 'refuse',
  ) {}

  /**
   * Takes one framed line; says whether it was the end of the data, and what
   * the server is to get for it. The end is a "." line whose CRLF and the
   * CRLF before it were both sent as such (Postfix's "normalize" requires
   * the same): `\n.\n`, `\r\n.\n` and `\n.\r\n` end nothing, here or at the
   * server. Only two kinds of line are rebuilt, everything else is passed on
   * as the original slice: one ending in a bare LF (content + CRLF), and a
   * lone "." that is not the end (sent as "..": once LFs are normalised the
   * server would take it for the end, and run what follows as commands).
   */
  line(line: Buffer, contentEnd: number, ending: LineEnding): BodyStep {
    if (ending === 'crlf' && contentEnd === 1 && line[0] === 0x2e && this.prevCrlf) {
      const hit = this.flushHeader();
      if (hit && !this.poison) this.blocked(hit, line);
      return { kind: 'end' };
    }
    this.prevCrlf = ending === 'crlf';
    if (this.poison) return { kind: 'line', poison: this.poison, bytes: line };
    let bytes = line;
    if (ending !== 'crlf') {
      if (ending === 'none') return this.poisonWith('smuggling', 'message data ended without CRLF.CRLF', line);
      if (this.bareLf === 'refuse') return this.poisonWith('smuggling', 'bare LF in message data', line);
      bytes = withCrlf(line, contentEnd);
    }
    // The first NUL or bare CR, whichever comes first (findNulOrBareCr: a native search).
    const bad = findNulOrBareCr(line, 0, contentEnd);
    const nul = bad.nul < 0 ? contentEnd : bad.nul;
    const cr = bad.cr < 0 ? contentEnd : bad.cr;
    if (nul < cr) return this.poisonWith('smuggling', 'NUL in message data', line);
    if (cr < nul) return this.poisonWith('smuggling', 'bare CR in message data', line);
    if (contentEnd === 1 && line[0] === 0x2e) bytes = STUFFED_DOT;
    const end = bytes.length - 2;
    const start = bytes[0] === 0x2e ? 1 : 0;
    this.size += bytes.length - start;
    if (this.limit > 0 && this.size > this.limit) {
      return this.setPoison({ code: 'too_large', reason: `message larger than ${this.limit} bytes`, reply: '552 5.3.4 Message size exceeds fixed limit\r\n' }, line);
    }
    if (this.matchers.length > 0) {
      const text = bytes.toString('latin1', start, end);
      const hit = this.test(text) ?? this.header(text, end === 0);
      if (hit) return this.blocked(hit, line);
    }
    return { kind: 'line', poison: null, bytes };
  }

  /** The held bytes could not be kept (NO_STORAGE): the message is refused at its end, unless it already was. */
  storageFull(): void {
    if (!this.poison) {
      this.poison = NO_STORAGE;
      this.unfolded = null;
    }
  }

  /** A text line longer than the limit was discarded by the framer: the message cannot go through whole. */
  overlong(limit: number): Poison {
    // The framer dropped the line's ending unseen. Taking it for CRLF is safe: a
    // poisoned message never reaches the server, so only our own view of where
    // the data ends depends on it, and a following "." then ends it as the client meant.
    this.prevCrlf = true;
    this.poison ??= { code: 'line_too_long', reason: `message line longer than ${limit} bytes`, reply: '500 5.5.0 Message line too long\r\n' };
    return this.poison;
  }

  private test(text: string): LineMatcher | null {
    for (const m of this.matchers) if (m.test(text)) return m;
    return null;
  }

  /** Tracks header blocks and tests each unfolded header once it is complete. */
  private header(text: string, empty: boolean): LineMatcher | null {
    const c = text.charCodeAt(0);
    if (this.inHeader && !empty && (c === 0x20 || c === 0x09) && this.unfolded !== null) {
      // RFC 5322 §2.2.3: unfolding removes the CRLF only.
      if (this.unfolded.length + text.length > MAX_UNFOLDED) return TOO_LONG;
      this.unfolded += text;
      this.folded = true;
      return null;
    }
    const hit = this.flushHeader();
    if (hit) return hit;
    if (empty) {
      // After a part's header, its content may be an attached message's header.
      this.embedded = this.inHeader && this.partHeader;
      this.inHeader = this.embedded;
      this.partHeader = false;
    } else if (text.startsWith('--')) {
      this.inHeader = true;
      this.partHeader = true;
      this.embedded = false;
    } else if (this.embedded && !isField(text)) {
      // Part content that is not a header (text, base64): no unfolding.
      this.inHeader = false;
      this.embedded = false;
    } else if (this.inHeader) this.unfolded = text;
    return null;
  }

  private flushHeader(): LineMatcher | null {
    const u = this.unfolded;
    const folded = this.folded;
    this.unfolded = null;
    this.folded = false;
    if (u === null) return null;
    // A header of one line was tested as a line already.
    const hit = folded ? this.test(u) : null;
    if (hit) return hit;
    // The form a mail reader shows: RFC 2047 encoded words, RFC 2231 parameters decoded.
    const shown = decodedHeader(u);
    return shown === null ? null : this.test(shown);
  }

  private blocked(m: LineMatcher, line: Buffer): BodyStep {
    const reason = m === TOO_LONG ? `folded header longer than ${MAX_UNFOLDED} bytes: too long to check against blockBodyList` : `message matches blockBodyList ${JSON.stringify(m.source)}`;
    return this.setPoison({ code: 'blocked_body', reason, reply: '550 5.7.1 Message content rejected\r\n' }, line);
  }

  private poisonWith(code: RefusalCode, reason: string, line: Buffer): BodyStep {
    return this.setPoison({ code, reason, reply: '550 5.6.0 Bare CR, bare LF or NUL in message data\r\n' }, line);
  }

  /** A poisoned line is never sent: `bytes` is only there to keep the step's type closed. */
  private setPoison(p: Poison, line: Buffer): BodyStep {
    this.poison = p;
    this.unfolded = null;
    return { kind: 'line', poison: p, bytes: line };
  }
}
