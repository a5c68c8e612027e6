import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tcpClient, type TestClient } from '../helpers/client.js';
import { startDovecot, type Dovecot } from '../helpers/dovecot.js';
import { startSink, type Sink, smtpRaw } from '../helpers/postfix.js';
import { socketActivatedDaemon } from '../helpers/socket-activate.js';
import { waitFor } from '../helpers/wrapper.js';

/**
 * systemd socket activation with Accept=no, under the real
 * systemd-socket-activate (no --inetd, no --accept): the wrapper gets the
 * listening sockets (LISTEN_FDS) and serves every connection in one process.
 */

let dovecot: Dovecot;
let sink: Sink;

beforeAll(async () => {
  [dovecot, sink] = await Promise.all([startDovecot(), startSink()]);
}, 30_000);

afterAll(async () => {
  await Promise.all([dovecot?.stop(), sink?.stop()]);
});

/** The pids in the wrapper's --log-stderr lines ("protowrap[PID]: ..."). */
function wrapperPids(logs: string): Set<string> {
  return new Set([...logs.matchAll(/^protowrap\[(\d+)\]:/gm)].map((m) => m[1]!));
}

async function pop3Login(c: TestClient, user: string, password: string): Promise<void> {
  await c.waitFor('+OK');
  c.sock.write(`USER ${user}\r\n`);
  await c.waitFor('+OK', 10_000);
  const mark = c.received().length;
  c.sock.write(`PASS ${password}\r\n`);
  await waitFor(() => c.received().subarray(mark).toString('latin1').includes('+OK'), 'the PASS reply');
}

describe('systemd Accept=no: one process, every connection', () => {
  it('serves several POP3 sessions at once against the real Dovecot, in the one process it was started as', async () => {
    const d = await socketActivatedDaemon(['--log-stderr', '-p', 'pop3', '--connect', `127.0.0.1:${dovecot.pop3Port}`]);
    try {
      const port = d.ports[0]!;
      // Two sessions open at the same time, a third after they are done.
      const a = await tcpClient(port);
      const b = await tcpClient(port);
      await pop3Login(a, 'alice', 'secret');
      await pop3Login(b, 'bob', 'hunter2');
      for (const c of [a, b]) c.sock.write('STAT\r\nQUIT\r\n');
      await Promise.all([a.eof, b.eof]);
      // The server's close reaches the client as a half-close; the client closes its side too.
      for (const x of [a, b]) x.sock.end();
      const c = await tcpClient(port);
      await pop3Login(c, 'alice', 'secret');
      c.sock.write('QUIT\r\n');
      await c.eof;
      c.sock.end();
      for (const x of [a, b, c]) expect(x.received().toString('latin1')).toMatch(/\+OK Logging out/);
      expect(b.received().toString('latin1')).toMatch(/\r\n\+OK 0 0\r\n/);
      await waitFor(() => (d.logs().match(/session close /g) ?? []).length === 3, `three session close lines in ${d.logs()}`);
      // Dovecot saw the three logins; one wrapper process served them.
      await waitFor(() => (dovecot.log().match(/pop3-login: Info: Login: user=</g) ?? []).length >= 3, 'Dovecot logging the logins');
      expect(d.logs()).toMatch(/listening on 127\.0\.0\.1:\d+ \(systemd socket fd 3\) protocol=pop3/);
      expect(wrapperPids(d.logs()).size).toBe(1);
      d.signal('SIGTERM');
      expect(await d.exited).toBe(0);
    } finally {
      await d.stop();
    }
  }, 60_000);

  it('a spawned server (--exec) does not inherit LISTEN_FDS / LISTEN_PID / LISTEN_FDNAMES', async () => {
    const d = await socketActivatedDaemon(['--log-stderr', '--exec', 'sh -c \'echo "fds=${LISTEN_FDS-unset} pid=${LISTEN_PID-unset} names=${LISTEN_FDNAMES-unset}"\''], { fdnames: ['plain'] });
    try {
      const c = await tcpClient(d.ports[0]!);
      await c.eof;
      expect(c.received().toString('latin1')).toBe('fds=unset pid=unset names=unset\n');
    } finally {
      await d.stop();
    }
  }, 30_000);

  it('a multi-service file takes the passed sockets by name (listen = "systemd:NAME"): POP3 to Dovecot, SMTP to smtp-sink', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pw-accept-no-'));
    const file = join(dir, 'services.toml');
    writeFileSync(
      file,
      [
        '[[service]]',
        'name = "mail-in"',
        'protocol = "smtp"',
        'listen = "systemd:smtp"',
        `connect = "127.0.0.1:${sink.port}"`,
        '',
        '[[service]]',
        'name = "pop"',
        'protocol = "pop3"',
        'listen = "systemd:pop3"',
        `connect = "127.0.0.1:${dovecot.pop3Port}"`,
        '',
      ].join('\n'),
    );
    // fd 3 is named pop3, fd 4 smtp: the file lists them the other way round.
    const d = await socketActivatedDaemon(['--log-stderr', '-f', file], { sockets: 2, fdnames: ['pop3', 'smtp'] });
    try {
      const [pop3Port, smtpPort] = d.ports as [number, number];
      const p = await tcpClient(pop3Port);
      await pop3Login(p, 'alice', 'secret');
      p.sock.write('QUIT\r\n');
      await p.eof;
      p.sock.end();
      expect(p.received().toString('latin1')).toMatch(/\+OK Logging out/);
      const { text, client } = await smtpRaw(smtpPort, [
        { send: 'EHLO client.test\r\n', replies: 1 },
        { send: 'MAIL FROM:<a@example.org>\r\n', replies: 1 },
        { send: 'RCPT TO:<b@example.org>\r\n', replies: 1 },
        { send: 'DATA\r\n', replies: 1 },
        { send: 'Subject: via a passed socket\r\n\r\nhello\r\n.\r\n', replies: 1 },
        { send: 'QUIT\r\n', replies: 1 },
      ]);
      await client.eof;
      client.sock.end();
      expect(text).toMatch(/^220 /);
      expect(text).toMatch(/\r\n221 /);
      await waitFor(() => sink.dumps().some((m) => m.toString('latin1').includes('Subject: via a passed socket')), 'smtp-sink to save the message');
      expect(d.logs()).toMatch(/listening on 127\.0\.0\.1:\d+ \(systemd socket fd 3 pop3\) protocol=pop3 .*service=pop/);
      expect(d.logs()).toMatch(/listening on 127\.0\.0\.1:\d+ \(systemd socket fd 4 smtp\) protocol=smtp .*service=mail-in/);
      await waitFor(() => (d.logs().match(/session close /g) ?? []).length === 2, 'two session close lines');
      expect(d.logs()).toMatch(/session close client=127\.0\.0\.1 protocol=pop3 service=pop end=done/);
      expect(d.logs()).toMatch(/session close client=127\.0\.0\.1 protocol=smtp service=mail-in end=done/);
      expect(wrapperPids(d.logs()).size).toBe(1);
    } finally {
      await d.stop();
    }
  }, 60_000);

  it('a passed socket that no service takes is a configuration error (78), named in the log', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pw-accept-no-'));
    const file = join(dir, 'services.toml');
    writeFileSync(file, `[[service]]\nname = "pop"\nprotocol = "pop3"\nlisten = "systemd:pop3"\nconnect = "127.0.0.1:${dovecot.pop3Port}"\n`);
    const d = await socketActivatedDaemon(['--log-stderr', '-f', file], { sockets: 2, fdnames: ['pop3', 'imap'] });
    try {
      // The launcher starts the wrapper on the first connection.
      const c = await tcpClient(d.ports[0]!);
      expect(await d.exited).toBe(78);
      await c.closed;
      expect(c.received().length).toBe(0);
      expect(d.logs()).toMatch(/no service takes the socket systemd passed as imap/);
    } finally {
      await d.stop();
    }
  }, 30_000);
});
