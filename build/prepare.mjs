// npm's `prepare` script: `npm install` (and `npm ci`, `npm pack`, an install
// from git) builds dist/protowrap.js, so that `npm install && npm install -g .`
// leaves a `protowrap` command (the global install of a folder is a symlink
// to the folder: its dist/ is what runs). Without the build tools (npm
// install --omit=dev, or `npm install -g .` before `npm install`) it keeps
// the dist/protowrap.js that is there (a packed tarball carries one; npm 11
// runs `prepare` for a folder or git install, not for a tarball's), and fails
// only when there is none, so that an install without a command is loud.
// `npm run build` always builds.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const dist = fileURLToPath(new URL('../dist/protowrap.js', import.meta.url));
let haveEsbuild = true;
try {
  createRequire(import.meta.url).resolve('esbuild');
} catch {
  haveEsbuild = false;
}
if (haveEsbuild) {
  await import('./build.mjs');
} else if (existsSync(dist)) {
  console.error('prepare: esbuild is not installed (no devDependencies); keeping the dist/protowrap.js that is there');
} else {
  console.error('prepare: esbuild is not installed (no devDependencies) and there is no dist/protowrap.js to keep: run `npm install` (with devDependencies) in this folder: it builds dist/');
  process.exitCode = 1;
}
