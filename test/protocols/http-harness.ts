import { buildConfig } from '../../src/config.js';
import { LineFramer, type FramerSink, type LineEnding } from '../../src/core/framer.js';
import type { ClientVerdict, ProtocolSession, RefusalCode } from '../../src/core/protocol.js';
import { http } from '../../src/protocols/http/index.js';

/**
 * A mini shell for unit tables and properties (the end-to-end tests use the
 * real shell and nginx): it applies verdicts as src/io/session.ts does
 * (keep, toServer, raw, holdAfterRaw, hold, maxLineLength, refusal with
 * close; on the server side toClient, release, tunnel, close) and records
 * what the server and the client received.
 */
export class MiniShell implements FramerSink {
  readonly proto: ProtocolSession;
  private readonly framer: LineFramer;
  private readonly toServer: Buffer[] = [];
  private readonly toClient: Buffer[] = [];
  readonly refusals: { code: RefusalCode; reason: string }[] = [];
  /** The request lines of the heads forwarded (each a request the server will parse). */
  readonly heads: string[] = [];
  closed = false;
  held = false;
  private holdAfterRaw = false;

  constructor(flags: Record<string, unknown> = {}) {
    const cfg = buildConfig(null, { protocol: 'http', ...flags }, { connect: '127.0.0.1:9' });
    this.proto = http.createSession({ clientAddress: '192.0.2.1', maxLineLength: cfg.options.maxLineLength }, cfg.options);
    this.framer = new LineFramer(this, this.proto.lineLimit ?? cfg.options.maxLineLength);
  }

  /** Client bytes, as one chunk. */
  push(chunk: Buffer | string): this {
    if (this.closed) return this;
    const b = typeof chunk === 'string' ? Buffer.from(chunk, 'latin1') : chunk;
    // The shell stops reading a held client: chunks wait until the release.
    if (this.framer.isPaused) {
      this.waiting.push(b);
      return this;
    }
    this.proto.clientData?.(b);
    this.framer.push(b);
    return this;
  }

  private readonly waiting: Buffer[] = [];

  /** Client input split at these offsets. */
  pushSplit(input: string, cuts: readonly number[]): this {
    let at = 0;
    for (const c of [...cuts, input.length]) {
      if (c > at) this.push(input.slice(at, c));
      at = Math.max(at, c);
    }
    return this;
  }

  /** Server bytes (a response chunk). */
  fromServer(chunk: string): this {
    const b = Buffer.from(chunk, 'latin1');
    const v = this.proto.serverData!(b);
    const out = v.toClient === null ? [b] : Array.isArray(v.toClient) ? v.toClient : [v.toClient as Buffer];
    this.toClient.push(...out);
    if (v.close) {
      this.closed = true;
      return this;
    }
    if (v.tunnel) this.framer.rawBytes(Number.MAX_SAFE_INTEGER);
    if (v.release && !this.held) this.holdAfterRaw = false;
    if (v.release && this.held) {
      this.held = false;
      this.framer.resume();
      while (!this.framer.isPaused && !this.closed && this.waiting.length > 0) this.push(this.waiting.shift()!);
    }
    return this;
  }

  /** Client EOF. */
  end(): boolean {
    if (this.closed || this.framer.isPaused) return true;
    return this.framer.end();
  }

  get server(): string {
    return Buffer.concat(this.toServer).toString('latin1');
  }

  get client(): string {
    return Buffer.concat(this.toClient).toString('latin1');
  }

  /** The status of the wrapper's own error reply, if it sent one. */
  get status(): number | null {
    const m = /^HTTP\/1\.1 (\d{3}) /.exec(this.client);
    return m ? Number(m[1]) : null;
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
    this.toServer.push(bytes);
  }

  rawDone(): void {
    if (this.holdAfterRaw) {
      this.holdAfterRaw = false;
      this.held = true;
      this.framer.pause();
    }
  }

  private act(v: ClientVerdict, line: Buffer | null): void {
    if (v.kind === 'refuse') {
      this.refusals.push({ code: v.code, reason: v.reason });
      if (v.reply) this.toClient.push(v.reply);
      if (v.close) {
        this.closed = true;
        this.framer.pause();
      }
      return;
    }
    if (line && !v.keep) this.toServer.push(line);
    if (v.toClient) this.toClient.push(v.toClient);
    if (v.toServer) {
      this.toServer.push(...v.toServer);
      const first = v.toServer.find((b) => b.length > 2);
      if (first) this.heads.push(first.toString('latin1').replace(/\r\n$/, ''));
    }
    if (v.maxLineLength !== undefined) this.framer.setMaxLineLength(v.maxLineLength);
    if (v.raw !== undefined) {
      this.holdAfterRaw = v.holdAfterRaw === true;
      this.framer.rawBytes(v.raw);
    }
    if (v.hold) {
      this.held = true;
      this.framer.pause();
    }
  }
}
