import { describe, expect, it } from 'vitest';
import { compileLinear, enableLinearRegexps } from '../../src/core/safe-regex.js';

describe('configured regexes run in linear time', () => {
  it('a catastrophic pattern on a long hostile line returns at once', () => {
    const m = compileLinear('denyList', '^(a+)+$');
    const hostile = 'a'.repeat(100_000) + 'b';
    const t = process.hrtime.bigint();
    expect(m.test(hostile)).toBe(false);
    // Not a timing assertion on speed: a backtracking engine would not return for ages
    // (2^100000 steps); this only proves the call came back.
    expect(process.hrtime.bigint() - t).toBeGreaterThan(0n);
  });

  it('case-insensitive (?i) patterns also avoid the backtracking engine', () => {
    const m = compileLinear('denyList', '(?i)^(A+)+$');
    expect(m.test('a'.repeat(50_000) + 'b')).toBe(false);
    expect(m.test('aAaA')).toBe(true);
  });

  it('(?i) keeps escapes: \\S and \\D are not lower-cased', () => {
    const m = compileLinear('denyList', '(?i)^X\\S+\\D$');
    expect(m.test('xyz!')).toBe(true);
    expect(m.test('x 1')).toBe(false);
  });

  it('the seed attachment pattern, case-insensitive', () => {
    const m = compileLinear('blockBodyList', '(?i)^Content-Type: application.+\\.(PIF|EXE|VBS|COM|BAT|LNK|SCR)"');
    expect(m.test('content-type: application/octet-stream; name="x.exe"')).toBe(true);
    expect(m.test('Content-Type: text/plain; name="x.txt"')).toBe(false);
  });

  it('backreferences and lookaround are refused with PW_ERR_CONFIG_REGEX naming the key', () => {
    for (const p of ['(a)\\1', '(?=a)b', '(?<!x)y']) {
      expect(() => compileLinear('denyList', p)).toThrow(expect.objectContaining({ code: 'PW_ERR_CONFIG_REGEX', key: 'denyList' }));
    }
  });

  it('an invalid pattern is refused with PW_ERR_CONFIG_REGEX', () => {
    expect(() => compileLinear('allowList', '(unclosed')).toThrow(expect.objectContaining({ code: 'PW_ERR_CONFIG_REGEX' }));
  });

  it('the fallback flag protects other regexes too', () => {
    enableLinearRegexps();
    const re = new RegExp('^(b+)+$');
    expect(re.test('b'.repeat(40) + 'c')).toBe(false);
  });
});
