import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/**
 * The README's "Setting it up" steps, from a fresh clone: `git clone` of the
 * repository this file lives in, then the commands of that section's sh block
 * run as written (`npm install`, which builds dist/ through the prepare
 * script, then `npm install -g .`), then the installed `protowrap` command
 * serves the README's piped session. The clone is of HEAD: uncommitted
 * changes in the work tree are not in it. That is what CI tests, since CI
 * runs in a fresh clone of the submitted commit.
 *
 * Nothing outside the sandbox changes: the global prefix is a folder of the
 * sandbox (npm_config_prefix), the rest of npm's settings are the machine's,
 * with the npm cache preferred (CI's `npm ci` has just filled it).
 */

const REPO = fileURLToPath(new URL('../..', import.meta.url));
/** Each step's limit; the whole runs in about 15 s on two cores. */
const STEP_TIMEOUT_MS = 150_000;

interface Run {
  stdout: string;
  stderr: string;
}

/** The environment of a fresh shell: none of the npm_* variables of the `npm test` running this file. */
function cleanEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!/^npm_/i.test(k) && k !== 'INIT_CWD' && k !== 'NODE_OPTIONS') env[k] = v;
  }
  return { ...env, ...extra };
}

function sh(script: string, cwd: string, env: NodeJS.ProcessEnv, input?: string): Run {
  const r = spawnSync('sh', ['-c', script], { cwd, env, input, encoding: 'latin1', timeout: STEP_TIMEOUT_MS });
  if (r.status !== 0) {
    throw new Error(`\`${script}\` in ${cwd}: ${r.error?.message ?? `exit ${r.status ?? r.signal}`}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`);
  }
  return { stdout: r.stdout, stderr: r.stderr };
}

/** The commands of the first sh block in the README's "Setting it up" section, comments dropped. */
function setupCommands(readme: string): string[] {
  const section = /\n## Setting it up\n([\s\S]*?)(?=\n## |$)/.exec(readme)?.[1];
  if (section === undefined) throw new Error('README has no "Setting it up" section');
  const block = /```sh\n([\s\S]*?)```/.exec(section)?.[1];
  if (block === undefined) throw new Error('"Setting it up" has no sh block');
  return block
    .split('\n')
    .map((l) => l.replace(/(^|\s)#.*$/, '').trim())
    .filter((l) => l !== '');
}

describe("README's setting-up steps, from a fresh clone", () => {
  let dir: string;
  let clone: string;
  let prefix: string;
  let env: NodeJS.ProcessEnv;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'pw-install-'));
    clone = join(dir, 'protowrap');
    prefix = join(dir, 'global');
    env = cleanEnv({
      npm_config_prefix: prefix,
      npm_config_prefer_offline: 'true',
      npm_config_audit: 'false',
      npm_config_fund: 'false',
      npm_config_update_notifier: 'false',
    });
    const r = spawnSync('git', ['clone', '-q', '--no-hardlinks', REPO, clone], { env, encoding: 'utf8', timeout: STEP_TIMEOUT_MS });
    if (r.status !== 0) throw new Error(`git clone ${REPO}: ${r.error?.message ?? r.stderr}`);
  });
  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('`npm install` then `npm install -g .` leave a protowrap command that serves a session', () => {
    const commands = setupCommands(readFileSync(join(clone, 'README.md'), 'utf8'));
    expect(commands).toEqual(['npm install', 'npm install -g .']);
    expect(existsSync(join(clone, 'dist'))).toBe(false); // a fresh clone: nothing built yet

    for (const c of commands) sh(c, clone, env);
    expect(existsSync(join(clone, 'dist', 'protowrap.js'))).toBe(true);

    const bin = join(prefix, 'bin');
    expect(existsSync(join(bin, 'protowrap'))).toBe(true);
    // Run by name, from elsewhere, as a superserver or a user's shell would.
    const run = cleanEnv({ PATH: `${bin}:${process.env['PATH'] ?? ''}` });
    const version = (JSON.parse(readFileSync(join(clone, 'package.json'), 'utf8')) as { version: string }).version;
    expect(sh('protowrap --version', dir, run).stdout.trim()).toBe(version);

    expect(sh('printf "hello\\r\\n" | protowrap --exec cat', dir, run).stdout).toBe('hello\r\n');
    // The README's session from issue 2: a line forwarded, an overlong one refused and logged.
    const s = sh("printf 'hello\\r\\n%02000d\\r\\n' 0 | protowrap --exec cat --log-stderr", dir, run);
    expect(s.stdout).toBe('hello\r\n');
    expect(s.stderr).toMatch(/refused client=stdin protocol=generic state=\S+ code=line_too_long/);
  }, 300_000);
});
