import { CR, LF } from '../../core/bytes.js';
import type { LineEnding } from '../../core/framer.js';
import type { ClientVerdict, ProtocolOptions, ProtocolSession, RefusalCode, ServerVerdict } from '../../core/protocol.js';
import { checkLine } from '../generic.js';
import { checkReply, parseQuery, type PortPair } from './grammar.js';

/**
 * 'query': a query may come; 'reply': one went to the server and its reply
 * line is awaited (the client is held: ident is one query, one reply);
 * 'done': maxQueries are used up.
 */
export type IdentState = 'query' | 'reply' | 'done';

export interface IdentLimits {
  /** Queries per connection (RFC 1413 lets a server take several; most take one). */
  readonly maxQueries: number;
  /** Bytes of one reply line, CRLF excluded; RFC 1413 note 2 lets a client give up after 1000. */
  readonly maxReplyLineLength: number;
}

const NO_QUERY: PortPair = Object.freeze({ server: 0, client: 0 });
const errorReply = (p: PortPair, type: string): Buffer => Buffer.from(`${p.server} , ${p.client} : ERROR : ${type}\r\n`);

/**
 * One ident connection (RFC 1413). A query is `<port> , <port>` and nothing
 * else; a bad one is answered `ERROR : INVALID-PORT` by the wrapper and never
 * reaches the server. The server's reply line must follow the RFC's grammar
 * and name the query's port pair; a reply that does not (or that runs past
 * maxReplyLineLength, or comes unasked) is never relayed: the client gets
 * `<ports> : ERROR : UNKNOWN-ERROR` instead (the RFC's answer for "cannot
 * say", so the connection is attributed to nobody) and the session closes.
 */
export class IdentSession implements ProtocolSession {
  /** Awaiting a reply, or not; 'done' is derived (see state). */
  private phase: 'query' | 'reply' = 'query';
  private queries = 0;
  /** The query whose reply is awaited. */
  private pending: PortPair | null = null;
  /** The reply line so far, when it spans chunks (bounded by maxReplyLineLength). */
  private parts: Buffer[] = [];
  private partLen = 0;
  /** A reply was refused: nothing more of the server reaches the client. */
  private broken = false;
  private readonly strict: ProtocolOptions;

  constructor(
    options: ProtocolOptions,
    private readonly limits: IdentLimits,
  ) {
    this.strict = { ...options, allowNul: false, allowBareCr: false, forwardUnterminated: false };
  }

  get state(): IdentState {
    return this.phase === 'query' && this.queries >= this.limits.maxQueries ? 'done' : this.phase;
  }

  clientLine(line: Buffer, contentEnd: number, ending: LineEnding): ClientVerdict {
    if (this.state !== 'query') return this.tooMany();
    this.queries++;
    const bad = checkLine(this.strict, line, contentEnd, ending);
    if (bad?.kind === 'refuse') return this.refuseQuery(bad.code, bad.reason, NO_QUERY);
    const q = parseQuery(line, contentEnd);
    if (!q.ok) return this.refuseQuery(q.kind === 'range' ? 'bad_argument' : 'bad_syntax', q.reason, q.shown);
    this.pending = q.ports;
    this.phase = 'reply';
    return { kind: 'forward', hold: true };
  }

  clientOverlong(): ClientVerdict {
    if (this.state !== 'query') return this.tooMany();
    this.queries++;
    return this.refuseQuery('line_too_long', `query longer than ${this.strict.maxLineLength} bytes`, NO_QUERY);
  }

  serverData(chunk: Buffer): ServerVerdict {
    if (this.broken) return { toClient: [] };
    const out: Buffer[] = [];
    let release = false;
    let pos = 0;
    while (pos < chunk.length) {
      const asked = this.pending;
      if (!asked) return this.fail(out, 'server bytes with no query outstanding', null);
      const lf = chunk.indexOf(LF, pos);
      if (lf < 0) {
        // Content and its CR may be maxReplyLineLength + 1 bytes before the LF comes.
        if (this.partLen + chunk.length - pos > this.limits.maxReplyLineLength + 1) {
          return this.fail(out, `reply line longer than ${this.limits.maxReplyLineLength} bytes`, asked);
        }
        this.parts.push(chunk.subarray(pos));
        this.partLen += chunk.length - pos;
        break;
      }
      const piece = chunk.subarray(pos, lf + 1);
      const line = this.partLen === 0 ? piece : Buffer.concat([...this.parts, piece]);
      this.parts = [];
      this.partLen = 0;
      pos = lf + 1;
      const why = this.judge(line, asked);
      if (why) return this.fail(out, why, asked);
      out.push(line);
      this.pending = null;
      this.phase = 'query';
      release = true;
    }
    // The chunk was exactly one good reply: it goes as it came.
    const one = out.length === 1 ? out[0]! : null;
    const toClient = one && one.buffer === chunk.buffer && one.byteOffset === chunk.byteOffset && one.length === chunk.length ? null : out;
    return { toClient, ...(release ? { release } : {}) };
  }

  serverEnd(): readonly Buffer[] | null {
    // A reply cut off before its CRLF: the RFC reads that as UNKNOWN-ERROR; say it in full.
    if (this.broken || this.partLen === 0 || !this.pending) return null;
    const p = this.pending;
    this.pending = null;
    this.parts = [];
    this.partLen = 0;
    return [errorReply(p, 'UNKNOWN-ERROR')];
  }

  reply(): undefined {
    // No port pair to answer with: a close without a reply means UNKNOWN-ERROR (RFC 1413).
    return undefined;
  }

  /** Why a complete reply line (with its LF) is refused, or null. */
  private judge(line: Buffer, asked: PortPair): string | null {
    const n = line.length;
    if (n < 2 || line[n - 2] !== CR) return 'reply line ended with a bare LF';
    if (n - 2 > this.limits.maxReplyLineLength) return `reply line longer than ${this.limits.maxReplyLineLength} bytes`;
    const why = checkReply(line, n - 2, asked);
    return why === null ? null : `reply ${why}`;
  }

  /** A bad reply: the valid ones before it go out, then UNKNOWN-ERROR for the query (if any), then the close. */
  private fail(out: Buffer[], why: string, asked: PortPair | null): ServerVerdict {
    this.broken = true;
    this.pending = null;
    this.parts = [];
    this.partLen = 0;
    if (asked) out.push(errorReply(asked, 'UNKNOWN-ERROR'));
    const note = asked ? `server reply replaced by UNKNOWN-ERROR: ${why}` : `server bytes dropped: ${why}`;
    return { toClient: out, close: true, closeWhy: asked ? 'server reply refused' : 'server bytes nobody asked for', notes: [note] };
  }

  private refuseQuery(code: RefusalCode, reason: string, shown: PortPair): ClientVerdict {
    const last = this.queries >= this.limits.maxQueries;
    return { kind: 'refuse', code, reason, reply: errorReply(shown, 'INVALID-PORT'), ...(last ? { close: true } : {}) };
  }

  private tooMany(): ClientVerdict {
    // A held client sends no line while a reply is awaited; should one come, it is out of turn.
    if (this.phase === 'reply') return { kind: 'refuse', code: 'bad_state', reason: 'query before the last reply', close: true };
    return { kind: 'refuse', code: 'too_many_queries', reason: `more than ${this.limits.maxQueries} queries (maxQueries)`, close: true };
  }
}
