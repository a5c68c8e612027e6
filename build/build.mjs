// Bundles src/main.ts into one executable file, dist/protowrap.js.
// modern-syslog (a native addon) stays external: it is loaded from
// node_modules at run time, with logger(1) as the fallback.
import { build } from 'esbuild';
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';

const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
await build({
  entryPoints: ['src/main.ts'],
  outfile: 'dist/protowrap.js',
  bundle: true,
  platform: 'node',
  target: 'node20',
  // CommonJS loads faster than an ES module at start-up (inetd starts one
  // process per connection); dist/package.json marks the folder as such.
  format: 'cjs',
  external: ['modern-syslog'],
  banner: { js: "#!/usr/bin/env node\nconst __importMetaUrl = require('url').pathToFileURL(__filename).href;" },
  define: { __PROTOWRAP_VERSION__: JSON.stringify(pkg.version), 'import.meta.url': '__importMetaUrl' },
  legalComments: 'none',
  logLevel: 'warning',
});
chmodSync('dist/protowrap.js', 0o755);
writeFileSync('dist/package.json', JSON.stringify({ type: 'commonjs' }) + '\n');
