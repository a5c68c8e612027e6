import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parseCli, CliInfo } from '../../src/cli.js';
import { buildConfig } from '../../src/config.js';

const exec = { exec: 'cat' };

/**
 * A protocol's own idle default (Protocol.defaultIdleTimeout: finger and
 * ident 60 s) applies only when neither the file nor a flag sets
 * idleTimeout; every other protocol keeps the core's 600 s.
 */
describe('idle timeout: the protocol default, then the configuration', () => {
  it.each([
    ['generic', 600],
    ['pop3', 600],
    ['imap', 600],
    ['smtp', 600],
    ['finger', 60],
    ['ident', 60],
  ])('%s: %d s when nothing sets it', (protocol, seconds) => {
    expect(buildConfig(null, { protocol }, exec).idleTimeoutMs).toBe(seconds * 1000);
  });

  it('a flag or a file key wins over the protocol default, also when it names the core default', () => {
    expect(buildConfig(null, { protocol: 'ident', idleTimeout: 600 }, exec).idleTimeoutMs).toBe(600_000);
    expect(buildConfig({ protocol: 'ident', idleTimeout: 5 }, {}, exec).idleTimeoutMs).toBe(5000);
    expect(buildConfig({ protocol: 'ident', idleTimeout: 5 }, { idleTimeout: 7 }, exec).idleTimeoutMs).toBe(7000);
    expect(buildConfig({ protocol: 'generic', idleTimeout: 30 }, {}, exec).idleTimeoutMs).toBe(30_000);
  });

  it('--help names the protocols with their own default', () => {
    let text = '';
    try {
      parseCli(['--help']);
    } catch (e) {
      if (e instanceof CliInfo) text = e.text;
    }
    expect(text).toMatch(/--idle-timeout <s>\s+seconds without traffic before closing \(600; finger 60; ident 60\)/);
  });

  it('the man page names them too', () => {
    const page = fileURLToPath(new URL('../../dist/protowrap.8', import.meta.url));
    const r = spawnSync(process.execPath, [fileURLToPath(new URL('../../build/manpage.mjs', import.meta.url))], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    expect(readFileSync(page, 'utf8')).toMatch(/config key \\fBidleTimeout\\fR; default: 600, finger 60, ident 60;/);
  });
});
