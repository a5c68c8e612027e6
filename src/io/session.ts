import type { Config } from '../config.js';
import { LineFramer, type FramerSink, type LineEnding } from '../core/framer.js';
import type { HoldStore } from '../core/hold.js';
import { stronger, type ClientVerdict, type ProtocolSession, type Secrecy, type WrapperReply } from '../core/protocol.js';
import { ProtowrapError } from '../errors.js';
import { escapeForLog, shownLine } from '../log/escape.js';
import type { LogFields } from '../log/event.js';
import type { Logger } from '../log/logger.js';
import { newSessionId } from './session-id.js';
import { Channel } from './channel.js';
import { ServerOut } from './server-out.js';
import { describeTls, upgradeToTls, type ClientTlsContext } from './tls.js';
import { EarlyReader } from './early-reader.js';
import { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { connectServer, describeDest, type ServerConnection } from './server.js';
import { serverPrelude } from './server-prelude.js';
import { proxyEncodable } from '../core/proxy-header.js';
import { SessionTimers, type PhaseExpiry } from './session-timers.js';
import { WriteRun } from './write-run.js';
import type { SessionEnd, SessionResult } from './session-end.js';
import type { AuthGate } from './auth-gate.js';
import type { DataAnswer, DataRequest } from '../core/data-channel.js';
import { sessionDataRelays, type DataRelays } from './ftp-data.js';
import { normaliseAddress } from './address.js';

export type { SessionEnd, SessionResult } from './session-end.js';

/** Bytes of a failed login's user name shown in the log (escaped, then cut like client text). */
const MAX_LOGGED_USER = 100;
/** How SMTP's accounting note starts (Conversation.accounting). */
const ACCEPTED = 'accepted ';

/** How long a closing side may take to take its last bytes before it is cut. */
const CLOSE_GRACE_MS = 5000;
/**
 * How long a policy close waits for the server's answers to what was already
 * forwarded (a slow or silent server cannot keep the session: then it is cut).
 */
export const CLOSE_DRAIN_MS = 2000;

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
  /** A forward verdict's holdAfterRaw: hold once its raw run is complete (see rawDone). */
  private holdAfterRaw = false;
  /**
   * Validated bytes for the server, written coalesced (see WriteRun). Every
   * entry point that adds to it flushes before it returns.
   */
  private readonly toServerRun = new WriteRun((b) => this.out.write(b));
  /** Keeps the order when a protocol streams bytes (a held body) to the server; see ServerOut. */
  private readonly out = new ServerOut(
    {
      write: (b) => this.writeServer(b),
      busy: () => this.serverBusy,
      gone: () => !this.server || this.server.channel.writeEnded || this.server.channel.output.destroyed,
    },
    (err) => this.spoolFailed(err),
  );
  private serverBusy = false;
  private closing = false;
  private clientEof = false;
  private serverEof = false;
  private readonly timers: SessionTimers;
  private graceTimer: NodeJS.Timeout | null = null;
  private endReason: SessionEnd = 'done';
  private resolveDone: (r: SessionResult) => void = () => {};
  private rejectDone: (err: unknown) => void = () => {};
  /** Set while the server is being reached: ends that wait (with no server) when the session ends first. */
  private abandonConnect: (() => void) | null = null;
  private finished = false;
  readonly done: Promise<SessionResult>;
  /** The fields every line of this session carries: client, protocol, session id. */
  private readonly tag: LogFields;
  private readonly startedAt = Date.now();
  /** Reads the client while the server is being reached (see EarlyReader); null before start(). */
  private early: EarlyReader | null = null;
  /** STARTTLS toward the client: the context, when the session offers it (see enableStartTls). */
  private tlsCtx: ClientTlsContext | null = null;
  /** A startTls verdict came: the switch happens once the current chunk has been judged. */
  private tlsRequested = false;
  /** Between the go-ahead and the end of the handshake: server bytes are dropped (response injection). */
  private upgrading = false;
  /** A refused command's announced bytes are being read and dropped (ClientVerdict skipRaw). */
  private skippingRaw = false;
  /** Some client bytes (or the protocol's own) reached the server: a policy close first lets it answer them. */
  private accepted = false;
  /** A policy close waits for what the server still sends (see closeBoth); then these go to the client, last. */
  private draining = false;
  private readonly lastForClient: Buffer[] = [];
  private drainTimer: NodeJS.Timeout | null = null;
  /** FTP data connections (see ftp-data.ts), made on a protocol's first data request. */
  private dataRelays: DataRelays | null = null;
  private readonly localAddress: string | null;

  constructor(
    private client: Channel,
    readonly clientAddress: string,
    private readonly cfg: Config,
    private readonly log: Logger,
    /** The process's store for held bodies (one per process: see hold-store.ts). */
    holdStore?: HoldStore,
    /** Failed logins counted across sessions (maxAuthFailures); null: none. */
    private readonly gate: AuthGate | null = null,
  ) {
    this.done = new Promise((resolve, reject) => {
      this.resolveDone = resolve;
      this.rejectDone = reject;
    });
    const local = client.input instanceof Socket ? client.input.localAddress : undefined;
    this.localAddress = local ? normaliseAddress(local) : null;
    const ctx = { clientAddress, ...(this.localAddress ? { localAddress: this.localAddress } : {}), maxLineLength: cfg.options.maxLineLength, tls: cfg.tls?.mode ?? 'none', piped: client.piped, ...(holdStore ? { holdStore } : {}) } as const;
    this.proto = cfg.protocol.createSession(ctx, cfg.options);
    this.framer = new LineFramer(this, this.proto.lineLimit ?? cfg.options.maxLineLength);
    this.tag = { client: clientAddress, protocol: cfg.protocol.name, session: newSessionId() };
    const phases = cfg.protocol.phaseTimers?.(cfg.options) ?? null;
    this.timers = phases ? new SessionTimers(cfg.idleTimeoutMs, cfg.sessionTimeoutMs, phases, () => this.bytesIn) : new SessionTimers(cfg.idleTimeoutMs, cfg.sessionTimeoutMs);
  }

  /**
   * Dial the server and start relaying. Resolves when the session is over
   * (rejects only on a bug). Not an async function: its promise would wait,
   * with a reaction on done, for the whole session; a daemon holds
   * thousands (bench/README.md, part 5). run() is over once the session is
   * wired.
   */
  start(): Promise<SessionResult> {
    this.run().catch((err: unknown) => {
      // A bug. Once done has settled no one waits on it: left unhandled, it reaches main's handler.
      if (this.finished) void Promise.reject(err);
      else this.rejectDone(err);
    });
    return this.done;
  }

  private async run(): Promise<void> {
    this.watchClientErrors(this.client);
    this.armTimers();
    this.early = new EarlyReader(this.client, () => this.clientLeftEarly('client connection closed before the server was reached'));
    if (this.cfg.proxy.toServer && this.client.endpoints && !proxyEncodable(this.client.endpoints)) {
      // A header without the client's address (LOCAL / UNKNOWN) would make the server take the
      // wrapper's own address for the client's, and pass it as local: refuse instead.
      this.log.event('err', 'server_unavailable', { ...this.tag, message: `the client's address cannot go in a PROXY header (${this.client.endpoints.remoteAddress})` });
      this.closeBeforeServer();
      return;
    }
    // A banned client never reaches the server (the store's answer is bounded; it fails open).
    if (this.gate && (await this.gate.isBanned(this.clientAddress))) {
      if (this.finished || this.closing) return;
      this.log.event('warning', 'refused_connection', { ...this.tag, code: 'banned', reason: `banned after ${this.gate.settings.limit} failed logins (maxAuthFailures)` });
      this.closeBeforeServer('banned');
      return;
    }
    // The session ended while the store was asked (the client left, SIGTERM): no server.
    if (this.finished || this.closing) return;
    const connecting = connectServer(
      this.cfg.dest,
      this.cfg.connectTimeoutMs,
      (line) => this.log.event('notice', 'server_stderr', { ...this.tag, message: escapeForLog(Buffer.from(line, 'latin1')) }),
      serverPrelude(this.cfg, this.client.endpoints, this.log),
    );
    try {
      // A session that ends while the server is still being reached (SIGTERM,
      // a timeout, a client that left) does not wait for the connect timeout.
      const server = await new Promise<ServerConnection | null>((resolve, reject) => {
        this.abandonConnect = () => resolve(null);
        connecting.then(resolve, reject);
      });
      this.abandonConnect = null;
      if (!server) {
        connecting.then((s) => s.stop(), () => {});
        return;
      }
      this.server = server;
    } catch (err) {
      if (this.finished) return;
      const msg = err instanceof ProtowrapError ? err.message : String(err);
      this.log.event('err', 'server_unavailable', { ...this.tag, server: describeDest(this.cfg.dest), message: msg });
      this.closeBeforeServer();
      return;
    }
    if (this.finished || this.closing) {
      this.server.stop();
      return;
    }
    if (this.log.wants(1)) this.log.event('info', 'session_open', { ...this.tag, server: this.server.describe });
    this.wire(this.server);
  }

  /** No server for this session: the protocol's "unavailable" reply, then the end. */
  private closeBeforeServer(reason: SessionEnd = 'server_unavailable'): void {
    this.early?.stop();
    this.sendReply('unavailable');
    this.endReason = reason;
    this.closing = true;
    this.client.end();
    this.scheduleGrace();
    this.client.onWritten(() => this.finish());
  }

  private clientLeftEarly(why: string): void {
    if (this.finished) return;
    if (this.log.wants(2)) this.log.event('info', 'session_state', { ...this.tag, message: why });
    this.endReason = 'client_closed';
    this.finish();
  }

  private wire(server: ServerConnection): void {
    const s = server.channel;
    const c = this.client;
    const early = this.early?.stop() ?? null;
    s.input.on('data', (chunk: Buffer) => this.onServerData(chunk));
    s.input.on('end', () => this.onServerEof());
    s.input.on('error', (e: NodeJS.ErrnoException) => this.abort('server_error', `server error: ${e.code ?? e.message}`));
    s.output.on('error', (e: NodeJS.ErrnoException) => {
      // A spawned server that closed its stdin (exited, or stopped reading) may
      // still have output on its own stdout: deliver that, read no more client bytes.
      if ((s.output as unknown) !== s.input && e.code === 'EPIPE') this.onServerInputClosed();
      else this.abort('server_error', `server error: ${e.code ?? e.message}`);
    });
    s.output.on('drain', () => {
      this.serverBusy = false;
      this.out.pump();
      this.updateClientFlow();
    });
    this.listenClient(c);
    s.input.on('close', () => this.onServerEof());
    if (c.input.destroyed) queueMicrotask(() => this.onClientEof());
    if (server.exited) {
      void server.exited.then((how) => {
        if (this.log.wants(1)) this.log.event('info', 'server_exited', { ...this.tag, message: how });
      });
    }
    // What the client sent while the server was reached is judged now, as if
    // it had arrived this moment; one buffer, so the framer keeps it whole if
    // a verdict holds.
    if (early) this.onClientData(early);
    // Its EOF, seen then, is passed on after them (half-close).
    const earlyEof = this.early?.eof === true;
    // Dropped: ten thousand idle sessions would each keep its listeners (bench part 5).
    this.early = null;
    if (earlyEof) this.onClientEof();
    this.updateClientFlow();
    // The first phase's deadline (HTTP: the first request head) runs from here, bytes or not.
    this.updatePhase();
  }

  // ---- client → server -------------------------------------------------

  private onClientData(chunk: Buffer): void {
    this.timers.touch();
    this.bytesIn += chunk.length;
    if (this.closing) return;
    // Only protocols that judge raw bytes (SMTP's early talker) define clientData.
    const pre = this.proto.clientData?.(chunk);
    if (pre) {
      this.act(pre, null, 0);
      if (this.closing) return;
    }
    // Writes to the server made while this chunk is judged (runs of lines,
    // a protocol's own bytes) leave in one writev.
    const out = this.server?.channel.output;
    out?.cork();
    this.framer.push(chunk);
    this.toServerRun.flush();
    out?.uncork();
    if (this.tlsRequested) {
      this.startClientTls();
      return;
    }
    this.updateClientFlow();
    this.updatePhase();
  }

  /** The protocol's phase after a chunk either way (HTTP: head, body, idle), for its deadline. */
  private updatePhase(): void {
    if (this.closing || !this.proto.clientPhase) return;
    this.timers.phase(this.proto.clientPhase());
  }

  line(line: Buffer, contentEnd: number, ending: LineEnding): void {
    if (this.closing) return;
    // Asked before the verdict: the state the line was sent in says whether it is a credential.
    const secret = this.proto.lineSecrecy?.(line, contentEnd) ?? false;
    this.act(this.proto.clientLine(line, contentEnd, ending), line, contentEnd, secret);
  }

  overlong(head: Buffer): void {
    if (this.closing) return;
    const secret = this.proto.lineSecrecy?.(head, head.length) ?? false;
    this.act(this.proto.clientOverlong(head), head, head.length, secret);
  }

  raw(bytes: Buffer): void {
    if (this.closing) return;
    // The chunk of a refused BDAT: read so that it is no command, and dropped.
    if (this.skippingRaw) return;
    this.proto.clientRaw?.(bytes);
    this.toServerRun.add(bytes);
  }

  rawDone(): void {
    this.skippingRaw = false;
    // Back in line mode. A raw run that asked to hold after it (an SMTP BDAT
    // past the pending-reply cap) stops the client here until a release.
    if (this.holdAfterRaw) {
      this.holdAfterRaw = false;
      this.held = true;
      this.framer.pause();
    }
  }

  private act(v: ClientVerdict, line: Buffer | null, contentEnd: number, secret: Secrecy = false): void {
    switch (v.kind) {
      case 'forward':
        if (line) {
          if (this.log.wants(3)) {
            this.log.event('debug', v.keep ? 'kept' : 'line', { ...this.tag, state: this.proto.state, line: shownLine(line, contentEnd, stronger(secret, v.secret)) });
          }
          // keep: the protocol holds the line (e.g. an SMTP body) and sends it later itself.
          if (!v.keep) this.toServerRun.add(line);
        }
        // Notes (e.g. SMTP's accounting line per accepted message) are logLevel 1, like sessions.
        if (v.note && this.log.wants(1)) this.note(v.note);
        if (v.toClient) this.toClient(v.toClient);
        if (v.toServer) for (const b of v.toServer) this.toServerRun.add(b);
        if (v.maxLineLength !== undefined) this.framer.setMaxLineLength(v.maxLineLength);
        if (v.raw !== undefined) {
          // Set first: a run of 0 bytes ends (rawDone) inside rawBytes().
          this.holdAfterRaw = v.holdAfterRaw === true;
          this.framer.rawBytes(v.raw);
        }
        if (v.hold) {
          this.held = true;
          this.framer.pause();
        }
        if (v.data) this.openData(v.data, null);
        if (v.startTls) {
          // Nothing more of this chunk is read: onClientData switches to TLS once it returns.
          this.tlsRequested = true;
          this.held = true;
          this.framer.pause();
        }
        return;
      case 'refuse': {
        // What was accepted before this line goes out before anything the refusal does.
        this.toServerRun.flush();
        this.refused++;
        // Credentials answered by the protocol itself (a PASS after a USER the server refused) are a
        // failed login, logged as one (fail2ban counts it once), not as a violation.
        if (v.loginFailed) this.loginFailed(v.loginFailed.user, v.reason);
        else {
          this.log.event('warning', 'refused', {
            ...this.tag,
            state: this.proto.state,
            code: v.code,
            reason: v.reason,
            ...(line ? { line: shownLine(line, contentEnd, stronger(secret, v.secret)) } : {}),
            ...(v.note ? { detail: v.note } : {}),
          });
        }
        // A closing refusal's reply goes last, after what the server still answers (closeBoth).
        if (v.reply && !v.close) this.toClient(v.reply);
        if (v.toServer && !v.close) for (const b of v.toServer) this.toServerRun.add(b);
        if (v.hold && !v.close) {
          this.held = true;
          this.framer.pause();
        }
        if (v.skipRaw !== undefined && !v.close) {
          this.skippingRaw = true;
          this.framer.rawBytes(v.skipRaw);
        }
        if (v.close) {
          this.closeBoth('protocol_close', 'closed by protocol after refusal', v.reply);
        } else if (this.refused >= this.cfg.maxViolations) {
          this.closeBoth('too_many_violations', `${this.refused} refused lines`, this.proto.reply('too_many_violations'));
        }
        return;
      }
      default: {
        const never: never = v;
        throw new Error(`unknown verdict ${JSON.stringify(never)}`);
      }
    }
  }

  private writeServer(bytes: Buffer): void {
    const s = this.server;
    if (!s || s.channel.writeEnded || s.channel.output.destroyed) return;
    this.accepted = true;
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
      this.log.event('notice', 'session_state', { ...this.tag, message: 'client input ended inside a line or literal; the fragment was not forwarded' });
    }
    this.toServerRun.flush();
    if (this.log.wants(2)) this.log.event('info', 'session_state', { ...this.tag, message: 'client closed its side' });
    this.server?.channel.end();
    this.checkDone();
  }

  private updateClientFlow(): void {
    if (this.closing || this.clientEof) return;
    if (this.serverBusy || this.held || this.out.streaming) {
      this.client.pause();
      // Not the client's fault: a body-rate window during which the wrapper did not read owes nothing.
      this.timers.excuse();
    } else this.client.resume();
  }

  private watchClientErrors(c: Channel): void {
    const onError = (e: NodeJS.ErrnoException) => this.abort('client_error', `client error: ${e.code ?? e.message}`);
    c.input.on('error', onError);
    if ((c.output as unknown) !== c.input) c.output.on('error', onError);
  }

  /** The relay's listeners on the client (at wire(), and again on the TLS socket after STARTTLS). */
  private listenClient(c: Channel): void {
    c.output.on('drain', () => {
      if (!this.serverEof) this.server?.channel.resume();
    });
    c.input.on('data', (chunk: Buffer) => this.onClientData(chunk));
    c.input.on('end', () => this.onClientEof());
    // A stream destroyed without 'end' (or before we listened) has ended too.
    c.input.on('close', () => this.onClientEof());
  }

  /**
   * The TLS context toward the client: STARTTLS is offered with it (tls =
   * starttls or require), and FTP's PROT P data connections use it (any tls mode).
   */
  enableStartTls(ctx: ClientTlsContext): void {
    this.tlsCtx = ctx;
  }

  /**
   * The protocol answered STARTTLS: its reply is queued in plaintext. Every
   * client byte already read after the STARTTLS line is discarded (command
   * injection, CVE-2011-0411), the plaintext socket is read no more, and the
   * handshake runs on it; the session goes on over the TLS socket.
   */
  private startClientTls(): void {
    this.tlsRequested = false;
    // Also what the paused socket has read but not handed out: the TLS socket reads its handle, not this buffer.
    const buffered = this.client.input.readableLength > 0 ? (this.client.input.read() as Buffer | null)?.length ?? 0 : 0;
    const dropped = this.framer.discardPending() + buffered;
    if (dropped > 0) this.log.event('warning', 'session_state', { ...this.tag, message: `discarded ${dropped} bytes the client sent after STARTTLS in plaintext` });
    const raw = this.client.input;
    if (!this.tlsCtx || !(raw instanceof Socket) || (this.client.output as unknown) !== raw) {
      this.closeBoth('client_error', 'STARTTLS without a TLS context or a socket client', this.proto.reply('unavailable'), false);
      return;
    }
    this.upgrading = true;
    this.client.pause();
    upgradeToTls(raw, this.tlsCtx.current).then(
      (tls) => this.clientSecured(tls),
      (e: Error) => this.abort('client_error', `TLS handshake failed: ${e.message}`),
    );
  }

  private clientSecured(tls: TLSSocket): void {
    if (this.finished || this.closing) {
      tls.destroy();
      return;
    }
    this.client = new Channel(tls, tls);
    this.watchClientErrors(this.client);
    this.listenClient(this.client);
    if (this.log.wants(1)) this.log.event('info', 'client_tls', { ...this.tag, message: describeTls(tls) });
    this.upgrading = false;
    this.held = false;
    this.framer.resume();
    this.updateClientFlow();
  }

  // ---- server → client -------------------------------------------------

  private onServerData(chunk: Buffer): void {
    this.timers.touch();
    this.bytesOut += chunk.length;
    this.judgeServer(chunk);
  }

  private judgeServer(chunk: Buffer): void {
    if (this.upgrading) {
      // Nothing is owed to the client while it negotiates TLS (STARTTLS is only
      // accepted with no reply outstanding): such bytes are an injection.
      this.log.event('warning', 'session_state', { ...this.tag, message: `dropped ${chunk.length} server bytes sent during the client's TLS handshake` });
      return;
    }
    const server = this.server!;
    if (!this.proto.serverData) {
      if (!this.client.writeEnded && !this.client.write(chunk)) server.channel.pause();
      return;
    }
    const v = this.proto.serverData(chunk);
    const out = v.toClient === null ? [chunk] : Array.isArray(v.toClient) ? v.toClient : [v.toClient as Buffer];
    let ok = true;
    // Several buffers (a rewritten reply, queued refusals) leave in one writev.
    const many = out.length > 1 && !this.client.writeEnded;
    if (many) this.client.output.cork();
    for (const b of out) if (!this.client.writeEnded) ok = this.client.write(b) && ok;
    if (many) this.client.output.uncork();
    if (!ok) server.channel.pause();
    if (v.loginFailed) this.loginFailed(v.loginFailed.user);
    if (v.notes && this.log.wants(1)) for (const n of v.notes) this.note(n);
    if (v.toServer && !this.closing) {
      for (const b of v.toServer) this.toServerRun.add(b);
      this.toServerRun.flush();
    }
    if (v.stream) {
      if (this.closing) v.stream.release();
      else this.out.stream(v.stream);
    }
    if (v.maxLineLength !== undefined) this.framer.setMaxLineLength(v.maxLineLength);
    if (v.data && !v.close) {
      // The reply asked for a data listener: nothing after it is read until the protocol answered.
      server.channel.pause();
      this.openData(v.data, v.rest ?? Buffer.alloc(0));
      return;
    }
    if (v.close) {
      // The protocol's closing words (e.g. IMAP's BYE) are out already: nothing of the server may follow them.
      this.closeBoth('protocol_close', v.closeWhy ?? 'closed by protocol after a server reply', undefined, false);
      return;
    }
    if (v.cancelRaw) {
      this.framer.cancelRaw();
      this.holdAfterRaw = false;
    }
    // The server switched protocols: every client byte from here on is one raw run (the client is held at a line boundary).
    if (v.tunnel) this.framer.rawBytes(Number.MAX_SAFE_INTEGER);
    // The answer came before the raw run a hold was to follow was over: no hold.
    if (v.release && !this.held) this.holdAfterRaw = false;
    if (v.release) this.releaseHeld();
    this.updatePhase();
  }

  private releaseHeld(): void {
    if (!this.held) return;
    this.held = false;
    this.framer.resume();
    this.toServerRun.flush();
    if (this.clientEof && !this.framer.isPaused && !this.closing) this.finishClientInput();
    this.updateClientFlow();
  }

  /**
   * A protocol's data request (FTP): the listener is opened, the protocol
   * told (its answer: the rewritten 227 / 229, or the PORT / EPRT for the
   * server), then `rest`, the server bytes after the reply that asked, are
   * judged (and the server read again).
   */
  private openData(req: DataRequest, rest: Buffer | null): void {
    this.dataRelays ??= sessionDataRelays({
      clientAddress: this.clientAddress,
      localAddress: this.localAddress,
      server: () => this.server?.channel.input ?? null,
      options: this.cfg.options,
      tls: () => this.tlsCtx?.current ?? null,
      log: this.log,
      tag: this.tag,
      touch: () => this.timers.touch(),
    });
    void this.dataRelays.open(req).then((opened) => {
      if (this.finished || this.closing) return;
      const answer: DataAnswer = this.proto.dataOpened?.(opened) ?? {};
      if (answer.note) this.log.event('warning', 'data_connection', { ...this.tag, message: answer.note });
      for (const b of answer.toClient ?? []) this.toClient(b);
      if (answer.toServer) {
        for (const b of answer.toServer) this.toServerRun.add(b);
        this.toServerRun.flush();
      }
      if (answer.release) this.releaseHeld();
      if (rest !== null) {
        if (rest.length > 0) this.judgeServer(rest);
        if (!this.closing && !this.finished) this.server?.channel.resume();
      }
    });
  }

  private onServerEof(): void {
    if (this.serverEof) return;
    this.serverEof = true;
    if (this.finished) return;
    if (this.log.wants(2)) this.log.event('info', 'session_state', { ...this.tag, message: 'server closed its side' });
    if (this.draining) {
      // The wrapper closed the session: the server leaving now is expected, and the protocol's
      // words for an unexpected end (SMTP's 421 mid-DATA) must not come before the closing reply.
      this.endDrain();
      return;
    }
    const tail = this.proto.serverEnd?.();
    if (tail) for (const b of tail) this.toClient(b);
    // Nothing the client sends now can reach anyone (an SMTP body being held
    // when Postfix's smtpd_timeout hit): stop reading it, close once the tail
    // (the protocol's 421) is written, instead of reading on until the idle timeout.
    if (this.proto.stopOnServerEnd?.()) {
      this.closeBoth('server_closed', 'server closed while the client was still sending', undefined, false);
      return;
    }
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
      server.channel.end();
    }
    this.checkDone();
  }

  /** The server reads no more (EPIPE on a spawned server's stdin): stop reading the client. */
  private onServerInputClosed(): void {
    if (this.finished) return;
    if (this.log.wants(2)) this.log.event('info', 'session_state', { ...this.tag, message: 'server stopped reading (EPIPE)' });
    if (this.clientEof) return;
    this.clientEof = true;
    this.client.pause();
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
    this.client.onWritten(() => {
      if (server) server.channel.onWritten(() => this.finish());
      else this.finish();
    });
  }

  /**
   * A close decided by the wrapper (a refusal that closes, too many
   * violations, a timeout, shutdown). The client is read no more. When
   * client bytes already reached the server, nothing accepted is lost: the
   * server is half-closed and what it still sends (its answers to them) is
   * relayed for up to CLOSE_DRAIN_MS, then `last` (the protocol's closing
   * reply) goes to the client, last, and both sides are closed. drain =
   * false: close at once (the protocol's closing words are already out).
   */
  private closeBoth(reason: SessionEnd, why: string, last?: Buffer, drain = true): void {
    // A finished session keeps the end reason it was reported with.
    if (this.closing || this.finished) return;
    this.closing = true;
    this.endReason = reason;
    this.log.event('notice', 'closing', { ...this.tag, message: why });
    this.framer.pause();
    this.client.pause();
    // What was accepted before the close is handed to the server first (it may sit corked).
    this.toServerRun.flush();
    const out = this.server?.channel.output;
    while (out && out.writableCorked > 0) out.uncork();
    const s = this.server;
    if (drain && this.accepted && s && !this.serverEof && !this.client.writeEnded) {
      this.draining = true;
      if (last) this.lastForClient.push(last);
      s.channel.end();
      s.channel.resume();
      this.drainTimer = setTimeout(() => this.endDrain(), CLOSE_DRAIN_MS);
      return;
    }
    if (last) this.toClient(last);
    this.closeNow();
  }

  /** The server has said what it had to say (or took too long): the closing reply, then the end. */
  private endDrain(): void {
    if (!this.draining) return;
    this.draining = false;
    if (this.drainTimer) clearTimeout(this.drainTimer);
    for (const b of this.lastForClient.splice(0)) this.toClient(b);
    this.closeNow();
  }

  private closeNow(): void {
    this.client.end();
    this.server?.stop();
    this.scheduleGrace();
    this.client.onWritten(() => this.finish());
  }

  private abort(reason: SessionEnd, why: string): void {
    if (this.finished) return;
    if (this.endReason === 'done') this.endReason = reason;
    // The session close line (level 1) carries end=client_error|server_error.
    if (this.log.wants(2)) this.log.event('info', 'session_state', { ...this.tag, message: why });
    this.finish();
  }

  private scheduleGrace(): void {
    if (this.graceTimer) return;
    this.graceTimer = setTimeout(() => this.finish(), CLOSE_GRACE_MS);
  }

  private armTimers(): void {
    this.timers.arm(
      (quiet) => {
        this.closeBoth('idle_timeout', `idle for ${Math.round(quiet / 1000)} s`, this.proto.reply('timeout'));
      },
      () => {
        this.closeBoth('session_timeout', `session longer than ${this.cfg.sessionTimeoutMs / 1000} s`, this.proto.reply('timeout'));
      },
      // Only a protocol with phases (HTTP) gets the phase handler (and its closure).
      this.proto.clientPhase ? (phase, why) => this.phaseExpired(phase, why) : undefined,
    );
  }

  private phaseExpired(phase: PhaseExpiry, why: string): void {
    // An idle keep-alive connection is closed without a word (RFC 9112 section 9.5); a slow head or body gets the timeout reply.
    if (phase === 'idle') this.closeBoth('keepalive_timeout', why, undefined, false);
    else this.closeBoth(phase === 'head' ? 'header_timeout' : 'body_too_slow', why, this.proto.reply('timeout'));
  }

  /** Closes what is open and reports the result. Safe to call more than once. */
  private finish(): void {
    if (this.finished) return;
    this.finished = true;
    this.timers.clear();
    if (this.drainTimer) clearTimeout(this.drainTimer);
    // Held bodies (queued, being streamed, or still in the protocol) give back their memory, disk and descriptors.
    this.out.release();
    this.dataRelays?.closeAll();
    this.proto.close?.();
    if (this.graceTimer) clearTimeout(this.graceTimer);
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
        this.log.event('info', 'session_close', {
          ...this.tag,
          end: this.endReason,
          bytes_in: this.bytesIn,
          bytes_out: this.bytesOut,
          refused: this.refused,
          duration_ms: Date.now() - this.startedAt,
        });
      }
      this.resolveDone(result);
      this.abandonConnect?.();
    };
    // A spawned server is reaped before the session counts as closed.
    const exited = this.server?.exited;
    if (exited) void exited.then(report);
    else report();
  }

  /** A streamed body could not be read back: the server must not get its end (it then discards the message). */
  private spoolFailed(err: unknown): void {
    this.log.event('err', 'session_state', { ...this.tag, message: `held body could not be read back from the spool: ${(err as Error).message}` });
    this.closeBoth('spool_error', 'spool read failed', this.proto.reply('unavailable'), false);
  }

  /** The server refused credentials: a line of its own (fail2ban counts these), at every level. reason: when the wrapper answered. */
  private loginFailed(user: string | null, reason?: string): void {
    const shown = user === null ? null : escapeForLog(Buffer.from(user, 'latin1'), 0, undefined, MAX_LOGGED_USER);
    this.log.event('warning', 'login_failed', { ...this.tag, state: this.proto.state, ...(reason ? { reason } : {}), user: shown });
    this.gate?.failed(this.clientAddress, this.tag);
  }

  /**
   * A protocol's note (already escaped). SMTP's accounting line for an
   * accepted message ("accepted from=<…> nrcpt=… rcpt=… size=…") is the
   * message_accepted event; any other note is a note.
   */
  private note(text: string): void {
    if (text.startsWith(ACCEPTED)) this.log.event('notice', 'message_accepted', { ...this.tag, detail: text.slice(ACCEPTED.length) });
    else this.log.event('notice', 'note', { ...this.tag, message: text });
  }

  /** Standalone shutdown: close this session now. */
  shutdown(): void {
    if (this.finished) return;
    this.closeBoth('shutdown', 'wrapper shutting down', this.proto.reply('shutdown'));
  }
}
