import { findNulOrBareCr } from '../core/bytes.js';
import type { LineEnding } from '../core/framer.js';
import type { ClientVerdict, Protocol, ProtocolOptions, ProtocolSession } from '../core/protocol.js';

const FORWARD: ClientVerdict = Object.freeze({ kind: 'forward' });

/**
 * The checks every protocol starts with (seed Listing 1): the length limit
 * (enforced by the framer), NUL and bare CR, the line-ending policy and the
 * configured allow/deny patterns. Returns null when the line passes.
 */
export function checkLine(o: ProtocolOptions, line: Buffer, contentEnd: number, ending: LineEnding): ClientVerdict | null {
  if (ending === 'none' && !o.forwardUnterminated) {
    return { kind: 'refuse', code: 'unterminated', reason: 'input ended inside a line' };
  }
  if (ending === 'lf' && o.lineEnding === 'crlf') {
    return { kind: 'refuse', code: 'bare_lf', reason: 'line ended with a bare LF, CRLF required' };
  }
  if (ending === 'crlf' && o.lineEnding === 'lf') {
    return { kind: 'refuse', code: 'bare_cr', reason: 'line ended with CRLF, LF required' };
  }
  if (!o.allowNul || !o.allowBareCr) {
    const { nul, cr } = findNulOrBareCr(line, 0, contentEnd);
    if (nul >= 0 && !o.allowNul) return { kind: 'refuse', code: 'nul_byte', reason: `NUL byte at offset ${nul}` };
    if (cr >= 0 && !o.allowBareCr) return { kind: 'refuse', code: 'bare_cr', reason: `bare CR at offset ${cr}` };
  }
  if (o.deny.length > 0 || o.allow.length > 0) {
    // latin1 keeps one char per byte, so a pattern sees the bytes as they are.
    const text = line.toString('latin1', 0, contentEnd);
    for (const m of o.deny) {
      if (m.test(text)) return { kind: 'refuse', code: 'denied_by_rule', reason: `matches deny pattern /${m.source}/` };
    }
    if (o.allow.length > 0 && !o.allow.some((m) => m.test(text))) {
      return { kind: 'refuse', code: 'not_allowed_by_rule', reason: 'matches no allow pattern' };
    }
  }
  return null;
}

class GenericSession implements ProtocolSession {
  readonly state = 'relay';
  constructor(private readonly options: ProtocolOptions) {}

  clientLine(line: Buffer, contentEnd: number, ending: LineEnding): ClientVerdict {
    return checkLine(this.options, line, contentEnd, ending) ?? FORWARD;
  }

  clientOverlong(): ClientVerdict {
    return { kind: 'refuse', code: 'line_too_long', reason: `line longer than ${this.options.maxLineLength} bytes` };
  }

  reply(): undefined {
    // An unknown protocol has no error reply the client would understand.
    return undefined;
  }
}

/** Any line protocol, protected by limits alone. Server bytes pass untouched. */
export const generic: Protocol = {
  name: 'generic',
  summary: 'any line protocol: line length, NUL/bare CR, allow/deny patterns',
  defaultMaxLineLength: 1024,
  createSession: (_ctx, options) => new GenericSession(options),
};
