import { memoryHoldStore, type ByteSource, type HeldBytes } from '../../core/hold.js';
import type { ClientVerdict, ProtocolOptions, RefusalCode, ServerVerdict, SessionContext, WrapperReply } from '../../core/protocol.js';
import { escapeForLog } from '../../log/escape.js';
import { BodyScan } from './body.js';
import type { State } from './commands.js';
import { smtpPolicy, type SmtpPolicy } from './policy.js';
import { filterEhlo, ReplyReader, type Capabilities, type Reply } from './replies.js';

/**
 * What the server still owes a reply for, in order. Client commands, our own
 * commands (wRset, wData, wDot, wCancel: their replies are ours to read), and
 * two markers that are no commands: a reply of ours that must wait its turn
 * behind pipelined commands ('local'), and a DATA whose answer depends on
 * replies still to come ('holdData', when the body is held).
 */
export type Pending =
  | { readonly kind: 'helo'; readonly release: boolean; readonly ehlo: boolean }
  | { readonly kind: 'rset' | 'data' | 'auth' | 'quit' | 'other'; readonly release: boolean }
  | { readonly kind: 'mail'; readonly release: boolean; readonly tx: Tx }
  | { readonly kind: 'rcpt'; readonly release: boolean; readonly addr: string; readonly tx: Tx }
  | { readonly kind: 'dot' | 'wDot'; readonly release: boolean; readonly tx: Tx; readonly size: number }
  | { readonly kind: 'bdat'; readonly release: boolean; readonly last: boolean; readonly tx: Tx; readonly size: number }
  | { readonly kind: 'wRset' | 'wCancel' | 'holdData'; readonly release: boolean }
  | { readonly kind: 'wData'; readonly release: boolean; readonly body: ByteSource }
  | { readonly kind: 'local'; readonly release: boolean; readonly bytes: Buffer };

/**
 * One mail transaction. Replies fill in the recipients the server took, so a
 * pipelined command's entry keeps a reference to its own transaction even
 * after the client has started the next one.
 */
export interface Tx {
  readonly from: string | null;
  readonly fromDomain: string;
  /** The first MAX_LOGGED_RCPT of them, for the log; nrcpt counts them all. */
  readonly rcpts: string[];
  nrcpt: number;
  bdatBytes: number;
  bdatUsed: boolean;
}

export const newTx = (from: string | null = null, fromDomain = ''): Tx => ({ from, fromDomain, rcpts: [], nrcpt: 0, bdatBytes: 0, bdatUsed: false });

export const CRLF_DOT_CRLF = Buffer.from('.\r\n');
export const RSET = Buffer.from('RSET\r\n');
export const DATA = Buffer.from('DATA\r\n');
export const CANCEL = Buffer.from('*\r\n');
const R354 = Buffer.from('354 End data with <CR><LF>.<CR><LF>\r\n');
const NO_RCPT = Buffer.from('554 5.5.1 Error: no valid recipients\r\n');
const b = (s: string) => Buffer.from(s, 'latin1');

/** What replies in one server chunk do besides the client's bytes. */
interface Effects {
  release: boolean;
  maxLineLength: number | undefined;
  stream: ByteSource | undefined;
  loginFailed: { readonly user: string | null } | undefined;
  close: boolean;
}

/** The last failed AUTH at maxLoginAttempts: the session ends, as POP3's and IMAP's do. */
const TOO_MANY_LOGINS = b('421 4.7.0 Too many failed login attempts, closing transmission channel\r\n');

/** Most recipients named in one log line; the count is always given. */
const MAX_LOGGED_RCPT = 20;

/**
 * Most commands (and replies of ours) waiting for the server: past this a
 * pipelining client is read one command at a time, so a client that sends
 * and never reads cannot grow the queue (refused commands never reach the
 * server, whose backpressure would otherwise stop it).
 */
export const MAX_PENDING = 1000;

/**
 * The SMTP conversation as the server sees it: the state, the commands still
 * owed a reply, and the reply side (greeting, EHLO filter, our own commands
 * whose replies are ours). SmtpSession adds the client side.
 */
export abstract class Conversation {
  protected st: State = 'greeting';
  protected helo = false;
  protected authenticated = false;
  protected caps: Capabilities = { pipelining: false, chunking: false, smtputf8: false, auth: new Set() };
  protected readonly pending: Pending[] = [];
  protected readonly reader = new ReplyReader();
  protected readonly policy: SmtpPolicy;
  /** The current transaction: sender (as the server reads it), recipients the server took, BDAT bytes. */
  protected tx: Tx = newTx();
  /** Recipients this session (sent and not refused): maxRcpt counts these. */
  protected rcptCount = 0;
  protected scan: BodyScan | null = null;
  protected held: HeldBytes | null = null;
  /** AUTH exchanges the server refused (535): maxLoginAttempts counts these. */
  private loginFailures = 0;
  /**
   * The name the AUTH in flight tried (the authcid of a PLAIN response), for
   * the log of a failed login; never a password. AUTH lines are held until
   * their reply: one exchange in flight at most.
   */
  protected loginUser: string | null = null;
  /** The server said it is closing (an unsolicited 421): once it is gone, nothing the client sends can be answered. */
  private serverClosing = false;

  constructor(
    protected readonly ctx: SessionContext,
    protected readonly options: ProtocolOptions,
  ) {
    this.policy = smtpPolicy(options);
    this.secure = ctx.tls === 'implicit';
  }

  /** The client side runs inside TLS (implicit, or after STARTTLS). */
  protected secure: boolean;

  /** The wrapper offers STARTTLS (RFC 3207) itself, until TLS is on. */
  protected get offersStarttls(): boolean {
    return !this.secure && (this.ctx.tls === 'starttls' || this.ctx.tls === 'require');
  }

  get state(): string {
    return this.st;
  }

  protected openHeldData(): { ok: boolean; reply: Buffer } {
    if (this.tx.nrcpt === 0) return { ok: false, reply: NO_RCPT };
    this.st = 'data';
    this.scan = new BodyScan(this.policy.blockBody, this.policy.holdLimit, this.policy.bareLineFeed);
    this.held = (this.ctx.holdStore ?? memoryHoldStore).create();
    return { ok: true, reply: R354 };
  }

  /** Forwards the line and expects a reply. */
  protected send(p: Pending, hold: boolean, maxLineLength?: number): ClientVerdict {
    this.pending.push(p);
    return { kind: 'forward', hold, ...(maxLineLength !== undefined ? { maxLineLength } : {}) };
  }

  /**
   * A refusal, answered in order: behind pipelined commands still waiting for
   * their replies, our reply waits its turn ('local'), so the client can pair
   * replies with commands.
   */
  protected refuse(code: RefusalCode, reason: string, reply: string, secret: boolean | 'line' = false, note?: string): Extract<ClientVerdict, { kind: 'refuse' }> {
    const bytes = b(reply);
    let now: Buffer | undefined = bytes;
    const full = this.pending.length >= MAX_PENDING;
    if (this.pending.length > 0) {
      this.pending.push({ kind: 'local', release: full, bytes });
      now = undefined;
    }
    // Every refusal inside a transaction names its envelope in the log.
    const env = note ?? (this.tx.from !== null ? this.txNote(this.tx) : undefined);
    return { kind: 'refuse', code, reason, ...(now ? { reply: now } : {}), ...(secret ? { secret } : {}), ...(env ? { note: env } : {}), ...(full ? { hold: true } : {}) };
  }

  protected resetTx(): void {
    if (this.st === 'mail' || this.st === 'rcpt' || this.st === 'data') this.st = 'ready';
    this.tx = newTx();
  }

  protected envNote(from: string, ...rcpts: string[]): string {
    return this.note(from, rcpts, rcpts.length);
  }

  /** A transaction's envelope for the log: all recipients counted, the first MAX_LOGGED_RCPT named. */
  protected txNote(tx: Tx): string {
    return this.note(tx.from ?? '', tx.rcpts, tx.nrcpt);
  }

  private note(from: string, rcpts: readonly string[], count: number): string {
    const shown = rcpts.slice(0, MAX_LOGGED_RCPT).map((r) => `<${escapeForLog(Buffer.from(r, 'latin1'))}>`);
    const more = count > MAX_LOGGED_RCPT ? `,...(+${count - MAX_LOGGED_RCPT})` : '';
    return `from=<${escapeForLog(Buffer.from(from, 'latin1'))}> nrcpt=${count} rcpt=${shown.join(',')}${more}`;
  }

  /** One accounting line per accepted message: sender, recipients, size. */
  protected accounting(tx: Tx, size: number): string {
    return `accepted ${this.txNote(tx)} size=${size}`;
  }

  // ---- server side --------------------------------------------------------

  serverData(chunk: Buffer): ServerVerdict {
    const out: Buffer[] = [];
    const toServer: Buffer[] = [];
    const notes: string[] = [];
    const fx: Effects = { release: false, maxLineLength: undefined, stream: undefined, loginFailed: undefined, close: false };
    for (const r of this.reader.feed(chunk)) {
      if (r.code === null) out.push(...r.lines);
      else this.onReply(r, out, toServer, notes, fx);
      if (fx.close) {
        // The failed AUTH's 535, then our 421: nothing after it reaches the client.
        out.push(TOO_MANY_LOGINS);
        return { toClient: out, close: true, ...(fx.loginFailed ? { loginFailed: fx.loginFailed } : {}), ...(notes.length > 0 ? { notes } : {}) };
      }
      this.drain(out, fx);
    }
    return {
      toClient: out,
      ...(fx.release ? { release: true } : {}),
      ...(toServer.length > 0 ? { toServer } : {}),
      ...(fx.stream ? { stream: fx.stream } : {}),
      ...(fx.maxLineLength !== undefined ? { maxLineLength: fx.maxLineLength } : {}),
      ...(notes.length > 0 ? { notes } : {}),
      ...(fx.loginFailed ? { loginFailed: fx.loginFailed } : {}),
    };
  }

  private onReply(r: Reply, out: Buffer[], toServer: Buffer[], notes: string[], fx: Effects): void {
    const code = r.code!;
    const ok = code >= 200 && code < 300;
    const p = this.pending.shift();
    if (!p) {
      // The greeting, or an unsolicited reply (421 before closing).
      if (this.st === 'greeting') {
        this.st = 'connected';
        // A piped session waits for the greeting before its first line (SmtpSession.clientData).
        fx.release = true;
      } else if (code === 421) {
        this.st = 'quit';
        this.serverClosing = true;
      }
      out.push(...r.lines);
      return;
    }
    if (p.release) fx.release = true;
    const cmd = this.policy.commandLineLength;
    switch (p.kind) {
      case 'helo':
        if (code === 250) {
          this.helo = true;
          this.resetTx();
          this.st = 'ready';
          if (p.ehlo) {
            const f = filterEhlo(r.lines, {
              dropChunking: this.policy.holdBody,
              maxSize: this.policy.sizeLimit,
              starttls: this.offersStarttls,
              hideAuth: this.ctx.tls === 'require' && !this.secure,
            });
            this.caps = f.caps;
            out.push(...f.lines);
            return;
          }
          this.caps = { pipelining: false, chunking: false, smtputf8: false, auth: new Set() };
        }
        break;
      case 'mail':
        // Only the refused MAIL's own transaction ends: a pipelining client may
        // have started another (RSET, MAIL) that the server took meanwhile.
        if (!ok && p.tx === this.tx) this.resetTx();
        break;
      case 'rcpt':
        if (ok) {
          // Only the first few are named in the log: the list stays bounded whatever the server takes.
          if (p.tx.rcpts.length < MAX_LOGGED_RCPT) p.tx.rcpts.push(p.addr);
          p.tx.nrcpt++;
        } else this.rcptCount--;
        break;
      case 'rset':
      case 'other':
      case 'quit':
        if (p.kind === 'quit' && code === 221) this.st = 'quit';
        break;
      case 'data':
        if (code === 354) {
          this.st = 'data';
          this.scan = new BodyScan([], 0, this.policy.bareLineFeed);
          fx.maxLineLength = this.policy.textLineLength;
        }
        break;
      case 'dot':
      case 'wDot':
        if (ok) notes.push(this.accounting(p.tx, p.size));
        break;
      case 'bdat':
        if (p.last && ok) notes.push(this.accounting(p.tx, p.size));
        break;
      case 'auth':
        if (code === 334) {
          this.st = 'auth';
          fx.maxLineLength = this.policy.authLineLength;
        } else {
          if (code === 235) this.authenticated = true;
          if (this.st === 'auth') this.st = 'ready';
          fx.maxLineLength = cmd;
          if (code === 535) {
            // The server refused the credentials (RFC 4954): a failed login for the log.
            fx.loginFailed = { user: this.loginUser };
            this.loginUser = null;
            if (++this.loginFailures >= this.policy.maxLoginAttempts) fx.close = true;
          }
        }
        break;
      case 'wRset':
      case 'wCancel':
        // Our own command: its reply is not the client's.
        if (this.st === 'auth') this.st = 'ready';
        fx.maxLineLength = cmd;
        return;
      case 'wData':
        if (code === 354) {
          // The shell streams the body (memory blocks, then the spool file) and its ".".
          fx.stream = p.body;
          return;
        }
        p.body.release();
        // The server would not take the message: its answer is the client's, and RSET clears its transaction.
        this.pending.shift(); // the wDot that was to follow
        this.pending.unshift({ kind: 'wRset', release: true });
        toServer.push(RSET);
        break;
      case 'local':
      case 'holdData':
        throw new Error(`SMTP marker ${p.kind} met a server reply`);
      default: {
        const never: never = p;
        throw new Error(`unknown pending entry ${JSON.stringify(never)}`);
      }
    }
    out.push(...r.lines);
  }

  /** Our replies and held DATAs whose turn has come. */
  private drain(out: Buffer[], fx: Effects): void {
    for (;;) {
      const head = this.pending[0];
      if (!head || (head.kind !== 'local' && head.kind !== 'holdData')) return;
      this.pending.shift();
      if (head.kind === 'local') {
        out.push(head.bytes);
        if (head.release) fx.release = true;
        continue;
      }
      const r = this.openHeldData();
      out.push(r.reply);
      if (r.ok) fx.maxLineLength = this.policy.textLineLength;
      fx.release = true;
    }
  }

  /**
   * The server closed: an unfinished reply it left goes to the client as it
   * stands. A server gone before its greeting, with replies still owed (a
   * spawned sendmail -bs that died), or while the client sends a message or
   * an AUTH response, leaves the client a 421, as an unreachable one does.
   */
  serverEnd(): readonly Buffer[] | null {
    const rest = this.reader.end();
    if (rest.length > 0) return rest;
    const mid = this.st === 'greeting' || this.st === 'data' || this.st === 'auth';
    const owed = mid || this.pending.some((p) => p.kind !== 'local' && p.kind !== 'holdData');
    return owed && this.st !== 'quit' ? [this.reply('unavailable')!] : null;
  }

  /**
   * A body arriving after the server left can reach no one, nor can anything
   * after its 421: the shell then stops reading the client at once (a slow
   * client would otherwise be read, and its body held, until the idle timeout).
   */
  stopOnServerEnd(): boolean {
    return this.st === 'data' || this.serverClosing;
  }

  /** The session is over: the held body and any body waiting for its 354 give back their memory and disk. */
  close(): void {
    this.held?.release();
    this.held = null;
    for (const p of this.pending) if (p.kind === 'wData') p.body.release();
  }

  reply(kind: WrapperReply): Buffer | undefined {
    switch (kind) {
      case 'unavailable':
        return b('421 4.3.2 Service not available, closing transmission channel\r\n');
      case 'timeout':
        return b('421 4.4.2 Timeout, closing transmission channel\r\n');
      case 'too_many_violations':
        return b('421 4.7.0 Too many errors, closing transmission channel\r\n');
      case 'shutdown':
        return b('421 4.3.2 Shutting down, closing transmission channel\r\n');
      default: {
        const never: never = kind;
        throw new Error(`unknown wrapper reply ${String(never)}`);
      }
    }
  }
}
