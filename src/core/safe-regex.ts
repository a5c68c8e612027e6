import { setFlagsFromString } from 'node:v8';
import { ConfigError } from '../errors.js';
import type { LineMatcher } from './protocol.js';

let enabled = false;

/**
 * Regexes from the configuration run on hostile input. Two guards:
 * - every configured pattern is compiled for V8's linear-time engine (the
 *   'l' flag); a pattern that cannot run in linear time (backreferences,
 *   lookaround) is rejected when the configuration is read;
 * - for every other regex, V8 falls back to the linear engine after a bounded
 *   number of backtracks.
 * Called once at start-up, before any configured pattern is compiled.
 */
export function enableLinearRegexps(): void {
  if (enabled) return;
  setFlagsFromString('--enable-experimental-regexp-engine');
  setFlagsFromString('--enable-experimental-regexp-engine-on-excessive-backtracks');
  enabled = true;
}

/**
 * Compiles a configured pattern. A leading `(?i)` (Perl's inline flag) makes
 * it case-insensitive: V8's linear engine has no /i, so the pattern and the
 * subject are both lower-cased instead (escapes such as \S, \W, \D are kept).
 * Subjects are latin1 strings (one char per byte), whose lower-casing keeps
 * their length.
 */
export function compileLinear(key: string, source: string, ignoreCase = false): LineMatcher {
  enableLinearRegexps();
  let pattern = source;
  let ci = ignoreCase;
  if (pattern.startsWith('(?i)')) {
    pattern = pattern.slice(4);
    ci = true;
  }
  if (ci) pattern = lowerPattern(key, pattern);
  let re: RegExp;
  try {
    re = new RegExp(pattern, 'l');
  } catch (err) {
    const why = (err as Error).message.includes('linear time')
      ? 'uses a construct that cannot run in linear time (backreference or lookaround): not allowed on hostile input'
      : `not a valid regular expression: ${(err as Error).message}`;
    throw new ConfigError('PW_ERR_CONFIG_REGEX', key, `${JSON.stringify(source)} ${why}`);
  }
  return ci
    ? { source, test: (text: string) => re.test(text.toLowerCase()) }
    : { source, test: (text: string) => re.test(text) };
}

function lowerPattern(key: string, p: string): string {
  let out = '';
  for (let i = 0; i < p.length; i++) {
    const c = p[i]!;
    if (c === '\\') {
      const next = p[i + 1];
      if (next === 'p' || next === 'P') {
        throw new ConfigError('PW_ERR_CONFIG_REGEX', key, 'Unicode property escapes are not supported in case-insensitive patterns');
      }
      out += c + (next ?? '');
      i++;
      // \xHH, \uHHHH, \cX carry their own operand; keep hex digits as written.
      if (next === 'x' || next === 'u' || next === 'c') {
        const n = next === 'x' ? 2 : next === 'u' ? 4 : 1;
        out += p.slice(i + 1, i + 1 + n);
        i += n;
      }
      continue;
    }
    out += c.toLowerCase();
  }
  return out;
}
