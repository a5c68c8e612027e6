import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/**
 * `npm run package` (build/package.mjs; dist/ is built by `npm test`): every
 * package is built, then installed where it cannot touch the machine and
 * run. The .deb goes through a real dpkg -i / -r / --purge in a scratch root
 * (`dpkg --root`, its own database), its maintainer scripts run with stubs
 * for useradd & co. on PATH, so the machine's users stay as they are. The
 * npm tarball is installed with `npm install -g` into a scratch prefix; the
 * .rpm and the plain .tar.gz are unpacked. Each installed command serves a
 * session piped in by hand.
 */

const REPO = fileURLToPath(new URL('../..', import.meta.url));
const VERSION = (JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { version: string }).version;
const PKG = join(REPO, 'dist', 'pkg');
const DEB = join(PKG, `protowrap_${VERSION}_all.deb`);
const RPM = join(PKG, `protowrap-${VERSION}-1.noarch.rpm`);
const NPM = join(PKG, `protowrap-${VERSION}.tgz`);
const TGZ = join(PKG, `protowrap-${VERSION}-unix.tar.gz`);
const STEP_TIMEOUT_MS = 120_000;

/** What the system packages install (directories left out). */
const FILES = [
  '/etc/fail2ban/filter.d/protowrap.conf',
  '/lib/systemd/system/protowrap.socket',
  '/lib/systemd/system/protowrap@.service',
  '/lib/systemd/system/protowrap-standalone.socket',
  '/lib/systemd/system/protowrap-standalone.service',
  '/usr/bin/protowrap',
  '/usr/lib/protowrap/package.json',
  '/usr/lib/protowrap/protowrap.js',
  '/usr/share/doc/protowrap/README.md',
  '/usr/share/doc/protowrap/copyright',
  '/usr/share/doc/protowrap/examples/fail2ban/jail.d/protowrap.conf',
  '/usr/share/doc/protowrap/examples/inetd.conf.example',
  '/usr/share/man/man8/protowrap.8.gz',
];

function run(cmd: string, args: readonly string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; input?: string | Buffer } = {}): { stdout: string; stderr: string } {
  const r = spawnSync(cmd, args, { encoding: 'latin1', timeout: STEP_TIMEOUT_MS, ...opts });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.error?.message ?? `exit ${r.status ?? r.signal}`}\n${r.stdout}\n${r.stderr}`);
  return { stdout: r.stdout, stderr: r.stderr };
}

/** A session piped in by hand through an installed command: one line forwarded, one refused. */
function pipedSession(command: string, cwd: string): void {
  expect(run(command, ['--version'], { cwd }).stdout.trim()).toBe(VERSION);
  const r = run(command, ['--exec', 'cat', '--log-stderr'], { cwd, input: 'hello\r\nbad\0line\r\n' });
  expect(r.stdout).toBe('hello\r\n');
  expect(r.stderr).toMatch(/refused client=stdin protocol=generic state=relay code=nul_byte /);
  expect(r.stderr).toMatch(/session close client=stdin protocol=generic end=done /);
}

/** Every file and link under root, as absolute paths of the installed system (directories left out). */
function filesUnder(root: string): string[] {
  const out = run('find', ['.', '(', '-type', 'f', '-o', '-type', 'l', ')', '-print'], { cwd: root }).stdout;
  return out.split('\n').filter((l) => l !== '').map((l) => l.slice(1)).sort();
}

/** The unpacked tree has the layout, the packaged paths in its files, and a command that works. */
function checkTree(root: string): void {
  const files = filesUnder(root);
  for (const f of FILES) expect(files).toContain(f);
  expect(files.filter((f) => f.startsWith('/usr/share/doc/protowrap/examples/xinetd.d/')).length).toBeGreaterThan(0);
  expect(lstatSync(join(root, 'usr/bin/protowrap')).isSymbolicLink()).toBe(true);
  expect(readlinkSync(join(root, 'usr/bin/protowrap'))).toBe('../lib/protowrap/protowrap.js');
  expect(gunzipSync(readFileSync(join(root, 'usr/share/man/man8/protowrap.8.gz'))).toString()).toMatch(/^\.TH PROTOWRAP 8 /m);
  const service = readFileSync(join(root, 'lib/systemd/system/protowrap@.service'), 'utf8');
  expect(service).toMatch(/^ExecStart=\/usr\/bin\/protowrap /m);
  expect(service).toMatch(/^User=protowrap$/m);
  const standalone = readFileSync(join(root, 'lib/systemd/system/protowrap-standalone.service'), 'utf8');
  expect(standalone).toMatch(/^ExecStart=\/usr\/bin\/protowrap /m);
  expect(standalone).toMatch(/^User=protowrap$/m);
  expect(readFileSync(join(root, 'usr/share/doc/protowrap/examples/inetd.conf.example'), 'utf8')).not.toContain('/usr/local/bin/protowrap');
  pipedSession(join(root, 'usr/bin/protowrap'), root);
}

describe('npm run package: the npm tarball, .deb, .rpm and .tar.gz, installed and run', () => {
  let dir: string;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'pw-package-'));
    run(process.execPath, [join(REPO, 'build/package.mjs')], { cwd: REPO });
  }, STEP_TIMEOUT_MS);
  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('the .deb: control fields, file list, conffiles and maintainer scripts', () => {
    const field = (name: string) => run('dpkg-deb', ['-f', DEB, name]).stdout.trim();
    expect(field('Package')).toBe('protowrap');
    expect(field('Version')).toBe(VERSION);
    expect(field('Architecture')).toBe('all');
    expect(field('Depends')).toMatch(/(^|, )nodejs \(>= 20\)(,|$)/);
    const listed = run('dpkg-deb', ['-c', DEB]).stdout.split('\n').filter((l) => l !== '' && !l.startsWith('d'));
    const paths = listed.map((l) => / \.(\/\S+)/.exec(l)![1]!).sort();
    for (const f of FILES) expect(paths).toContain(f);
    // Owned by root in the archive, whoever built it.
    expect(listed.every((l) => / root\/root /.test(l))).toBe(true);
    const control = join(dir, 'control');
    run('dpkg-deb', ['-e', DEB, control]);
    // Every file under /etc is a conffile (dpkg -r keeps it), and nothing else is.
    expect(readFileSync(join(control, 'conffiles'), 'utf8').trim().split('\n')).toEqual(paths.filter((p) => p.startsWith('/etc/')));
    for (const s of ['postinst', 'postrm']) run('sh', ['-n', join(control, s)]);
  });

  it('the .deb through dpkg -i, -r and --purge in a scratch root: the command runs; -r leaves the conffiles only; the protowrap user is made and removed on purge', () => {
    const root = join(dir, 'root');
    mkdirSync(join(root, 'var/lib/dpkg/info'), { recursive: true });
    mkdirSync(join(root, 'var/lib/dpkg/updates'));
    writeFileSync(join(root, 'var/lib/dpkg/status'), '');
    // The maintainer scripts run outside the root (--force-script-chrootless): these stand in for
    // the tools that would change the machine's users, and record how they were called.
    const stubs = join(dir, 'stubs');
    const calls = join(dir, 'calls');
    mkdirSync(stubs);
    const users = join(dir, 'users');
    writeFileSync(users, '');
    const stub = (name: string, body: string) => {
      writeFileSync(join(stubs, name), `#!/bin/sh\necho "${name} $*" >> '${calls}'\n${body}\n`);
      chmodSync(join(stubs, name), 0o755);
    };
    stub('getent', `grep -qx "$2" '${users}'`);
    stub('useradd', `for a; do last="$a"; done; echo "$last" >> '${users}'`);
    stub('userdel', `grep -vx "$1" '${users}' > '${users}.new'; mv '${users}.new' '${users}'`);
    stub('groupdel', 'exit 0');
    stub('systemctl', 'exit 0');
    const env = { ...process.env, PATH: `${stubs}:${process.env['PATH'] ?? '/usr/bin:/bin'}` };
    const dpkg = (...args: string[]) => run('dpkg', [`--root=${root}`, '--force-script-chrootless', '--force-depends', '--force-not-root', '--log=/dev/null', ...args], { env });
    const installed = () => filesUnder(root).filter((f) => !f.startsWith('/var/lib/dpkg/'));

    dpkg('-i', DEB);
    expect(readFileSync(calls, 'utf8')).toMatch(/^useradd --system .*protowrap$/m);
    expect(readFileSync(users, 'utf8')).toBe('protowrap\n');
    checkTree(root);
    // Installed again (an upgrade): the user is there, none is added.
    writeFileSync(calls, '');
    dpkg('-i', DEB);
    expect(readFileSync(calls, 'utf8')).not.toContain('useradd');

    dpkg('-r', 'protowrap');
    expect(installed()).toEqual(['/etc/fail2ban/filter.d/protowrap.conf']);
    expect(readFileSync(users, 'utf8')).toBe('protowrap\n');
    dpkg('--purge', 'protowrap');
    expect(installed()).toEqual([]);
    expect(readFileSync(users, 'utf8')).toBe('');
  });

  it('the .rpm: name, version, noarch, nodejs >= 20, the same files; unpacked, the command runs', () => {
    expect(run('rpm', ['-qp', '--qf', '%{NAME} %{VERSION} %{ARCH}', RPM]).stdout).toBe(`protowrap ${VERSION} noarch`);
    expect(run('rpm', ['-qp', '--requires', RPM]).stdout).toMatch(/^nodejs >= 20$/m);
    expect(run('rpm', ['-qp', '--scripts', RPM]).stdout).toMatch(/useradd -r /);
    expect(run('rpm', ['-qp', '--configfiles', RPM]).stdout.trim()).toBe('/etc/fail2ban/filter.d/protowrap.conf');
    const root = join(dir, 'rpmroot');
    mkdirSync(root);
    // rpm2archive (with rpm): the payload as a tar stream, no cpio needed.
    run('sh', ['-c', `rpm2archive - < '${RPM}' | tar -xzf -`], { cwd: root });
    const debRoot = join(dir, 'debx');
    run('dpkg-deb', ['-x', DEB, debRoot]);
    // The same layout as the .deb.
    expect(filesUnder(root)).toEqual(filesUnder(debRoot));
    checkTree(root);
  });

  it('the plain .tar.gz holds the same tree; unpacked, the command runs', () => {
    const root = join(dir, 'tgzroot');
    mkdirSync(root);
    run('tar', ['-C', root, '-xzf', TGZ]);
    const debRoot = join(dir, 'debx2');
    run('dpkg-deb', ['-x', DEB, debRoot]);
    expect(filesUnder(root)).toEqual(filesUnder(debRoot));
    checkTree(root);
  });

  it('the npm tarball holds the built command and installs with npm install -g into a prefix, away from the checkout', () => {
    const list = run('tar', ['-tzf', NPM]).stdout.split('\n');
    for (const f of ['package/dist/protowrap.js', 'package/dist/protowrap.8', 'package/package.json', 'package/fail2ban/filter.d/protowrap.conf']) expect(list).toContain(f);
    expect(list.some((f) => f.startsWith('package/src/') || f.startsWith('package/test/'))).toBe(false);
    const prefix = join(dir, 'prefix');
    const cwd = join(dir, 'elsewhere');
    mkdirSync(cwd);
    const env: NodeJS.ProcessEnv = {};
    for (const [k, v] of Object.entries(process.env)) if (!/^npm_/i.test(k) && k !== 'INIT_CWD' && k !== 'NODE_OPTIONS') env[k] = v;
    Object.assign(env, { npm_config_prefer_offline: 'true', npm_config_audit: 'false', npm_config_fund: 'false', npm_config_update_notifier: 'false' });
    run('npm', ['install', '-g', '--prefix', prefix, NPM], { cwd, env });
    const command = join(prefix, 'bin', 'protowrap');
    expect(existsSync(command)).toBe(true);
    // The installed copy, not the checkout.
    expect(readlinkSync(command)).toBe('../lib/node_modules/protowrap/dist/protowrap.js');
    pipedSession(command, cwd);
  });
});
