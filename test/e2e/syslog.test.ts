import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnWithSocket } from '../helpers/inetd-spawn.js';
import { startRecorder, type Recorder } from '../helpers/recorder.js';
import { startRsyslog, type Rsyslog, type SyslogRecord } from '../helpers/rsyslog.js';
import { freePort, WRAPPER } from '../helpers/wrapper.js';

/**
 * Logging proven against a real rsyslogd: the wrapper runs with the accepted
 * TCP socket as fds 0, 1 and 2 (as under inetd) in a mount namespace where
 * /dev/log is the test's rsyslogd socket.
 */
describe('syslog through a real rsyslogd', () => {
  let rs: Rsyslog;
  let rec: Recorder;
  let dir: string;
  beforeAll(async () => {
    rs = await startRsyslog();
    rec = await startRecorder({ banner: 'WELCOME\r\n', echo: true });
    dir = mkdtempSync(join(tmpdir(), 'pw-syslog-test-'));
  });
  afterAll(async () => {
    await rec?.close();
    await rs?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const ofPid = (pid: number | undefined) => (r: SyslogRecord) => r.program === 'protowrap' && r.pid === String(pid);
  const wrapped = (args: readonly string[]) => rs.withDevLog([process.execPath, WRAPPER, ...args]);

  it('logs a refused line at daemon.warning with tag, pid, client, protocol, reason and the escaped line cut to 200 bytes; the client gets only protocol traffic', async () => {
    const evil = Buffer.concat([Buffer.from('EVIL\x01\t'), Buffer.alloc(300, 'A')]);
    // --log-stderr on purpose: fd 2 is the client's socket, so the wrapper must ignore it.
    const w = wrapped(['--connect', `127.0.0.1:${rec.port}`, '--deny', 'EVIL', '--log-level', '1', '--log-stderr']);
    const run = await spawnWithSocket(w.cmd, w.args);
    const before = rec.received().length;
    run.client.end(Buffer.concat([Buffer.from('good line\r\n'), evil, Buffer.from('\r\nlast\r\n')]));
    const { code, received } = await run.done;
    expect(code).toBe(0);
    // Banner and the echo of the two forwarded lines, and not one byte more.
    expect(received.toString('latin1')).toBe('WELCOME\r\ngood line\r\nlast\r\n');
    expect(rec.received()[before]!.toString('latin1')).toBe('good line\r\nlast\r\n');

    const refused = await rs.waitFor((r) => ofPid(run.child.pid)(r) && r.msg.startsWith('refused'), 'for the refusal');
    expect(refused.program).toBe('protowrap');
    expect(refused.facility).toBe('daemon');
    expect(refused.severity).toBe('warning');
    expect(refused.trustedPid).toBe(String(run.child.pid));
    expect(refused.msg).toContain('client=127.0.0.1 ');
    expect(refused.msg).toContain('protocol=generic ');
    expect(refused.msg).toContain('code=denied_by_rule');
    expect(refused.msg).toContain('reason="matches deny pattern');
    const shown = 'EVIL\\x01\\t' + 'A'.repeat(200 - 6) + `...(+${evil.length - 200} bytes)`;
    expect(refused.msg).toContain(`line="${shown}"`);
  });

  it('flushes the log before exit: the last line, session close, arrives although the process exits right after it', async () => {
    const w = wrapped(['--connect', `127.0.0.1:${rec.port}`, '--log-level', '1']);
    const run = await spawnWithSocket(w.cmd, w.args);
    run.client.end('bye\r\n');
    const { code } = await run.done;
    expect(code).toBe(0);
    await rs.waitFor((r) => ofPid(run.child.pid)(r) && r.msg.startsWith('session close'), 'for session close');
    const mine = rs.records().filter(ofPid(run.child.pid));
    expect(mine[0]!.msg).toMatch(/^session open client=127\.0\.0\.1 protocol=generic /);
    expect(mine.at(-1)!.msg).toMatch(/^session close client=127\.0\.0\.1 protocol=generic end=done /);
    expect(mine.every((r) => r.facility === 'daemon' && r.severity === 'info')).toBe(true);
  });

  it('--log-format json: rsyslog receives each line as one JSON object, severity and facility as in the text form', async () => {
    const w = wrapped(['--connect', `127.0.0.1:${rec.port}`, '--deny', 'EVIL', '--log-level', '1', '--log-format', 'json']);
    const run = await spawnWithSocket(w.cmd, w.args);
    run.client.end('good line\r\nEVIL\x01 "quoted"\r\n');
    const { code, received } = await run.done;
    expect(code).toBe(0);
    expect(received.toString('latin1')).toBe('WELCOME\r\ngood line\r\n');
    await rs.waitFor((r) => ofPid(run.child.pid)(r) && r.msg.includes('"event":"session_close"'), 'for session_close');
    const mine = rs.records().filter(ofPid(run.child.pid));
    const events = mine.map((r) => ({ record: r, json: JSON.parse(r.msg) as Record<string, unknown> }));
    expect(events.map((e) => e.json['event'])).toEqual(['session_open', 'refused', 'session_close']);
    for (const { record, json } of events) {
      expect(json['severity']).toBe(record.severity);
      expect(record.facility).toBe('daemon');
      expect(json).toMatchObject({ client: '127.0.0.1', protocol: 'generic' });
      expect(json['session']).toMatch(/^[0-9a-f]{12}$/);
      expect(json['session']).toBe(events[0]!.json['session']);
    }
    expect(events[1]!.json).toMatchObject({ severity: 'warning', code: 'denied_by_rule', line: 'EVIL\\x01 "quoted"' });
    expect(events[2]!.json).toMatchObject({ end: 'done', refused: 1 });
  });

  it('--syslog-facility moves every line to that facility', async () => {
    const w = wrapped(['--exec', 'cat', '--syslog-facility', 'local3', '--log-level', '1']);
    const child = spawn(w.cmd, w.args, { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stdin.end(`hello\r\n${'0'.repeat(2000)}\r\n`);
    const code = await new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
    expect(code).toBe(0);
    expect(Buffer.concat(out).toString('latin1')).toBe('hello\r\n');
    const refused = await rs.waitFor((r) => ofPid(child.pid)(r) && r.msg.startsWith('refused'), 'for the refusal');
    expect(refused.facility).toBe('local3');
    expect(refused.severity).toBe('warning');
    expect(refused.msg).toContain('client=stdin protocol=generic');
    expect(refused.msg).toContain('code=line_too_long');
    await rs.waitFor((r) => ofPid(child.pid)(r) && r.msg.startsWith('session close'), 'for session close');
    const mine = rs.records().filter(ofPid(child.pid));
    expect(mine.length).toBeGreaterThan(2);
    expect(mine.every((r) => r.facility === 'local3')).toBe(true);
  });

  it('inetd mode, bad configuration: exit 78, nothing on the client socket, the error in syslog', async () => {
    const conf = join(dir, 'bad.toml');
    writeFileSync(conf, `destType = "ip"\ndestAddr = "127.0.0.1"\ndestPort = ${rec.port}\nmaxLineLenght = 100\n`);
    const w = wrapped(['--config', conf, '--log-stderr']);
    const run = await spawnWithSocket(w.cmd, w.args);
    run.client.end('hello\r\n');
    const { code, received } = await run.done;
    expect(code).toBe(78);
    expect(received.length).toBe(0);
    const err = await rs.waitFor((r) => ofPid(run.child.pid)(r), 'for the configuration error');
    expect(err.facility).toBe('daemon');
    expect(err.severity).toBe('err');
    expect(err.msg).toContain('maxLineLenght');
  });

  it('inetd mode, server unavailable: exit 69, nothing on the client socket, the error in syslog', async () => {
    const closed = await freePort();
    const w = wrapped(['--connect', `127.0.0.1:${closed}`, '--log-stderr']);
    const run = await spawnWithSocket(w.cmd, w.args);
    run.client.end('hello\r\n');
    const { code, received } = await run.done;
    expect(code).toBe(69);
    expect(received.length).toBe(0);
    const err = await rs.waitFor((r) => ofPid(run.child.pid)(r) && r.severity === 'err', 'for server unavailable');
    expect(err.facility).toBe('daemon');
    expect(err.msg).toContain('client=127.0.0.1 protocol=generic');
    expect(err.msg).toContain(`127.0.0.1:${closed}`);
  });

  it('standalone: the daemon logs through one logger(1), with its own pid; a SIGTERM to every process of the unit (systemd) loses none of its last lines', async () => {
    const port = await freePort();
    const w = wrapped(['--listen', `127.0.0.1:${port}`, '--connect', `127.0.0.1:${rec.port}`, '--log-level', '1', '--shutdown-grace', '5']);
    // Its own process group, as a unit's processes share a cgroup: one signal reaches the daemon and its logger(1).
    const daemon = spawn(w.cmd, w.args, { stdio: ['ignore', 'ignore', 'ignore'], detached: true });
    const mine = (r: SyslogRecord) => r.program === 'protowrap' && r.pid === String(daemon.pid);
    try {
      await rs.waitFor((r) => mine(r) && r.msg.startsWith('listening on'), 'for listening');
      // The pipe: a logger(1) child of the daemon, and the kernel vouches for the daemon's pid (logger --id, as root).
      const listening = rs.records().find((r) => mine(r) && r.msg.startsWith('listening on'))!;
      expect(listening.trustedPid).toBe(String(daemon.pid));
      const kids = spawn('pgrep', ['-P', String(daemon.pid), '-x', 'logger']);
      const kidOut = await new Promise<string>((r) => {
        let o = '';
        kids.stdout.on('data', (b: Buffer) => (o += b.toString()));
        kids.once('close', () => r(o));
      });
      expect(kidOut.trim().split('\n')).toHaveLength(1);
      // A session, still open when the stop comes: its close is among the last lines.
      const { connect } = await import('node:net');
      const c = connect(port, '127.0.0.1');
      await new Promise((r) => c.once('data', r));
      await rs.waitFor((r) => mine(r) && r.msg.startsWith('session open'), 'for session open');
      process.kill(-daemon.pid!, 'SIGTERM');
      c.end('bye\r\n');
      c.resume();
      const code = await new Promise<number | null>((r) => daemon.once('exit', (x) => r(x)));
      expect(code).toBe(0);
      await rs.waitFor((r) => mine(r) && r.msg.startsWith('session close'), 'for session close');
      const closeLine = rs.records().find((r) => mine(r) && r.msg.startsWith('session close'))!;
      expect(closeLine.trustedPid).toBe(String(daemon.pid));
      expect(rs.records().filter((r) => mine(r) && r.msg.startsWith('shutting down'))).toHaveLength(1);
      // logger(1) outlived the signal: no line had to fall back to syslog(3).
      expect(rs.records().filter((r) => mine(r) && r.msg.includes('logger(1)'))).toEqual([]);
    } finally {
      if (daemon.exitCode === null) process.kill(-daemon.pid!, 'SIGKILL');
    }
  });
});
