import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRecorder, type Recorder } from '../helpers/recorder.js';
import { freePort, startStandalone, waitFor, WRAPPER } from '../helpers/wrapper.js';
import { PREWIRE_BUFFER_MAX } from '../../src/io/early-reader.js';

/**
 * A client that connects and leaves at once (a port scan, a load balancer's
 * TCP health check, an impatient user) must end its session promptly, in
 * inetd mode under the real launcher (systemd-socket-activate) and in
 * standalone mode: its EOF reaches the server, and a reset ends everything
 * without waiting for the idle timeout. Issue 13 item 4: before the fix the
 * server never saw the EOF and the wrapper lived until the idle timeout.
 */

/** pids of running wrapper processes whose command line mentions marker. */
function wrappersWith(marker: string): number[] {
  const out: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    let cmd: string;
    try {
      cmd = readFileSync(`/proc/${d}/cmdline`, 'latin1');
    } catch {
      continue;
    }
    if (cmd.includes(WRAPPER) && cmd.includes(marker) && !cmd.includes('systemd-socket-activate')) out.push(Number(d));
  }
  return out;
}

function dial(port: number): Promise<Socket> {
  return new Promise((res, rej) => {
    const s = connect({ port, host: '127.0.0.1', allowHalfOpen: true });
    s.once('connect', () => res(s));
    s.once('error', rej);
  });
}

/** Connections the recorder accepted whose EOF it has seen. */
function eofCount(rec: Recorder): number {
  return rec.received().length;
}

describe('a client that leaves at once', () => {
  let rec: Recorder;
  let ended = 0;
  beforeAll(async () => {
    rec = await startRecorder();
    rec.server.on('connection', (s) => s.on('end', () => ended++));
  });
  afterAll(() => rec.close());

  async function underSocketActivation(run: (port: number, marker: string) => Promise<void>): Promise<void> {
    const port = await freePort();
    // The idle timeout is long on purpose: a session that waits for it fails the test.
    const marker = `${rec.port}`;
    const launcher: ChildProcess = spawn(
      'systemd-socket-activate',
      ['--inetd', '-a', '-l', `127.0.0.1:${port}`, '--', process.execPath, WRAPPER, '--connect', `127.0.0.1:${rec.port}`, '--idle-timeout', '600'],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let err = '';
    launcher.stderr!.on('data', (b: Buffer) => (err += b.toString()));
    try {
      await waitFor(() => err.includes('Listening on'), 'systemd-socket-activate to listen');
      await run(port, marker);
    } finally {
      launcher.kill('SIGTERM');
    }
  }

  it('inetd (systemd-socket-activate): connect and close: the server sees EOF and the wrapper exits', async () => {
    await underSocketActivation(async (port, marker) => {
      const before = ended;
      const s = await dial(port);
      s.end();
      await waitFor(() => ended > before, 'the server to see the client EOF', 5000);
      await waitFor(() => wrappersWith(marker).length === 0, 'the wrapper process to exit', 5000);
    });
  });

  it('inetd (systemd-socket-activate): connect and reset: the wrapper exits and drops the server connection', async () => {
    await underSocketActivation(async (port, marker) => {
      const s = await dial(port);
      await waitFor(() => wrappersWith(marker).length > 0, 'the wrapper process to start', 5000);
      s.resetAndDestroy();
      await waitFor(() => wrappersWith(marker).length === 0, 'the wrapper process to exit', 5000);
    });
  });

  it('inetd (systemd-socket-activate): a burst of connect-and-close leaves no wrapper behind', async () => {
    await underSocketActivation(async (port, marker) => {
      const before = ended;
      const socks = await Promise.all(Array.from({ length: 10 }, () => dial(port)));
      for (const s of socks) s.end();
      await waitFor(() => ended >= before + 10, 'the server to see ten EOFs', 10_000);
      await waitFor(() => wrappersWith(marker).length === 0, 'every wrapper process to exit', 10_000);
    });
  });

  it('standalone: connect and close, connect and reset: both sessions end at once', async () => {
    const w = await startStandalone(['--connect', `127.0.0.1:${rec.port}`, '--idle-timeout', '600', '--log-level', '2']);
    try {
      const before = eofCount(rec);
      const a = await dial(w.port);
      a.end();
      const b = await dial(w.port);
      b.resetAndDestroy();
      await waitFor(() => (w.logs().match(/session close/g) ?? []).length >= 2, 'two session close lines', 5000);
      expect(w.logs()).toMatch(/end=done/);
      expect(w.logs()).toMatch(/end=client_(error|closed)/);
      expect(eofCount(rec)).toBeGreaterThan(before);
    } finally {
      await w.stop();
    }
  });

  it('a spawned server that starts slowly: a client reset stops it at once', async () => {
    const w = await startStandalone(['--exec', "sh -c 'sleep 30; exec cat'", '--idle-timeout', '600', '--log-level', '2']);
    try {
      const b = await dial(w.port);
      b.resetAndDestroy();
      await waitFor(() => w.logs().includes('session close'), 'session close', 5000);
      expect(w.logs()).toMatch(/end=client_(error|closed)/);
    } finally {
      await w.stop();
    }
  });

  it('bytes sent before a slow server is up: kept up to PREWIRE_BUFFER_MAX, the rest waits; nothing lost, nothing reordered', async () => {
    const w = await startStandalone(['--exec', "sh -c 'sleep 1; exec cat'", '--max-line-length', '100000']);
    try {
      const s = await dial(w.port);
      const lines = Array.from({ length: 3000 }, (_, k) => `${String(k).padStart(6, '0')} ${'x'.repeat(90)}\n`).join('');
      expect(lines.length).toBeGreaterThan(4 * PREWIRE_BUFFER_MAX);
      let got = '';
      s.on('data', (b: Buffer) => (got += b.toString('latin1')));
      s.end(lines);
      await waitFor(() => got.length >= lines.length, 'the echo of every byte', 10_000);
      expect(got).toBe(lines);
    } finally {
      await w.stop();
    }
  });
});
