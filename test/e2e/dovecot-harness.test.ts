import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDovecot, type Dovecot } from '../helpers/dovecot.js';

/** Runs a python3 snippet with argv, returns stdout (python's stdlib clients talk to Dovecot directly). */
function py(code: string, ...args: string[]): string {
  return execFileSync('python3', ['-c', code, ...args], { encoding: 'latin1', timeout: 20_000 });
}

describe('dovecot test harness', () => {
  let dc: Dovecot;
  beforeAll(async () => {
    dc = await startDovecot();
  });
  afterAll(() => dc?.stop());

  it('serves POP3 with the passwd-file users and the maildir messages', () => {
    dc.addMessage('alice', 'Subject: one\r\n\r\nbody one\r\n');
    const out = py(
      `import poplib,sys
p=poplib.POP3('127.0.0.1',int(sys.argv[1]))
print(p.getwelcome().decode())
p.user('alice'); print(p.pass_('secret').decode())
print(p.stat())
print(b'|'.join(p.retr(1)[1]).decode())
p.quit()`,
      String(dc.pop3Port),
    );
    expect(out).toMatch(/^\+OK /);
    expect(out).toContain('+OK Logged in.');
    expect(out).toMatch(/\(1, \d+\)/);
    expect(out).toContain('Subject: one||body one');
    dc.clearMailbox('alice');
  });

  it('rejects a bad password on POP3 and logs the failure with the user name', () => {
    const mark = dc.logMark();
    const out = py(
      `import poplib,sys
p=poplib.POP3('127.0.0.1',int(sys.argv[1]))
p.user('bob')
try:
  p.pass_('wrong'); print('LOGGED IN')
except poplib.error_proto as e: print('ERR', e)
p.quit()`,
      String(dc.pop3Port),
    );
    expect(out).toMatch(/^ERR b'-ERR \[AUTH\] Authentication failed\./);
    expect(dc.logSince(mark)).toMatch(/pop3-login: .*user=<bob>/);
  });

  it('serves IMAP: login, select, fetch', () => {
    dc.addMessage('bob', 'Subject: imap\r\n\r\nhello imap\r\n');
    const out = py(
      `import imaplib,sys
m=imaplib.IMAP4('127.0.0.1',int(sys.argv[1]))
print(m.login('bob','hunter2')[0])
print(m.select('INBOX'))
t,d=m.fetch('1','(BODY[TEXT])'); print(d[0][1].decode())
m.logout()`,
      String(dc.imapPort),
    );
    expect(out).toContain('OK');
    expect(out).toContain("('OK', [b'1'])");
    expect(out).toContain('hello imap');
    dc.clearMailbox('bob');
  });

  it('ssl: true offers STLS and STARTTLS; stop() ends dovecot and removes its dir', async () => {
    const other = await startDovecot({ users: [{ name: 'carol', password: 'pw' }], ssl: true });
    try {
      expect(existsSync(other.maildirOf('carol'))).toBe(true);
      const out = py(
        `import poplib,imaplib,sys
p=poplib.POP3('127.0.0.1',int(sys.argv[1])); print(sorted(p.capa())); p.quit()
m=imaplib.IMAP4('127.0.0.1',int(sys.argv[2])); print(m.capabilities); m.logout()`,
        String(other.pop3Port),
        String(other.imapPort),
      );
      expect(out).toContain("'STLS'");
      expect(out).toContain("'STARTTLS'");
    } finally {
      await other.stop();
    }
    expect(existsSync(other.dir)).toBe(false);
    expect(() => process.kill(other.pid, 0)).toThrow();
  });
});
