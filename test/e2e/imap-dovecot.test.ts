import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDovecot, type Dovecot } from '../helpers/dovecot.js';
import { curl, py, raw, type Raw } from '../helpers/wire.js';
import { freePort, runPiped, startStandalone, waitFor, type Standalone } from '../helpers/wrapper.js';

/**
 * The end of Dovecot's greeting. Under load Dovecot may first send
 * "* OK Waiting for authentication process to respond..".
 */
const GREETED = ' ready.\r\n';

/** Connects, waits for the greeting, logs in as alice. */
async function loggedIn(port: number): Promise<Raw> {
  const c = await raw(port);
  await c.until(GREETED);
  c.send('L1 LOGIN alice secret\r\n');
  await c.until('L1 OK');
  return c;
}

const M1 = 'From: a@example.org\r\nSubject: one\r\n\r\nbody one\r\n';
const M2 = 'From: b@example.org\r\nSubject: two\r\n\r\nbody two\r\nA9 LOGOUT\r\n* BYE not really\r\n';

function fill(dc: Dovecot, user: string): void {
  dc.clearMailbox(user);
  dc.addMessage(user, M1);
  dc.addMessage(user, M2);
}

/** The messages in USER's INBOX as dovecot stored them (with LF line ends), CRLF given back. */
function messages(dc: Dovecot, user: string): string[] {
  const md = dc.maildirOf(user);
  return ['new', 'cur'].flatMap((d) => readdirSync(join(md, d)).map((f) => readFileSync(join(md, d, f), 'latin1').replace(/\r?\n/g, '\r\n')));
}

/** Server-chosen values that differ between two runs: UIDVALIDITY, timings. */
const normalize = (s: string) => s.replace(/APPENDUID \d+/g, 'APPENDUID V').replace(/\(\d+\.\d+ \+ \d+\.\d+(?: \+ \d+\.\d+)? secs\)/g, '(T secs)');

const IMAPLIB = `import imaplib,sys
m=imaplib.IMAP4('127.0.0.1',int(sys.argv[1]))
print('PRE', sorted(m.capabilities))
print(m.login(sys.argv[2],sys.argv[3]))
print('POST', m.capability())
print(m.list())
print(m.select('INBOX'))
print(m.fetch('1:*', '(FLAGS RFC822.SIZE)'))
print(m.fetch('2', '(RFC822)'))
print(m.append('INBOX', '(\\\\Flagged)', None, b'Subject: appended\\r\\n\\r\\nA1 DELETE INBOX\\r\\n'))
print(m.search(None, 'ALL'))
print(m.store('1', '+FLAGS', '\\\\Deleted'))
print(m.expunge())
print(m.uid('FETCH', '1:*', '(FLAGS)'))
print(m.noop())
print(m.close())
print(m.logout())`;

describe('imap through the built wrapper in front of a real dovecot', () => {
  let dc: Dovecot;
  let w: Standalone;
  let conf: string;

  beforeAll(async () => {
    // ssl: Dovecot offers STARTTLS; zlib: it offers COMPRESS=DEFLATE after login. The wrapper must hide both.
    dc = await startDovecot({ ssl: true, extraConfig: 'mail_plugins = $mail_plugins zlib\nprotocol imap {\n  mail_plugins = $mail_plugins imap_zlib\n}' });
    conf = join(dc.dir, 'protowrap.toml');
    writeFileSync(conf, 'protocol = "imap"\nmaxLoginAttempts = 2\nmaxLiteralSize = 100000\n');
    w = await startStandalone(['-f', conf, '--connect', `127.0.0.1:${dc.imapPort}`, '--log-level', '3']);
  });
  afterAll(async () => {
    await w?.stop();
    await dc?.stop();
  });

  it('python imaplib: the same session direct and wrapped, but for STARTTLS and COMPRESS in the capabilities', async () => {
    fill(dc, 'alice');
    fill(dc, 'bob');
    const direct = normalize(await py(IMAPLIB, String(dc.imapPort), 'alice', 'secret')).split('\n');
    const wrapped = normalize(await py(IMAPLIB, String(w.port), 'bob', 'hunter2')).split('\n');
    const line = (lines: string[], p: string) => lines.find((l) => l.startsWith(p))!;
    expect(line(direct, 'PRE')).toContain("'STARTTLS'");
    expect(line(wrapped, 'PRE')).toBe(line(direct, 'PRE').replace(", 'STARTTLS'", ''));
    expect(line(direct, 'POST')).toContain(' COMPRESS=DEFLATE');
    expect(line(wrapped, 'POST')).toBe(line(direct, 'POST').split(' COMPRESS=DEFLATE').join(''));
    const rest = (lines: string[]) => lines.filter((l) => !l.startsWith('PRE') && !l.startsWith('POST'));
    expect(rest(wrapped)).toEqual(rest(direct));
    expect(wrapped.join('\n')).toContain('A9 LOGOUT');
    // What dovecot did: one message expunged, one appended (with the command-looking text as data).
    expect(messages(dc, 'bob').sort()).toEqual(messages(dc, 'alice').sort());
    expect(messages(dc, 'bob').some((m) => m.includes('A1 DELETE INBOX'))).toBe(true);
    expect(messages(dc, 'bob')).toHaveLength(2);
  });

  it('curl imap://: list, fetch, append (-T), delete (-X) give the same output direct and wrapped', async () => {
    fill(dc, 'alice');
    fill(dc, 'bob');
    const upload = join(dc.dir, 'upload.eml');
    writeFileSync(upload, 'From: c@example.org\r\nSubject: uploaded\r\n\r\nup\r\n');
    const session = async (port: number, user: string) => [
      await curl('-u', user, `imap://127.0.0.1:${port}/`),
      await curl('-u', user, `imap://127.0.0.1:${port}/INBOX;UID=2`),
      await curl('-u', user, '-T', upload, `imap://127.0.0.1:${port}/INBOX`),
      await curl('-u', user, '-X', 'UID STORE 1 +FLAGS \\Deleted', `imap://127.0.0.1:${port}/INBOX`),
      await curl('-u', user, '-X', 'EXPUNGE', `imap://127.0.0.1:${port}/INBOX`),
      await curl('-u', user, '-X', 'UID FETCH 1:* (FLAGS)', `imap://127.0.0.1:${port}/INBOX`),
    ];
    const direct = await session(dc.imapPort, 'alice:secret');
    const wrapped = await session(w.port, 'bob:hunter2');
    expect(wrapped).toEqual(direct);
    expect(wrapped[1]).toContain('Subject: two');
    expect(messages(dc, 'bob').sort()).toEqual(messages(dc, 'alice').sort());
    expect(messages(dc, 'bob').some((m) => m.includes('Subject: uploaded'))).toBe(true);
  });

  it('credentials never reach the log, even at log level 3', async () => {
    const c = await raw(w.port);
    await c.until(GREETED);
    c.send('K1 LOGIN alice wrongsecret\r\nK2 AUTHENTICATE PLAIN\r\n');
    await c.until('+ ');
    c.send('AGFsaWNlAHNlY3JldA==\r\nK3 LOGOUT\r\n');
    await c.closed;
    await waitFor(() => w.logs().includes('K3 LOGOUT'), 'the session in the log');
    const logs = w.logs();
    expect(logs).toMatch(/K1 <hidden>\n/);
    expect(logs).toMatch(/K2 <hidden>\n/);
    expect(logs).toMatch(/state=not_authenticated\/auth session=[0-9a-f]{12}: <hidden>\n/);
    // The failed LOGIN is a line of its own that names the user tried (a name, not a credential), nothing else does.
    expect(logs).toMatch(/ login failed client=127\.0\.0\.1 protocol=imap state=not_authenticated user="alice" session=[0-9a-f]{12}\n/);
    const withoutUser = logs.replace(/ login failed .* user="alice" /g, ' login failed ');
    for (const s of ['secret', 'hunter2', 'AGJvYgBodW50ZXIy', 'AGFsaWNlAHNlY3JldA', 'alice']) expect(withoutUser).not.toContain(s);
  });

  it('hostile: an overlong LOGIN is answered with BYE and never reaches dovecot', async () => {
    const mark = dc.logMark();
    const c = await raw(w.port);
    await c.until(GREETED);
    c.send(`A1 LOGIN alice ${'x'.repeat(9000)}\r\nA2 LOGIN alice secret\r\n`);
    await c.closed;
    expect(c.received()).toMatch(/\* BYE Command line too long\r\n$/);
    expect(c.received()).not.toContain('A2 OK');
    expect(dc.logSince(mark)).not.toContain('user=<alice>');
  });

  it('hostile: commands in the wrong state are refused by the wrapper; pipelined commands after them go on', async () => {
    const c = await raw(w.port);
    await c.until(GREETED);
    c.send('A1 SELECT INBOX\r\nA2 FETCH 1 BODY[]\r\nA3 XYZZY\r\nA4 NOOP\r\nA5 LOGIN alice secret\r\nA6 SELECT INBOX\r\nA7 LOGOUT\r\n');
    await c.closed;
    const got = c.received();
    expect(got).toContain('A1 BAD Command not allowed in this state\r\nA2 BAD Command not allowed in this state\r\nA3 BAD Unknown command\r\nA4 OK');
    expect(got).toMatch(/A5 OK[^\r]*Logged in\r\n/);
    expect(got).toMatch(/A6 OK \[READ-WRITE\]/);
    expect(got).toMatch(/\* BYE[^\r]*\r\nA7 OK/);
  });

  it('hostile: a literal that hides commands is data; one that lies about its size swallows them', async () => {
    fill(dc, 'alice');
    const inner = 'Subject: x\r\n\r\nA3 CREATE Smuggled\r\n';
    const c = await loggedIn(w.port);
    c.send(`A2 APPEND INBOX {${inner.length}}\r\n`);
    await c.until('+ ');
    c.send(`${inner}\r\nA4 LIST "" "*"\r\n`);
    await c.until('A4 OK');
    expect(c.received()).not.toContain('Smuggled');
    expect(messages(dc, 'alice').filter((m) => m === inner)).toHaveLength(1);
    // Announce 40 octets, send 19 and a command: the command's bytes are literal data; the
    // next command is taken as the rest of APPEND, which it is not: the wrapper closes.
    c.send('A5 APPEND INBOX {40}\r\n');
    await c.until('A4 OK');
    await waitFor(() => /\+ [^\r]*\r\n[^]*\+ /.test(c.received()), 'second continuation');
    c.send(`${'y'.repeat(19)}A6 CREATE Smuggled2\r\nA7 NOOP\r\n`);
    await c.closed;
    expect(c.received()).toMatch(/A5 BAD Invalid arguments\r\n\* BYE Closing connection\r\n$/);
    expect(c.received()).not.toContain('A7 OK');
    expect(existsSync(join(dc.maildirOf('alice'), '.Smuggled2'))).toBe(false);
    expect(existsSync(join(dc.maildirOf('alice'), '.Smuggled'))).toBe(false);
    expect(messages(dc, 'alice')).toHaveLength(3);
  });

  it('hostile: a {n+} literal where the grammar has no string (a FETCH attribute) closes the session; the command in it never runs', async () => {
    const c = await loggedIn(w.port);
    c.send('A2 SELECT INBOX\r\nA3 FETCH 1 {17+}\r\nA4 CREATE Smug3\r\n\r\nA5 LIST "" "*"\r\nA6 LOGOUT\r\n');
    await c.closed;
    expect(c.received()).toMatch(/A3 BAD [^\r]*\r\n\* BYE Closing connection\r\n$/);
    expect(c.received()).not.toContain('A4 ');
    expect(c.received()).not.toContain('A5 ');
    expect(c.received()).not.toContain('Smug3');
    expect(existsSync(join(dc.maildirOf('alice'), '.Smug3'))).toBe(false);
  });

  it("hostile: a {n+} literal after a tag dovecot rejects (']') never runs as a LOGIN", async () => {
    const mark = dc.logMark();
    const c = await raw(w.port);
    await c.until(GREETED);
    // Dovecot answers "a]" with * BAD and skips the line, unread literal and all: the literal would be its next command.
    c.send('a] ID {21+}\r\nc LOGIN alice wrong\r\n\r\nd NOOP\r\n');
    await c.closed;
    expect(c.received()).toMatch(/ ready\.\r\n\* BYE Missing or invalid tag\r\n$/);
    expect(c.received()).not.toContain('c NO');
    await new Promise((r) => setTimeout(r, 200));
    expect(dc.logSince(mark)).not.toMatch(/Password mismatch/i);
  });

  it('hostile: a {n+} literal in an ID list dovecot rejects as it parses it never runs as a LOGIN', async () => {
    const mark = dc.logMark();
    const c = await raw(w.port);
    await c.until(GREETED);
    c.send('a ID (a {21+}\r\nc LOGIN alice wrong\r\n)\r\nd NOOP\r\n');
    await c.closed;
    expect(c.received()).toMatch(/a BAD [^\r]*\r\n\* BYE Closing connection\r\n$/);
    expect(c.received()).not.toContain('c NO');
    await new Promise((r) => setTimeout(r, 200));
    expect(dc.logSince(mark)).not.toMatch(/Password mismatch/i);
  });

  it('hostile: a {n+} literal in a command dovecot does not know (GETQUOTAROOT, no quota plugin) never runs', async () => {
    const c = await loggedIn(w.port);
    expect(c.received()).not.toMatch(/ QUOTA/);
    c.send('A2 GETQUOTAROOT {17+}\r\nA4 CREATE Smug5\r\n\r\nA6 LOGOUT\r\n');
    await c.closed;
    expect(c.received()).toMatch(/A2 BAD Unknown command\r\n\* BYE Closing connection\r\n$/);
    expect(existsSync(join(dc.maildirOf('alice'), '.Smug5'))).toBe(false);
  });

  it('hostile: APPEND with a flag or date dovecot refuses unread, and CREATE parameters dovecot ignores, cannot hide a {n+} command', async () => {
    // Dovecot answers these with BAD (or OK for CREATE) and reads the {17+} literal as its next command.
    for (const [n, args] of [
      [6, 'APPEND INBOX (\\Recent)'],
      [7, 'APPEND INBOX "yesterday"'],
      [8, 'CREATE Box8 (USE ('],
    ] as const) {
      const c = await loggedIn(w.port);
      c.send(`A2 ${args} {17+}\r\nA4 CREATE Smug${n}\r\n))\r\nA6 LOGOUT\r\n`);
      await c.closed;
      expect(c.received()).toMatch(/A2 BAD (Invalid|Too many) arguments\r\n\* BYE Closing connection\r\n$/);
      expect(existsSync(join(dc.maildirOf('alice'), `.Smug${n}`))).toBe(false);
    }
  });

  it('hostile: a reused tag cannot hide failed logins from maxLoginAttempts (2)', async () => {
    const mark = dc.logMark();
    const c = await raw(w.port);
    await c.until(GREETED);
    // An ID key over 30 characters gets Dovecot's BAD with tag a: without a check on tags in flight,
    // that BAD was taken for the LOGIN's answer.
    const id = `a ID ("${'k'.repeat(40)}" NIL)`;
    for (let i = 1; i <= 3 && !c.received().includes('* BYE'); i++) {
      c.send(`${id}\r\na LOGIN alice wrong${i}\r\n`);
      await waitFor(() => (c.received().match(/^a (NO|BAD)/gm) ?? []).length >= 2 * i, `answers of round ${i}`);
    }
    c.send('b LOGIN alice wrong4\r\nb LOGIN alice wrong5\r\nb LOGIN alice wrong6\r\n');
    await c.closed;
    expect(c.received()).toContain('a BAD Tag already in use\r\n');
    expect(c.received()).toMatch(/\* BYE Too many failed login attempts\r\n$/);
    await new Promise((r) => setTimeout(r, 200));
    expect(dc.logSince(mark).match(/Password mismatch/gi)).toHaveLength(2);
  });

  it('{n+} works where dovecot advertises LITERAL+; a literal over maxLiteralSize is refused before dovecot sees it', async () => {
    fill(dc, 'alice');
    const c = await loggedIn(w.port);
    c.send('A2 APPEND INBOX {21+}\r\nSubject: plus\r\n\r\nhi\r\n\r\nA3 APPEND INBOX {100001}\r\nA4 NOOP\r\nA5 LOGOUT\r\n');
    await c.closed;
    expect(c.received()).toMatch(/A2 OK \[APPENDUID \d+ \d+\]/);
    // The wrapper answers A3 at once; dovecot's answers to A2 and A4 may come before or after it.
    expect(c.received()).toContain('A3 NO [TOOBIG] Literal too large\r\n');
    expect(c.received()).toMatch(/A4 OK NOOP/);
    expect(messages(dc, 'alice')).toContain('Subject: plus\r\n\r\nhi\r\n');
    expect(messages(dc, 'alice')).toHaveLength(3);
  });

  it('hostile: brute force past maxLoginAttempts (2): BYE after the second failure; the third try never reaches dovecot', async () => {
    const mark = dc.logMark();
    const c = await raw(w.port);
    await c.until(GREETED);
    c.send('A1 LOGIN alice wrong1\r\nA2 LOGIN alice wrong2\r\nA3 LOGIN alice secret\r\nA4 NOOP\r\n');
    await c.closed;
    const got = c.received();
    expect(got).toMatch(/A1 NO [^\r]*\r\nA2 NO [^\r]*\r\n\* BYE Too many failed login attempts\r\n$/);
    await waitFor(() => (dc.logSince(mark).match(/Password mismatch/gi) ?? []).length >= 2, 'two failures in the dovecot log');
    await new Promise((r) => setTimeout(r, 200));
    expect(dc.logSince(mark).match(/Password mismatch/gi)).toHaveLength(2);
    expect(dc.logSince(mark)).not.toMatch(/Login: user=<alice>/);
  });

  it('hostile: STARTTLS and COMPRESS are hidden and refused; the session stays readable', async () => {
    const c = await raw(w.port);
    await c.until(GREETED);
    expect(c.received()).not.toContain('STARTTLS');
    c.send('A1 STARTTLS\r\nA2 CAPABILITY\r\nA3 LOGIN alice secret\r\nA4 CAPABILITY\r\nA5 COMPRESS DEFLATE\r\nA6 NOOP\r\nA7 LOGOUT\r\n');
    await c.closed;
    const got = c.received();
    expect(got).toContain('A1 BAD STARTTLS is not available through this gateway\r\n* CAPABILITY ');
    expect(got).toContain('A5 BAD COMPRESS is not available through this gateway\r\n');
    expect(got).toMatch(/A4 OK[^]*A6 OK NOOP/);
    expect(got).not.toMatch(/STARTTLS [^i]|COMPRESS=/);
    expect(got).toMatch(/A7 OK/);
  });

  it('a synchronizing literal dovecot refuses (no +) is cancelled: the next line is a command again', async () => {
    const c = await loggedIn(w.port);
    c.send('A2 APPEND Nope {5}\r\n');
    await c.until('A2 NO');
    expect(c.received()).not.toMatch(/\r\n\+ /);
    c.send('A3 NOOP\r\nA4 LOGOUT\r\n');
    await c.closed;
    expect(c.received()).toMatch(/A2 NO \[TRYCREATE\][^]*A3 OK NOOP[^]*A4 OK/);
  });

  it('AUTHENTICATE PLAIN step by step, and * to cancel', async () => {
    const c = await raw(w.port);
    await c.until(GREETED);
    c.send('A1 AUTHENTICATE PLAIN\r\n');
    await c.until('+ ');
    c.send('*\r\nA2 AUTHENTICATE PLAIN\r\n');
    await c.until('A1 BAD');
    await waitFor(() => (c.received().match(/\r\n\+ /g) ?? []).length >= 2, 'second +');
    c.send(`${Buffer.from('\0alice\0secret').toString('base64')}\r\nA3 SELECT INBOX\r\nA4 LOGOUT\r\n`);
    await c.closed;
    expect(c.received()).toMatch(/A1 BAD [^\r]*\r\n[^]*A2 OK [^]*A3 OK [^]*A4 OK/);
  });

  it('IDLE ... DONE through the wrapper', async () => {
    const c = await loggedIn(w.port);
    c.send('A2 SELECT INBOX\r\nA3 IDLE\r\n');
    await c.until('+ idling');
    c.send('A4 NOOP\r\n');
    await c.until('* BAD Expected DONE');
    c.send('DONE\r\nA5 LOGOUT\r\n');
    await c.closed;
    expect(c.received()).toMatch(/A3 OK Idle completed[^\r]*\r\n[^]*A5 OK/);
  });

  it('inetd mode: a pipelined session piped in, --max-violations, and * BYE when the server is unavailable', async () => {
    const r = await runPiped(['-f', conf, '--connect', `127.0.0.1:${dc.imapPort}`], 'A1 LOGIN alice secret\r\nA2 SELECT INBOX\r\nA3 FETCH 1 (FLAGS)\r\nA4 LOGOUT\r\n');
    const out = r.stdout.toString('latin1');
    expect(out).toMatch(/^(\* OK [^\r]*\r\n)*\* OK \[CAPABILITY [^\]]*\] Dovecot/);
    expect(out).not.toContain('STARTTLS');
    expect(out).toMatch(/A1 OK[^]*A2 OK[^]*\* 1 FETCH \(FLAGS[^]*A3 OK[^]*A4 OK/);
    const rude = await runPiped(['-f', conf, '--max-violations', '3', '--connect', `127.0.0.1:${dc.imapPort}`], 'A1 X\r\nA2 FETCH 1 BODY[]\r\nA3 STARTTLS\r\nA4 NOOP\r\n');
    expect(rude.stdout.toString('latin1')).toMatch(/A1 BAD Unknown command\r\nA2 BAD Command not allowed in this state\r\nA3 BAD [^\r]*\r\n\* BYE Too many invalid commands\r\n$/);
    expect(rude.stderr).toMatch(/refused client=stdin protocol=imap state=not_authenticated code=bad_state reason="FETCH not allowed in state not_authenticated"/);
    const down = await runPiped(['--protocol', 'imap', '--connect', `127.0.0.1:${await freePort()}`], 'A1 NOOP\r\n');
    expect(down.stdout.toString('latin1')).toBe('* BYE Server unavailable, try again later\r\n');
  });
});

describe('imap through the wrapper in front of a dovecot without LITERAL+', () => {
  let dc: Dovecot;
  let w: Standalone;

  beforeAll(async () => {
    dc = await startDovecot({ extraConfig: 'imap_capability = IMAP4rev1 SASL-IR ID ENABLE IDLE' });
    w = await startStandalone(['--protocol', 'imap', '--connect', `127.0.0.1:${dc.imapPort}`]);
  });
  afterAll(async () => {
    await w?.stop();
    await dc?.stop();
  });

  it('hostile: {n+} without LITERAL+ is refused and closed; dovecot stores nothing', async () => {
    dc.clearMailbox('alice');
    const c = await raw(w.port);
    await c.until(GREETED);
    expect(c.received()).not.toContain('LITERAL+');
    c.send('L1 LOGIN alice secret\r\n');
    await c.until('L1 OK');
    c.send('A2 APPEND INBOX {21+}\r\nSubject: plus\r\n\r\nhi\r\n\r\nA3 NOOP\r\n');
    await c.closed;
    expect(c.received()).toMatch(/A2 BAD Non-synchronizing literal not allowed\r\n\* BYE Closing connection\r\n$/);
    expect(messages(dc, 'alice')).toHaveLength(0);
  });

  it('a synchronizing literal still works', async () => {
    dc.clearMailbox('alice');
    const c = await loggedIn(w.port);
    c.send('A2 APPEND INBOX {21}\r\n');
    await c.until('+ ');
    c.send('Subject: sync\r\n\r\nhi\r\n\r\nA3 LOGOUT\r\n');
    await c.closed;
    expect(c.received()).toMatch(/A2 OK \[APPENDUID/);
    expect(messages(dc, 'alice')).toEqual(['Subject: sync\r\n\r\nhi\r\n']);
  });
});
