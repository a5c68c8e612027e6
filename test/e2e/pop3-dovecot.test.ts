import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDovecot, type Dovecot } from '../helpers/dovecot.js';
import { curl, py, raw } from '../helpers/wire.js';
import { freePort, runPiped, startStandalone, waitFor, type Standalone } from '../helpers/wrapper.js';

/** Runs a raw session to the end (the server closes after QUIT); returns every byte received. */
async function rawSession(port: number, input: string): Promise<string> {
  const c = await raw(port);
  await c.until('\r\n');
  c.send(input);
  await c.closed;
  return c.received();
}

const M1 = 'From: a@example.org\r\nSubject: one\r\n\r\nbody one\r\n';
const M2 = 'From: b@example.org\r\nSubject: two\r\n\r\nbody two\r\n.a line starting with a dot\r\n.\r\nlast\r\n';

function fill(dc: Dovecot, user: string): void {
  dc.clearMailbox(user);
  dc.addMessage(user, M1);
  dc.addMessage(user, M2);
}

function messagesIn(dc: Dovecot, user: string): number {
  const md = dc.maildirOf(user);
  return readdirSync(join(md, 'new')).length + readdirSync(join(md, 'cur')).length;
}

const POPLIB_READ = `import poplib,sys
p=poplib.POP3('127.0.0.1',int(sys.argv[1]))
print(p.getwelcome())
print('CAPA', sorted(p.capa().items()))
print(p.user('alice')); print(p.pass_('secret'))
print(p.stat()); print(p.list()); print(p.list(2)); print(p.uidl()); print(p.uidl(1))
print(p.retr(2)); print(p.top(1,0)); print(p.noop()); print(p.rset())
print(p.quit())`;

const POPLIB_DELETE = `import poplib,sys
p=poplib.POP3('127.0.0.1',int(sys.argv[1]))
p.user(sys.argv[2]); print(p.pass_(sys.argv[3]))
print(p.dele(1)); print(p.stat()); print(p.quit())
p=poplib.POP3('127.0.0.1',int(sys.argv[1]))
p.user(sys.argv[2]); p.pass_(sys.argv[3])
print(p.stat()); print(p.list()); print(p.retr(1)); print(p.quit())`;

describe('pop3 through the built wrapper in front of a real dovecot', () => {
  let dc: Dovecot;
  let w: Standalone;
  let conf: string;

  beforeAll(async () => {
    // ssl: Dovecot offers STLS, so the wrapper has something to remove.
    dc = await startDovecot({ ssl: true });
    conf = join(dc.dir, 'protowrap.toml');
    writeFileSync(conf, 'protocol = "pop3"\nmaxLoginAttempts = 2\n');
    w = await startStandalone(['--protocol', 'pop3', '--connect', `127.0.0.1:${dc.pop3Port}`, '--log-level', '3']);
  });
  afterAll(async () => {
    await w?.stop();
    await dc?.stop();
  });

  it('python poplib: the same session direct and wrapped, but for STLS in CAPA', async () => {
    fill(dc, 'alice');
    const direct = (await py(POPLIB_READ, String(dc.pop3Port))).split('\n');
    const wrapped = (await py(POPLIB_READ, String(w.port))).split('\n');
    const capa = (lines: string[]) => lines.find((l) => l.startsWith('CAPA'))!;
    expect(capa(direct)).toContain("('STLS', [])");
    expect(capa(wrapped)).toBe(capa(direct).replace("('STLS', []), ", ''));
    expect(wrapped.filter((l) => !l.startsWith('CAPA'))).toEqual(direct.filter((l) => !l.startsWith('CAPA')));
    expect(wrapped.join('\n')).toContain('.a line starting with a dot');
  });

  it('python poplib: DELE and a new session show the same mailbox direct and wrapped', async () => {
    fill(dc, 'alice');
    fill(dc, 'bob');
    const direct = await py(POPLIB_DELETE, String(dc.pop3Port), 'alice', 'secret');
    const wrapped = await py(POPLIB_DELETE, String(w.port), 'bob', 'hunter2');
    expect(wrapped).toBe(direct);
    expect(wrapped).toContain('Subject: two');
    expect(messagesIn(dc, 'alice')).toBe(1);
    expect(messagesIn(dc, 'bob')).toBe(1);
  });

  it('curl pop3://: list, fetch, DELE give the same output direct and wrapped (AUTH PLAIN via SASL)', async () => {
    fill(dc, 'alice');
    fill(dc, 'bob');
    const session = async (port: number, user: string) => [
      await curl('-u', user, `pop3://127.0.0.1:${port}/`),
      await curl('-u', user, `pop3://127.0.0.1:${port}/2`),
      await curl('-u', user, '-I', '-X', 'DELE 1', `pop3://127.0.0.1:${port}/`),
      await curl('-u', user, `pop3://127.0.0.1:${port}/`),
    ];
    const direct = await session(dc.pop3Port, 'alice:secret');
    const wrapped = await session(w.port, 'bob:hunter2');
    expect(wrapped).toEqual(direct);
    expect(wrapped[0]).toMatch(/^1 \d+\r\n2 \d+\r\n$/);
    expect(wrapped[1]).toBe(M2);
    // POP3 numbers afresh in a new session: the one message left is 1.
    expect(wrapped[3]).toMatch(/^1 \d+\r\n$/);
    expect(messagesIn(dc, 'bob')).toBe(1);
  });

  it('inetd mode: a whole pipelined session in one write gets the same bytes as dovecot gives directly', async () => {
    fill(dc, 'alice');
    const input = 'CAPA\r\nUSER alice\r\nPASS secret\r\nSTAT\r\nLIST\r\nRETR 2\r\nTOP 1 1\r\nUIDL 2\r\nQUIT\r\n';
    const direct = await rawSession(dc.pop3Port, input);
    // No DELE: the mailbox (and its UIDLs) is the same for the second session.
    const r = await runPiped(['--protocol', 'pop3', '--connect', `127.0.0.1:${dc.pop3Port}`], input);
    expect(r.code).toBe(0);
    expect(r.stdout.toString('latin1')).toBe(direct.replace('\r\nSTLS\r\n', '\r\n'));
    expect(r.stdout.toString('latin1')).not.toContain('STLS');
    expect(direct).toContain('\r\nSTLS\r\n');
    expect(r.stdout.toString('latin1')).toContain('+OK Logging out');
  });

  it('overlong USER and PASS are refused and never reach dovecot; the session goes on', async () => {
    fill(dc, 'alice');
    const mark = dc.logMark();
    const c = await raw(w.port);
    await c.until('\r\n');
    // 255 octets with CRLF is the RFC 2449 line: it reaches dovecot; one more octet does not.
    c.send(`USER ${'v'.repeat(248)}\r\n`);
    await c.until('\r\n+OK\r\n');
    c.send(`USER ${'u'.repeat(249)}\r\n`);
    await c.until('-ERR line too long\r\n');
    c.send(`USER alice\r\nPASS ${'p'.repeat(300)}\r\n`);
    await waitFor(() => c.received().split('-ERR line too long').length === 3, 'second refusal');
    c.send('PASS secret\r\nSTAT\r\nQUIT\r\n');
    await c.closed;
    expect(c.received()).toMatch(/^\+OK [^\r]*\r\n\+OK\r\n-ERR line too long\r\n\+OK\r\n-ERR line too long\r\n\+OK Logged in\.\r\n\+OK 2 \d+\r\n\+OK Logging out\.\r\n$/);
    await waitFor(() => dc.logSince(mark).includes('Disconnected: Logged out'), 'dovecot session end');
    const log = dc.logSince(mark);
    expect(log).toMatch(/Login: user=<alice>/);
    expect(log).not.toMatch(/Password mismatch|uuuuuuuu/);
  });

  it('wrong-state commands are refused, pipelined commands after a refused one run in order', async () => {
    fill(dc, 'alice');
    const c = await raw(w.port);
    await c.until('\r\n');
    c.send('STAT\r\nRETR 1\r\nDELE 1\r\n');
    await waitFor(() => c.received().split('-ERR command not valid in this state\r\n').length === 4, 'three refusals');
    expect(messagesIn(dc, 'alice')).toBe(2);
    c.send('USER alice\r\nPASS secret\r\nDELE 1\r\nXYZZY\r\nDELE 2\r\nUSER bob\r\nQUIT\r\n');
    await c.closed;
    const lines = c.received().split('\r\n').slice(4);
    expect(lines).toEqual(['+OK', '+OK Logged in.', '+OK Marked to be deleted.', '-ERR unknown command', '+OK Marked to be deleted.', '-ERR command not valid in this state', expect.stringMatching(/^\+OK Logging out, messages deleted\./), '']);
    expect(messagesIn(dc, 'alice')).toBe(0);
    await waitFor(() => w.logs().includes('code=bad_state reason="USER'), 'refusal logged');
    expect(w.logs()).toMatch(/refused client=127\.0\.0\.1 protocol=pop3 state=transaction code=bad_state reason="USER not valid in transaction" line="USER bob"/);
  });

  it('brute force: after maxLoginAttempts (3) failures the wrapper closes; bad user and bad password answer alike', async () => {
    fill(dc, 'alice');
    const mark = dc.logMark();
    const c = await raw(w.port);
    await c.until('\r\n');
    c.send('USER alice\r\nPASS wrongpass1\r\nUSER nosuchuser\r\nPASS wrongpass2\r\nUSER alice\r\nPASS wrongpass3\r\nUSER alice\r\nPASS secret\r\n');
    await c.closed;
    const fail = '-ERR [AUTH] Authentication failed.\r\n';
    expect(c.received()).toMatch(new RegExp(`^\\+OK [^\\r]*\\r\\n(\\+OK\\r\\n${fail.replace(/[[\].]/g, '\\$&')}){3}$`));
    await waitFor(() => /auth failed, 3 attempts/.test(dc.logSince(mark)), 'dovecot disconnect line');
    const log = dc.logSince(mark);
    expect(log.match(/passwd-file\(alice,[^)]*\): Password mismatch/g)).toHaveLength(2);
    expect(log).toMatch(/passwd-file\(nosuchuser,[^)]*\): unknown user/);
    expect(log).not.toMatch(/Login: user=<alice>/);
  });

  it('AUTH: a bad SASL line cancels the exchange at dovecot, the answer is the same -ERR; a good AUTH PLAIN logs in', async () => {
    const mark = dc.logMark();
    const plain = Buffer.from('\0alice\0secret').toString('base64');
    const c = await raw(w.port);
    await c.until('\r\n');
    c.send('AUTH PLAIN\r\n');
    await c.until('\r\n+ \r\n');
    c.send('not base64!\r\n');
    await c.until('-ERR [AUTH] Authentication failed.\r\n');
    c.send(`AUTH PLAIN ${plain}\r\nSTAT\r\nQUIT\r\n`);
    await c.closed;
    expect(c.received()).toMatch(/^\+OK [^\r]*\r\n\+ \r\n-ERR \[AUTH\] Authentication failed\.\r\n\+OK Logged in\.\r\n\+OK \d+ \d+\r\n\+OK Logging out\.\r\n$/);
    await waitFor(() => /Login: user=<alice>, method=PLAIN/.test(dc.logSince(mark)), 'dovecot login line');
    // Dovecot saw the exchange cancelled ("*"), never the bad line: no failed password.
    expect(dc.logSince(mark)).not.toMatch(/Password mismatch/);
  });

  it('maxLoginAttempts from the config file (2), inetd mode: the third try never reaches dovecot', async () => {
    const mark = dc.logMark();
    const r = await runPiped(['-f', conf, '--connect', `127.0.0.1:${dc.pop3Port}`], 'USER bob\r\nPASS wrongpass4\r\nUSER bob\r\nPASS wrongpass5\r\nUSER bob\r\nPASS hunter2\r\nSTAT\r\n');
    expect(r.code).toBe(0);
    expect(r.stdout.toString('latin1')).toMatch(/^\+OK [^\r]*\r\n(\+OK\r\n-ERR \[AUTH\] Authentication failed\.\r\n){2}$/);
    expect(r.stderr).toMatch(/closing client=stdin protocol=pop3/);
    await waitFor(() => /auth failed, 2 attempts/.test(dc.logSince(mark)), 'dovecot disconnect line');
    expect(dc.logSince(mark)).not.toMatch(/Login: user=<bob>/);
  });

  it('STLS: removed from CAPA (that line only) and refused; the session stays readable', async () => {
    const direct = await rawSession(dc.pop3Port, 'CAPA\r\nQUIT\r\n');
    const c = await raw(w.port);
    await c.until('\r\n');
    c.send('CAPA\r\n');
    await c.until('\r\n.\r\n');
    c.send('STLS\r\n');
    await c.until('-ERR STLS not available\r\n');
    c.send('USER alice\r\nPASS secret\r\nNOOP\r\nQUIT\r\n');
    await c.closed;
    const got = c.received();
    const capaDirect = direct.slice(direct.indexOf('\r\n') + 2, direct.indexOf('\r\n.\r\n') + 5);
    expect(capaDirect).toContain('\r\nSTLS\r\n');
    const capaWrapped = got.slice(got.indexOf('\r\n') + 2, got.indexOf('\r\n.\r\n') + 5);
    expect(capaWrapped).toBe(capaDirect.replace('\r\nSTLS\r\n', '\r\n'));
    expect(got.slice(got.indexOf('\r\n.\r\n') + 5)).toMatch(/^-ERR STLS not available\r\n\+OK\r\n\+OK Logged in\.\r\n\+OK\r\n\+OK Logging out\.\r\n$/);
  });

  it('the server unreachable: the client gets -ERR', async () => {
    const port = await freePort();
    const r = await runPiped(['--protocol', 'pop3', '--connect', `127.0.0.1:${port}`], 'USER alice\r\n');
    expect(r.stdout.toString('latin1')).toMatch(/^-ERR [^\r\n]*\r\n$/);
  });

  it('credentials never reach the log, even at log level 3 (runs last: reads the whole log)', async () => {
    await w.stop();
    const log = w.logs();
    expect(log).toContain('PASS <hidden>');
    expect(log).toMatch(/state=sasl session=[0-9a-f]{12}: <hidden>/);
    for (const secret of ['secret', 'hunter2', 'wrongpass', 'AGFsaWNlAHNlY3JldA', 'AGJvYgBodW50ZXIy', 'pppppppp']) expect(log).not.toContain(secret);
  });
});
