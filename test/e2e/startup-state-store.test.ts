import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WRAPPER } from '../helpers/wrapper.js';

/**
 * The Redis client is part of the one bundled file but is evaluated only
 * when stateStore is a Redis URL: inetd starts a process per connection,
 * and the default (no maxAuthFailures, or the memory store) must not pay
 * for it. esbuild puts a module reached only through import() in a lazy
 * __esm wrapper; these tests check that the wrapper is there and is called
 * from the import() alone, and run a copy of the built file whose Redis
 * module announces its evaluation on stderr.
 */
describe('the Redis store is loaded only with stateStore = redis://', () => {
  const original = readFileSync(WRAPPER, 'latin1');
  let dir: string;
  let marked: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'pw-startup-store-'));
    symlinkSync(join(dirname(WRAPPER), '..', 'node_modules'), join(dir, 'node_modules'));
    // The bundle is minified: the lazy wrapper's body starts right after the brace.
    const head = '"src/io/redis-store.ts"(){';
    expect(original.split(head)).toHaveLength(2);
    marked = join(dir, 'marked.js');
    writeFileSync(marked, original.replace(head, `${head}require("fs").writeSync(2, "PW-REDIS-STORE-EVALUATED\\n");\n`), { encoding: 'latin1', mode: 0o755 });
  });
  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('in the bundle: the store and the RESP client sit in lazy wrappers, initialised from the import() only', () => {
    // (The bundle is minified: declarations may share one var statement.)
    expect(original).toMatch(/(?:\bvar |,)init_redis_store=__esm\(\{"src\/io\/redis-store\.ts"\(\)\{/);
    expect(original).toMatch(/(?:\bvar |,)init_resp_client=__esm\(\{"src\/io\/resp-client\.ts"\(\)\{/);
    const calls = original.match(/init_redis_store\(\)/g) ?? [];
    expect(calls).toHaveLength(1);
    expect(original).toMatch(/await Promise\.resolve\(\)\.then\(\(\)=>\(init_redis_store\(\),redis_store_exports\)\)/);
    // The RESP client is initialised by the store's wrapper alone.
    const body = original.slice(original.indexOf('"src/io/redis-store.ts"(){'));
    expect(original.match(/init_resp_client\(\)/g)).toHaveLength(1);
    expect(body.slice(0, 400)).toContain('init_resp_client();');
  });

  const run = (...args: string[]) => {
    const r = spawnSync(process.execPath, [marked, '--exec', 'cat', '--log-stderr', ...args], { input: 'hello\r\n', encoding: 'latin1', timeout: 15_000 });
    expect(r.stdout).toBe('hello\r\n');
    expect(r.status).toBe(0);
    return r.stderr;
  };

  it('not evaluated by default, nor with the memory store, nor with a Redis URL but no maxAuthFailures', () => {
    expect(run()).not.toContain('PW-REDIS-STORE-EVALUATED');
    expect(run('--max-auth-failures', '3')).not.toContain('PW-REDIS-STORE-EVALUATED');
    expect(run('--state-store', 'redis://127.0.0.1:1')).not.toContain('PW-REDIS-STORE-EVALUATED');
  });

  it('evaluated with maxAuthFailures and a Redis store (a piped session never asks it: no connection, no outage)', () => {
    const err = run('--max-auth-failures', '3', '--state-store', 'redis://127.0.0.1:1');
    expect(err).toContain('PW-REDIS-STORE-EVALUATED');
    expect(err).not.toContain('unavailable');
  });
});
