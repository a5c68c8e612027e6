import { buildConfig } from '../../src/config.js';
import { LineFramer, type FramerSink, type LineEnding } from '../../src/core/framer.js';
import type { HoldStore } from '../../src/core/hold.js';
import type { ClientVerdict, ProtocolSession, ServerVerdict } from '../../src/core/protocol.js';
import { smtp } from '../../src/protocols/smtp/index.js';

/**
 * Unit-level stand-ins, for tables and properties only (the end-to-end tests
 * use real Postfix): a mini shell that applies verdicts exactly as
 * src/io/session.ts does (clientData, hold, holdAfterRaw, keep, toServer,
 * stream, raw, maxLineLength, close), and a
 * scripted SMTP server that records every byte it receives.
 */

export interface FakeServerOptions {
  readonly ehlo?: readonly string[];
  /** Recipients containing this are refused with 550. */
  readonly badRcpt?: string;
  /** MAIL commands containing this are refused with 501 (as Postfix does for a bad RET= or ENVID=). */
  readonly badMail?: string;
  /** DATA is refused (451) even with recipients. */
  readonly refuseData?: boolean;
  /** Every AUTH exchange fails (535), as for a wrong password. */
  readonly authFail?: boolean;
}

/** The seed's Listing 3 policy, as config keys. */
export const SEED = {
  maxMsgSize: 1048576,
  blockAddrList: ['hahaha@sexyfun.net', '@spammer.org'],
  blockBodyList: ['^Content-Type: application.+\\.(PIF|EXE|VBS|COM|BAT|LNK|SCR)\\"'],
  relayIpList: ['192.168.150.', '192.168.160.'],
  relayDomainList: ['mydomain.org', 'gwolf.cx'],
  maxRcpt: 0,
};

const DEFAULT_EHLO = ['PIPELINING', 'SIZE 10240000', 'STARTTLS', 'AUTH PLAIN LOGIN', 'ENHANCEDSTATUSCODES', '8BITMIME', 'CHUNKING', 'ETRN', 'SMTPUTF8'];

export class FakeServer {
  received = Buffer.alloc(0);
  /** Messages the server accepted (DATA bodies, dot-stuffing as on the wire, and BDAT). */
  readonly messages: Buffer[] = [];
  private mode: 'cmd' | 'data' | 'auth' = 'cmd';
  private rawLeft = 0;
  private buf = Buffer.alloc(0);
  private body: Buffer[] = [];
  private mail = false;
  private rcpts = 0;
  constructor(private readonly o: FakeServerOptions = {}) {}

  greeting(): string {
    return '220 fake.example ESMTP\r\n';
  }

  /** Takes bytes from the wrapper; returns the replies it would send. */
  feed(bytes: Buffer): string {
    this.received = Buffer.concat([this.received, bytes]);
    this.buf = Buffer.concat([this.buf, bytes]);
    let out = '';
    for (;;) {
      if (this.rawLeft > 0) {
        const n = Math.min(this.rawLeft, this.buf.length);
        this.body.push(this.buf.subarray(0, n));
        this.buf = this.buf.subarray(n);
        this.rawLeft -= n;
        if (this.rawLeft > 0) return out;
        out += '250 2.0.0 chunk ok\r\n';
        continue;
      }
      const lf = this.buf.indexOf(10);
      if (lf < 0) return out;
      const line = this.buf.subarray(0, lf + 1);
      this.buf = this.buf.subarray(lf + 1);
      out += this.line(line);
    }
  }

  private line(line: Buffer): string {
    const text = line.toString('latin1').replace(/\r?\n$/, '');
    if (this.mode === 'data') {
      if (line.toString('latin1') === '.\r\n') {
        this.mode = 'cmd';
        this.messages.push(Buffer.concat(this.body));
        this.body = [];
        this.mail = false;
        this.rcpts = 0;
        return '250 2.0.0 Ok: queued\r\n';
      }
      this.body.push(line);
      return '';
    }
    if (this.mode === 'auth') {
      this.mode = 'cmd';
      if (text === '*') return '501 5.7.0 cancelled\r\n';
      return this.o.authFail ? '535 5.7.8 Error: authentication failed: authentication failure\r\n' : '235 2.7.0 Authentication successful\r\n';
    }
    const verb = text.split(' ')[0]!.toUpperCase();
    switch (verb) {
      case 'EHLO': {
        const lines = ['fake.example', ...(this.o.ehlo ?? DEFAULT_EHLO)];
        return lines.map((l, i) => `250${i === lines.length - 1 ? ' ' : '-'}${l}\r\n`).join('');
      }
      case 'HELO':
      case 'NOOP':
      case 'RSET':
        if (verb === 'RSET') {
          this.mail = false;
          this.rcpts = 0;
        }
        return '250 2.0.0 Ok\r\n';
      case 'MAIL':
        if (this.mail) return '503 5.5.1 Error: nested MAIL command\r\n';
        if (this.o.badMail && text.includes(this.o.badMail)) return '501 5.5.4 Bad RET parameter syntax\r\n';
        this.mail = true;
        return '250 2.1.0 Ok\r\n';
      case 'RCPT':
        if (!this.mail) return '503 5.5.1 Error: need MAIL command\r\n';
        if (this.o.badRcpt && text.includes(this.o.badRcpt)) return '550 5.1.1 User unknown\r\n';
        this.rcpts++;
        return '250 2.1.5 Ok\r\n';
      case 'DATA':
        if (this.rcpts === 0) return '554 5.5.1 Error: no valid recipients\r\n';
        if (this.o.refuseData) return '451 4.3.0 Error: queue file write error\r\n';
        this.mode = 'data';
        return '354 End data with <CR><LF>.<CR><LF>\r\n';
      case 'BDAT': {
        const [, n, last] = text.split(' ');
        this.rawLeft = Number(n);
        if (this.rawLeft === 0) return '250 2.0.0 chunk ok\r\n';
        if (last) this.mail = false;
        return '';
      }
      case 'AUTH':
        if (text.split(' ').length > 2) return this.o.authFail ? '535 5.7.8 Error: authentication failed: authentication failure\r\n' : '235 2.7.0 Authentication successful\r\n';
        this.mode = 'auth';
        return '334 \r\n';
      case 'QUIT':
        return '221 2.0.0 Bye\r\n';
      default:
        return '502 5.5.2 Error: command not recognized\r\n';
    }
  }
}

export interface Judged {
  readonly kind: string;
  readonly code?: string;
}

/** The mini shell around one SmtpSession and one FakeServer. */
export class Harness implements FramerSink {
  readonly proto: ProtocolSession;
  readonly framer: LineFramer;
  readonly server: FakeServer;
  client = Buffer.alloc(0);
  readonly verdicts: Judged[] = [];
  readonly notes: string[] = [];
  private clientQueue: Buffer[] = [];
  private serverQueue: Buffer[] = [];
  private held = false;
  private holdAfterRaw = false;
  closed = false;
  /** The user of each failed login the protocol reported (ServerVerdict.loginFailed), in order. */
  readonly loginFailures: (string | null)[] = [];
  /** Most entries the protocol's pending-reply queue held at any point (read after every step). */
  mostPending = 0;

  constructor(
    config: Record<string, unknown> = {},
    server: FakeServerOptions = {},
    private readonly serverChunk: (s: Buffer) => Buffer[] = (s) => [s],
    clientAddress = '192.0.2.7',
    holdStore?: HoldStore,
  ) {
    const cfg = buildConfig(null, { protocol: 'smtp', ...config }, { exec: 'true' });
    this.proto = smtp.createSession({ clientAddress, maxLineLength: cfg.options.maxLineLength, ...(holdStore ? { holdStore } : {}) }, cfg.options);
    this.framer = new LineFramer(this, cfg.options.maxLineLength);
    this.server = new FakeServer(server);
    this.serverQueue.push(...this.serverChunk(Buffer.from(this.server.greeting())));
  }

  /** Client bytes, delivered when the wrapper reads (after pending server bytes). */
  send(...chunks: (string | Buffer)[]): this {
    for (const c of chunks) this.clientQueue.push(typeof c === 'string' ? Buffer.from(c, 'latin1') : c);
    this.pump();
    return this;
  }

  /** Server bytes the serverChunk function kept back (e.g. a late greeting), delivered now. */
  deliver(chunk: string | Buffer): this {
    this.serverQueue.push(typeof chunk === 'string' ? Buffer.from(chunk, 'latin1') : chunk);
    this.pump();
    return this;
  }

  /** Runs until nothing moves. */
  pump(): void {
    for (;;) {
      if (this.closed) return;
      const s = this.serverQueue.shift();
      if (s) {
        this.fromServer(s);
        continue;
      }
      if (this.held || this.framer.isPaused) return;
      const c = this.clientQueue.shift();
      if (!c) return;
      const pre = this.proto.clientData?.(c);
      if (pre) {
        this.act(pre, null);
        if (this.closed) return;
      }
      this.framer.push(c);
    }
  }

  private watchPending(): void {
    const n = (this.proto as unknown as { pending: unknown[] }).pending.length;
    if (n > this.mostPending) this.mostPending = n;
  }

  private toServer(b: Buffer): void {
    const reply = this.server.feed(b);
    if (reply) this.serverQueue.push(...this.serverChunk(Buffer.from(reply, 'latin1')));
  }

  private fromServer(chunk: Buffer): void {
    this.watchPending();
    const v: ServerVerdict = this.proto.serverData!(chunk);
    if (v.loginFailed) this.loginFailures.push(v.loginFailed.user);
    const out = v.toClient === null ? [chunk] : Array.isArray(v.toClient) ? v.toClient : [v.toClient as Buffer];
    this.client = Buffer.concat([this.client, ...out]);
    if (v.notes) this.notes.push(...v.notes);
    if (v.toServer) for (const b of v.toServer) this.toServer(b);
    // A streamed body, block by block (the shell waits for 'drain' between them; the fake server never pushes back).
    if (v.stream) for (let b = v.stream.next(); b; b = v.stream.next()) this.toServer(b);
    if (v.maxLineLength !== undefined) this.framer.setMaxLineLength(v.maxLineLength);
    if (v.close) {
      this.closed = true;
      return;
    }
    if (v.release && this.held) {
      this.held = false;
      this.framer.resume();
    }
  }

  line(line: Buffer, contentEnd: number, ending: LineEnding): void {
    if (!this.closed) this.act(this.proto.clientLine(line, contentEnd, ending), line);
  }

  overlong(): void {
    if (!this.closed) this.act(this.proto.clientOverlong(), null);
  }

  raw(bytes: Buffer): void {
    if (!this.closed) this.toServer(bytes);
  }

  rawDone(): void {
    if (this.holdAfterRaw) {
      this.holdAfterRaw = false;
      this.held = true;
      this.framer.pause();
    }
  }

  private act(v: ClientVerdict, line: Buffer | null): void {
    this.watchPending();
    if (v.kind === 'forward') {
      this.verdicts.push({ kind: v.keep ? 'keep' : 'forward' });
      if (line && !v.keep) this.toServer(line);
      if (v.note) this.notes.push(v.note);
      if (v.toClient) this.client = Buffer.concat([this.client, v.toClient]);
      if (v.toServer) for (const b of v.toServer) this.toServer(b);
      if (v.maxLineLength !== undefined) this.framer.setMaxLineLength(v.maxLineLength);
      if (v.raw !== undefined) {
        this.holdAfterRaw = v.holdAfterRaw === true;
        this.framer.rawBytes(v.raw);
      }
      if (v.hold) {
        this.held = true;
        this.framer.pause();
      }
      return;
    }
    this.verdicts.push({ kind: 'refuse', code: v.code });
    if (v.reply) this.client = Buffer.concat([this.client, v.reply]);
    if (v.close) {
      this.closed = true;
      this.framer.pause();
      return;
    }
    if (v.toServer) for (const b of v.toServer) this.toServer(b);
    if (v.hold) {
      this.held = true;
      this.framer.pause();
    }
  }

  /** The session ends (the shell's finish()): the protocol gives back what it holds. */
  end(): void {
    this.closed = true;
    this.proto.close?.();
  }

  /** The client's view: reply lines as text. */
  get clientText(): string {
    return this.client.toString('latin1');
  }

  get serverText(): string {
    return this.server.received.toString('latin1');
  }

  refusals(): string[] {
    return this.verdicts.filter((v) => v.kind === 'refuse').map((v) => v.code!);
  }
}

/** Reply codes the client saw, in order (final lines only). */
export function replyCodes(client: string): string[] {
  return client.split('\r\n').filter((l) => /^\d{3} /.test(l) || /^\d{3}$/.test(l)).map((l) => l.slice(0, 3));
}
