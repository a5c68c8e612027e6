import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CliInfo, parseCli, parsesOnQuickTable, protocolKeys } from '../../src/cli.js';
import { CORE_OPTIONS } from '../../src/config.js';
import { flagName, type OptionSpec } from '../../src/core/options.js';
import { UsageError } from '../../src/errors.js';

/**
 * parseCli builds commander's table with only the flags argv names (an inetd
 * start pays for 150-odd addOption calls otherwise) and falls back to the
 * full table for anything but a clean parse. The outcome must be the same
 * as on the full table for every command line: same options, same error
 * text, same help.
 */

function outcome(argv: string[], table: 'quick' | 'full'): unknown {
  try {
    return { ok: parseCli(argv, table) };
  } catch (e) {
    if (e instanceof CliInfo) return { info: e.text };
    if (e instanceof UsageError) return { usage: e.message };
    throw e;
  }
}

const specs: [string, OptionSpec][] = [...Object.entries(CORE_OPTIONS), ...[...protocolKeys()].map(([k, v]) => [k, v.spec] as [string, OptionSpec])];
const longFlags = specs.flatMap(([k, s]) => (s.kind === 'boolean' ? [`--${flagName(k)}`, `--no-${flagName(k)}`] : [`--${flagName(k)}`]));
const hand = ['-p', '--protocol', '-c', '--connect', '-e', '--exec', '-l', '--listen', '-f', '--config', '--service', '--allow', '--deny', '--log-level', '--check', '--log-stderr', '-V'];
const values = ['smtp', 'pop3', 'generic', '5', '-1', 'x', '127.0.0.1:25', '--exec', '', 'a=b', 'unix:/tmp/s'];
const token = fc.oneof(
  fc.constantFrom(...longFlags),
  fc.constantFrom(...hand),
  fc.constantFrom(...values),
  fc.constantFrom(...longFlags).map((f) => `${f}=7`),
  fc.constantFrom('--max-line-lenght', '--nope', '--no-such', '--', '-x', '-pe', '--help', '-h'),
);

describe('the quick table parses as the full one', () => {
  it('for random command lines of known and unknown flags and values', () => {
    let clean = 0;
    fc.assert(
      fc.property(fc.array(token, { maxLength: 8 }), (argv) => {
        const quick = outcome(argv, 'quick');
        expect(quick).toEqual(outcome(argv, 'full'));
        if (quick && typeof quick === 'object' && 'ok' in quick && parsesOnQuickTable(argv)) clean++;
      }),
      { numRuns: 400 },
    );
    // Not only the fallback: many of the lines parse cleanly on the quick table.
    expect(clean).toBeGreaterThan(40);
  });

  it('for the inetd lines the examples use', () => {
    for (const argv of [
      ['--protocol', 'smtp', '--exec', '/usr/sbin/sendmail -bs', '--max-login-attempts', '3'],
      ['-p', 'pop3', '-c', '127.0.0.1:110', '--block-addr-list', '10.0.0.0/8', '--block-addr-list', '192.168.0.0/16'],
      ['--protocol=generic', '--connect=127.0.0.1:143', '--no-forward-unterminated', '--allow-nul'],
      ['--exec', 'cat'],
    ]) {
      const quick = outcome(argv, 'quick');
      expect(quick).toEqual(outcome(argv, 'full'));
      expect(quick).toHaveProperty('ok');
      expect(parsesOnQuickTable(argv)).toBe(true);
    }
  });

  it('an unknown flag gets the full table\'s suggestion', () => {
    expect(outcome(['--max-line-lenght', '5'], 'quick')).toEqual({ usage: expect.stringContaining('--max-line-length') });
  });
});
