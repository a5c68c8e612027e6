// Builds dist/protowrap.js, one executable file: esbuild bundles src/main.ts,
// build/code-cache.mjs makes the bundle's V8 code cache, and build/loader.mjs
// writes both into a small loader (why: see there). modern-syslog (a native
// addon) stays external: it is loaded from node_modules at run time, with
// logger(1) as the fallback. build/manpage.mjs then writes dist/protowrap.8
// from the same option tables.
//   PROTOWRAP_CODE_CACHE=0 npm run build   builds without the code cache.
import { build } from 'esbuild';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { asciiOnly, loaderSource, wrapBundle } from './loader.mjs';
import { nodeBundleOptions } from './bundle-options.mjs';
import { writeManPage } from './manpage.mjs';

/** The warm-up session of the cache maker is cut off after this. */
const CODE_CACHE_TIMEOUT_MS = 30_000;

const root = fileURLToPath(new URL('..', import.meta.url));
const dist = join(root, 'dist', 'protowrap.js');
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
// CommonJS (see bundle-options.mjs); dist/package.json marks the folder as such.
const out = await build({ ...nodeBundleOptions(pkg.version), entryPoints: [join(root, 'src/main.ts')], legalComments: 'none' });
const bundle = asciiOnly(out.outputFiles[0].text);
mkdirSync(join(root, 'dist'), { recursive: true });
writeFileSync(join(root, 'dist', 'package.json'), JSON.stringify({ type: 'commonjs' }) + '\n');

/** The V8 code cache of the bundle, or null (then the loader compiles the source). */
function codeCache() {
  if (process.env.PROTOWRAP_CODE_CACHE === '0') return null;
  const tmp = mkdtempSync(join(tmpdir(), 'protowrap-build-'));
  try {
    const src = join(tmp, 'bundle.js');
    const cache = join(tmp, 'bundle.cache');
    writeFileSync(src, wrapBundle(bundle));
    const r = spawnSync(process.execPath, [join(root, 'build/code-cache.mjs'), src, cache, dist], {
      input: 'warm-up line\r\n',
      stdio: ['pipe', 'pipe', 'inherit'],
      timeout: CODE_CACHE_TIMEOUT_MS,
      // The cache must be made under the V8 flags of a plain `node`.
      env: { ...process.env, NODE_OPTIONS: '' },
    });
    if (r.status !== 0 || !existsSync(cache)) {
      console.error(`build: no code cache (${r.error?.message ?? `cache maker exited ${r.status ?? r.signal}`}); dist/protowrap.js will start slower`);
      return null;
    }
    return readFileSync(cache);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

// Written whole and renamed into place: a test or a superserver starting the
// wrapper while the build runs sees the old file or the new one, never half.
const tmpOut = `${dist}.${process.pid}.tmp`;
writeFileSync(tmpOut, loaderSource({ bundle, cache: codeCache(), version: pkg.version }), { mode: 0o755 });
chmodSync(tmpOut, 0o755);
renameSync(tmpOut, dist);

// The man page, protowrap(8), from the option tables the flags come from.
await writeManPage();
