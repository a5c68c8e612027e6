// Makes the V8 code cache of the bundle (run by build/build.mjs in a child
// process, never at run time):
//   node build/code-cache.mjs <wrapped-source> <cache-out> <dist/protowrap.js>
//
// It compiles the wrapped bundle exactly as the loader does, then runs one
// inetd session through it before taking the cache: V8 compiles functions
// lazily, on their first call, and a cache taken after a run holds the
// bytecode of every function that run needed (command line, configuration,
// session, framer, generic protocol), not only the top level. The session is
// this process's stdin/stdout (the build feeds it a line), the server is
// `cat`. Two things are stubbed so that the build has no side effects and
// the cache fits: modern-syslog (src/log/syslog.ts loads it through
// createRequire; nothing reaches the machine's syslog) and v8's
// setFlagsFromString (V8 rejects a cache made under other V8 flags, and the
// loader compiles before main() sets the regexp flags).
import { readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import * as v8 from 'node:v8';
import { Script } from 'node:vm';
import { scriptOptions } from './loader.mjs';

const [sourceFile, cacheOut, distFile] = process.argv.slice(2);
const source = readFileSync(sourceFile, 'utf8');
const script = new Script(source, scriptOptions(distFile));

const realRequire = createRequire(distFile);
const stubSyslog = {
  option: { LOG_PID: 1 },
  open() {},
  log(_level, _msg, cb) {
    setImmediate(cb);
  },
};
const stubV8 = { ...v8, setFlagsFromString() {} };
const stubs = new Map([
  ['modern-syslog', stubSyslog],
  ['node:v8', stubV8],
  ['v8', stubV8],
]);
const require = Object.assign((id) => (stubs.has(id) ? stubs.get(id) : realRequire(id)), {
  resolve: realRequire.resolve,
  cache: realRequire.cache,
  main: undefined,
});
const stubModule = { ...realRequire('node:module'), createRequire: () => require };
stubs.set('node:module', stubModule);
stubs.set('module', stubModule);

// main() ends with process.exit(): the run is over, take the cache then.
const exit = process.exit.bind(process);
process.exit = (code) => {
  writeFileSync(cacheOut, script.createCachedData());
  // A warm-up that failed still leaves a valid, if colder, cache.
  if (code !== 0) process.stderr.write(`code-cache: the warm-up session exited ${code}\n`);
  exit(0);
};
process.argv = [process.argv[0], distFile, '--exec', 'cat'];
const module = { exports: {}, id: '.', filename: distFile, loaded: false };
script.runInThisContext()(module.exports, require, module, distFile, dirname(distFile));
