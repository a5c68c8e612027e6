// npm run package: the packages, into dist/pkg/, from the built dist/ (the
// package script builds it first) and files of the repository; no network.
//   protowrap-<version>.tgz          npm pack (the `files` of package.json)
//   protowrap_<version>_all.deb      dpkg-deb, from packaging/debian/
//   protowrap-<version>-1.noarch.rpm rpmbuild, from packaging/rpm/protowrap.spec
//   protowrap-<version>-unix.tar.gz  the same tree as the .deb and .rpm, for other Unixes
// The three system packages hold one tree, staged once (stageTree): the
// command in /usr/lib/protowrap with /usr/bin/protowrap linked to it, the man
// page, the systemd units, the fail2ban filter and the examples. They carry
// no native addon (modern-syslog): the wrapper logs through logger(1), its
// fallback, so the packages are arch-independent.
import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

const root = fileURLToPath(new URL('..', import.meta.url));
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const version = pkg.version;
const out = join(root, 'dist', 'pkg');
const BIN = '/usr/bin/protowrap';

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', ...opts });
  if (r.error?.code === 'ENOENT') throw new Error(`package: ${cmd} is not installed (${cmd === 'rpmbuild' ? 'Debian package rpm' : cmd === 'dpkg-deb' ? 'dpkg' : cmd})`);
  if (r.status !== 0) throw new Error(`package: ${cmd} ${args.join(' ')} failed (${r.status ?? r.signal}):\n${r.stdout}${r.stderr}`);
  return r.stdout;
}

/** Writes a file of the tree (parents made), with its mode. */
function put(tree, path, data, mode = 0o644) {
  const file = join(tree, path);
  mkdirSync(dirname(file), { recursive: true, mode: 0o755 });
  writeFileSync(file, data);
  chmodSync(file, mode);
}

/** A repository file as the installed tree wants it: the command at /usr/bin/protowrap, not /usr/local/bin. */
function installed(text) {
  return text.replaceAll('/usr/local/bin/protowrap', BIN);
}

/** The files of a repository folder that exist (other branches add their own examples). */
function filesIn(dir) {
  const d = join(root, dir);
  return existsSync(d) ? readdirSync(d).filter((f) => statSync(join(d, f)).isFile()).sort() : [];
}

/** The installed tree, shared by the .deb, the .rpm and the plain .tar.gz. */
export function stageTree(tree) {
  for (const f of ['protowrap.js', 'protowrap.8']) {
    if (!existsSync(join(root, 'dist', f))) throw new Error(`package: dist/${f} is missing: run npm run build`);
  }
  put(tree, 'usr/lib/protowrap/protowrap.js', readFileSync(join(root, 'dist/protowrap.js')), 0o755);
  put(tree, 'usr/lib/protowrap/package.json', readFileSync(join(root, 'dist/package.json')));
  mkdirSync(join(tree, 'usr/bin'), { recursive: true });
  symlinkSync('../lib/protowrap/protowrap.js', join(tree, 'usr/bin/protowrap'));
  put(tree, 'usr/share/man/man8/protowrap.8.gz', gzipSync(readFileSync(join(root, 'dist/protowrap.8')), { level: 9 }));
  // The units: the packaged command, and the protowrap user the package creates instead of a dynamic one.
  put(tree, 'lib/systemd/system/protowrap.socket', readFileSync(join(root, 'systemd/protowrap.socket')));
  const service = installed(readFileSync(join(root, 'systemd/protowrap@.service'), 'utf8')).replace(/^DynamicUser=yes$/m, 'User=protowrap\nGroup=protowrap');
  put(tree, 'lib/systemd/system/protowrap@.service', service);
  // Accept=no: one process for every connection (LISTEN_FDS).
  put(tree, 'lib/systemd/system/protowrap-standalone.socket', readFileSync(join(root, 'systemd/protowrap-standalone.socket')));
  const standalone = installed(readFileSync(join(root, 'systemd/protowrap-standalone.service'), 'utf8')).replace(/^DynamicUser=yes$/m, 'User=protowrap\nGroup=protowrap');
  put(tree, 'lib/systemd/system/protowrap-standalone.service', standalone);
  put(tree, 'etc/fail2ban/filter.d/protowrap.conf', readFileSync(join(root, 'fail2ban/filter.d/protowrap.conf')));
  const doc = 'usr/share/doc/protowrap';
  put(tree, `${doc}/README.md`, readFileSync(join(root, 'README.md')));
  put(tree, `${doc}/copyright`, readFileSync(join(root, 'packaging/copyright')));
  put(tree, `${doc}/examples/inetd.conf.example`, installed(readFileSync(join(root, 'inetd.conf.example'), 'utf8')));
  for (const f of filesIn('xinetd.d')) put(tree, `${doc}/examples/xinetd.d/${f}`, installed(readFileSync(join(root, 'xinetd.d', f), 'utf8')));
  for (const f of filesIn('examples')) put(tree, `${doc}/examples/${f}`, installed(readFileSync(join(root, 'examples', f), 'utf8')));
  put(tree, `${doc}/examples/fail2ban/jail.d/protowrap.conf`, readFileSync(join(root, 'fail2ban/jail.d/protowrap.conf.example')));
}

/** Bytes of the tree's files, in KiB rounded up (the control file's Installed-Size). */
function kib(dir) {
  let n = 0;
  const walk = (d) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile()) n += statSync(p).size;
    }
  };
  walk(dir);
  return Math.ceil(n / 1024);
}

function deb(tree, tmp) {
  const stage = join(tmp, 'deb');
  cpSync(tree, stage, { recursive: true, verbatimSymlinks: true });
  const control = readFileSync(join(root, 'packaging/debian/control'), 'utf8').replace('@VERSION@', version).replace('@INSTALLED_SIZE@', String(kib(tree)));
  put(stage, 'DEBIAN/control', control);
  put(stage, 'DEBIAN/conffiles', readFileSync(join(root, 'packaging/debian/conffiles')));
  for (const s of ['postinst', 'postrm']) put(stage, `DEBIAN/${s}`, readFileSync(join(root, 'packaging/debian', s)), 0o755);
  const file = join(out, `protowrap_${version}_all.deb`);
  run('dpkg-deb', ['--root-owner-group', '-Zgzip', '--build', stage, file]);
  return file;
}

function rpm(tree, tmp) {
  const top = join(tmp, 'rpm');
  run('rpmbuild', [
    '-bb', '--quiet',
    '--define', `_topdir ${top}`,
    '--define', `pw_version ${version}`,
    '--define', `pw_tree ${tree}`,
    join(root, 'packaging/rpm/protowrap.spec'),
  ]);
  const name = `protowrap-${version}-1.noarch.rpm`;
  copyFileSync(join(top, 'RPMS', 'noarch', name), join(out, name));
  return join(out, name);
}

function tarball(tree) {
  const file = join(out, `protowrap-${version}-unix.tar.gz`);
  run('tar', ['-C', tree, '--owner=0', '--group=0', '--numeric-owner', '--sort=name', '-czf', file, '.']);
  return file;
}

function npmPack() {
  // Scripts off: dist/ was just built by the package script (npm pack's own
  // prepare would build it a second time).
  const json = run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', out], { cwd: root });
  return join(out, JSON.parse(json)[0].filename);
}

async function main() {
  rmSync(out, { recursive: true, force: true });
  mkdirSync(out, { recursive: true });
  const tmp = mkdtempSync(join(tmpdir(), 'protowrap-package-'));
  try {
    const tree = join(tmp, 'tree');
    stageTree(tree);
    const made = [npmPack(), deb(tree, tmp), rpm(tree, tmp), tarball(tree)];
    for (const f of made) console.log(`package: ${f.slice(root.length)}`);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  main().catch((e) => {
    console.error(e.message);
    process.exitCode = 1;
  });
}
