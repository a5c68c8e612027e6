import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { freePort, runPiped, WRAPPER } from '../helpers/wrapper.js';

function run(args: string[], input = '') {
  return spawnSync(process.execPath, [WRAPPER, ...args], { input, encoding: 'latin1', timeout: 15_000 });
}

describe('exit codes and messages', () => {
  it('server unreachable over TCP: exit 69, nothing sent to the client, the reason logged', async () => {
    const port = await freePort();
    const r = await runPiped(['--connect', `127.0.0.1:${port}`], 'hello\r\n');
    expect(r.code).toBe(69);
    expect(r.stdout.length).toBe(0);
    expect(r.stderr).toMatch(/server unavailable client=stdin protocol=generic server=tcp:127\.0\.0\.1:\d+ session=[0-9a-f]{12}: .*ECONNREFUSED/);
  });

  it('server command that cannot start: exit 69', async () => {
    const r = await runPiped(['--exec', '/nonexistent/server -x'], 'hello\r\n');
    expect(r.code).toBe(69);
    expect(r.stderr).toMatch(/ENOENT/);
  });

  it('unix socket that does not exist: exit 69', async () => {
    const r = await runPiped(['--connect', 'unix:/nonexistent/sock'], '');
    expect(r.code).toBe(69);
  });

  it('bad usage exits 64 with one line', () => {
    const r = run(['--no-such-flag']);
    expect(r.status).toBe(64);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/unknown option/);
  });

  it('config errors exit 78 with one line naming the key', () => {
    const dir = mkdtempSync(join(tmpdir(), 'pw-cfg-'));
    const file = join(dir, 'c.toml');
    const cases: [string, string[], RegExp][] = [
      ['maxLineLenght = 5\ndestType = "pipe"\npipeCmd = "cat"\n', [], /maxLineLenght: unknown key/],
      ['maxLineLength = "x"\ndestType = "pipe"\npipeCmd = "cat"\n', [], /maxLineLength: expected an integer/],
      ['destType = "pipe"\npipeCmd = "cat"\n', ['--connect', 'a:1'], /^$/],
      ['', [], /--connect\/--exec: no server given/],
      ['', ['--connect', 'a:1', '--exec', 'cat'], /not both/],
      ['', ['--exec', 'cat', '--deny', '(a)\\1'], /denyList: .*linear time/],
      ['this is not toml', [], /not valid TOML/],
    ];
    for (const [text, args, re] of cases) {
      writeFileSync(file, text);
      const r = run(['-f', file, '--check', ...args]);
      if (re.source === '^$') {
        expect(r.status).toBe(0);
        expect(r.stdout).toMatch(/server +tcp:a:1/);
        continue;
      }
      expect(r.status, text).toBe(78);
      expect(r.stderr.trim().split('\n'), text).toHaveLength(1);
      expect(r.stderr).toMatch(re);
    }
  });

  it('--check prints the resolved configuration and exits 0', () => {
    const r = run(['--check', '--exec', 'cat -n', '--max-line-length', '80', '--deny', '^X']);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/protocol +generic/);
    expect(r.stdout).toMatch(/server +exec:cat -n +argv=\["cat","-n"\]/);
    expect(r.stdout).toMatch(/maxLineLength +80/);
    expect(r.stdout).toMatch(/denyList +\["\^X"\]/);
  });

  it('--version and --help exit 0', () => {
    expect(run(['--version']).stdout).toMatch(/^\d+\.\d+\.\d+/);
    const h = run(['--help']);
    expect(h.status).toBe(0);
    for (const f of ['--protocol', '--connect', '--exec', '--listen', '--config', '--max-line-length', '--allow', '--deny', '--idle-timeout', '--session-timeout', '--max-violations', '--log-level', '--syslog-facility', '--log-stderr', '--check']) {
      expect(h.stdout).toContain(f);
    }
  });
});
