import type { Config } from '../config.js';
import { LineFramer, type FramerSink, type LineEnding } from '../core/framer.js';
import type { ClientVerdict, ProtocolSession, WrapperReply } from '../core/protocol.js';
import { ProtowrapError } from '../errors.js';
import { escapeForLog } from '../log/escape.js';
import type { Logger } from '../log/logger.js';
import type { Channel } from './channel.js';
import { connectServer, describeDest, type ServerConnection } from './server.js';

/** A client line for the log: escaped, or only its first word when it carries credentials. */
function shownLine(line: Buffer, contentEnd: number, secret: boolean | 'line' | undefined): string {
  if (!secret) return escapeForLog(line, 0, contentEnd);
  if (secret === 'line') return '<hidden>';
  const sp = line.indexOf(0x20);
  const end = sp >= 0 && sp < contentEnd ? sp : 0;
  return `${escapeForLog(line, 0, end)} <hidden>`;
}

/** How long a closing side may take to take its last bytes before it is cut. */
const CLOSE_GRACE_MS = 5000;

export type SessionEnd =
  | 'done'
  | 'server_unavailable'
  | 'idle_timeout'
  | 'session_timeout'
  | 'too_many_violations'
  | 'protocol_close'
  | 'client_error'
  | 'server_error'
  | 'shutdown';

export interface SessionResult {
  readonly end: SessionEnd;
  readonly refused: number;
}

/**
 * One client connection: client ↔ protocol core ↔ server. The shell moves
 * bytes; the protocol session decides. Client bytes are framed into lines and
 * each line is forwarded, byte for byte, only after its verdict. Server bytes
 * reach the client as they come (or as the protocol rewrites them).
 *
 * Flow control: the client is read only while the server keeps up, no line
 * is held for a server answer and the session is not closing; the server is
 * read only while the client keeps up. So no buffer grows past one chunk.
 */
export class Session implements FramerSink {
  private readonly framer: LineFramer;
  private readonly proto: ProtocolSession;
  private server: ServerConnection | null = null;
  private refused = 0;
  private bytesIn = 0;
  private bytesOut = 0;
  private held = false;
  /** Validated client bytes not yet written to the server: a run of adjacent slices (see toServer). */
  private outRun: Buffer | null = null;
  private outRunEnd = 0;
  private serverBusy = false;
  private closing = false;
  private clientEof = false;
  private serverEof = false;
  private lastActivity = Date.now();
  private idleTimer: NodeJS.Timeout | null = null;
  private sessionTimer: NodeJS.Timeout | null = null;
  private graceTimer: NodeJS.Timeout | null = null;
  private endReason: SessionEnd = 'done';
  private resolveDone: (r: SessionResult) => void = () => {};
  private finished = false;
  readonly done: Promise<SessionResult>;
  private readonly tag: string;

  constructor(
    private readonly client: Channel,
    readonly clientAddress: string,
    private readonly cfg: Config,
    private readonly log: Logger,
  ) {
    this.done = new Promise((r) => (this.resolveDone = r));
    this.proto = cfg.protocol.createSession({ clientAddress, maxLineLength: cfg.options.maxLineLength }, cfg.options);
    this.framer = new LineFramer(this, cfg.options.maxLineLength);
    this.tag = `client=${clientAddress} protocol=${cfg.protocol.name}`;
  }

  /** Dial the server and start relaying. Resolves when the session is over. */
  async start(): Promise<SessionResult> {
    this.client.pause();
    this.client.input.on('error', (e: NodeJS.ErrnoException) => this.abort('client_error', `client error: ${e.code ?? e.message}`));
    this.client.output.on('error', (e: NodeJS.ErrnoException) => this.abort('client_error', `client error: ${e.code ?? e.message}`));
    this.armTimers();
    try {
      this.server = await connectServer(this.cfg.dest, this.cfg.connectTimeoutMs, (line) =>
        this.log.log('notice', `server stderr ${this.tag}: ${escapeForLog(Buffer.from(line, 'latin1'))}`),
      );
    } catch (err) {
      const msg = err instanceof ProtowrapError ? err.message : String(err);
      this.log.log('err', `server unavailable ${this.tag} server=${describeDest(this.cfg.dest)}: ${msg}`);
      this.sendReply('unavailable');
      this.endReason = 'server_unavailable';
      this.closing = true;
      this.client.end();
      this.scheduleGrace();
      this.whenWritten(this.client, () => this.finish());
      return this.done;
    }
    if (this.finished || this.closing) {
      this.server.stop();
      return this.done;
    }
    if (this.log.wants(1)) this.log.log('info', `session open ${this.tag} server=${this.server.describe}`);
    this.wire(this.server);
    return this.done;
  }

  private wire(server: ServerConnection): void {
    const s = server.channel;
    const c = this.client;
    s.input.on('data', (chunk: Buffer) => this.onServerData(chunk));
    s.input.on('end', () => this.onServerEof());
    s.input.on('error', (e: NodeJS.ErrnoException) => this.abort('server_error', `server error: ${e.code ?? e.message}`));
    s.output.on('error', (e: NodeJS.ErrnoException) => this.abort('server_error', `server error: ${e.code ?? e.message}`));
    s.output.on('drain', () => {
      this.serverBusy = false;
      this.updateClientFlow();
    });
    c.output.on('drain', () => {
      if (!this.serverEof) s.resume();
    });
    c.input.on('data', (chunk: Buffer) => this.onClientData(chunk));
    c.input.on('end', () => this.onClientEof());
    // A stream destroyed without 'end' (or before we listened) has ended too.
    c.input.on('close', () => this.onClientEof());
    s.input.on('close', () => this.onServerEof());
    if (c.input.destroyed) queueMicrotask(() => this.onClientEof());
    if (server.exited) {
      void server.exited.then((how) => {
        if (this.log.wants(1)) this.log.log('info', `server exited ${this.tag}: ${how}`);
      });
    }
    this.updateClientFlow();
  }

  // ---- client → server -------------------------------------------------

  private onClientData(chunk: Buffer): void {
    this.lastActivity = Date.now();
    this.bytesIn += chunk.length;
    if (this.closing) return;
    this.framer.push(chunk);
    this.flushToServer();
    this.updateClientFlow();
  }

  line(line: Buffer, contentEnd: number, ending: LineEnding): void {
    if (this.closing) return;
    this.act(this.proto.clientLine(line, contentEnd, ending), line, contentEnd);
  }

  overlong(head: Buffer): void {
    if (this.closing) return;
    this.act(this.proto.clientOverlong(), head, head.length);
  }

  raw(bytes: Buffer): void {
    if (this.closing) return;
    this.proto.clientRaw?.(bytes);
    this.toServer(bytes);
  }

  rawDone(): void {
    // Back in line mode; nothing to do until the next line.
  }

  private act(v: ClientVerdict, line: Buffer | null, contentEnd: number): void {
    switch (v.kind) {
      case 'forward':
        if (line) {
          if (this.log.wants(3)) this.log.log('debug', `${v.keep ? 'kept' : 'line'} ${this.tag} state=${this.proto.state}: ${shownLine(line, contentEnd, v.secret)}`);
          // keep: the protocol holds the line (e.g. an SMTP body) and sends it later itself.
          if (!v.keep) this.toServer(line);
        }
        // Notes (e.g. SMTP's accounting line per accepted message) are logLevel 1, like sessions.
        if (v.note && this.log.wants(1)) this.log.log('notice', `note ${this.tag}: ${v.note}`);
        if (v.toClient) this.toClient(v.toClient);
        if (v.toServer) for (const b of v.toServer) this.toServer(b);
        if (v.maxLineLength !== undefined) this.framer.setMaxLineLength(v.maxLineLength);
        if (v.raw !== undefined) this.framer.rawBytes(v.raw);
        if (v.hold) {
          this.held = true;
          this.framer.pause();
        }
        return;
      case 'refuse': {
        // What was accepted before this line goes out before anything the refusal does.
        this.flushToServer();
        this.refused++;
        const shown = line ? ` line="${shownLine(line, contentEnd, v.secret)}"` : '';
        this.log.log('warning', `refused ${this.tag} state=${this.proto.state} code=${v.code} reason="${v.reason}"${shown}${v.note ? ` ${v.note}` : ''}`);
        if (v.reply) this.toClient(v.reply);
        if (v.toServer && !v.close) for (const b of v.toServer) this.toServer(b);
        if (v.hold && !v.close) {
          this.held = true;
          this.framer.pause();
        }
        if (v.close) {
          this.closeBoth('protocol_close', 'closed by protocol after refusal');
        } else if (this.refused >= this.cfg.maxViolations) {
          this.sendReply('too_many_violations');
          this.closeBoth('too_many_violations', `${this.refused} refused lines`);
        }
        return;
      }
      default: {
        const never: never = v;
        throw new Error(`unknown verdict ${JSON.stringify(never)}`);
      }
    }
  }

  /**
   * Queues validated bytes for the server. Forwarded lines that lie next to
   * each other in the same input chunk go out as one write (a write per line
   * costs a system call per line): the run is kept as its first slice and an
   * end offset, and cut out once when flushed. Every entry point that can
   * queue bytes (client data, server data, client EOF) flushes before it
   * returns, so nothing waits here for later input.
   */
  private toServer(bytes: Buffer): void {
    const run = this.outRun;
    if (run && run.buffer === bytes.buffer && this.outRunEnd === bytes.byteOffset) {
      this.outRunEnd += bytes.length;
      return;
    }
    this.flushToServer();
    this.outRun = bytes;
    this.outRunEnd = bytes.byteOffset + bytes.length;
  }

  private flushToServer(): void {
    const run = this.outRun;
    if (!run) return;
    this.outRun = null;
    const s = this.server;
    if (!s || s.channel.writeEnded) return;
    const len = this.outRunEnd - run.byteOffset;
    const bytes = len === run.length ? run : Buffer.from(run.buffer, run.byteOffset, len);
    if (!s.channel.write(bytes)) this.serverBusy = true;
  }

  private onClientEof(): void {
    if (this.clientEof || this.finished) return;
    this.clientEof = true;
    if (this.closing) return;
    if (!this.framer.isPaused) this.finishClientInput();
    // else: finishClientInput() runs when the held line is released.
  }

  private finishClientInput(): void {
    const complete = this.framer.end();
    if (!complete && !this.closing) {
      this.log.log('notice', `client input ended inside a line or literal ${this.tag}; the fragment was not forwarded`);
    }
    this.flushToServer();
    if (this.log.wants(2)) this.log.log('info', `client closed its side ${this.tag}`);
    this.server?.channel.end();
    this.checkDone();
  }

  private updateClientFlow(): void {
    if (this.closing || this.clientEof) return;
    if (this.serverBusy || this.held) this.client.pause();
    else this.client.resume();
  }

  // ---- server → client -------------------------------------------------

  private onServerData(chunk: Buffer): void {
    this.lastActivity = Date.now();
    this.bytesOut += chunk.length;
    const server = this.server!;
    if (!this.proto.serverData) {
      if (!this.client.writeEnded && !this.client.write(chunk)) server.channel.pause();
      return;
    }
    const v = this.proto.serverData(chunk);
    const out = v.toClient === null ? [chunk] : Array.isArray(v.toClient) ? v.toClient : [v.toClient as Buffer];
    let ok = true;
    for (const b of out) if (!this.client.writeEnded) ok = this.client.write(b) && ok;
    if (!ok) server.channel.pause();
    if (v.notes && this.log.wants(1)) for (const n of v.notes) this.log.log('notice', `note ${this.tag}: ${n}`);
    if (v.toServer && !this.closing) {
      for (const b of v.toServer) this.toServer(b);
      this.flushToServer();
    }
    if (v.maxLineLength !== undefined) this.framer.setMaxLineLength(v.maxLineLength);
    if (v.close) {
      this.closeBoth('protocol_close', 'closed by protocol after a server reply');
      return;
    }
    if (v.cancelRaw) this.framer.cancelRaw();
    if (v.release && this.held) {
      this.held = false;
      this.framer.resume();
      this.flushToServer();
      if (this.clientEof && !this.framer.isPaused && !this.closing) this.finishClientInput();
      this.updateClientFlow();
    }
  }

  private onServerEof(): void {
    if (this.serverEof) return;
    this.serverEof = true;
    if (this.finished) return;
    if (this.log.wants(2)) this.log.log('info', `server closed its side ${this.tag}`);
    const tail = this.proto.serverEnd?.();
    if (tail) for (const b of tail) this.toClient(b);
    this.client.end();
    const server = this.server!;
    const exited = server.exited;
    // A spawned server that has exited will read nothing more: stop reading
    // the client too. A TCP server may have closed only its sending side.
    if (exited && !this.clientEof) {
      void exited.then(() => {
        if (!this.clientEof) {
          this.clientEof = true;
          this.client.pause();
          server.channel.end();
          this.checkDone();
        }
      });
    }
    if (this.held) {
      // The answer a held line waited for will never come.
      this.held = false;
      this.closing = true;
      this.clientEof = true;
    }
    this.checkDone();
  }

  private toClient(bytes: Buffer): void {
    if (!this.client.writeEnded) this.client.write(bytes);
  }

  private sendReply(kind: WrapperReply): void {
    const r = this.proto.reply(kind);
    if (r) this.toClient(r);
  }

  // ---- ending ----------------------------------------------------------

  private checkDone(): void {
    if (this.finished) return;
    if (!(this.clientEof && this.serverEof)) return;
    const server = this.server;
    this.scheduleGrace();
    this.whenWritten(this.client, () => {
      if (server) this.whenWritten(server.channel, () => this.finish());
      else this.finish();
    });
  }

  /** Runs fn once the channel's output has flushed (or failed). */
  private whenWritten(ch: Channel, fn: () => void): void {
    if (ch.writeFinished || ch.output.destroyed) {
      fn();
      return;
    }
    ch.output.once('finish', fn);
    ch.output.once('close', fn);
  }

  /** Ends the session now: reply already queued, close both sides, give them a moment. */
  private closeBoth(reason: SessionEnd, why: string): void {
    if (this.closing) return;
    this.closing = true;
    this.endReason = reason;
    this.log.log('notice', `closing ${this.tag}: ${why}`);
    this.framer.pause();
    this.client.pause();
    this.client.end();
    this.server?.stop();
    this.scheduleGrace();
    this.whenWritten(this.client, () => this.finish());
  }

  private abort(reason: SessionEnd, why: string): void {
    if (this.finished) return;
    if (this.endReason === 'done') this.endReason = reason;
    // The session close line (level 1) carries end=client_error|server_error.
    if (this.log.wants(2)) this.log.log('info', `${why} ${this.tag}`);
    this.finish();
  }

  private scheduleGrace(): void {
    if (this.graceTimer) return;
    this.graceTimer = setTimeout(() => this.finish(), CLOSE_GRACE_MS);
  }

  private armTimers(): void {
    const idle = this.cfg.idleTimeoutMs;
    const check = () => {
      const quiet = Date.now() - this.lastActivity;
      if (quiet >= idle) {
        this.sendReply('timeout');
        this.closeBoth('idle_timeout', `idle for ${Math.round(quiet / 1000)} s`);
      } else this.idleTimer = setTimeout(check, idle - quiet);
    };
    this.idleTimer = setTimeout(check, idle);
    this.sessionTimer = setTimeout(() => {
      this.sendReply('timeout');
      this.closeBoth('session_timeout', `session longer than ${this.cfg.sessionTimeoutMs / 1000} s`);
    }, this.cfg.sessionTimeoutMs);
  }

  /** Closes what is open and reports the result. Safe to call more than once. */
  private finish(): void {
    if (this.finished) return;
    this.finished = true;
    for (const t of [this.idleTimer, this.sessionTimer, this.graceTimer]) if (t) clearTimeout(t);
    this.client.destroy();
    const server = this.server;
    if (server) {
      server.channel.destroy();
      const exited = server.exited;
      if (exited && !server.hasExited()) {
        // Give a spawned server a moment to exit on its own after its stdin closed.
        const t = setTimeout(() => server.stop(), 1000);
        void exited.then(() => clearTimeout(t));
      } else if (!exited) server.stop();
    }
    const result: SessionResult = { end: this.endReason, refused: this.refused };
    const report = () => {
      if (this.log.wants(1)) {
        this.log.log(
          'info',
          `session close ${this.tag} end=${this.endReason} bytes_in=${this.bytesIn} bytes_out=${this.bytesOut} refused=${this.refused}`,
        );
      }
      this.resolveDone(result);
    };
    // A spawned server is reaped before the session counts as closed.
    const exited = this.server?.exited;
    if (exited) void exited.then(report);
    else report();
  }

  /** Standalone shutdown: close this session now. */
  shutdown(): void {
    this.sendReply('shutdown');
    this.closeBoth('shutdown', 'wrapper shutting down');
  }
}
