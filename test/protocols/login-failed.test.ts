import { describe, expect, it } from 'vitest';
import { isPlainMechanism, plainAuthcid } from '../../src/core/sasl.js';
import { smtp } from '../../src/protocols/smtp/index.js';
import { GREETING, ImapDriver } from '../helpers/imap-driver.js';
import { run, type Step } from './pop3.scenarios.js';
import { Harness } from './smtp-harness.js';

/** A SASL PLAIN response: authzid NUL authcid NUL password, base64. */
const plain = (user: string, pass: string, authzid = '') => Buffer.from(`${authzid}\0${user}\0${pass}`, 'latin1').toString('base64');
const POP3_FAIL = '-ERR [AUTH] Authentication failed.\r\n';
const GREET: Step = ['s', '+OK ready\r\n'];

describe('plainAuthcid: the user of a SASL PLAIN response, never its password', () => {
  it.each([
    [plain('alice', 'secret'), 'alice'],
    [plain('bob', 'pw', 'admin'), 'bob'],
    [plain('', 'pw'), null],
    [Buffer.from('alice\0secret').toString('base64'), null],
    [Buffer.from('no nul at all').toString('base64'), null],
    ['', null],
  ])('%s → %s', (b64, user) => {
    const line = Buffer.from(`xx ${b64}`, 'latin1');
    expect(plainAuthcid(line, 3, line.length)).toBe(user);
  });

  it('PLAIN is recognised in any case, nothing else', () => {
    const l = Buffer.from('AUTH plain PLAINX PLAI');
    expect(isPlainMechanism(l, 5, 10)).toBe(true);
    expect(isPlainMechanism(l, 11, 17)).toBe(false);
    expect(isPlainMechanism(l, 18, 22)).toBe(false);
  });
});

describe('POP3: a server -ERR to PASS, APOP or AUTH is a failed login (ServerVerdict.loginFailed)', () => {
  const cases: Array<[string, Step[], string | null]> = [
    ['USER then PASS', [GREET, ['c', 'USER alice\r\n'], ['s', '+OK\r\n'], ['c', 'PASS wrongpw\r\n'], ['s', POP3_FAIL]], 'alice'],
    ['APOP', [GREET, ['c', 'APOP bob c4c9334bac560ecc979e58001b3e22fb\r\n'], ['s', '-ERR [AUTH] bad digest\r\n']], 'bob'],
    ['AUTH PLAIN with an initial response', [GREET, ['c', `AUTH PLAIN ${plain('carol', 'wrongpw')}\r\n`], ['s', POP3_FAIL]], 'carol'],
    ['AUTH PLAIN, response after the challenge', [GREET, ['c', 'AUTH PLAIN\r\n'], ['s', '+ \r\n'], ['c', `${plain('dave', 'wrongpw')}\r\n`], ['s', POP3_FAIL]], 'dave'],
    ['AUTH LOGIN (no user decoded)', [GREET, ['c', 'AUTH LOGIN\r\n'], ['s', '+ VXNlcm5hbWU6\r\n'], ['c', 'ZXZl\r\n'], ['s', '+ UGFzc3dvcmQ6\r\n'], ['c', 'd3Jvbmdwdw==\r\n'], ['s', POP3_FAIL]], null],
    ['a SASL exchange the client cancels', [GREET, ['c', 'AUTH PLAIN\r\n'], ['s', '+ \r\n'], ['c', '*\r\n'], ['s', '-ERR Authentication aborted\r\n']], null],
  ];
  it.each(cases)('%s', (_name, steps, user) => {
    // Every split of the server's -ERR reports the failed login exactly once.
    const last = steps.length - 1;
    const reply = steps[last]![1];
    for (let cut = 1; cut <= reply.length; cut++) {
      const d = run(steps, (i, b) => (i === last ? [b.slice(0, cut), b.slice(cut)].filter((x) => x.length > 0) : [b]));
      expect(d.loginFailures).toEqual([user]);
      expect(d.client.endsWith(POP3_FAIL)).toBe(true);
      expect(JSON.stringify(d.loginFailures)).not.toContain('wrongpw');
    }
  });

  it('a successful login, a refused USER and other -ERR replies are no failed login', () => {
    const ok = run([GREET, ['c', 'USER alice\r\n'], ['s', '+OK\r\n'], ['c', 'PASS right\r\n'], ['s', '+OK Logged in.\r\n'], ['c', 'RETR 9\r\n'], ['s', '-ERR no such message\r\n']]);
    expect(ok.loginFailures).toEqual([]);
    const user = run([GREET, ['c', 'USER nobody\r\n'], ['s', '-ERR no such user\r\n']]);
    expect(user.loginFailures).toEqual([]);
  });

  it('a PASS after a USER the server refused is answered by the wrapper: a failed login in the refusal, named', () => {
    const d = run([GREET, ['c', 'USER nobody\r\n'], ['s', '-ERR no such user\r\n'], ['c', 'PASS wrongpw\r\n']]);
    expect(d.loginFailures).toEqual([]);
    expect(d.judged.at(-1)!.verdict).toMatchObject({ kind: 'refuse', code: 'policy', loginFailed: { user: 'nobody' }, secret: true });
    expect(d.client.endsWith(POP3_FAIL)).toBe(true);
    expect(d.server).not.toContain('PASS');
  });

  it('the failure that reaches maxLoginAttempts is reported with the close', () => {
    const d = run([GREET, ['c', 'USER alice\r\n'], ['s', '+OK\r\n'], ['c', 'PASS a\r\n'], ['s', POP3_FAIL], ['c', 'USER bob\r\n'], ['s', '+OK\r\n'], ['c', 'PASS b\r\n'], ['s', POP3_FAIL]], undefined, { maxLoginAttempts: 2 });
    expect(d.loginFailures).toEqual(['alice', 'bob']);
    expect(d.closed).toBe(true);
  });
});

describe('IMAP: a tagged NO to LOGIN or AUTHENTICATE is a failed login', () => {
  const NO = 'NO [AUTHENTICATIONFAILED] Authentication failed.\r\n';
  it.each([
    ['LOGIN with atoms', 'A1 LOGIN alice wrongpw\r\n', 'alice'],
    ['LOGIN with quoted strings', 'A1 LOGIN "bob \\"b\\" smith" "wrongpw"\r\n', 'bob "b" smith'],
    ['LOGIN with a literal user', 'A1 LOGIN {5+}\r\ncarol wrongpw\r\n', null],
    ['AUTHENTICATE PLAIN (SASL-IR)', `A1 AUTHENTICATE PLAIN ${plain('dave', 'wrongpw')}\r\n`, 'dave'],
  ])('%s', (_name, command, user) => {
    const d = new ImapDriver().server(GREETING).client(command);
    for (const piece of [`A1 ${NO}`.slice(0, 4), `A1 ${NO}`.slice(4)]) d.server(piece);
    expect(d.loginFailures).toEqual([user]);
    expect(d.toClient.endsWith(`A1 ${NO}`)).toBe(true);
  });

  it('AUTHENTICATE PLAIN: the user of the response line after +', () => {
    const d = new ImapDriver().server(GREETING).client('A1 AUTHENTICATE PLAIN\r\n').server('+ \r\n').client(`${plain('erin', 'wrongpw')}\r\n`).server(`A1 ${NO}`);
    expect(d.loginFailures).toEqual(['erin']);
  });

  it('OK, BAD and a NO to another command are no failed login', () => {
    const d = new ImapDriver().server(GREETING).client('A1 LOGIN alice x\r\n').server('A1 BAD odd\r\n').client('A2 LOGIN alice y\r\n').server('A2 OK Logged in\r\n');
    d.client('A3 SELECT nope\r\n').server('A3 NO Mailbox does not exist\r\n');
    expect(d.loginFailures).toEqual([]);
  });

  it('the failure that reaches maxLoginAttempts is reported with the BYE', () => {
    const d = new ImapDriver({ maxLoginAttempts: 1 }).server(GREETING).client('A1 LOGIN alice wrong\r\n').server(`A1 ${NO}`);
    expect(d.closed).toBe(true);
    expect(d.loginFailures).toEqual(['alice']);
  });
});

describe('SMTP: a 535 to AUTH is a failed login; maxLoginAttempts closes with 421', () => {
  const EHLO = 'EHLO client.example\r\n';

  it('maxLoginAttempts is an SMTP key, default 3', () => {
    expect(smtp.options?.['maxLoginAttempts']).toMatchObject({ kind: 'integer', default: 3, min: 1 });
  });

  it('AUTH PLAIN with an initial response, and after 334; AUTH LOGIN names nobody', () => {
    const h = new Harness({}, { authFail: true }).send(EHLO, `AUTH PLAIN ${plain('alice', 'wrongpw')}\r\n`);
    expect(h.loginFailures).toEqual(['alice']);
    h.send('AUTH PLAIN\r\n', `${plain('bob', 'wrongpw')}\r\n`);
    expect(h.loginFailures).toEqual(['alice', 'bob']);
    expect(h.closed).toBe(false);
    expect(h.client.toString('latin1')).toContain('535 5.7.8 Error: authentication failed');
    expect(JSON.stringify(h.loginFailures)).not.toContain('wrongpw');
  });

  it('at the third 535 (default) the client gets the 535, then 421, and the session closes', () => {
    const h = new Harness({}, { authFail: true }).send(EHLO, 'AUTH LOGIN\r\n', 'YWxpY2U=\r\n');
    h.send(`AUTH PLAIN ${plain('a', 'b')}\r\n`, `AUTH PLAIN ${plain('c', 'd')}\r\n`, 'NOOP\r\n');
    expect(h.loginFailures).toEqual([null, 'a', 'c']);
    expect(h.closed).toBe(true);
    const text = h.client.toString('latin1');
    expect(text.endsWith('535 5.7.8 Error: authentication failed: authentication failure\r\n421 4.7.0 Too many failed login attempts, closing transmission channel\r\n')).toBe(true);
    // NOOP never reached the server.
    expect(h.serverText).not.toContain('NOOP');
  });

  it('maxLoginAttempts = 1 closes at the first 535; a 235 and other errors count nothing', () => {
    const one = new Harness({ maxLoginAttempts: 1 }, { authFail: true }).send(EHLO, `AUTH PLAIN ${plain('a', 'b')}\r\n`);
    expect(one.closed).toBe(true);
    expect(one.loginFailures).toEqual(['a']);
    const ok = new Harness({ maxLoginAttempts: 1 }).send(EHLO, `AUTH PLAIN ${plain('a', 'b')}\r\n`, 'BOGUS\r\n', 'NOOP\r\n');
    expect(ok.closed).toBe(false);
    expect(ok.loginFailures).toEqual([]);
  });
});
