import { describe, expect, it } from 'vitest';
import { buildConfig } from '../../src/config.js';
import { GREETING, GREETING_SYNC_ONLY, ImapDriver } from '../helpers/imap-driver.js';

/** A driver in the given state, reached through real server answers. */
function inState(state: 'not_authenticated' | 'authenticated' | 'selected', greeting = GREETING): ImapDriver {
  const d = new ImapDriver().server(greeting);
  if (state === 'not_authenticated') return d;
  // Dovecot-like post-login capabilities, plus ACL and METADATA for the table rows that use them.
  d.client('L1 LOGIN alice secret\r\n').server('L1 OK [CAPABILITY IMAP4rev1 LITERAL+ ID ENABLE IDLE NAMESPACE UNSELECT UIDPLUS MOVE ACL METADATA CONTEXT=SEARCH CREATE-SPECIAL-USE] Logged in\r\n');
  if (state === 'authenticated') return d;
  d.client('S1 SELECT INBOX\r\n').server('* 1 EXISTS\r\nS1 OK [READ-WRITE] Select completed\r\n');
  return d;
}

type Row = [state: 'not_authenticated' | 'authenticated' | 'selected', line: string, expected: 'forward' | string, reply?: string];

const TABLE: Row[] = [
  // Any state.
  ['not_authenticated', 'A1 CAPABILITY', 'forward'],
  ['not_authenticated', 'A1 NOOP', 'forward'],
  ['selected', 'a1 noop', 'forward'],
  ['not_authenticated', 'A1 ID NIL', 'forward'],
  ['authenticated', 'A1 ID ("name" "imaplib" "version" "3.11")', 'forward'],
  // Not authenticated.
  ['not_authenticated', 'A1 LOGIN alice "se cret"', 'forward'],
  ['not_authenticated', 'A1 AUTHENTICATE PLAIN', 'forward'],
  ['not_authenticated', 'A1 AUTHENTICATE PLAIN AGFsaWNlAHNlY3JldA==', 'forward'],
  ['not_authenticated', 'A1 AUTHENTICATE PLAIN AGFs!aWNl', 'bad_argument', 'A1 BAD Invalid initial response'],
  ['not_authenticated', 'A1 SELECT INBOX', 'bad_state', 'A1 BAD Command not allowed in this state'],
  ['not_authenticated', 'A1 FETCH 1 FLAGS', 'bad_state', 'A1 BAD Command not allowed in this state'],
  ['not_authenticated', 'A1 STARTTLS', 'not_supported', 'A1 BAD STARTTLS is not available through this gateway'],
  // Authenticated.
  ['authenticated', 'A1 LOGIN alice secret', 'bad_state', 'A1 BAD Command not allowed in this state'],
  ['authenticated', 'A1 ENABLE UTF8=ACCEPT CONDSTORE', 'forward'],
  ['authenticated', 'A1 LIST "" "*"', 'forward'],
  ['authenticated', 'A1 LIST (SPECIAL-USE) "" "*" RETURN (CHILDREN)', 'forward'],
  ['authenticated', 'A1 CREATE Archive (USE (\\Archive))', 'forward'],
  ['authenticated', 'A1 STATUS INBOX (MESSAGES UIDNEXT)', 'forward'],
  ['authenticated', 'A1 NAMESPACE', 'forward'],
  ['authenticated', 'A1 APPEND INBOX (\\Seen) {5}', 'forward'],
  ['authenticated', 'A1 COMPRESS DEFLATE', 'not_supported', 'A1 BAD COMPRESS is not available through this gateway'],
  ['authenticated', 'A1 EXPUNGE', 'bad_state', 'A1 BAD Command not allowed in this state'],
  ['authenticated', 'A1 SELECT INBOX (CONDSTORE)', 'forward'],
  ['authenticated', 'A1 SELECT [Gmail]/Sent', 'forward'],
  ['authenticated', 'A1 RENAME a] "b c"', 'forward'],
  ['authenticated', 'A1 GETMETADATA (DEPTH 1) INBOX /private/comment', 'forward'],
  ['selected', 'A1 MYRIGHTS INBOX', 'forward'],
  ['selected', 'A1 CANCELUPDATE "A0"', 'forward'],
  // Selected.
  ['selected', 'A1 FETCH 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (FROM SUBJECT)]<0.100>)', 'forward'],
  ['selected', 'A1 FETCH 1 BODY[]', 'forward'],
  ['selected', 'A1 FETCH 1:* (FLAGS) (CHANGEDSINCE 12345)', 'forward'],
  ['selected', 'A1 UID FETCH 1:* (UID FLAGS)', 'forward'],
  ['selected', 'A1 UID STORE 1 +FLAGS.SILENT (\\Deleted)', 'forward'],
  ['selected', 'A1 UID EXPUNGE 1:3', 'forward'],
  ['selected', 'A1 UID MOVE 1 Trash', 'forward'],
  ['selected', 'A1 STORE 1 (UNCHANGEDSINCE 5) +FLAGS \\Seen \\Flagged', 'forward'],
  ['selected', 'A1 SEARCH CHARSET UTF-8 SUBJECT "h\\"i"', 'forward'],
  ['selected', 'A1 MOVE 1:2 "Other box"', 'forward'],
  ['selected', 'A1 CHECK', 'forward'],
  ['selected', 'A1 UID BOGUS 1', 'unknown_command', 'A1 BAD Unknown command'],
  ['selected', 'A1 UID', 'unknown_command', 'A1 BAD Unknown command'],
  // RFC 5161: authenticated state only; Dovecot takes it in the selected state too, and QRESYNC clients send it there.
  ['selected', 'A1 ENABLE CONDSTORE', 'forward'],
  // Syntax and grammar.
  ['not_authenticated', 'A1 XYZZY', 'unknown_command', 'A1 BAD Unknown command'],
  ['not_authenticated', 'NOOP', 'bad_syntax', '* BAD Missing or invalid tag'],
  ['not_authenticated', '+ NOOP', 'bad_syntax', '* BAD Missing or invalid tag'],
  ['not_authenticated', '* NOOP', 'bad_syntax', '* BAD Missing or invalid tag'],
  ['not_authenticated', `${'T'.repeat(65)} NOOP`, 'bad_syntax', '* BAD Missing or invalid tag'],
  ['not_authenticated', 'A1 NOOP extra', 'bad_argument', 'A1 BAD Too many arguments'],
  ['not_authenticated', 'A1 NOOP ', 'bad_syntax', 'A1 BAD Invalid arguments'],
  ['not_authenticated', 'A1 LOGIN alice', 'bad_argument', 'A1 BAD Missing arguments'],
  ['not_authenticated', 'A1 LOGIN a b c', 'bad_argument', 'A1 BAD Too many arguments'],
  ['not_authenticated', 'A1 LOGIN alice  secret', 'bad_syntax', 'A1 BAD Invalid arguments'],
  ['not_authenticated', 'A1 LOGIN "alice secret', 'bad_syntax', 'A1 BAD Invalid arguments'],
  ['not_authenticated', 'A1 LOGIN "al\\ice" x', 'bad_syntax', 'A1 BAD Invalid arguments'],
  ['not_authenticated', 'A1 LOGIN al{ce x', 'bad_syntax', 'A1 BAD Invalid arguments'],
  ['authenticated', 'A1 STATUS INBOX (MESSAGES', 'bad_syntax', 'A1 BAD Invalid arguments'],
  ['authenticated', 'A1 STATUS INBOX MESSAGES)', 'bad_syntax', 'A1 BAD Invalid arguments'],
  ['authenticated', `A1 STATUS INBOX ${'('.repeat(40)}`, 'bad_syntax', 'A1 BAD Invalid arguments'],
  ['selected', 'A1 FETCH 1 BODY[HEADER', 'bad_syntax', 'A1 BAD Invalid arguments'],
  ['not_authenticated', 'A1 LOGIN a\tb c', 'bad_syntax', 'A1 BAD Invalid arguments'],
  ['not_authenticated', 'A1 NOOP\tx', 'unknown_command', 'A1 BAD Unknown command'],
  ['not_authenticated', 'A1 LOGIN alice \x00secret', 'nul_byte', 'A1 BAD Invalid characters in command'],
  ['not_authenticated', 'A1 LOGIN alice se\rcret', 'bare_cr', 'A1 BAD Invalid characters in command'],
  ['not_authenticated', 'A1 AUTHENTICATE PLAIN {5}', 'bad_argument', 'A1 BAD Too many arguments'],
  ['authenticated', 'A1 IDLE {5}', 'bad_argument', 'A1 BAD Too many arguments'],
];

describe('imap: commands per state (input, state -> verdict)', () => {
  it.each(TABLE)('%s: %j -> %s', (state, line, expected, reply) => {
    const d = inState(state);
    const before = d.toServer.length;
    const clientBefore = d.toClient.length;
    d.client(`${line}\r\n`);
    if (expected === 'forward') {
      expect(d.refusals).toEqual([]);
      expect(d.toServer.slice(before)).toBe(`${line}\r\n`);
    } else {
      expect(d.refusals).toEqual([{ code: expected, close: false }]);
      expect(d.toServer.length).toBe(before);
      expect(d.toClient.slice(clientBefore)).toBe(`${reply}\r\n`);
    }
  });

  it('refuses a bare-LF line (CRLF is required by default)', () => {
    const d = inState('not_authenticated');
    d.client('A1 NOOP\n');
    expect(d.refusals).toEqual([{ code: 'bare_lf', close: false }]);
    expect(d.toClient).toContain('A1 BAD Invalid characters in command\r\n');
  });

  it('refuses LOGIN when the server advertises LOGINDISABLED, without counting a failed login', () => {
    const d = new ImapDriver({ maxLoginAttempts: 1 }).server('* OK [CAPABILITY IMAP4rev1 LOGINDISABLED AUTH=PLAIN] hi\r\n');
    d.client('A1 LOGIN alice secret\r\nA2 LOGIN alice secret\r\n');
    expect(d.refusals).toEqual([{ code: 'policy', close: false }, { code: 'policy', close: false }]);
    expect(d.toClient).toContain('A1 NO [PRIVACYREQUIRED] LOGIN is disabled\r\n');
    expect(d.toServer).toBe('');
    d.client('A3 AUTHENTICATE PLAIN\r\n');
    expect(d.toServer).toBe('A3 AUTHENTICATE PLAIN\r\n');
  });

  it('has the documented option defaults', () => {
    const cfg = buildConfig(null, { protocol: 'imap' }, { connect: '127.0.0.1:143' });
    expect(cfg.options.maxLineLength).toBe(8192);
    expect(cfg.options.extra).toEqual({ maxLoginAttempts: 3, maxLiteralSize: 64 * 1024 * 1024, maxCommandSize: 128 * 1024 * 1024, serverCommandLimit: 65536 });
  });
});

describe('imap: state machine follows the server', () => {
  it('LOGIN holds the client until the tagged answer; OK moves to authenticated', () => {
    const d = inState('not_authenticated');
    d.client('A1 LOGIN alice secret\r\nA2 SELECT INBOX\r\n');
    expect(d.held).toBe(true);
    expect(d.toServer).toBe('A1 LOGIN alice secret\r\n');
    d.server('A1 OK [CAPABILITY IMAP4rev1 IDLE] Logged in\r\n');
    expect(d.state).toBe('authenticated');
    expect(d.toServer).toBe('A1 LOGIN alice secret\r\nA2 SELECT INBOX\r\n');
    d.server('* 0 EXISTS\r\nA2 OK Selected\r\n');
    expect(d.state).toBe('selected');
  });

  it('an answer with another tag does not release a held command', () => {
    const d = inState('authenticated');
    d.client('A1 NOOP\r\nA2 SELECT INBOX\r\nA3 FETCH 1 FLAGS\r\n');
    expect(d.toServer).toBe('L1 LOGIN alice secret\r\nA1 NOOP\r\nA2 SELECT INBOX\r\n');
    d.server('A1 OK NOOP completed\r\n');
    expect(d.held).toBe(true);
    d.server('A2 OK Selected\r\n');
    expect(d.toServer.endsWith('A3 FETCH 1 FLAGS\r\n')).toBe(true);
    expect(d.refusals).toEqual([]);
  });

  it('a failed SELECT deselects; CLOSE and UNSELECT return to authenticated; BAD changes nothing', () => {
    const d = inState('selected');
    d.client('A1 SELECT Nope\r\n').server('A1 NO Mailbox does not exist\r\n');
    expect(d.state).toBe('authenticated');
    d.client('A2 EXAMINE INBOX\r\n').server('A2 OK [READ-ONLY] done\r\n');
    expect(d.state).toBe('selected');
    d.client('A3 SELECT (\r\n');
    expect(d.refusals.at(-1)?.code).toBe('bad_syntax');
    d.client('A4 CLOSE\r\n').server('A4 BAD whatever\r\n');
    expect(d.state).toBe('selected');
    d.client('A5 UNSELECT\r\n').server('A5 OK Unselect completed\r\n');
    expect(d.state).toBe('authenticated');
  });

  it('LOGOUT: BYE and OK move to logout; later commands are refused', () => {
    const d = inState('authenticated');
    d.client('A1 LOGOUT\r\n').server('* BYE Logging out\r\nA1 OK Logout completed.\r\n');
    expect(d.state).toBe('logout');
    d.client('A2 NOOP\r\n');
    expect(d.refusals).toEqual([{ code: 'bad_state', close: false }]);
  });

  it('a PREAUTH greeting starts authenticated; PREAUTH after a tagged answer changes nothing', () => {
    const d = new ImapDriver().server('* PREAUTH [CAPABILITY IMAP4rev1] ready\r\n');
    expect(d.state).toBe('authenticated');
    const e = new ImapDriver().server('* OK Waiting for authentication process to respond..\r\n* PREAUTH ready\r\n');
    expect(e.state).toBe('authenticated');
    const f = new ImapDriver().server(GREETING).client('A1 NOOP\r\n').server('A1 OK done\r\n* PREAUTH hmm\r\n');
    expect(f.state).toBe('not_authenticated');
  });

  it('maxLoginAttempts: the last failed LOGIN is answered, then BYE and close', () => {
    const d = new ImapDriver({ maxLoginAttempts: 2 }).server(GREETING);
    d.client('A1 LOGIN alice wrong\r\n').server('A1 NO [AUTHENTICATIONFAILED] Authentication failed.\r\n');
    expect(d.closed).toBe(false);
    d.client('A2 LOGIN alice bad\r\n').server('A2 BAD odd\r\n');
    expect(d.closed).toBe(false);
    d.client('A3 AUTHENTICATE PLAIN AGFsaWNlAHdyb25n\r\n').server('A3 NO [AUTHENTICATIONFAILED] Authentication failed.\r\n');
    expect(d.closed).toBe(true);
    expect(d.toClient.endsWith('A3 NO [AUTHENTICATIONFAILED] Authentication failed.\r\n* BYE Too many failed login attempts\r\n')).toBe(true);
  });

  it('AUTHENTICATE: SASL lines are forwarded one by one after each +, * cancels', () => {
    const d = inState('not_authenticated');
    d.client('A1 AUTHENTICATE PLAIN\r\n');
    expect(d.held).toBe(true);
    d.server('+ \r\n');
    expect(d.state).toBe('not_authenticated/auth');
    d.client('AGFsaWNlAHNlY3JldA==\r\nA2 NOOP\r\n');
    expect(d.toServer).toBe('A1 AUTHENTICATE PLAIN\r\nAGFsaWNlAHNlY3JldA==\r\n');
    expect(d.verdicts.at(-1)).toMatchObject({ kind: 'forward', hold: true, secret: 'line' });
    d.server('A1 OK Logged in\r\n');
    expect(d.state).toBe('authenticated');
    expect(d.toServer.endsWith('A2 NOOP\r\n')).toBe(true);

    const e = inState('not_authenticated');
    e.client('B1 AUTHENTICATE LOGIN\r\n').server('+ VXNlcm5hbWU6\r\n').client('*\r\n').server('B1 BAD Authentication aborted by client.\r\n');
    expect(e.state).toBe('not_authenticated');
    e.client('B2 NOOP\r\n');
    expect(e.toServer).toBe('B1 AUTHENTICATE LOGIN\r\n*\r\nB2 NOOP\r\n');
  });

  it('AUTHENTICATE: a response line that is not base64 closes the session', () => {
    const d = inState('not_authenticated');
    d.client('A1 AUTHENTICATE PLAIN\r\n').server('+ \r\n').client('A2 LOGOUT\r\n');
    expect(d.refusals).toEqual([{ code: 'bad_syntax', close: true }]);
    expect(d.toServer).toBe('A1 AUTHENTICATE PLAIN\r\n');
    expect(d.toClient.endsWith('A1 BAD Invalid SASL response\r\n* BYE Closing connection\r\n')).toBe(true);
  });

  it('IDLE: only DONE while idling; a refused IDLE goes back to commands', () => {
    const d = inState('selected');
    d.client('A1 IDLE\r\n');
    expect(d.held).toBe(true);
    d.server('+ idling\r\n');
    d.client('A2 NOOP\r\n');
    expect(d.refusals).toEqual([{ code: 'bad_state', close: false }]);
    expect(d.toClient.endsWith('* BAD Expected DONE\r\n')).toBe(true);
    d.server('* 2 EXISTS\r\n').client('done\r\nA3 NOOP\r\n');
    expect(d.toServer.endsWith('A1 IDLE\r\ndone\r\nA3 NOOP\r\n')).toBe(true);
    d.server('A1 OK Idle completed.\r\nA3 OK NOOP completed.\r\n');
    expect(d.state).toBe('selected');

    const e = inState('authenticated');
    e.client('B1 IDLE\r\nB2 NOOP\r\n').server('B1 BAD no idling today\r\n');
    expect(e.toServer.endsWith('B1 IDLE\r\nB2 NOOP\r\n')).toBe(true);
    expect(e.refusals).toEqual([]);
  });

  it('an overlong line closes with BYE; credentials are marked secret', () => {
    const d = inState('not_authenticated');
    d.client(`A1 LOGIN alice ${'x'.repeat(9000)}\r\nA2 NOOP\r\n`);
    expect(d.refusals).toEqual([{ code: 'line_too_long', close: true }]);
    expect(d.toClient.endsWith('* BYE Command line too long\r\n')).toBe(true);
    expect(d.toServer).toBe('');
    expect(d.verdicts[0]).toMatchObject({ secret: true });
    const e = inState('not_authenticated');
    e.client('A1 LOGIN alice secret\r\n');
    expect(e.verdicts.at(-1)).toMatchObject({ kind: 'forward', secret: true });
  });

  it('pipelined commands after a refused one are judged on their own', () => {
    const d = inState('selected');
    d.client('A1 FETCH 1 FLAGS\r\nA2 STARTTLS\r\nA3 XYZ\r\nA4 NOOP\r\n');
    expect(d.toServer.endsWith('A1 FETCH 1 FLAGS\r\nA4 NOOP\r\n')).toBe(true);
    expect(d.refusals.map((r) => r.code)).toEqual(['not_supported', 'unknown_command']);
  });

  it('wrapper replies are * BYE lines', () => {
    const d = new ImapDriver();
    expect(d.proto.reply('unavailable')?.toString()).toMatch(/^\* BYE .*\r\n$/);
    expect(d.proto.reply('timeout')?.toString()).toMatch(/^\* BYE .*\r\n$/);
    expect(d.proto.reply('too_many_violations')?.toString()).toMatch(/^\* BYE .*\r\n$/);
    expect(d.proto.reply('shutdown')?.toString()).toMatch(/^\* BYE .*\r\n$/);
  });

  it('an unterminated last line is refused', () => {
    const d = inState('not_authenticated', GREETING_SYNC_ONLY);
    const v = d.proto.clientLine(Buffer.from('A1 NOOP'), 7, 'none');
    expect(v).toMatchObject({ kind: 'refuse', code: 'unterminated' });
  });
});
