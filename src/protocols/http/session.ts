import { findNulOrBareCr, startsWithWordCI } from '../../core/bytes.js';
import type { LineEnding } from '../../core/framer.js';
import type { ClientPhase, ClientVerdict, LineMatcher, ProtocolOptions, ProtocolSession, RefusalCode, Secrecy, ServerVerdict, WrapperReply } from '../../core/protocol.js';
import { parseChunkSize, parseField, parseRequestLine, type Fault, type Field } from './grammar.js';
import { RequestHead } from './head.js';
import { escapeForLog } from '../../log/escape.js';
import { errorResponse, WRAPPER_REPLIES, type ErrorStatus } from './replies.js';
import { ResponseFramer } from './response.js';
import { normalisedRequestLines } from './target.js';

/**
 * Requests forwarded and not yet answered (pipelining, RFC 9112 section
 * 9.3). At this many the client is read no more until a response is
 * complete: a client cannot make the wrapper remember an endless queue.
 */
export const MAX_PENDING_RESPONSES = 32;
/** The longest chunk-size line of a request body (size plus extensions), ending excluded. */
export const MAX_CHUNK_LINE = 4096;

export interface HttpLimits {
  /** httpMethods: the methods forwarded (case-sensitive, RFC 9110 section 9.1). */
  readonly methods: ReadonlySet<string>;
  readonly maxRequestLine: number;
  readonly maxHeaderBytes: number;
  readonly maxHeaders: number;
  /** null: no limit. */
  readonly maxBodySize: number | null;
  readonly allowUpgrade: boolean;
  readonly allowConnect: boolean;
  readonly allowAsteriskForm: boolean;
  readonly denyHeaders: readonly LineMatcher[];
}

export type HttpState = 'request-line' | 'headers' | 'body' | 'chunk-size' | 'chunk-data' | 'chunk-end' | 'trailers' | 'tunnel';

/** Fields that frame or route a message: never legal in a trailer section (RFC 9110 section 6.5.1). */
const NOT_IN_TRAILERS: ReadonlySet<string> = new Set(['content-length', 'transfer-encoding', 'host', 'connection', 'expect', 'upgrade', 'te', 'trailer']);
/** Fields whose values are credentials: the log shows the name only. */
const SECRET_FIELDS = ['AUTHORIZATION:', 'PROXY-AUTHORIZATION:', 'COOKIE:'];

const codeFor = (f: Fault): RefusalCode => (f.status === 413 || f.status === 414 || f.status === 431 ? 'too_large' : f.status === 400 ? 'bad_syntax' : 'not_supported');

/**
 * One HTTP/1.x client connection (RFC 9110, RFC 9112). A request head is
 * read line by line and kept (bounded by maxHeaderBytes and maxHeaders):
 * nothing of it reaches the server until the empty line has been seen and
 * the whole head is known to be valid, because a later field (a second
 * Host, Content-Length next to Transfer-Encoding) could still make the
 * request one the server must not act on. Then the head goes out whole,
 * byte for byte, and the body is counted exactly as the head says
 * (Content-Length: a raw run; chunked: size lines judged as lines, data as
 * raw runs, trailers as fields). Every refusal answers with an HTTP error
 * and closes: after a bad request the wrapper no longer knows where the
 * next one would start. The server's responses are followed too
 * (ResponseFramer), so that HEAD, 1xx, 204 and 304 are read right and a
 * response that cannot be framed closes the connection.
 */
export class HttpSession implements ProtocolSession {
  private phase: HttpState = 'request-line';
  /** The framer's first limit: the request line's. */
  readonly lineLimit: number;
  private readonly responses = new ResponseFramer();
  // The request being read.
  private head: RequestHead | null = null;
  /** The head's lines so far (slices of the input, not copies), sent whole once it is valid. */
  private kept: Buffer[] = [];
  /** Bytes and fields of the header (or trailer) section so far. */
  private headBytes = 0;
  private fields = 0;
  /** The request line being served, escaped and cut, for refusal log lines. */
  private requestShown = '';
  /** Empty lines seen before this request line (RFC 9112 section 2.2 lets a server ignore one). */
  private emptyLines = 0;
  /** Bytes of the current raw run (Content-Length body or chunk data) still to come. */
  private rawLeft = 0;
  private bodyTotal = 0;
  /** A 100-continue request whose body the client is not sending yet. */
  private waiting100 = false;
  /** Some bytes of a request head have come: the head deadline runs. The first request's runs from the start. */
  private headStarted = true;
  /** Why the client is not read: the responses queue is full, an upgrade waits for its answer, or the connection ends after this request. */
  private holding: 'none' | 'queue' | 'upgrade' | 'close' = 'none';
  /** What the request being read makes the client wait for once it is complete. */
  private holdWhenDone: 'none' | 'queue' | 'upgrade' | 'close' = 'none';

  constructor(
    private readonly options: ProtocolOptions,
    private readonly limits: HttpLimits,
  ) {
    this.lineLimit = limits.maxRequestLine;
  }

  get state(): string {
    return this.phase;
  }

  clientData(): null {
    if (this.phase === 'request-line' && this.holding === 'none') this.headStarted = true;
    return null;
  }

  lineSecrecy(line: Buffer, contentEnd: number): Secrecy {
    if (this.phase !== 'headers' && this.phase !== 'trailers') return false;
    for (const w of SECRET_FIELDS) if (startsWithWordCI(line, 0, contentEnd, w)) return true;
    return false;
  }

  clientLine(line: Buffer, contentEnd: number, ending: LineEnding): ClientVerdict {
    if (ending === 'none') return this.refuse('unterminated', 400, 'input ended inside a line');
    if (ending === 'lf') return this.refuse('bare_lf', 400, 'line ended with a bare LF, CRLF required');
    const { nul, cr } = findNulOrBareCr(line, 0, contentEnd);
    if (nul >= 0) return this.refuse('nul_byte', 400, `NUL byte at offset ${nul}`);
    if (cr >= 0) return this.refuse('bare_cr', 400, `bare CR at offset ${cr}`);
    switch (this.phase) {
      case 'request-line':
        return this.requestLine(line, contentEnd);
      case 'headers':
        return contentEnd === 0 ? this.headEnd(line) : this.headerLine(line, contentEnd);
      case 'chunk-size':
        return this.chunkSize(line, contentEnd);
      case 'chunk-end':
        if (contentEnd !== 0) return this.refuse('smuggling', 400, 'chunk data longer than its size');
        this.phase = 'chunk-size';
        return { kind: 'forward' };
      case 'trailers':
        return this.trailer(line, contentEnd);
      case 'body':
      case 'chunk-data':
      case 'tunnel':
        // The framer hands these bytes out raw; a line here is a shell bug.
        throw new Error(`client line in HTTP state ${this.phase}`);
      default: {
        const never: never = this.phase;
        throw new Error(`unknown HTTP state ${String(never)}`);
      }
    }
  }

  clientOverlong(): ClientVerdict {
    switch (this.phase) {
      case 'request-line':
        return this.refuse('line_too_long', 414, `request line longer than ${this.limits.maxRequestLine} bytes`);
      case 'headers':
      case 'trailers':
        return this.refuse('too_large', 431, `header section longer than ${this.limits.maxHeaderBytes} bytes`);
      default:
        return this.refuse('line_too_long', 400, `chunk line longer than ${MAX_CHUNK_LINE} bytes`);
    }
  }

  clientRaw(bytes: Buffer): void {
    if (this.phase === 'tunnel') return;
    this.waiting100 = false;
    this.rawLeft -= bytes.length;
    if (this.rawLeft > 0) return;
    if (this.phase === 'body') this.requestDone();
    else this.phase = 'chunk-end';
  }

  private requestLine(line: Buffer, end: number): ClientVerdict {
    if (end === 0) {
      // Kept with the head it comes before: alone, it is an incomplete request to the server.
      if (this.emptyLines++ === 0) {
        this.kept = [line];
        return { kind: 'forward', keep: true };
      }
      return this.refuse('bad_syntax', 400, 'more than one empty line before a request');
    }
    const l = this.limits;
    if (this.options.deny.length > 0 || this.options.allow.length > 0) {
      const text = line.toString('latin1', 0, end);
      // The rules also see the target as the server routes it (//admin, /%61dmin, /x/../admin, http://h/admin).
      const norms = normalisedRequestLines(line, end);
      for (const m of this.options.deny) {
        if (m.test(text)) return this.refuse('denied_by_rule', 403, `matches deny pattern /${m.source}/`);
        if (norms.some((n) => m.test(n))) return this.refuse('denied_by_rule', 403, `normalised target matches deny pattern /${m.source}/`);
      }
      // allowList: every form a server may serve must be allowed.
      const served = norms.length > 0 ? norms : [text];
      if (this.options.allow.length > 0 && !served.every((n) => this.options.allow.some((m) => m.test(n)))) return this.refuse('not_allowed_by_rule', 403, 'matches no allow pattern');
    }
    const r = parseRequestLine(line, end);
    if ('status' in r) return this.refuse(codeFor(r), r.status, r.reason);
    if (!l.methods.has(r.method)) return this.refuse('not_supported', 501, 'method not in httpMethods');
    if (r.method === 'CONNECT') {
      if (!l.allowConnect) return this.refuse('not_supported', 501, 'CONNECT refused (allowConnect)');
      if (r.form !== 'authority') return this.refuse('bad_syntax', 400, 'CONNECT without an authority-form target');
    } else if (r.form === 'authority') {
      return this.refuse('bad_syntax', 400, 'authority-form target outside CONNECT');
    } else if (r.form === 'asterisk' && (r.method !== 'OPTIONS' || !l.allowAsteriskForm)) {
      return this.refuse('not_supported', 400, 'asterisk-form target refused (allowAsteriskForm, OPTIONS only)');
    }
    this.head = new RequestHead(r);
    this.requestShown = escapeForLog(line, 0, end, 120);
    if (this.emptyLines === 0) this.kept = [line];
    else this.kept.push(line);
    this.headBytes = 0;
    this.fields = 0;
    this.phase = 'headers';
    return { kind: 'forward', keep: true, maxLineLength: l.maxHeaderBytes };
  }

  /** Grammar and limits of one field line (a header or a trailer); null when it passes. */
  private fieldLine(line: Buffer, end: number): ClientVerdict | Field {
    const l = this.limits;
    this.headBytes += line.length;
    if (this.headBytes > l.maxHeaderBytes) return this.refuse('too_large', 431, `header section longer than ${l.maxHeaderBytes} bytes`);
    if (++this.fields > l.maxHeaders) return this.refuse('too_large', 431, `more than ${l.maxHeaders} fields`);
    const f = parseField(line, end);
    if ('status' in f) return this.refuse('bad_syntax', f.status, f.reason);
    if (l.denyHeaders.length > 0) {
      const text = line.toString('latin1', 0, end);
      for (const m of l.denyHeaders) if (m.test(text)) return this.refuse('denied_by_rule', 403, `field matches denyHeaders pattern /${m.source}/`);
    }
    return f;
  }

  private headerLine(line: Buffer, end: number): ClientVerdict {
    const f = this.fieldLine(line, end);
    if ('kind' in f) return f;
    const fault = this.head!.field(line, f);
    if (fault) return this.refuse(fault.code, fault.status, fault.reason);
    this.kept.push(line);
    return { kind: 'forward', keep: true, maxLineLength: Math.max(1, this.limits.maxHeaderBytes - this.headBytes) };
  }

  /** The empty line: the head is complete. Decide the framing (RFC 9112 section 6), then send the head whole. */
  private headEnd(line: Buffer): ClientVerdict {
    const req = this.head!.line;
    const l = this.limits;
    const fr = this.head!.framing();
    if ('code' in fr) return this.refuse(fr.code, fr.status, fr.reason);
    if (fr.upgrade && !l.allowUpgrade) return this.refuse('not_supported', 501, 'Upgrade refused (allowUpgrade)');
    const chunked = fr.body.kind === 'chunked';
    const length = fr.body.kind === 'length' ? fr.body.length : 0;
    if (l.maxBodySize !== null && length > l.maxBodySize) return this.refuse('too_large', 413, `body larger than maxBodySize (${l.maxBodySize})`);
    const connect = req.method === 'CONNECT';
    const tunnel = connect || fr.upgrade;
    this.responses.expect({ head: req.method === 'HEAD', connect, upgrade: fr.upgrade });
    this.holdWhenDone = tunnel ? 'upgrade' : !fr.persistent ? 'close' : this.responses.outstanding >= MAX_PENDING_RESPONSES ? 'queue' : 'none';
    this.kept.push(line);
    const toServer = this.kept;
    this.kept = [];
    this.head = null;
    this.bodyTotal = 0;
    this.waiting100 = fr.expect100 && (chunked || length > 0);
    if (chunked) {
      this.phase = 'chunk-size';
      return { kind: 'forward', keep: true, toServer, maxLineLength: MAX_CHUNK_LINE };
    }
    if (length > 0) {
      this.phase = 'body';
      this.rawLeft = length;
      // Set now: a release that comes before the body is over cancels the hold (ServerVerdict.release).
      this.holding = this.holdWhenDone;
      return { kind: 'forward', keep: true, toServer, raw: length, holdAfterRaw: this.holdWhenDone !== 'none', maxLineLength: l.maxRequestLine };
    }
    return { ...this.done(), keep: true, toServer };
  }

  private chunkSize(line: Buffer, end: number): ClientVerdict {
    const n = parseChunkSize(line, end);
    // The client is sending the body: no longer waiting for a 100 Continue.
    this.waiting100 = false;
    if (typeof n !== 'number') return this.refuse('smuggling', 400, n.reason);
    const max = this.limits.maxBodySize;
    this.bodyTotal += n;
    if (max !== null && this.bodyTotal > max) return this.refuse('too_large', 413, `body larger than maxBodySize (${max})`);
    if (!Number.isSafeInteger(this.bodyTotal)) return this.refuse('smuggling', 400, 'chunked body overflows');
    if (n === 0) {
      this.phase = 'trailers';
      this.headBytes = 0;
      this.fields = 0;
      this.waiting100 = false;
      return { kind: 'forward', maxLineLength: this.limits.maxHeaderBytes };
    }
    this.phase = 'chunk-data';
    this.rawLeft = n;
    return { kind: 'forward', raw: n };
  }

  private trailer(line: Buffer, end: number): ClientVerdict {
    if (end === 0) return this.done();
    const f = this.fieldLine(line, end);
    if ('kind' in f) return f;
    if (NOT_IN_TRAILERS.has(f.name)) return this.refuse('smuggling', 400, 'framing or routing field in a trailer section');
    return { kind: 'forward', maxLineLength: Math.max(1, this.limits.maxHeaderBytes - this.headBytes) };
  }

  /** The verdict for the line that completes a request: the next line is a request line, or the client waits. */
  private done(): ClientVerdict & { kind: 'forward' } {
    this.requestDone();
    // Decided now: responses may have come while the body was read.
    const h = this.holdWhenDone;
    this.holding = (h === 'queue' && this.responses.outstanding < MAX_PENDING_RESPONSES) || (h === 'upgrade' && this.responses.outstanding === 0) ? 'none' : h;
    return this.holding === 'none' ? { kind: 'forward', maxLineLength: this.limits.maxRequestLine } : { kind: 'forward', maxLineLength: this.limits.maxRequestLine, hold: true };
  }

  private requestDone(): void {
    this.phase = 'request-line';
    this.emptyLines = 0;
    this.headStarted = false;
  }

  private refuse(code: RefusalCode, status: ErrorStatus, reason: string): ClientVerdict {
    // The request a refused field or body line belongs to, for the log (its line is the one shown otherwise).
    const first = this.phase === 'request-line' ? undefined : this.requestShown;
    this.kept = [];
    // A body line of a request the server has answered already: the close says it, a response would answer nothing asked.
    const answered = this.answeredMidBody();
    return { kind: 'refuse', code, reason, ...(answered ? {} : { reply: errorResponse(status) }), close: true, ...(first ? { note: `request="${first}"` } : {}) };
  }

  /** A body is being read for a request whose final response has come (an early 4xx, RFC 9110 section 10.1.1). */
  private answeredMidBody(): boolean {
    return this.phase !== 'request-line' && this.phase !== 'headers' && this.phase !== 'tunnel' && this.responses.outstanding === 0;
  }

  serverData(chunk: Buffer): ServerVerdict {
    if (this.phase === 'tunnel') return { toClient: null };
    const p = this.responses.feed(chunk);
    // A 100, or the final response to the request whose body is announced (RFC 9110 section 10.1.1:
    // the client may still send it): either way the wait is over and minBodyRate holds again.
    if (p.continued || (this.waiting100 && this.responses.outstanding === 0)) this.waiting100 = false;
    if (p.fault) return { toClient: chunk.subarray(0, p.fault.at), close: true, notes: [`server response not framed, connection closed: ${p.fault.reason}`] };
    if (p.tunnel) {
      this.phase = 'tunnel';
      this.holding = 'none';
      return { toClient: null, tunnel: true, release: true, notes: ['connection switched to a raw tunnel by the server'] };
    }
    if (p.completed > 0 && this.release()) {
      this.holding = 'none';
      return { toClient: null, release: true };
    }
    return { toClient: null };
  }

  /** Whether a completed response lets the held client go on. */
  private release(): boolean {
    switch (this.holding) {
      case 'none':
      case 'close':
        return false;
      case 'queue':
        return this.responses.outstanding < MAX_PENDING_RESPONSES;
      case 'upgrade':
        return this.responses.outstanding === 0;
      default: {
        const never: never = this.holding;
        throw new Error(`unknown hold ${String(never)}`);
      }
    }
  }

  clientPhase(): ClientPhase {
    switch (this.phase) {
      case 'request-line':
        if (this.holding !== 'none') return 'busy';
        return this.headStarted ? 'head' : this.responses.outstanding > 0 ? 'busy' : 'idle';
      case 'headers':
        return 'head';
      case 'body':
      case 'chunk-size':
      case 'chunk-data':
      case 'chunk-end':
      case 'trailers':
        return this.waiting100 ? 'busy' : 'body';
      case 'tunnel':
        return 'busy';
      default: {
        const never: never = this.phase;
        throw new Error(`unknown HTTP state ${String(never)}`);
      }
    }
  }

  reply(kind: WrapperReply): Buffer | undefined {
    // An idle keep-alive connection is closed without a word (RFC 9112 section 9.6): an
    // unasked response would be read as the answer to the client's next request.
    if (kind !== 'unavailable' && this.clientPhase() === 'idle') return undefined;
    // Nor when the request whose body is being read has had its final response already (a 4xx
    // instead of a 100 Continue, RFC 9110 section 10.1.1): a 408 now would answer nothing asked.
    if (this.answeredMidBody()) return undefined;
    return errorResponse(WRAPPER_REPLIES[kind]);
  }
}
