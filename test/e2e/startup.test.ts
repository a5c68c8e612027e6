import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRsyslog, type Rsyslog } from '../helpers/rsyslog.js';
import { WRAPPER } from '../helpers/wrapper.js';

/**
 * The built dist/protowrap.js: one executable file, a small loader holding
 * the bundle and its V8 code cache (build/loader.mjs). These tests run the
 * real file, and variants of it whose cache is missing, rejected or damaged:
 * every variant must serve a session exactly as before, only the start-up
 * time may differ.
 */

// Compiles a loader file's program exactly as the loader does (same source,
// same options, same cache) and reports whether V8 took the cache, plus the
// stack frame of an error thrown at the bundle's first require("node:net").
const PROBE = String.raw`
const fs = require('fs'), vm = require('vm'), path = require('path');
const file = path.resolve(process.argv[2]);
const text = fs.readFileSync(file, 'latin1').replace(/^#!.*/, '');
const runLine = 'new (require("vm").Script)(src, options).runInThisContext()(exports, require, module, __filename, __dirname);';
if (!text.includes(runLine)) throw new Error('the loader changed: update the probe');
const m = { exports: {} };
new vm.Script('(function (exports, require, module, __filename, __dirname) {' + text.replace(runLine, 'module.exports = { src, options };') + '\n})', { filename: file })
  .runInThisContext()(m.exports, require, m, file, path.dirname(file));
const { src, options } = m.exports;
const script = new vm.Script(src, options);
let frame = '';
try {
  script.runInThisContext()({}, (id) => { if (id === 'node:net') throw new Error('probe'); return require(id); }, { exports: {} }, file, path.dirname(file));
} catch (e) { frame = (e.stack.split('\n').find((l) => l.includes(file)) || '').trim(); }
console.log(JSON.stringify({ hasCache: 'cachedData' in options, rejected: script.cachedDataRejected ?? null, frame }));
`;

interface Probe {
  hasCache: boolean;
  rejected: boolean | null;
  frame: string;
}

describe('dist/protowrap.js: one executable file with its code cache', () => {
  let dir: string;
  let probeFile: string;
  const original = readFileSync(WRAPPER, 'latin1');

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'pw-startup-'));
    probeFile = join(dir, 'probe.cjs');
    writeFileSync(probeFile, PROBE);
    // Installed layout: the file next to a node_modules that holds modern-syslog.
    symlinkSync(join(dirname(WRAPPER), '..', 'node_modules'), join(dir, 'node_modules'));
  });
  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const probe = (file: string, nodeArgs: string[] = []): Probe => {
    const r = spawnSync(process.execPath, [...nodeArgs, probeFile, file], { encoding: 'utf8', timeout: 15_000 });
    if (r.status !== 0) throw new Error(`probe failed: ${r.stderr}`);
    return JSON.parse(r.stdout) as Probe;
  };

  /** A variant of the built file, with its cache (the base64 line) replaced. */
  const variant = (name: string, cache: (b64: string) => string): string => {
    const m = /\nfunction cache\(\) \{\/\*\n([A-Za-z0-9+/=]*)\n\*\/\}\n/.exec(original);
    if (!m) throw new Error('no cache() in the built file');
    const file = join(dir, `${name}.js`);
    writeFileSync(file, original.replace(m[0], `\nfunction cache() {/*\n${cache(m[1]!)}\n*/}\n`), { encoding: 'latin1', mode: 0o755 });
    return file;
  };

  /** One session piped through the file: a line forwarded, an overlong one refused and logged. */
  const session = (file: string, nodeArgs: string[] = []) => {
    const r = spawnSync(process.execPath, [...nodeArgs, file, '--exec', 'cat', '--log-stderr'], {
      input: `hello\r\n${'0'.repeat(2000)}\r\n`,
      encoding: 'latin1',
      timeout: 15_000,
    });
    expect(r.stdout).toBe('hello\r\n');
    expect(r.stderr).toMatch(/refused client=stdin protocol=generic state=\S+ code=line_too_long/);
    expect(r.status).toBe(0);
  };

  it('is one executable file: hashbang, run bit, no other file of dist/ needed', () => {
    expect(original.startsWith('#!/usr/bin/env node\n')).toBe(true);
    expect(statSync(WRAPPER).mode & 0o111).toBe(0o111);
    // Alone in a folder (no dist/package.json), run through its #! line as inetd does.
    const alone = join(dir, 'alone.js');
    writeFileSync(alone, original, { encoding: 'latin1', mode: 0o755 });
    const r = spawnSync(alone, ['--exec', 'cat', '--log-stderr'], { input: 'hello\r\n', encoding: 'latin1', timeout: 15_000 });
    expect(r.stdout).toBe('hello\r\n');
    expect(r.status).toBe(0);
  });

  it('carries a code cache that this node takes, and never writes at run time', () => {
    const p = probe(WRAPPER);
    expect(p.hasCache).toBe(true);
    expect(p.rejected).toBe(false);
    const before = readdirSync(dir).sort();
    session(join(dir, 'alone.js'));
    expect(readdirSync(dir).sort()).toEqual(before);
  });

  it('stack traces name dist/protowrap.js and the line and column where the code is', () => {
    const p = probe(WRAPPER);
    // The first top-level require, in a var statement (a module loaded only through import(), such as
    // the Redis store, requires it inside its lazy wrapper, as an assignment). The bundle is minified.
    const m = /(?:\bvar |,)[\w$]+=require\("node:net"\)/.exec(original);
    expect(m).not.toBeNull();
    const pos = m!.index + m![0].indexOf('require(');
    const before = original.slice(0, pos).split('\n');
    expect(p.frame).toBe(`at ${WRAPPER}:${before.length}:${before.at(-1)!.length + 1}`);
  });

  it('without a cache: compiles the source and serves the session', () => {
    const file = variant('nocache', () => '');
    expect(probe(file)).toMatchObject({ hasCache: false, rejected: null });
    session(file);
  });

  it('a cache made under other V8 flags is rejected: compiles the source and serves the session', () => {
    expect(probe(WRAPPER, ['--max-old-space-size=200'])).toMatchObject({ hasCache: true, rejected: true });
    session(WRAPPER, ['--max-old-space-size=200']);
  });

  it('a damaged cache (header, or cut short) is rejected: compiles the source and serves the session', () => {
    const header = variant('badheader', (b64) => {
      const b = Buffer.from(b64, 'base64');
      b[5]! ^= 0xff; // inside V8's version hash
      return b.toString('base64');
    });
    const cut = variant('cut', (b64) => Buffer.from(b64, 'base64').subarray(0, 1000).toString('base64'));
    for (const file of [header, cut]) {
      expect(probe(file)).toMatchObject({ hasCache: true, rejected: true });
      session(file);
    }
  });
});

/**
 * Syslog is opened after start-up (src/log/syslog.ts DeferredSink). Without
 * modern-syslog beside the file, the same queued lines must reach syslog
 * through logger(1), in order, flushed before exit. The syslog daemon is a
 * real rsyslogd (test/helpers/rsyslog.ts); the native path is proven in
 * syslog.test.ts.
 */
const REAL_LOGGER = spawnSync('sh', ['-c', 'command -v logger'], { encoding: 'latin1' }).stdout.trim();

describe('syslog opened after start-up, without modern-syslog: logger(1)', () => {
  let rs: Rsyslog;
  let dir: string;
  beforeAll(async () => {
    rs = await startRsyslog();
    dir = mkdtempSync(join(tmpdir(), 'pw-startup-nonative-'));
  });
  afterAll(async () => {
    await rs?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('a short session: every line arrives in order, the last one although the process exits right after it', async () => {
    // No node_modules beside (or above) the file: the native addon cannot load.
    const alone = join(dir, 'protowrap.js');
    writeFileSync(alone, readFileSync(WRAPPER));
    // The real logger(1), through a script that notes each start.
    const bin = join(dir, 'bin');
    mkdirSync(bin);
    writeFileSync(join(bin, 'logger'), `#!/bin/sh\necho "$$" >> '${join(dir, 'logger-ran')}'\nexec '${REAL_LOGGER}' "$@"\n`, { mode: 0o755 });
    const w = rs.withDevLog([process.execPath, alone, '--exec', 'cat', '--log-level', '1']);
    const env = { ...process.env, PATH: `${bin}:${process.env['PATH'] ?? ''}` };
    const child = spawn(w.cmd, w.args, { stdio: ['pipe', 'pipe', 'pipe'], env });
    const out: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stdin.end(`hello\r\n${'0'.repeat(2000)}\r\n`);
    const code = await new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
    expect(code).toBe(0);
    expect(Buffer.concat(out).toString('latin1')).toBe('hello\r\n');
    // The tag carries the wrapper's pid (logger --id), the one line the test can match on.
    await rs.waitFor((r) => r.program === 'protowrap' && r.msg.startsWith('session close'), 'for session close');
    const pid = rs.records().find((r) => r.msg.startsWith('session close'))!.pid;
    const mine = rs.records().filter((r) => r.program === 'protowrap' && r.pid === pid);
    expect(mine.map((r) => r.msg.split(' ')[0])).toEqual(['session', 'refused', 'server', 'session']);
    expect(mine[0]!.msg).toMatch(/^session open client=stdin protocol=generic /);
    expect(mine[1]).toMatchObject({ facility: 'daemon', severity: 'warning' });
    expect(mine[1]!.msg).toContain('code=line_too_long');
    // logger(1) ran, once (as root it sends with the wrapper's pid: only this marker tells).
    expect(readFileSync(join(dir, 'logger-ran'), 'latin1').trim().split('\n')).toHaveLength(1);
  });
});
