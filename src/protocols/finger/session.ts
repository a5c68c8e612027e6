import type { LineEnding } from '../../core/framer.js';
import type { ClientVerdict, ProtocolOptions, ProtocolSession, RefusalCode, ServerVerdict, WrapperReply } from '../../core/protocol.js';
import { checkLine } from '../generic.js';
import { isProblem, parseQuery } from './query.js';
import { FingerReplyFilter } from './reply-filter.js';

/**
 * 'query': waiting for the one query line; 'reply': the query went to the
 * server, whose answer is relayed (filtered) until it closes.
 */
export type FingerState = 'query' | 'reply';

/**
 * Finger has no error syntax (RFC 1288): a refused query is answered with
 * one line of text, as fingerd itself answers what it refuses, and the
 * connection is closed.
 */
export const ANSWERS = {
  forwarding: Buffer.from('finger: forwarding service denied\r\n'),
  user_list: Buffer.from('finger: user list denied\r\n'),
  refused: Buffer.from('finger: query refused\r\n'),
  unavailable: Buffer.from('finger: service unavailable\r\n'),
} as const;

export interface FingerLimits {
  /** The empty query (and /W alone) lists the users logged in; false refuses it (fingerd -u). */
  readonly allowUserList: boolean;
  /** Bytes of the server's reply relayed; past them the session is closed. */
  readonly maxReplyBytes: number;
}

/**
 * One finger connection: one query (RFC 1288 section 2.3), judged by
 * parseQuery(); the server's reply filtered on its way back. A line after
 * the query is refused without an answer (the server reads one line; text
 * of ours would land inside its reply).
 */
export class FingerSession implements ProtocolSession {
  private phase: FingerState = 'query';
  private readonly strict: ProtocolOptions;
  private readonly filter: FingerReplyFilter;

  constructor(
    private readonly options: ProtocolOptions,
    private readonly limits: FingerLimits,
  ) {
    // No NUL, no bare CR, and no query without its line ending at EOF; the ending itself as configured (CRLF by default).
    this.strict = { ...options, allowNul: false, allowBareCr: false, forwardUnterminated: false };
    this.filter = new FingerReplyFilter(limits.maxReplyBytes);
  }

  get state(): FingerState {
    return this.phase;
  }

  clientLine(line: Buffer, contentEnd: number, ending: LineEnding): ClientVerdict {
    if (this.phase === 'reply') return afterQuery();
    const bad = checkLine(this.strict, line, contentEnd, ending);
    if (bad?.kind === 'refuse') return refuse(bad.code, bad.reason, ANSWERS.refused);
    const q = parseQuery(line, contentEnd);
    if (isProblem(q)) return refuse(q.code, q.reason, ANSWERS[q.answer]);
    if (q.user === null && !this.limits.allowUserList) {
      return refuse('user_list', `${q.verbose ? '/W with no user' : 'empty query'}: user list (allowUserList = false)`, ANSWERS.user_list);
    }
    this.phase = 'reply';
    return FORWARD;
  }

  clientOverlong(): ClientVerdict {
    if (this.phase === 'reply') return afterQuery();
    return refuse('line_too_long', `query longer than ${this.options.maxLineLength} bytes`, ANSWERS.refused);
  }

  serverData(chunk: Buffer): ServerVerdict {
    const { out, full } = this.filter.feed(chunk);
    const toClient = out === chunk ? null : out;
    if (!full) return { toClient };
    return { toClient, close: true, closeWhy: 'server reply past maxReplyBytes', notes: [`reply cut at ${this.limits.maxReplyBytes} bytes (maxReplyBytes)`] };
  }

  serverEnd(): readonly Buffer[] | null {
    const tail = this.filter.end();
    return tail ? [tail] : null;
  }

  reply(kind: WrapperReply): Buffer | undefined {
    switch (kind) {
      case 'unavailable':
        return ANSWERS.unavailable;
      case 'timeout':
      case 'too_many_violations':
      case 'shutdown':
        // Said after the query, a line of ours would read as the end of the server's reply: the close says it.
        return undefined;
      default: {
        const never: never = kind;
        throw new Error(`unknown reply ${String(never)}`);
      }
    }
  }
}

const FORWARD: ClientVerdict = Object.freeze({ kind: 'forward' });

/** The one query is gone: the server reads no more, and the client gets no answer to this. */
function afterQuery(): ClientVerdict {
  return { kind: 'refuse', code: 'bad_state', reason: 'one query per connection' };
}

function refuse(code: RefusalCode, reason: string, reply: Buffer): ClientVerdict {
  return { kind: 'refuse', code, reason, reply, close: true };
}
