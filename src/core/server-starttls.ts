/**
 * The wrapper's own STARTTLS toward the server (serverTls = "starttls"),
 * before the client's session starts, sans I/O: a protocol's dialogue gets
 * the server's bytes and says what to send, when to start the handshake, and
 * which greeting the client must see afterwards (the server's original one,
 * replayed, so that the exchange stays hidden from the client).
 */

/**
 * Most server bytes the dialogue reads (the greeting, an EHLO reply, IMAP's
 * untagged lines before its tagged OK). Stops a server, or whoever sits in
 * between before TLS, from making us buffer without end.
 */
export const SERVER_STARTTLS_MAX_BYTES = 16384;

export type ServerStarttlsStep =
  /** Wait for more server bytes. */
  | { readonly kind: 'more' }
  /** Send these bytes to the server, then wait for more. */
  | { readonly kind: 'send'; readonly bytes: Buffer }
  /** The server agreed: the TLS handshake starts now; `greeting` goes to the session as the server's first bytes. */
  | { readonly kind: 'handshake'; readonly greeting: Buffer }
  /** The server cannot or will not: the session gets the unavailable reply. */
  | { readonly kind: 'fail'; readonly reason: string };

export interface ServerStarttlsDialogue {
  /** Server bytes as they come; each call gets only the new bytes. The servers speak first: nothing is sent before. */
  feed(bytes: Buffer): ServerStarttlsStep;
}

export interface ServerStarttlsContext {
  /** The name we give in SMTP's EHLO. */
  readonly ehloName: string;
}

/**
 * Collects server lines (CRLF or LF ended) against SERVER_STARTTLS_MAX_BYTES
 * and keeps every byte, so that the greeting can be replayed exactly.
 */
export class ReplyLines {
  private buf: Buffer = Buffer.alloc(0);
  private pos = 0;
  /** Every byte pushed so far, against SERVER_STARTTLS_MAX_BYTES. */
  private total = 0;

  /** Adds bytes; false when the bound is passed. */
  push(bytes: Buffer): boolean {
    this.total += bytes.length;
    if (this.total > SERVER_STARTTLS_MAX_BYTES) return false;
    this.buf = this.buf.length === 0 ? bytes : Buffer.concat([this.buf, bytes]);
    return true;
  }

  /** The next complete line (with its ending), or null. */
  next(): Buffer | null {
    const lf = this.buf.indexOf(0x0a, this.pos);
    if (lf < 0) return null;
    const line = this.buf.subarray(this.pos, lf + 1);
    this.pos = lf + 1;
    return line;
  }

  /** Bytes after the last line handed out: must be none when TLS starts (no plaintext may be taken for TLS-protected bytes). */
  get pending(): number {
    return this.buf.length - this.pos;
  }

  /** The lines handed out by next() since the last take(), as received: a greeting to replay. */
  take(): Buffer {
    const out = this.buf.subarray(0, this.pos);
    this.buf = this.buf.subarray(this.pos);
    this.pos = 0;
    return Buffer.from(out);
  }
}

/** A line's text without its ending, latin1, for matching. */
export function lineText(line: Buffer): string {
  let end = line.length;
  if (end > 0 && line[end - 1] === 0x0a) end--;
  if (end > 0 && line[end - 1] === 0x0d) end--;
  return line.subarray(0, end).toString('latin1');
}

/** A short, safe rendering of a server line for a reason (the log escapes it again). */
export function shown(line: Buffer): string {
  return JSON.stringify(lineText(line).slice(0, 120));
}
