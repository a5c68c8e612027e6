import { describe, expect, it } from 'vitest';
import { MAX_IN_FLIGHT } from '../../src/protocols/imap/session.js';
import { GREETING, ImapDriver } from '../helpers/imap-driver.js';

/**
 * Review findings, each proven against Dovecot 2.3 first: a line the server
 * rejects before reading its {n+} literal makes the server read the literal's
 * bytes as commands the wrapper judged as data; and a reused tag lets the
 * answer to one command be taken for another's (state and login count).
 */

/** Dovecot's post-login capabilities (no quota/acl plugins: GETQUOTA etc. are unknown to it). */
const POST_LOGIN_CAPS =
  'IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE SORT SORT=DISPLAY THREAD=REFERENCES THREAD=REFS MULTIAPPEND UNSELECT CHILDREN NAMESPACE UIDPLUS LIST-EXTENDED CONDSTORE ESEARCH CONTEXT=SEARCH MOVE LITERAL+ NOTIFY';

function loggedIn(caps = POST_LOGIN_CAPS): ImapDriver {
  const d = new ImapDriver().server(GREETING);
  d.client('L1 LOGIN alice secret\r\n').server(`L1 OK [CAPABILITY ${caps}] Logged in\r\n`);
  return d;
}

describe('imap: tags Dovecot rejects', () => {
  it("refuses ']' in a tag (RFC-legal, but Dovecot answers * BAD and skips the line)", () => {
    const d = new ImapDriver().server(GREETING);
    d.client('a] NOOP\r\n');
    expect(d.refusals).toEqual([{ code: 'bad_syntax', close: false }]);
    expect(d.toServer).toBe('');
  });

  it("a {n+} literal after a ']' tag closes the session: its bytes never reach the server as a command", () => {
    const d = new ImapDriver().server(GREETING);
    d.client('a] ID {21+}\r\nc LOGIN alice wrong\r\n\r\n');
    expect(d.refusals).toEqual([{ code: 'bad_syntax', close: true }]);
    expect(d.toServer).toBe('');
  });
});

describe('imap: extension commands need the capability the server advertised', () => {
  it.each([
    ['A1 GETQUOTAROOT INBOX', 'QUOTA'],
    ['A1 GETACL INBOX', 'ACL'],
    ['A1 GETMETADATA INBOX /private/comment', 'METADATA'],
  ])('%s is unknown to a server without %s', (line, cap) => {
    const d = loggedIn();
    const before = d.toServer.length;
    d.client(`${line}\r\n`);
    expect(d.refusals).toEqual([{ code: 'unknown_command', close: false }]);
    expect(d.toServer.length).toBe(before);
    const e = loggedIn(`${POST_LOGIN_CAPS} ${cap}`);
    const b2 = e.toServer.length;
    e.client(`${line}\r\n`);
    expect(e.refusals).toEqual([]);
    expect(e.toServer.slice(b2)).toBe(`${line}\r\n`);
  });

  it('a {n+} literal in a command the server does not know closes the session before the literal', () => {
    const d = loggedIn();
    const before = d.toServer.length;
    d.client('A2 GETQUOTAROOT {17+}\r\nA4 CREATE Smug5\r\n\r\n');
    expect(d.refusals).toEqual([{ code: 'unknown_command', close: true }]);
    expect(d.toServer.length).toBe(before);
  });

  it('IMAP4rev2 implies NAMESPACE, UNSELECT, MOVE, UIDPLUS', () => {
    const d = loggedIn('IMAP4rev2');
    d.client('A1 NAMESPACE\r\n');
    d.client('S1 SELECT INBOX\r\n').server('S1 OK Selected\r\n');
    d.client('A2 MOVE 1 Trash\r\nA3 UID EXPUNGE 1\r\n');
    expect(d.refusals).toEqual([]);
    const g = loggedIn('IMAP4rev1');
    g.client('A1 NAMESPACE\r\n');
    expect(g.refusals).toEqual([{ code: 'unknown_command', close: false }]);
  });
});

describe('imap: a tag in use is refused', () => {
  it('a reused tag cannot make a BAD to another command hide a failed LOGIN from maxLoginAttempts', () => {
    const d = new ImapDriver({ maxLoginAttempts: 1 }).server(GREETING);
    d.client('a ID NIL\r\na LOGIN alice wrong\r\n');
    expect(d.refusals).toEqual([{ code: 'pipelining', close: false }]);
    expect(d.toServer).toBe('a ID NIL\r\n');
    expect(d.toClient).toContain('a BAD Tag already in use\r\n');
    d.server('a BAD Invalid ID parameters\r\n');
    // The tag is free again: the LOGIN goes, and its NO is counted.
    d.client('a LOGIN alice wrong\r\n');
    expect(d.toServer).toBe('a ID NIL\r\na LOGIN alice wrong\r\n');
    d.server('a NO [AUTHENTICATIONFAILED] Authentication failed.\r\n');
    expect(d.closed).toBe(true);
    expect(d.toClient).toContain('* BYE Too many failed login attempts\r\n');
  });

  it('a reused tag cannot make an OK to another command count as a successful LOGIN', () => {
    const d = new ImapDriver().server(GREETING);
    d.client('a NOOP\r\na LOGIN alice wrong\r\n');
    d.server('a OK NOOP completed\r\n');
    expect(d.state).toBe('not_authenticated');
    d.client('b SELECT INBOX\r\n');
    expect(d.refusals.map((r) => r.code)).toEqual(['pipelining', 'bad_state']);
  });

  it('commands in flight are bounded by backpressure: at MAX_IN_FLIGHT the client waits, nothing is refused', () => {
    const d = loggedIn();
    let lines = '';
    const total = MAX_IN_FLIGHT + 72;
    for (let i = 0; i < total; i++) lines += `N${i} NOOP\r\n`;
    d.client(lines);
    expect(d.refusals).toEqual([]);
    expect(d.held).toBe(true);
    const sent = () => d.toServer.split('\r\n').filter((l) => / NOOP$/.test(l)).length;
    expect(sent()).toBe(MAX_IN_FLIGHT);
    // Each tagged answer frees one slot: one more command goes on.
    d.server('N0 OK NOOP completed\r\n');
    expect(sent()).toBe(MAX_IN_FLIGHT + 1);
    let answers = '';
    for (let i = 1; i < total; i++) answers += `N${i} OK NOOP completed\r\n`;
    d.server(answers);
    expect(sent()).toBe(total);
    expect(d.refusals).toEqual([]);
    expect(d.held).toBe(false);
  });

  it('at MAX_IN_FLIGHT an IDLE still gets its DONE through, and the client waits again after it', () => {
    const d = loggedIn('IMAP4rev1 IDLE');
    let lines = '';
    for (let i = 0; i < MAX_IN_FLIGHT - 1; i++) lines += `N${i} NOOP\r\n`;
    d.client(`${lines}I IDLE\r\n`);
    expect(d.held).toBe(true);
    d.server('+ idling\r\n');
    expect(d.held).toBe(false);
    d.client('DONE\r\nZ NOOP\r\n');
    expect(d.toServer).toContain('DONE\r\n');
    expect(d.toServer).not.toContain('Z NOOP');
    d.server('I OK IDLE done\r\n');
    expect(d.toServer).toContain('Z NOOP\r\n');
    expect(d.refusals).toEqual([]);
  });
});

describe('imap: APPEND and CREATE arguments a server checks before reading a {n+} literal', () => {
  it.each([
    ['A1 APPEND INBOX (\\Recent) {8+}', 'flag'],
    ['A1 APPEND INBOX (\\Bogus) {8+}', 'flag'],
    ['A1 APPEND INBOX "bad date" {8+}', 'date'],
    ['A1 APPEND INBOX "01-Jan-2020 00:00:00" {8+}', 'date'],
    ['A1 APPEND INBOX x {8+}', 'atom'],
    ['A1 APPEND INBOX "01-Jan-2020 00:00:00 +0000" (\\Seen) {8+}', 'order'],
    ['A1 APPEND INBOX CATENATE (TEXT {8+}', 'catenate'],
    // Issue 13: the mailbox is an astring, and "()" is none (Dovecot: BAD without reading the literal).
    ['A1 APPEND () {8+}', 'mailbox'],
    ['A1 APPEND INBOX ~{8+}', 'literal8 without BINARY'],
  ])('%s closes the session before the literal (%s)', (line) => {
    const d = loggedIn();
    const before = d.toServer.length;
    d.client(`${line}\r\nz NOOP\r\n\r\n`);
    expect(d.refusals).toHaveLength(1);
    expect(d.refusals[0]!.close).toBe(true);
    expect(['bad_syntax', 'literal']).toContain(d.refusals[0]!.code);
    expect(d.toServer.length).toBe(before);
  });

  it.each([
    'A1 APPEND INBOX {8+}',
    'A1 APPEND "My Box" (\\Seen \\Answered \\Flagged \\Deleted \\Draft $Forwarded) " 1-jan-2020 23:59:60 -0130" {8+}',
    'A1 APPEND INBOX () {8+}',
    'A1 APPEND {5+}\r\nINBOX (\\Seen) {8+}',
  ])('%s is forwarded with its literal', (line) => {
    const d = loggedIn();
    const before = d.toServer.length;
    d.client(`${line}\r\nz NOOP\r\n\r\n`);
    expect(d.refusals).toEqual([]);
    expect(d.toServer.slice(before)).toBe(`${line}\r\nz NOOP\r\n\r\n`);
  });

  it('MULTIAPPEND: the next message with a bad flag closes the session', () => {
    const d = loggedIn();
    const before = d.toServer.length;
    d.client('A1 APPEND INBOX {3+}\r\nabc (\\Recent) {8+}\r\nz NOOP\r\n\r\n');
    expect(d.refusals).toEqual([{ code: 'bad_syntax', close: true }]);
    expect(d.toServer.slice(before)).toBe('A1 APPEND INBOX {3+}\r\nabc');
  });

  it('CREATE takes parameters only when the server advertised CREATE-SPECIAL-USE', () => {
    const d = loggedIn();
    d.client('A1 CREATE x (USE ({8+}\r\nz NOOP\r\n))\r\n');
    expect(d.refusals).toEqual([{ code: 'bad_argument', close: true }]);
    const e = loggedIn(`${POST_LOGIN_CAPS} CREATE-SPECIAL-USE`);
    const before = e.toServer.length;
    e.client('A1 CREATE x (USE (\\Archive))\r\n');
    expect(e.refusals).toEqual([]);
    expect(e.toServer.slice(before)).toBe('A1 CREATE x (USE (\\Archive))\r\n');
  });
});

describe('imap: SELECT refused with BAD', () => {
  it('deselects, as Dovecot does ("SELECT INBOX (QRESYNC (x))" closes the mailbox it had open)', () => {
    const d = loggedIn();
    d.client('S1 SELECT INBOX\r\n').server('S1 OK [READ-WRITE] Select completed\r\n');
    d.client('S2 SELECT INBOX (QRESYNC (x))\r\n').server('S2 BAD Error in IMAP command SELECT: QRESYNC not enabled\r\n');
    expect(d.state).toBe('authenticated');
    d.client('F1 FETCH 1 FLAGS\r\n');
    expect(d.refusals).toEqual([{ code: 'bad_state', close: false }]);
  });
});

describe('imap: commands whose server parses a list as it reads it take only synchronizing literals', () => {
  it.each([
    ['A1 ID (a {8+}', 'bad_syntax'],
    ['A1 ID ((((a {8+}', 'bad_syntax'],
    ['A1 ID ("name" {8+}', 'literal'],
  ])('%s closes the session before the literal (%s)', (line, code) => {
    const d = new ImapDriver().server(GREETING);
    d.client(`${line}\r\nz NOOP\r\n)\r\n`);
    expect(d.refusals).toEqual([{ code, close: true }]);
    expect(d.toServer).toBe('');
  });

  it('ID with a synchronizing literal still waits for + and goes on', () => {
    const d = new ImapDriver().server(GREETING);
    d.client('A1 ID ("name" {3}\r\n');
    expect(d.toServer).toBe('A1 ID ("name" {3}\r\n');
    d.server('+ OK\r\n').client('abc)\r\n');
    expect(d.refusals).toEqual([]);
    expect(d.toServer).toBe('A1 ID ("name" {3}\r\nabc)\r\n');
  });
});
