import { describe, expect, it } from 'vitest';
import { buildConfig, parseConnect, parseListen } from '../../src/config.js';
import { splitCommand } from '../../src/core/argv.js';

const exec = { exec: 'cat' };

describe('config', () => {
  it('defaults for the generic protocol', () => {
    const c = buildConfig(null, {}, exec);
    expect(c.protocol.name).toBe('generic');
    expect(c.options.maxLineLength).toBe(1024);
    expect(c.options.lineEnding).toBe('any');
    expect(c.dest).toEqual({ type: 'exec', argv: ['cat'] });
    expect(c.listen).toBeNull();
    expect(c.syslogFacility).toBe('daemon');
    expect(Object.isFrozen(c)).toBe(true);
    expect(Object.isFrozen(c.options)).toBe(true);
    expect(Object.isFrozen(c.dest)).toBe(true);
  });

  it('the seed Listing 1 keys work as written', () => {
    const c = buildConfig(
      { standalone: true, listenPort: 143, destType: 'ip', destAddr: '127.0.0.1', destPort: 10143, maxLineLength: 25, logLevel: 0 },
      {},
      {},
    );
    expect(c.listen).toEqual({ host: null, port: 143 });
    expect(c.dest).toEqual({ type: 'tcp', host: '127.0.0.1', port: 10143 });
    expect(c.options.maxLineLength).toBe(25);
    expect(c.logLevel).toBe(0);
  });

  it('seed pipe destination with quoting, never a shell', () => {
    const c = buildConfig({ destType: 'pipe', pipeCmd: `/usr/sbin/sendmail -bs -f 'a b' "c\\"d"` }, {}, {});
    expect(c.dest).toEqual({ type: 'exec', argv: ['/usr/sbin/sendmail', '-bs', '-f', 'a b', 'c"d'] });
  });

  it('a flag overrides the file, and a flag destination replaces the file one', () => {
    const c = buildConfig({ destType: 'pipe', pipeCmd: 'cat', maxLineLength: 25 }, { maxLineLength: 80 }, { connect: '[::1]:25' });
    expect(c.options.maxLineLength).toBe(80);
    expect(c.dest).toEqual({ type: 'tcp', host: '::1', port: 25 });
  });

  const bad: [string, () => unknown, string, string][] = [
    ['unknown key', () => buildConfig({ maxLineLenght: 5 }, {}, exec), 'PW_ERR_CONFIG_UNKNOWN_KEY', 'maxLineLenght'],
    ['wrong type', () => buildConfig({ maxLineLength: '25' }, {}, exec), 'PW_ERR_CONFIG_TYPE', 'maxLineLength'],
    ['out of range', () => buildConfig({ logLevel: 4 }, {}, exec), 'PW_ERR_CONFIG_VALUE', 'logLevel'],
    ['flag with a non-number', () => buildConfig(null, { maxViolations: 'abc' }, exec), 'PW_ERR_CONFIG_TYPE', 'maxViolations'],
    ['both connect and exec', () => buildConfig(null, {}, { connect: 'a:1', exec: 'cat' }), 'PW_ERR_CONFIG_DEST', '--connect/--exec'],
    ['neither connect nor exec', () => buildConfig(null, {}, {}), 'PW_ERR_CONFIG_DEST', '--connect/--exec'],
    ['bad regex', () => buildConfig({ denyList: ['(x'] }, {}, exec), 'PW_ERR_CONFIG_REGEX', 'denyList'],
    ['backtracking regex', () => buildConfig(null, { allowList: ['(a)\\1'] }, exec), 'PW_ERR_CONFIG_REGEX', 'allowList'],
    ['unknown protocol', () => buildConfig({ protocol: 'gopher' }, {}, exec), 'PW_ERR_CONFIG_VALUE', 'protocol'],
    ['ip without port', () => buildConfig({ destType: 'ip', destAddr: 'x' }, {}, {}), 'PW_ERR_CONFIG_DEST', 'destPort'],
    ['pipe without command', () => buildConfig({ destType: 'pipe' }, {}, {}), 'PW_ERR_CONFIG_DEST', 'pipeCmd'],
    ['standalone without port', () => buildConfig({ standalone: true }, {}, exec), 'PW_ERR_CONFIG_VALUE', 'listenPort'],
    ['unterminated quote', () => buildConfig(null, {}, { exec: "sh -c 'x" }), 'PW_ERR_CONFIG_DEST', '--exec'],
    ['bad facility', () => buildConfig({ syslogFacility: 'kernel' }, {}, exec), 'PW_ERR_CONFIG_VALUE', 'syslogFacility'],
  ];
  for (const [name, f, code, key] of bad) {
    it(`rejects ${name} with ${code}, naming ${key}`, () => {
      expect(f).toThrow(expect.objectContaining({ code, key, exitCode: 78 }));
    });
  }

  it('parses --connect forms', () => {
    expect(parseConnect('localhost:110')).toEqual({ type: 'tcp', host: 'localhost', port: 110 });
    expect(parseConnect('[::1]:143')).toEqual({ type: 'tcp', host: '::1', port: 143 });
    expect(parseConnect('unix:/run/x.sock')).toEqual({ type: 'unix', path: '/run/x.sock' });
    for (const s of ['::1:143', 'host', 'host:0', 'host:99999', '[zz]:1', 'unix:rel']) expect(() => parseConnect(s)).toThrow();
  });

  it('parses --listen forms', () => {
    expect(parseListen('2525')).toEqual({ host: null, port: 2525 });
    expect(parseListen('127.0.0.1:2525')).toEqual({ host: '127.0.0.1', port: 2525 });
    expect(parseListen('[::1]:2525')).toEqual({ host: '::1', port: 2525 });
    expect(() => parseListen('0')).toThrow();
  });

  it('splits commands like a shell would, without one', () => {
    expect(splitCommand('a  b\tc')).toEqual(['a', 'b', 'c']);
    expect(splitCommand(`x 'a "b' "c 'd" e\\ f`)).toEqual(['x', 'a "b', "c 'd", 'e f']);
    expect(splitCommand("''")).toEqual(['']);
    expect(splitCommand('$HOME; rm -rf /')).toEqual(['$HOME;', 'rm', '-rf', '/']);
    expect(splitCommand('   ')).toBe('empty command');
  });
});
