import { buildConfig, type RawOptions } from '../../src/config.js';
import { LineFramer, type FramerSink, type LineEnding } from '../../src/core/framer.js';
import type { ClientVerdict, ProtocolSession } from '../../src/core/protocol.js';

/** A refusal as the driver saw it. */
export interface Refusal {
  readonly code: string;
  readonly close: boolean;
}

/**
 * Runs an IMAP protocol session the way src/io/session.ts does (a real
 * LineFramer; forward, raw, hold, release, cancelRaw, close), without
 * sockets: what would reach the server and the client is recorded. Client
 * input that arrives while a line is held is queued, as the paused socket
 * would keep it.
 */
export class ImapDriver implements FramerSink {
  readonly proto: ProtocolSession;
  private readonly framer: LineFramer;
  private readonly toServerParts: Buffer[] = [];
  private readonly toClientParts: Buffer[] = [];
  readonly refusals: Refusal[] = [];
  readonly verdicts: ClientVerdict[] = [];
  /** Client lines forwarded as lines (not literal bytes). */
  readonly forwardedLines: Buffer[] = [];
  private queue: Buffer[] = [];
  held = false;
  closed = false;
  /** The user of each failed login the protocol reported (ServerVerdict.loginFailed), in order. */
  readonly loginFailures: (string | null)[] = [];

  constructor(flags: RawOptions = {}) {
    const cfg = buildConfig(null, { protocol: 'imap', ...flags }, { connect: '127.0.0.1:143' });
    this.proto = cfg.protocol.createSession({ clientAddress: 'test', maxLineLength: cfg.options.maxLineLength }, cfg.options);
    this.framer = new LineFramer(this, cfg.options.maxLineLength);
  }

  get toServer(): string {
    return Buffer.concat(this.toServerParts).toString('latin1');
  }

  get toClient(): string {
    return Buffer.concat(this.toClientParts).toString('latin1');
  }

  get state(): string {
    return this.proto.state;
  }

  client(bytes: Buffer | string): this {
    const b = typeof bytes === 'string' ? Buffer.from(bytes, 'latin1') : bytes;
    if (this.closed) return this;
    if (this.framer.isPaused || this.queue.length > 0) {
      this.queue.push(b);
      return this;
    }
    this.framer.push(b);
    this.drain();
    return this;
  }

  server(bytes: Buffer | string): this {
    const b = typeof bytes === 'string' ? Buffer.from(bytes, 'latin1') : bytes;
    if (this.closed) return this;
    const v = this.proto.serverData!(b);
    if (v.loginFailed) this.loginFailures.push(v.loginFailed.user);
    const out = v.toClient === null ? [b] : Array.isArray(v.toClient) ? v.toClient : [v.toClient as Buffer];
    this.toClientParts.push(...out);
    if (v.close) {
      this.closed = true;
      return this;
    }
    if (v.cancelRaw) this.framer.cancelRaw();
    if (v.release && this.held) {
      this.held = false;
      this.framer.resume();
      this.drain();
    }
    return this;
  }

  private drain(): void {
    while (!this.closed && !this.framer.isPaused && this.queue.length > 0) this.framer.push(this.queue.shift()!);
  }

  line(line: Buffer, contentEnd: number, ending: LineEnding): void {
    if (this.closed) return;
    this.act(this.proto.clientLine(line, contentEnd, ending), line);
  }

  overlong(): void {
    if (this.closed) return;
    this.act(this.proto.clientOverlong(), null);
  }

  raw(bytes: Buffer): void {
    if (this.closed) return;
    this.proto.clientRaw?.(bytes);
    this.toServerParts.push(bytes);
  }

  rawDone(): void {}

  private act(v: ClientVerdict, line: Buffer | null): void {
    this.verdicts.push(v);
    switch (v.kind) {
      case 'forward':
        if (v.keep || v.toServer || v.toClient) throw new Error('IMAP forwards lines as they are');
        if (line) {
          this.toServerParts.push(line);
          this.forwardedLines.push(line);
        }
        if (v.raw !== undefined) this.framer.rawBytes(v.raw);
        if (v.hold) {
          this.held = true;
          this.framer.pause();
        }
        return;
      case 'refuse':
        this.refusals.push({ code: v.code, close: v.close === true });
        if (v.reply) this.toClientParts.push(v.reply);
        if (v.close) {
          this.closed = true;
          this.framer.pause();
        }
        return;
      default: {
        const never: never = v;
        throw new Error(`unknown verdict ${JSON.stringify(never)}`);
      }
    }
  }
}

/** Dovecot's greeting, with LITERAL+ and STARTTLS as a real server sends them. */
export const GREETING = '* OK [CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ STARTTLS AUTH=PLAIN] Dovecot ready.\r\n';
/** A greeting without LITERAL+ (and without LITERAL-). */
export const GREETING_SYNC_ONLY = '* OK [CAPABILITY IMAP4rev1 IDLE AUTH=PLAIN] ready\r\n';
