import { connect, type Socket } from 'node:net';

/**
 * A small Redis client (RESP2 over one TCP connection), enough for the
 * shared failure counts (stateStore = "redis://…"): commands are pipelined
 * in order on one connection, replies are simple strings, errors, integers
 * and bulk strings. Hand-written instead of the `redis` or `ioredis`
 * packages: those are ten times the size of the wrapper's own code, queue
 * commands without bound while disconnected and retry by themselves, where
 * this store must fail open within a bound and report every outage once.
 *
 * Bounded: a command waits at most timeoutMs (from when it is issued,
 * connecting included), then the connection is dropped and every command on
 * it fails (a reply that comes late would be read as the answer to the next
 * command); at most maxPending commands wait at once (more fail at once);
 * unread reply bytes are at most maxReplyBytes. The next command after a
 * failure dials again.
 */

/** A reply: simple or bulk string, integer, or null (a nil bulk string). */
export type RespValue = string | number | null;

/** Why a command failed. kind 'reply': Redis answered with an error (the connection is fine). */
export class RespFailure extends Error {
  constructor(
    readonly kind: 'timeout' | 'connection' | 'protocol' | 'busy' | 'reply',
    message: string,
  ) {
    super(message);
  }
}

export interface RespOptions {
  readonly host: string;
  readonly port: number;
  /** SELECT this database on each new connection (0: none sent). */
  readonly db: number;
  readonly timeoutMs: number;
  readonly maxPending?: number;
  readonly maxReplyBytes?: number;
}

/** Commands waiting for a reply at once: a silent Redis under a connection flood cannot pile up timers and promises. */
export const RESP_MAX_PENDING = 1024;
/** Unread reply bytes: the replies this store reads are a few bytes; a hostile or broken peer cannot fill memory. */
export const RESP_MAX_REPLY_BYTES = 64 * 1024;

interface Pending {
  resolve(v: RespValue): void;
  reject(e: RespFailure): void;
  timer: NodeJS.Timeout;
  /** An error reply drops the connection before any later reply is read (SELECT). */
  fatal: boolean;
}

export class RespClient {
  private sock: Socket | null = null;
  private readonly pending: Pending[] = [];
  private buf: Buffer = Buffer.alloc(0);
  private closed = false;

  constructor(private readonly opts: RespOptions) {}

  /** Sends one command; resolves with its reply, rejects with a RespFailure. */
  command(args: readonly (string | number)[]): Promise<RespValue> {
    if (this.closed) return Promise.reject(new RespFailure('connection', 'client closed'));
    if (this.pending.length >= (this.opts.maxPending ?? RESP_MAX_PENDING)) {
      return Promise.reject(new RespFailure('busy', `${this.pending.length} commands already waiting`));
    }
    const sock = this.sock ?? this.dial();
    return this.send(sock, args);
  }

  /** Drops the connection; waiting commands fail. */
  close(): void {
    this.closed = true;
    this.fail(new RespFailure('connection', 'client closed'));
  }

  private send(sock: Socket, args: readonly (string | number)[], fatal = false): Promise<RespValue> {
    return new Promise<RespValue>((resolve, reject) => {
      const timer = setTimeout(() => {
        if (this.sock === sock) this.fail(new RespFailure('timeout', `no reply within ${this.opts.timeoutMs} ms`));
      }, this.opts.timeoutMs);
      this.pending.push({ resolve, reject, timer, fatal });
      // A socket still connecting keeps the bytes until it is connected.
      sock.write(encodeCommand(args));
    });
  }

  private dial(): Socket {
    const sock = connect({ host: this.opts.host, port: this.opts.port });
    sock.setNoDelay(true);
    this.sock = sock;
    this.buf = Buffer.alloc(0);
    sock.on('data', (b: Buffer) => this.onData(sock, b));
    sock.on('error', (e: NodeJS.ErrnoException) => {
      if (this.sock === sock) this.fail(new RespFailure('connection', e.code ?? e.message));
    });
    sock.on('close', () => {
      if (this.sock === sock) this.fail(new RespFailure('connection', 'connection closed'));
    });
    if (this.opts.db !== 0) {
      // Its failure (a database out of range) drops the connection at once: no command may run in database 0.
      this.send(sock, ['SELECT', this.opts.db], true).catch(() => {});
    }
    return sock;
  }

  private onData(sock: Socket, b: Buffer): void {
    if (this.sock !== sock) return;
    this.buf = this.buf.length === 0 ? b : Buffer.concat([this.buf, b]);
    let pos = 0;
    for (;;) {
      let r: Parsed | null;
      try {
        r = parseReply(this.buf, pos);
      } catch (e) {
        this.fail(new RespFailure('protocol', (e as Error).message));
        return;
      }
      if (!r) break;
      pos = r.next;
      const p = this.pending.shift();
      if (!p) {
        this.fail(new RespFailure('protocol', 'a reply nobody asked for'));
        return;
      }
      clearTimeout(p.timer);
      if (r.error !== null && p.fatal) {
        p.reject(new RespFailure('reply', r.error));
        this.fail(new RespFailure('connection', r.error));
        return;
      }
      if (r.error !== null) p.reject(new RespFailure('reply', r.error));
      else p.resolve(r.value);
    }
    this.buf = pos === this.buf.length ? Buffer.alloc(0) : this.buf.subarray(pos);
    if (this.buf.length > (this.opts.maxReplyBytes ?? RESP_MAX_REPLY_BYTES)) {
      this.fail(new RespFailure('protocol', `reply longer than ${this.opts.maxReplyBytes ?? RESP_MAX_REPLY_BYTES} bytes`));
    }
  }

  /** Drops the connection and fails every waiting command. */
  private fail(e: RespFailure): void {
    const sock = this.sock;
    this.sock = null;
    this.buf = Buffer.alloc(0);
    sock?.destroy();
    for (const p of this.pending.splice(0)) {
      clearTimeout(p.timer);
      p.reject(e);
    }
  }
}

/** A command as a RESP array of bulk strings. */
export function encodeCommand(args: readonly (string | number)[]): Buffer {
  const parts: Buffer[] = [Buffer.from(`*${args.length}\r\n`)];
  for (const a of args) {
    const b = Buffer.from(String(a), 'utf8');
    parts.push(Buffer.from(`$${b.length}\r\n`), b, Buffer.from('\r\n'));
  }
  return Buffer.concat(parts);
}

export interface Parsed {
  readonly value: RespValue;
  /** The text of an error reply (`-ERR …`), else null. */
  readonly error: string | null;
  readonly next: number;
}

/** One reply starting at pos; null when it is not complete yet. Throws on bytes that are no RESP2 reply this client reads. */
export function parseReply(buf: Buffer, pos: number): Parsed | null {
  if (pos >= buf.length) return null;
  const eol = buf.indexOf('\r\n', pos + 1, 'latin1');
  if (eol < 0) return null;
  const type = buf[pos];
  const text = buf.toString('latin1', pos + 1, eol);
  switch (type) {
    case 0x2b: // +
      return { value: text, error: null, next: eol + 2 };
    case 0x2d: // -
      return { value: null, error: text, next: eol + 2 };
    case 0x3a: // :
      return { value: integer(text), error: null, next: eol + 2 };
    case 0x24: {
      // $
      const len = integer(text);
      if (len === -1) return { value: null, error: null, next: eol + 2 };
      if (len < 0) throw new Error(`bad bulk length ${len}`);
      const end = eol + 2 + len;
      if (buf.length < end + 2) return null;
      if (buf[end] !== 0x0d || buf[end + 1] !== 0x0a) throw new Error('bulk string without CRLF');
      return { value: buf.toString('utf8', eol + 2, end), error: null, next: end + 2 };
    }
    default:
      throw new Error(`unexpected reply type 0x${(type ?? 0).toString(16)}`);
  }
}

function integer(text: string): number {
  let i = text.startsWith('-') ? 1 : 0;
  if (i === text.length || text.length > 20) throw new Error('bad integer');
  for (; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x30 || c > 0x39) throw new Error('bad integer');
  }
  return Number(text);
}
