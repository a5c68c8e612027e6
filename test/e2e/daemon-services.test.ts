import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tcpClient } from '../helpers/client.js';
import { startDovecot, type Dovecot } from '../helpers/dovecot.js';
import { smtpRaw, startSink, type Sink } from '../helpers/postfix.js';
import { startRsyslog, type Rsyslog, type SyslogRecord } from '../helpers/rsyslog.js';
import { freePort, waitFor, WRAPPER } from '../helpers/wrapper.js';

/**
 * A multi-service file (`[[service]]` tables) run by one standalone process:
 * POP3 in front of the real Dovecot and SMTP in front of the real smtp-sink,
 * each with options of its own over the top-level defaults, and every syslog
 * line (read back from a real rsyslogd) naming its service.
 */

let dovecot: Dovecot;
let sink: Sink;
let rs: Rsyslog;

beforeAll(async () => {
  [dovecot, sink, rs] = await Promise.all([startDovecot(), startSink(), startRsyslog()]);
}, 30_000);

afterAll(async () => {
  await Promise.all([dovecot?.stop(), sink?.stop(), rs?.stop()]);
});

describe('many services in one process', () => {
  it('pop3 → Dovecot and smtp → smtp-sink from one file; every line names its service; per-service options', async () => {
    const [pop3Port, smtpPort] = [await freePort(), await freePort()];
    const dir = mkdtempSync(join(tmpdir(), 'pw-services-'));
    const file = join(dir, 'services.toml');
    writeFileSync(
      file,
      [
        '# top level: defaults for every service',
        'maxViolations = 3',
        '',
        '[[service]]',
        'name = "pop3"',
        'protocol = "pop3"',
        `listen = "127.0.0.1:${pop3Port}"`,
        `connect = "127.0.0.1:${dovecot.pop3Port}"`,
        'logLevel = 2',
        '',
        '[[service]]',
        'name = "mx"',
        'protocol = "smtp"',
        `listen = "127.0.0.1:${smtpPort}"`,
        'destType = "ip"',
        'destAddr = "127.0.0.1"',
        `destPort = ${sink.port}`,
        'maxViolations = 1',
        '',
      ].join('\n'),
    );
    const w = rs.withDevLog([process.execPath, WRAPPER, '-f', file]);
    const child = spawn(w.cmd, w.args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (b: Buffer) => (stderr += b.toString()));
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    try {
      const mine = (r: SyslogRecord) => r.program === 'protowrap' && r.pid === String(child.pid);
      await rs.waitFor((r) => mine(r) && /^listening on .* protocol=pop3 service=pop3 server=/.test(r.msg), 'the pop3 listener');
      await rs.waitFor((r) => mine(r) && /^listening on .* protocol=smtp service=mx server=/.test(r.msg), 'the smtp listener');

      // POP3: a refused line (maxViolations 3 from the top level: the session goes on), then a real login.
      const p = await tcpClient(pop3Port);
      await p.waitFor('+OK');
      p.sock.write('XYZZY\r\n');
      await p.waitFor('-ERR');
      p.sock.write('USER alice\r\n');
      await waitFor(() => (p.received().toString('latin1').match(/\+OK/g) ?? []).length >= 2, 'the USER reply');
      p.sock.write('PASS secret\r\n');
      await waitFor(() => (p.received().toString('latin1').match(/\+OK/g) ?? []).length >= 3, 'the PASS reply');
      p.sock.write('QUIT\r\n');
      await p.eof;
      p.sock.end();
      expect(p.received().toString('latin1')).toMatch(/\+OK Logging out/);

      // SMTP: one refused line closes the session (maxViolations 1 in its table).
      const { client } = await smtpRaw(smtpPort, [
        { send: 'EHLO client.test\r\n', replies: 1 },
        { send: 'MAIL FROM:<a@example.org>\r\n', replies: 1 },
        { send: 'RCPT TO:<b@example.org>\r\n', replies: 1 },
        { send: 'DATA\r\n', replies: 1 },
        { send: 'Subject: two services\r\n\r\nhello\r\n.\r\n', replies: 1 },
        { send: 'XYZZY\r\n', replies: 1 },
      ]);
      await client.eof;
      client.sock.end();
      // The message went through; the refusal, then the wrapper's 421 for too many violations.
      expect(client.received().toString('latin1')).toMatch(/\r\n250 [^\r\n]*\r\n500 [^\r\n]*\r\n421 [^\r\n]*\r\n$/);
      await waitFor(() => sink.dumps().some((m) => m.toString('latin1').includes('Subject: two services')), 'smtp-sink to save the message');

      await rs.waitFor((r) => mine(r) && r.msg.startsWith('session close client=127.0.0.1 protocol=pop3 service=pop3 end=done'), 'the pop3 session close');
      await rs.waitFor((r) => mine(r) && r.msg.startsWith('session close client=127.0.0.1 protocol=smtp service=mx end=too_many_violations'), 'the smtp session close');
      const lines = rs.records().filter(mine).map((r) => r.msg);
      expect(lines).toContainEqual(expect.stringMatching(/^refused client=127\.0\.0\.1 protocol=pop3 service=pop3 state=\S+ code=\S+ /));
      expect(lines).toContainEqual(expect.stringMatching(/^refused client=127\.0\.0\.1 protocol=smtp service=mx state=\S+ code=\S+ /));
      // logLevel 2 for pop3 only: its half-close lines are there, smtp's are not.
      expect(lines).toContainEqual(expect.stringMatching(/ client=127\.0\.0\.1 protocol=pop3 service=pop3 session=[0-9a-f]{12}$/));
      expect(lines.filter((l) => l.includes('closed its side') && l.includes('service=mx'))).toEqual([]);
      // Every line about a client or a listener names the service it belongs to.
      const about = lines.filter((l) => l.includes('client=') || l.startsWith('listening on'));
      expect(about.length).toBeGreaterThan(6);
      for (const l of about) expect(l).toMatch(/ service=(pop3|mx)\b/);

      child.kill('SIGTERM');
      expect(await exited).toBe(0);
      expect(stderr).toBe('');
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
      await exited;
    }
  }, 60_000);
});
