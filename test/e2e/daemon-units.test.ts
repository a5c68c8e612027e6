import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tcpClient } from '../helpers/client.js';
import { startDovecot, type Dovecot } from '../helpers/dovecot.js';
import { socketActivatedDaemon } from '../helpers/socket-activate.js';
import { systemdArgv, unitKeys } from '../helpers/superservers.js';
import { waitFor, WRAPPER } from '../helpers/wrapper.js';

/** The shipped Accept=no units and the multi-service example, run as a user would copy them. */

const read = (p: string) => readFileSync(fileURLToPath(new URL(`../../${p}`, import.meta.url)), 'utf8');

let dovecot: Dovecot;
beforeAll(async () => {
  dovecot = await startDovecot();
}, 30_000);
afterAll(async () => {
  await dovecot?.stop();
});

describe('systemd/protowrap-standalone.socket + .service (Accept=no)', () => {
  it('the units say Accept=no, name the socket, reload with SIGHUP and give SIGTERM more than shutdownGrace', () => {
    const socket = unitKeys(read('systemd/protowrap-standalone.socket'));
    const service = unitKeys(read('systemd/protowrap-standalone.service'));
    expect(socket.get('Accept')).toBe('no');
    expect(socket.get('ListenStream')).toMatch(/^\d+$/);
    expect(socket.get('FileDescriptorName')).toMatch(/^[a-z0-9]+$/);
    expect(service.get('ExecReload')).toBe('/bin/kill -HUP $MAINPID');
    expect(service.get('StandardInput')).toBe('null');
    expect(service.get('KillMode')).toBe('mixed');
    expect(Number(service.get('TimeoutStopSec'))).toBeGreaterThan(30);
  });

  it("its ExecStart under systemd-socket-activate serves POP3 sessions against Dovecot in one process; SIGTERM exits 0", async () => {
    const socket = unitKeys(read('systemd/protowrap-standalone.socket'));
    const argv = systemdArgv(read('systemd/protowrap-standalone.service'), { port: 0, wrapper: WRAPPER, user: 'nobody', connect: `127.0.0.1:${dovecot.pop3Port}` });
    const d = await socketActivatedDaemon(['--log-stderr', ...argv.slice(1)], { fdnames: [socket.get('FileDescriptorName')!] });
    try {
      for (const user of ['alice', 'bob']) {
        const c = await tcpClient(d.ports[0]!);
        await c.waitFor('+OK');
        c.sock.write(`USER ${user}\r\n`);
        await waitFor(() => (c.received().toString('latin1').match(/\+OK/g) ?? []).length === 2, 'the USER reply');
        c.sock.write(`PASS ${user === 'alice' ? 'secret' : 'hunter2'}\r\n`);
        await waitFor(() => (c.received().toString('latin1').match(/\+OK/g) ?? []).length === 3, 'the PASS reply');
        c.sock.write('QUIT\r\n');
        await c.eof;
        c.sock.end();
        expect(c.received().toString('latin1')).toMatch(/\+OK Logged in\.\r\n\+OK Logging out\.\r\n$/);
      }
      await waitFor(() => (d.logs().match(/session close .* end=done/g) ?? []).length === 2, 'two session close lines');
      expect(new Set([...d.logs().matchAll(/^protowrap\[(\d+)\]/gm)].map((m) => m[1])).size).toBe(1);
      d.signal('SIGTERM');
      expect(await d.exited).toBe(0);
    } finally {
      await d.stop();
    }
  }, 60_000);
});

describe('examples/services.toml', () => {
  it('passes --check with its three services', () => {
    const r = spawnSync(process.execPath, [WRAPPER, '-f', fileURLToPath(new URL('../../examples/services.toml', import.meta.url)), '--check'], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^services +pop3, imap, mx$/m);
    expect(r.stdout).toMatch(/^\[service imap\]$/m);
  });
});
