import { describe, expect, it } from 'vitest';
import { buildConfig } from '../../src/config.js';
import type { ClientVerdict } from '../../src/core/protocol.js';
import { generic } from '../../src/protocols/generic.js';

function judge(line: string, flags: Record<string, unknown> = {}): ClientVerdict {
  const cfg = buildConfig(null, flags, { exec: 'cat' });
  const s = generic.createSession({ clientAddress: '192.0.2.1', maxLineLength: cfg.options.maxLineLength }, cfg.options);
  const b = Buffer.from(line, 'latin1');
  const ending = line.endsWith('\r\n') ? 'crlf' : line.endsWith('\n') ? 'lf' : 'none';
  const contentEnd = b.length - (ending === 'crlf' ? 2 : ending === 'lf' ? 1 : 0);
  return s.clientLine(b, contentEnd, ending);
}

const table: [string, string, Record<string, unknown>, string][] = [
  ['plain CRLF line', 'hello\r\n', {}, 'forward'],
  ['plain LF line', 'hello\n', {}, 'forward'],
  ['NUL', 'he\0llo\r\n', {}, 'nul_byte'],
  ['NUL allowed by leniency', 'he\0llo\r\n', { allowNul: true }, 'forward'],
  ['bare CR', 'he\rllo\r\n', {}, 'bare_cr'],
  ['bare CR allowed by leniency', 'he\rllo\r\n', { allowBareCr: true }, 'forward'],
  ['LF when CRLF is required', 'hello\n', { lineEnding: 'crlf' }, 'bare_lf'],
  ['CRLF when LF is required', 'hello\r\n', { lineEnding: 'lf' }, 'bare_cr'],
  ['deny pattern', 'DELETE all\r\n', { denyList: ['^DELETE'] }, 'denied_by_rule'],
  ['deny pattern, no match', 'GET x\r\n', { denyList: ['^DELETE'] }, 'forward'],
  ['allow pattern missed', 'DELETE all\r\n', { allowList: ['^(GET|HEAD) '] }, 'not_allowed_by_rule'],
  ['allow pattern hit', 'GET /\r\n', { allowList: ['^(GET|HEAD) '] }, 'forward'],
  ['deny sees bytes, not the line ending', 'x$\r\n', { denyList: ['\\$$'] }, 'denied_by_rule'],
  ['unterminated tail forwarded by default', 'tail', {}, 'forward'],
  ['unterminated tail refused when asked', 'tail', { forwardUnterminated: false }, 'unterminated'],
  ['latin1 bytes reach patterns unchanged', 'caf\xe9\r\n', { denyList: ['\\xe9'] }, 'denied_by_rule'],
];

describe('generic protocol verdicts', () => {
  for (const [name, line, flags, want] of table) {
    it(name, () => {
      const v = judge(line, flags);
      expect(v.kind === 'forward' ? 'forward' : v.code).toBe(want);
    });
  }

  it('an overlong line is refused with line_too_long and no reply', () => {
    const cfg = buildConfig(null, {}, { exec: 'cat' });
    const s = generic.createSession({ clientAddress: 'x', maxLineLength: 1024 }, cfg.options);
    expect(s.clientOverlong()).toMatchObject({ kind: 'refuse', code: 'line_too_long' });
    expect(s.reply('unavailable')).toBeUndefined();
  });
});
