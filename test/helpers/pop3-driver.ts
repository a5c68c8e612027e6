import { LineFramer, type FramerSink, type LineEnding } from '../../src/core/framer.js';
import type { ClientVerdict, ProtocolSession } from '../../src/core/protocol.js';

/** One judged client line: the verdict and the line as received. */
export interface Judged {
  readonly line: string;
  readonly verdict: ClientVerdict;
  readonly state: string;
}

/**
 * A pure stand-in for src/io/session.ts: client bytes → LineFramer → the
 * protocol session → "server" bytes, with the same verdict handling (hold
 * pauses the framer until a server verdict releases it, refusal replies,
 * toServer, maxLineLength, close). Used by the unit and property tests so
 * that every split point can be tried without sockets.
 */
export class Driver implements FramerSink {
  readonly framer: LineFramer;
  readonly judged: Judged[] = [];
  private readonly toServerParts: Buffer[] = [];
  private readonly toClientParts: Buffer[] = [];
  private readonly waiting: Buffer[] = [];
  held = false;
  closed = false;
  /** The user of each failed login the protocol reported (ServerVerdict.loginFailed), in order. */
  readonly loginFailures: (string | null)[] = [];

  constructor(
    readonly proto: ProtocolSession,
    maxLineLength: number,
  ) {
    this.framer = new LineFramer(this, maxLineLength);
  }

  /** What the server received so far. */
  get server(): string {
    return Buffer.concat(this.toServerParts).toString('latin1');
  }

  /** What the client received so far. */
  get client(): string {
    return Buffer.concat(this.toClientParts).toString('latin1');
  }

  /** Verdicts in order: 'forward' or the refusal code (plus '+hold' / '+close'). */
  get verdicts(): string[] {
    return this.judged.map(({ verdict: v }) => (v.kind === 'forward' ? 'forward' : v.code) + (v.hold ? '+hold' : '') + (v.kind === 'refuse' && v.close ? '+close' : ''));
  }

  fromClient(bytes: string | Buffer): this {
    const b = typeof bytes === 'string' ? Buffer.from(bytes, 'latin1') : bytes;
    if (this.closed) return this;
    // The real shell stops reading the client while a line is held.
    if (this.framer.isPaused) this.waiting.push(b);
    else this.framer.push(b);
    return this;
  }

  fromServer(bytes: string | Buffer): this {
    const b = typeof bytes === 'string' ? Buffer.from(bytes, 'latin1') : bytes;
    if (this.closed || !this.proto.serverData) return this;
    const v = this.proto.serverData(b);
    if (v.loginFailed) this.loginFailures.push(v.loginFailed.user);
    const out = v.toClient === null ? [b] : Array.isArray(v.toClient) ? v.toClient : [v.toClient as Buffer];
    this.toClientParts.push(...out);
    if (v.toServer) this.toServerParts.push(...v.toServer);
    if (v.maxLineLength !== undefined) this.framer.setMaxLineLength(v.maxLineLength);
    if (v.close) {
      this.closed = true;
      return this;
    }
    if (v.release && this.held) {
      this.held = false;
      this.framer.resume();
      while (!this.framer.isPaused && !this.closed && this.waiting.length > 0) this.framer.push(this.waiting.shift()!);
    }
    return this;
  }

  line(line: Buffer, contentEnd: number, ending: LineEnding): void {
    if (this.closed) return;
    this.act(this.proto.clientLine(line, contentEnd, ending), line);
  }

  overlong(head: Buffer): void {
    if (this.closed) return;
    this.act(this.proto.clientOverlong(), head);
  }

  raw(bytes: Buffer): void {
    this.toServerParts.push(bytes);
  }

  rawDone(): void {}

  private act(v: ClientVerdict, line: Buffer): void {
    this.judged.push({ line: line.toString('latin1'), verdict: v, state: this.proto.state });
    if (v.kind === 'forward') {
      if (!v.keep) this.toServerParts.push(line);
      if (v.toClient) this.toClientParts.push(v.toClient);
      if (v.toServer) this.toServerParts.push(...v.toServer);
      if (v.maxLineLength !== undefined) this.framer.setMaxLineLength(v.maxLineLength);
      if (v.raw !== undefined) this.framer.rawBytes(v.raw);
      if (v.hold) {
        this.held = true;
        this.framer.pause();
      }
      return;
    }
    if (v.reply) this.toClientParts.push(v.reply);
    if (v.close) {
      this.closed = true;
      this.framer.pause();
      return;
    }
    if (v.toServer) this.toServerParts.push(...v.toServer);
    if (v.hold) {
      this.held = true;
      this.framer.pause();
    }
  }
}
