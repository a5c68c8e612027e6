import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tcpClient } from '../helpers/client.js';
import { startDovecot, type Dovecot } from '../helpers/dovecot.js';
import { startPostfix, type Postfix } from '../helpers/postfix.js';
import { startStandalone, waitFor, type Standalone } from '../helpers/wrapper.js';

/**
 * Credentials never reach the log, on any refusal path (issue 13 item 3).
 * Each case is one real session through the built wrapper in front of the
 * real Postfix or Dovecot, built to hit one refusal code with a credential
 * on the line; the wrapper logs at level 3 (every line), and the whole log is
 * searched for the secret in every form it was sent in. Each case also
 * asserts that its refusal code was logged, so a case that no longer reaches
 * its path fails instead of passing vacuously.
 */

const PASSWORD = 'S3cr3tPw42';
/** base64("\0alice\0S3cr3tPw42"), an AUTH PLAIN response. */
const PLAIN = Buffer.from(`\0alice\0${PASSWORD}`).toString('base64');
/** base64 of the password alone, an AUTH LOGIN response. */
const LOGIN64 = Buffer.from(PASSWORD).toString('base64');
const FORMS = [PASSWORD, PLAIN, LOGIN64, PLAIN.slice(0, 12), LOGIN64.slice(0, 8)];

interface Step {
  /** Wait until the received text contains this before sending. */
  readonly await?: string;
  readonly send: string;
}

interface Case {
  readonly name: string;
  /** The refusal code the case must hit, or, for a line that is forwarded, the log text it must produce. */
  readonly code: string;
  readonly logged?: RegExp;
  readonly steps: readonly Step[];
  /** Wait for the server greeting first (false: an early talker). */
  readonly greet?: boolean;
}

/** Runs one session: greeting, steps, a moment for the refusal, then close. */
async function run(port: number, greeting: string, c: Case): Promise<void> {
  const cl = await tcpClient(port);
  if (c.greet !== false) await cl.waitFor(greeting);
  for (const s of c.steps) {
    if (s.await) await cl.waitFor(s.await);
    cl.sock.write(s.send);
    await new Promise((r) => setTimeout(r, 30));
  }
  cl.sock.end();
  await Promise.race([cl.closed, new Promise((r) => setTimeout(r, 3000))]);
  cl.sock.destroy();
}

function checkLog(w: Standalone, before: number, c: Case): void {
  const log = w.logs().slice(before);
  if (c.logged) expect(log, `${c.name}: its path was taken`).toMatch(c.logged);
  else expect(log, `${c.name}: its path was taken`).toContain(`code=${c.code}`);
  for (const f of FORMS) expect(log, `${c.name}: secret form ${f} in the log`).not.toContain(f);
}

const longPad = (n: number) => 'A'.repeat(n);

const SMTP_CASES: readonly Case[] = [
  { name: 'AUTH before EHLO', code: 'bad_state', steps: [{ send: `AUTH PLAIN ${PLAIN}\r\n` }] },
  { name: 'AUTH line ending in a bare LF', code: 'bare_lf', steps: [{ send: 'EHLO x\r\n' }, { await: '250 ', send: `AUTH PLAIN ${PLAIN}\n` }] },
  {
    name: 'AUTH inside a transaction',
    code: 'bad_state',
    steps: [{ send: 'EHLO x\r\n' }, { await: '250 ', send: 'MAIL FROM:<a@example.org>\r\n' }, { await: '2.1.0', send: `AUTH PLAIN ${PLAIN}\r\n` }],
  },
  { name: 'AUTH line over the limit', code: 'line_too_long', steps: [{ send: 'EHLO x\r\n' }, { await: '250 ', send: `AUTH PLAIN ${PLAIN}${longPad(600)}\r\n` }] },
  { name: 'AUTH with a NUL', code: 'nul_byte', steps: [{ send: 'EHLO x\r\n' }, { await: '250 ', send: `AUTH PLAIN ${PLAIN}\0\r\n` }] },
  { name: 'AUTH with a mechanism not offered', code: 'bad_argument', steps: [{ send: 'EHLO x\r\n' }, { await: '250 ', send: `AUTH BOGUS ${PLAIN}\r\n` }] },
  // SMTP forwards a last unterminated line (the server drops it at EOF): its debug line hides it.
  { name: 'AUTH unterminated at EOF', code: 'forwarded', logged: /state=ready session=[0-9a-f]{12}: AUTH <hidden>/, steps: [{ send: 'EHLO x\r\n' }, { await: '250 ', send: `AUTH PLAIN ${PLAIN}` }] },
  { name: 'SASL response with a NUL', code: 'nul_byte', steps: [{ send: 'EHLO x\r\n' }, { await: '250 ', send: 'AUTH LOGIN\r\n' }, { await: '334 ', send: `${LOGIN64}\0\r\n` }] },
  { name: 'SASL response not base64', code: 'bad_argument', steps: [{ send: 'EHLO x\r\n' }, { await: '250 ', send: 'AUTH LOGIN\r\n' }, { await: '334 ', send: `${PASSWORD}!\r\n` }] },
  { name: 'SASL response over the limit', code: 'line_too_long', steps: [{ send: 'EHLO x\r\n' }, { await: '250 ', send: 'AUTH LOGIN\r\n' }, { await: '334 ', send: `${LOGIN64}${longPad(13000)}\r\n` }] },
  // Review: a SASL response pipelined behind an AUTH that got no 334 reads as an unknown command.
  { name: 'SASL response behind a refused AUTH', code: 'unknown_command', steps: [{ send: `AUTH PLAIN\r\n${PLAIN}\r\n` }] },
];

const POP3_CASES: readonly Case[] = [
  { name: 'PASS with a NUL', code: 'nul_byte', steps: [{ send: 'USER alice\r\n' }, { await: '+OK\r\n', send: `PASS ${PASSWORD}\0\r\n` }] },
  { name: 'PASS ending in a bare LF', code: 'bare_lf', steps: [{ send: 'USER alice\r\n' }, { await: '+OK\r\n', send: `PASS ${PASSWORD}\n` }] },
  { name: 'PASS over the limit', code: 'line_too_long', steps: [{ send: `PASS ${PASSWORD}${longPad(300)}\r\n` }] },
  { name: 'PASS without USER', code: 'bad_state', steps: [{ send: `PASS ${PASSWORD}\r\n` }] },
  {
    name: 'PASS with a bare LF after login (TRANSACTION)',
    code: 'bare_lf',
    steps: [{ send: 'USER alice\r\n' }, { await: '+OK\r\n', send: 'PASS secret\r\n' }, { await: 'Logged in', send: `PASS ${PASSWORD}\n` }],
  },
  {
    name: 'PASS after login (TRANSACTION)',
    code: 'bad_state',
    steps: [{ send: 'USER alice\r\n' }, { await: '+OK\r\n', send: 'PASS secret\r\n' }, { await: 'Logged in', send: `PASS ${PASSWORD}\r\n` }],
  },
  { name: 'APOP malformed', code: 'bad_argument', steps: [{ send: `APOP alice ${PASSWORD}\r\n` }] },
  { name: 'AUTH initial response with a NUL', code: 'nul_byte', steps: [{ send: `AUTH PLAIN ${PLAIN}\0\r\n` }] },
  { name: 'SASL response with a NUL', code: 'nul_byte', steps: [{ send: 'AUTH PLAIN\r\n' }, { await: '+ ', send: `${PLAIN}\0\r\n` }] },
  { name: 'SASL response not base64', code: 'bad_argument', steps: [{ send: 'AUTH PLAIN\r\n' }, { await: '+ ', send: `${PASSWORD}!\r\n` }] },
  { name: 'PASS unterminated at EOF', code: 'unterminated', steps: [{ send: 'USER alice\r\n' }, { await: '+OK\r\n', send: `PASS ${PASSWORD}` }] },
  // Review 2: a SASL response sent behind a refused AUTH (AUTHORIZATION and TRANSACTION), a stray one-word password.
  { name: 'SASL response behind a refused AUTH', code: 'unknown_command', steps: [{ send: `AUTH XFOO\r\n${PLAIN}\r\n` }] },
  { name: 'a stray one-word password', code: 'unknown_command', steps: [{ send: `${PASSWORD}\r\n` }] },
  {
    name: 'a base64 line after login (TRANSACTION)',
    code: 'unknown_command',
    steps: [{ send: 'USER alice\r\n' }, { await: '+OK\r\n', send: 'PASS secret\r\n' }, { await: 'Logged in', send: `${LOGIN64}\r\n` }],
  },
  // Review 3: name and password typed on one USER line; a password retyped after login.
  { name: 'USER with the password on the same line', code: 'bad_argument', steps: [{ send: `USER alice ${PASSWORD}\r\n` }] },
  {
    name: 'a stray password after login (TRANSACTION)',
    code: 'unknown_command',
    steps: [{ send: 'USER alice\r\n' }, { await: '+OK\r\n', send: 'PASS secret\r\n' }, { await: 'Logged in', send: `${PASSWORD} !\r\n` }],
  },
  // Review: a TAB after the verb must not let the password through as part of the "first word".
  { name: 'PASS with a TAB after the verb', code: 'unknown_command', steps: [{ send: 'USER alice\r\n' }, { await: '+OK\r\n', send: `PASS\t${PASSWORD} x\r\n` }] },
];

const IMAP_CASES: readonly Case[] = [
  { name: 'LOGIN with a NUL', code: 'nul_byte', steps: [{ send: `a LOGIN alice ${PASSWORD}\0\r\n` }] },
  { name: 'LOGIN ending in a bare LF', code: 'bare_lf', steps: [{ send: `a LOGIN alice ${PASSWORD}\n` }] },
  { name: 'LOGIN over the limit', code: 'line_too_long', steps: [{ send: `a LOGIN alice ${PASSWORD}${longPad(9000)}\r\n` }] },
  { name: 'LOGIN with a bad argument', code: 'bad_syntax', steps: [{ send: `a LOGIN alice "${PASSWORD}\r\n` }] },
  { name: 'LOGIN after login', code: 'bad_state', steps: [{ send: 'a LOGIN alice secret\r\n' }, { await: 'a OK', send: `b LOGIN alice ${PASSWORD}\r\n` }] },
  { name: 'a password with no tag', code: 'bad_syntax', steps: [{ send: `${PASSWORD}\r\n` }] },
  { name: 'the line after a LOGIN literal, with a NUL', code: 'nul_byte', steps: [{ send: 'a LOGIN {5}\r\n' }, { await: '+ ', send: `alice ${PASSWORD}\0\r\n` }] },
  { name: 'SASL response with a NUL', code: 'nul_byte', steps: [{ send: 'a AUTHENTICATE PLAIN\r\n' }, { await: '+', send: `${PLAIN}\0\r\n` }] },
  { name: 'SASL response not base64', code: 'bad_syntax', steps: [{ send: 'a AUTHENTICATE PLAIN\r\n' }, { await: '+', send: `${PASSWORD}!\r\n` }] },
  { name: 'AUTHENTICATE initial response not base64', code: 'bad_argument', steps: [{ send: `a AUTHENTICATE PLAIN ${PASSWORD}!\r\n` }] },
  { name: 'LOGIN unterminated at EOF', code: 'unterminated', steps: [{ send: `a LOGIN alice ${PASSWORD}` }] },
  // Review: LOGIN without a tag takes LOGIN for the tag; a stray password with spaces before login.
  { name: 'LOGIN without a tag', code: 'unknown_command', steps: [{ send: `LOGIN alice ${PASSWORD}\r\n` }] },
  { name: 'a stray password with spaces before login', code: 'unknown_command', steps: [{ send: `my ${PASSWORD} word\r\n` }] },
];

describe('credentials never reach the log', () => {
  let pf: Postfix;
  let dc: Dovecot;
  let smtp: Standalone;
  let pop3: Standalone;
  let imap: Standalone;

  beforeAll(async () => {
    [pf, dc] = await Promise.all([startPostfix({ sasl: true }), startDovecot()]);
    [smtp, pop3, imap] = await Promise.all([
      startStandalone(['-p', 'smtp', '--connect', `127.0.0.1:${pf.port}`, '--log-level', '3', '--max-violations', '50']),
      startStandalone(['-p', 'pop3', '--connect', `127.0.0.1:${dc.pop3Port}`, '--log-level', '3', '--max-violations', '50']),
      startStandalone(['-p', 'imap', '--connect', `127.0.0.1:${dc.imapPort}`, '--log-level', '3', '--max-violations', '50']),
    ]);
  }, 60_000);
  afterAll(async () => {
    await Promise.all([smtp?.stop(), pop3?.stop(), imap?.stop()]);
    await Promise.all([pf?.stop(), dc?.stop()]);
  });

  const each = (proto: string, cases: readonly Case[], w: () => Standalone, greeting: string) => {
    for (const c of cases) {
      it(`${proto}: ${c.name} (${c.code})`, async () => {
        const before = w().logs().length;
        const closes = (w().logs().match(/session close/g) ?? []).length;
        await run(w().port, greeting, c);
        await waitFor(() => (w().logs().match(/session close/g) ?? []).length > closes, 'the session to close');
        checkLog(w(), before, c);
      });
    }
  };
  each('smtp', SMTP_CASES, () => smtp, '220 ');
  each('pop3', POP3_CASES, () => pop3, '+OK');
  each('imap', IMAP_CASES, () => imap, '* OK');
});
