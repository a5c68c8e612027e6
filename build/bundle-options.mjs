/**
 * The esbuild settings every bundle of the sources shares (the executable,
 * and the tables the man page is written from): Node 20, CommonJS (loads
 * faster than an ES module at start-up; inetd starts one process per
 * connection), modern-syslog left external (a native addon), import.meta.url
 * mapped for CommonJS, the version baked in. Whitespace and syntax are
 * minified (identifiers kept, so stack traces and logs still name functions):
 * every inetd start reads, decodes and scans the whole file, and a third
 * less of it is about 2 ms less of that start (bench/README.md).
 */
export function nodeBundleOptions(version) {
  return {
    bundle: true,
    write: false,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    external: ['modern-syslog'],
    banner: { js: "const __importMetaUrl = require('url').pathToFileURL(__filename).href;" },
    define: { __PROTOWRAP_VERSION__: JSON.stringify(version), 'import.meta.url': '__importMetaUrl' },
    minifyWhitespace: true,
    minifySyntax: true,
    logLevel: 'warning',
  };
}
