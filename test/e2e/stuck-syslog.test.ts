import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { WRAPPER } from '../helpers/wrapper.js';

const NS_SCRIPT = fileURLToPath(new URL('../helpers/devlog-ns.sh', import.meta.url));

describe('a syslog that takes nothing', () => {
  it('does not keep the wrapper alive: it exits within the flush limit after the session', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pw-stuck-'));
    const sock = join(dir, 'log.sock');
    // A /dev/log that nobody reads: once its queue is full, syslog(3) blocks.
    const py = spawn('python3', ['-c', `import socket, sys, time\ns = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)\ns.bind(sys.argv[1])\nprint("ready", flush=True)\ntime.sleep(60)`, sock], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    try {
      await new Promise((r) => py.stdout.once('data', r));
      // --log-level 3 logs every line: 3000 lines fill the socket's queue many times over.
      const input = Buffer.from('line\r\n'.repeat(3000));
      const t0 = Date.now();
      const child = spawn('unshare', ['-m', 'sh', NS_SCRIPT, sock, join(dir, 'ns'), process.execPath, WRAPPER, '--exec', 'cat', '--log-level', '3'], {
        stdio: ['pipe', 'pipe', 'inherit'],
      });
      let got = 0;
      child.stdout.on('data', (b: Buffer) => (got += b.length));
      child.stdin.end(input);
      const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((r) => child.on('exit', (c, s) => r([c, s])));
      const took = Date.now() - t0;
      // The client got everything; the process ended although its log could not be flushed.
      expect(got).toBe(input.length);
      expect(took).toBeLessThan(15_000);
      expect(code === null ? signal : code).toBe('SIGKILL');
    } finally {
      py.kill();
    }
  });
});
