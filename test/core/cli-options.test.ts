import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CliInfo, parseCli, protocolKeys } from '../../src/cli.js';
import { buildConfig, CORE_OPTIONS } from '../../src/config.js';
import { flagName, type OptionSpec } from '../../src/core/options.js';
import { ProtowrapError } from '../../src/errors.js';
import { findProtocol, protocolNames } from '../../src/protocols/index.js';

/**
 * Every configuration key, core and protocol, is also a flag generated from
 * the option tables (issue 12 item 1): it parses, it has a --help line, and
 * the README documents it. A key added to a table without those fails here.
 */

const README = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');

function helpText(argv: string[]): string {
  try {
    parseCli([...argv, '--help']);
  } catch (e) {
    if (e instanceof CliInfo) return e.text;
    throw e;
  }
  throw new Error('--help did not print');
}

/** A value of the right kind for the key, as it would be written on the command line. */
function sample(spec: OptionSpec): { argv: string[]; value: unknown } {
  switch (spec.kind) {
    case 'integer':
      return { argv: [String(spec.min)], value: spec.min };
    case 'string':
      return { argv: [spec.oneOf ? spec.oneOf[0]! : 'x'], value: spec.oneOf ? spec.oneOf[0]! : 'x' };
    case 'stringList':
      return { argv: ['a'], value: ['a'] };
    case 'boolean':
      return { argv: [], value: true };
  }
}

const allKeys: [string, OptionSpec, string | null][] = [
  ...Object.entries(CORE_OPTIONS).map(([k, s]) => [k, s, null] as [string, OptionSpec, null]),
  ...[...protocolKeys()].map(([k, e]) => [k, e.spec, e.owners[0]!] as [string, OptionSpec, string]),
];

describe('every key is a flag', () => {
  it.each(allKeys)('%s: its kebab-case flag sets the key', (key, spec, owner) => {
    const s = key === 'protocol' ? { argv: ['generic'], value: 'generic' } : sample(spec);
    const argv = [...(owner ? ['--protocol', owner] : []), `--${flagName(key)}`, ...s.argv];
    const r = parseCli(argv);
    expect(r.flags[key]).toEqual(s.value);
  });

  it.each(allKeys)('%s: listed by --help (a protocol key with that --protocol) and documented in the README', (key, _spec, owner) => {
    const text = helpText(owner ? ['--protocol', owner] : []);
    expect(text).toContain(`--${flagName(key)}`);
    expect(README).toContain(`\`${key}\``);
  });

  it('booleans have a --no- form; list flags repeat', () => {
    expect(parseCli(['-p', 'smtp', '--relay-strict']).flags['relayStrict']).toBe(true);
    expect(parseCli(['-p', 'smtp', '--no-relay-strict']).flags['relayStrict']).toBe(false);
    expect(parseCli(['-p', 'smtp', '--block-addr-list', '@spammer.org', '--block-addr-list', 'hahaha@sexyfun.net']).flags['blockAddrList']).toEqual([
      '@spammer.org',
      'hahaha@sexyfun.net',
    ]);
    expect(parseCli(['--allow', 'a', '--allow-list', 'b']).flags['allowList']).toEqual(['a', 'b']);
  });

  it('a flag overrides the file key', () => {
    const r = parseCli(['--max-login-attempts', '5']);
    const c = buildConfig({ protocol: 'pop3', maxLoginAttempts: 2 }, r.flags, { connect: '127.0.0.1:110' });
    expect(c.options.extra['maxLoginAttempts']).toBe(5);
  });

  it("a protocol's flag with another protocol is a usage error (64) naming the flag and its protocol", () => {
    const r = parseCli(['-p', 'smtp', '--max-auth-line-length', '300']);
    let err: unknown;
    try {
      buildConfig(null, r.flags, { connect: '127.0.0.1:25' });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ProtowrapError);
    expect((err as ProtowrapError).exitCode).toBe(64);
    expect((err as ProtowrapError).message).toMatch(/--max-auth-line-length .*pop3.*smtp/);
  });

  it('plain --help shows the core keys and says how to see a protocol\'s; --protocol X --help shows X\'s keys only', () => {
    const plain = helpText([]);
    expect(plain).toContain('--protocol <name> --help');
    expect(plain).not.toContain('--block-addr-list');
    const smtp = helpText(['--protocol', 'smtp']);
    expect(smtp).toContain('--block-addr-list');
    expect(smtp).toMatch(/--max-rcpt <n>[^]*default: 0/);
    expect(smtp).not.toContain('--max-literal-size');
    for (const p of protocolNames()) for (const k of Object.keys(findProtocol(p)!.options ?? {})) expect(helpText(['-p', p])).toContain(`--${flagName(k)}`);
  });
});
