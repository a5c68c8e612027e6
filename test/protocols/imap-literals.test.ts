import { describe, expect, it } from 'vitest';
import { GREETING, GREETING_SYNC_ONLY, ImapDriver } from '../helpers/imap-driver.js';

function authed(greeting = GREETING, flags = {}): ImapDriver {
  const d = new ImapDriver(flags).server(greeting);
  d.client('L1 LOGIN alice secret\r\n').server('L1 OK Logged in\r\n');
  return d;
}

/** Everything the driver sent to the server after the LOGIN. */
const sent = (d: ImapDriver) => d.toServer.slice('L1 LOGIN alice secret\r\n'.length);

describe('imap: synchronizing literals {n}', () => {
  it('LOGIN with two literals: each waits for +, the bytes are counted, then the tagged answer', () => {
    const d = new ImapDriver().server(GREETING_SYNC_ONLY);
    d.client('A1 LOGIN {5}\r\n');
    expect(d.held).toBe(true);
    expect(d.verdicts.at(-1)).toMatchObject({ kind: 'forward', raw: 5, hold: true, secret: true });
    d.client('alice {6}\r\n');
    expect(d.toServer).toBe('A1 LOGIN {5}\r\n');
    d.server('+ OK\r\n');
    expect(d.toServer).toBe('A1 LOGIN {5}\r\nalice {6}\r\n');
    // Lines after a LOGIN literal may hold the password itself: logs show none of them.
    expect(d.verdicts.at(-1)).toMatchObject({ kind: 'forward', raw: 6, hold: true, secret: 'line' });
    d.server('+ OK\r\n').client('se\r\n{}\r\n');
    expect(d.verdicts.at(-1)).toMatchObject({ kind: 'forward', hold: true, secret: 'line' });
    d.server('A1 OK Logged in\r\n');
    expect(d.state).toBe('authenticated');
    expect(d.toServer).toBe('A1 LOGIN {5}\r\nalice {6}\r\nse\r\n{}\r\n');
    expect(d.refusals).toEqual([]);
  });

  it('APPEND: literal bytes are never parsed as commands', () => {
    const d = authed(GREETING_SYNC_ONLY);
    const msg = 'A9 DELETE INBOX\r\n\x00\r';
    d.client(`A2 APPEND INBOX (\\Seen) {${msg.length}}\r\n`).server('+ OK\r\n').client(`${msg}\r\nA3 NOOP\r\n`);
    expect(sent(d)).toBe(`A2 APPEND INBOX (\\Seen) {${msg.length}}\r\n${msg}\r\nA3 NOOP\r\n`);
    expect(d.refusals).toEqual([]);
  });

  it('a literal that lies about its size: the wrapper counts as the server does', () => {
    const d = authed(GREETING_SYNC_ONLY);
    d.client('A2 APPEND INBOX {10}\r\n').server('+ OK\r\n').client('abc\r\nA3 DELETE INBOX\r\n');
    // 10 bytes of literal ("abc\r\nA3 DE"), then the rest of APPEND: "LETE INBOX" right after the literal.
    expect(d.refusals).toEqual([{ code: 'bad_syntax', close: true }]);
    expect(sent(d)).toBe('A2 APPEND INBOX {10}\r\nabc\r\nA3 DE');
    expect(d.closed).toBe(true);
  });

  it('a synchronizing literal the server refuses is cancelled: what follows is read as commands', () => {
    const d = authed(GREETING_SYNC_ONLY);
    d.client('A2 APPEND Nope {5}\r\n').client('A3 NOOP\r\n');
    expect(d.held).toBe(true);
    d.server('A2 NO [TRYCREATE] Mailbox does not exist\r\n');
    expect(d.held).toBe(false);
    expect(sent(d)).toBe('A2 APPEND Nope {5}\r\nA3 NOOP\r\n');
    expect(d.state).toBe('authenticated');
  });

  it('a LOGIN literal refused by the server counts as a failed login', () => {
    const d = new ImapDriver({ maxLoginAttempts: 1 }).server(GREETING_SYNC_ONLY);
    d.client('A1 LOGIN {5}\r\n').server('A1 NO nope\r\n');
    expect(d.closed).toBe(true);
  });

  it('a literal over maxLiteralSize is refused with NO [TOOBIG] before the server sees it', () => {
    const d = authed(GREETING, { maxLiteralSize: 100 });
    d.client('A2 APPEND INBOX {101}\r\nA3 NOOP\r\n');
    expect(d.refusals).toEqual([{ code: 'too_large', close: false }]);
    expect(d.toClient).toContain('A2 NO [TOOBIG] Literal too large\r\n');
    expect(sent(d)).toBe('A3 NOOP\r\n');
  });

  it('maxCommandSize counts lines and literals together; mid-command it closes', () => {
    const d = authed('* OK [CAPABILITY IMAP4rev1 MULTIAPPEND] ready\r\n', { maxCommandSize: 1024 });
    d.client('A2 APPEND INBOX {600}\r\n').server('+ OK\r\n').client(`${'m'.repeat(600)} {600}\r\n`);
    expect(d.refusals).toEqual([{ code: 'too_large', close: true }]);
    expect(d.toClient.endsWith('A2 NO [TOOBIG] Command too large\r\n* BYE Closing connection\r\n')).toBe(true);
  });

  it('a line after a literal with a NUL closes (part of the command already reached the server)', () => {
    const d = authed(GREETING_SYNC_ONLY);
    d.client('A2 APPEND INBOX {1}\r\n').server('+ OK\r\n').client('x\x00\r\n');
    expect(d.refusals).toEqual([{ code: 'nul_byte', close: true }]);
  });

  it('literal8 ~{n} is followed in APPEND when the server advertised BINARY', () => {
    const d = authed('* OK [CAPABILITY IMAP4rev1 BINARY] ready\r\n');
    d.client('A4 APPEND INBOX ~{3}\r\n').server('+ OK\r\n').client('\x00\x01\x02\r\n');
    expect(d.refusals).toEqual([]);
    expect(d.held).toBe(false);
    expect(sent(d)).toBe('A4 APPEND INBOX ~{3}\r\n\x00\x01\x02\r\n');
  });

  it('literal8 without BINARY, or outside APPEND, is refused (Dovecot: "literal8 not allowed here", the literal unread)', () => {
    const d = authed(GREETING_SYNC_ONLY);
    d.client('A4 APPEND INBOX ~{3}\r\n');
    d.client('A5 STATUS ~{5}\r\n');
    expect(d.refusals).toEqual([
      { code: 'literal', close: false },
      { code: 'literal', close: false },
    ]);
    expect(sent(d)).toBe('');
  });

  it('a literal inside a [section] is refused: Dovecot reads the brackets as atom bytes and would count arguments apart', () => {
    const d = authed(GREETING_SYNC_ONLY);
    d.client('A2 SELECT INBOX\r\n').server('A2 OK done\r\n');
    d.client('A3 FETCH 1 BODY[HEADER.FIELDS ({4}\r\n');
    expect(d.refusals).toEqual([{ code: 'bad_syntax', close: false }]);
    expect(sent(d)).toBe('A2 SELECT INBOX\r\n');
  });
});

describe('imap: non-synchronizing literals {n+}', () => {
  it('with LITERAL+ advertised: forwarded as a raw run without waiting', () => {
    const d = authed(GREETING);
    d.client('A2 APPEND INBOX {5+}\r\nhello\r\nA3 NOOP\r\n');
    expect(d.verdicts.at(-3)).toMatchObject({ kind: 'forward', raw: 5 });
    expect(d.verdicts.at(-3)).not.toHaveProperty('hold');
    expect(sent(d)).toBe('A2 APPEND INBOX {5+}\r\nhello\r\nA3 NOOP\r\n');
  });

  it('without LITERAL+: refused, and the session closes (the bytes that follow cannot be framed)', () => {
    const d = authed(GREETING_SYNC_ONLY);
    d.client('A2 APPEND INBOX {5+}\r\nhello\r\nA3 NOOP\r\n');
    expect(d.refusals).toEqual([{ code: 'literal', close: true }]);
    expect(sent(d)).toBe('');
    expect(d.toClient.endsWith('A2 BAD Non-synchronizing literal not allowed\r\n* BYE Closing connection\r\n')).toBe(true);
  });

  it('LITERAL- (or IMAP4rev2) allows up to 4096 octets', () => {
    const g = '* OK [CAPABILITY IMAP4rev2 AUTH=PLAIN] hi\r\n';
    const d = authed(g);
    d.client(`A2 APPEND INBOX {4096+}\r\n${'x'.repeat(4096)}\r\n`);
    expect(d.refusals).toEqual([]);
    const e = authed('* OK [CAPABILITY IMAP4rev1 LITERAL-] hi\r\n');
    e.client('A2 APPEND INBOX {4097+}\r\n');
    expect(e.refusals).toEqual([{ code: 'literal', close: true }]);
  });

  it('the capability list that counts is the latest one (the tagged OK after LOGIN replaces the greeting)', () => {
    const d = new ImapDriver().server(GREETING_SYNC_ONLY);
    d.client('L1 LOGIN alice secret\r\n').server('L1 OK [CAPABILITY IMAP4rev1 LITERAL+ IDLE] Logged in\r\n');
    d.client('A2 APPEND INBOX {2+}\r\nhi\r\n');
    expect(d.refusals).toEqual([]);
  });

  it('{n-} is not IMAP syntax: refused and closed', () => {
    const d = authed(GREETING);
    d.client('A2 APPEND INBOX {5-}\r\nhello\r\n');
    expect(d.refusals).toEqual([{ code: 'literal', close: true }]);
    expect(sent(d)).toBe('');
  });

  it('any refusal of a line that announces {n+} closes (unknown command, wrong state)', () => {
    const d = new ImapDriver().server(GREETING);
    d.client('A1 APPEND INBOX {5+}\r\nA2 NOOP\r\n');
    expect(d.refusals).toEqual([{ code: 'bad_state', close: true }]);
    expect(d.toServer).toBe('');
  });
});
