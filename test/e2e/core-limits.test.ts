import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runPiped } from '../helpers/wrapper.js';

describe('limits on what the server side may cost', () => {
  it('a spawned server\'s stderr is logged line by line, at most 200 lines, the rest counted', async () => {
    const r = await runPiped(['--exec', `sh -c 'i=0; while [ $i -lt 300 ]; do echo diag$i >&2; i=$((i+1)); done; echo banner'`], '');
    expect(r.code).toBe(0);
    expect(r.stdout.toString()).toBe('banner\n');
    const logged = r.stderr.split('\n').filter((l) => l.includes('server stderr'));
    expect(logged).toHaveLength(201);
    expect(logged[0]).toMatch(/: diag0$/);
    expect(logged[199]).toMatch(/: diag199$/);
    expect(logged[200]).toMatch(/\(100 more stderr lines not logged\)/);
  });

  it('a spawned server\'s long stderr line is logged once, cut at 512 bytes', async () => {
    const r = await runPiped(['--exec', `sh -c 'head -c 2000 /dev/zero | tr "\\\\0" x >&2; echo >&2'`], '');
    const logged = r.stderr.split('\n').filter((l) => l.includes('server stderr'));
    expect(logged).toHaveLength(1);
    // 512 bytes kept; the log line itself shows 200 of them, like any client text.
    expect(logged[0]!.slice(logged[0]!.lastIndexOf(': ') + 2)).toBe('x'.repeat(200) + '...(+312 bytes)');
  });

  it('connectTimeout: a server that never completes the handshake gives exit 69 after the timeout', async () => {
    // A listening socket that never accepts, its backlog filled: further SYNs are dropped.
    const py = spawn('python3', ['-c', [
      'import socket, sys, time',
      's = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(0)',
      'port = s.getsockname()[1]',
      'fill = []',
      'for i in range(8):',
      '    c = socket.socket(); c.setblocking(False)',
      '    try: c.connect(("127.0.0.1", port))',
      '    except BlockingIOError: pass',
      '    fill.append(c)',
      'print(port, flush=True)',
      'time.sleep(30)',
    ].join('\n')], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      const port = await new Promise<number>((res) => py.stdout.once('data', (b: Buffer) => res(Number(b.toString().trim()))));
      const dir = mkdtempSync(join(tmpdir(), 'pw-ct-'));
      writeFileSync(join(dir, 'c.toml'), 'connectTimeout = 1\n');
      const t0 = Date.now();
      const r = await runPiped(['-f', join(dir, 'c.toml'), '--connect', `127.0.0.1:${port}`], 'x\r\n');
      expect(r.code).toBe(69);
      expect(r.stderr).toMatch(/no connection after 1000 ms/);
      expect(Date.now() - t0).toBeGreaterThanOrEqual(900);
    } finally {
      py.kill();
    }
  });
});
