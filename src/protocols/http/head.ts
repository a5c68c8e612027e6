import type { RefusalCode } from '../../core/protocol.js';
import { equalsCI, parseCodings, parseContentLength, tokenList, validHost, type Field, type RequestLine } from './grammar.js';
import type { ErrorStatus } from './replies.js';

/** Fields that decide where a request ends or where it goes. */
const FRAMING_FIELDS: ReadonlySet<string> = new Set(['content-length', 'transfer-encoding', 'host']);

/** Why a head is refused: the refusal code, the HTTP status, a few words for the log. */
export interface HeadFault {
  readonly code: RefusalCode;
  readonly status: ErrorStatus;
  readonly reason: string;
}

/** Where the request's body ends (RFC 9112 section 6.3), and what its head asks of the connection. */
export interface Framing {
  readonly body: { readonly kind: 'chunked' } | { readonly kind: 'length'; readonly length: number };
  /** The connection stays open after this request (Connection: close, HTTP/1.0 without keep-alive). */
  readonly persistent: boolean;
  readonly expect100: boolean;
  readonly upgrade: boolean;
}

/**
 * What one request head says about framing, field by field: the Host count,
 * every Content-Length, the transfer codings of every Transfer-Encoding
 * line, Connection, Expect and Upgrade. Nothing is decided before the head
 * is complete (framing()), because a later field can change the verdict.
 */
export class RequestHead {
  private hosts = 0;
  /** The (last) Host value, lower-cased: an absolute form's authority must be it. */
  private host: string | null = null;
  private readonly lengths: number[] = [];
  private codings: string[] | null = null;
  private close = false;
  private keepAlive = false;
  private upgrade = false;
  private expect100 = false;

  constructor(readonly line: RequestLine) {}

  /** One header field that passed the grammar; a fault when its value already makes the request unframeable. */
  field(b: Buffer, f: Field): HeadFault | null {
    const s = f.valueStart;
    const e = f.valueEnd;
    switch (f.name) {
      case 'host':
        this.hosts++;
        this.host = b.toString('latin1', s, e).toLowerCase();
        return validHost(b, s, e) ? null : { code: 'bad_syntax', status: 400, reason: 'malformed Host' };
      case 'content-length': {
        const n = parseContentLength(b, s, e);
        if (typeof n !== 'number') return { code: 'smuggling', status: 400, reason: n.reason };
        this.lengths.push(n);
        return null;
      }
      case 'transfer-encoding': {
        this.codings ??= [];
        const fault = parseCodings(b, s, e, this.codings);
        return fault ? { code: fault.status === 400 ? 'smuggling' : 'not_supported', status: fault.status === 400 ? 400 : 501, reason: fault.reason } : null;
      }
      case 'connection':
        for (const t of tokenList(b, s, e)) {
          if (t === 'close') this.close = true;
          else if (t === 'keep-alive') this.keepAlive = true;
        }
        return null;
      case 'expect':
        if (equalsCI(b, s, e, '100-continue')) this.expect100 = true;
        return null;
      case 'upgrade':
        this.upgrade = true;
        return null;
      default:
        // Some servers read "_" as "-": Transfer_Encoding would frame the body for them, not for us.
        if (f.name.includes('_') && FRAMING_FIELDS.has(f.name.replaceAll('_', '-'))) return { code: 'smuggling', status: 400, reason: 'framing field name spelt with "_"' };
        return null;
    }
  }

  /** The head is complete: its framing, or why it has none the server and the wrapper would agree on. */
  framing(): Framing | HeadFault {
    const minor = this.line.minor;
    if (minor === 1 ? this.hosts !== 1 : this.hosts > 1) return { code: 'bad_syntax', status: 400, reason: this.hosts === 0 ? 'HTTP/1.1 request without Host' : 'more than one Host' };
    const authority = this.line.authority;
    // RFC 9110 section 7.2: Host is the target's authority, userinfo excluded (section 4.2.4: userinfo is an error).
    // A server routes an absolute form by its authority and ignores Host: a rule on Host would judge another request.
    if (authority !== null && (authority.includes('@') || (this.host !== null && this.host !== authority))) {
      return { code: 'bad_syntax', status: 400, reason: authority.includes('@') ? 'userinfo in an absolute-form target' : 'Host differs from the absolute-form target' };
    }
    let chunked = false;
    if (this.codings) {
      if (minor === 0) return { code: 'smuggling', status: 400, reason: 'Transfer-Encoding in an HTTP/1.0 request' };
      if (this.lengths.length > 0) return { code: 'smuggling', status: 400, reason: 'both Transfer-Encoding and Content-Length' };
      const c = this.codings;
      if (c[c.length - 1] !== 'chunked' || c.indexOf('chunked') !== c.length - 1) return { code: 'smuggling', status: 400, reason: 'chunked is not the last coding, or is there twice' };
      chunked = true;
    }
    if (this.lengths.length > 1) return { code: 'smuggling', status: 400, reason: 'more than one Content-Length' };
    return {
      body: chunked ? { kind: 'chunked' } : { kind: 'length', length: this.lengths[0] ?? 0 },
      persistent: !this.close && (minor === 1 || this.keepAlive),
      expect100: this.expect100,
      upgrade: this.upgrade,
    };
  }
}
