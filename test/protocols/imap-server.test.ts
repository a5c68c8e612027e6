import { describe, expect, it } from 'vitest';
import { filterCapabilities } from '../../src/protocols/imap/capability.js';
import { CAP_LINE_MAX, ServerScanner, type ServerResponse } from '../../src/protocols/imap/server.js';
import { GREETING, GREETING_SYNC_ONLY, ImapDriver } from '../helpers/imap-driver.js';

/** Feeds chunks to a fresh scanner; returns what the client gets and the responses seen. */
function scan(chunks: readonly string[], insert: () => readonly Buffer[] | null = () => null): { out: string; responses: ServerResponse[]; max: number } {
  const s = new ServerScanner();
  const responses: ServerResponse[] = [];
  let out = '';
  let max = 0;
  for (const c of chunks) {
    const b = Buffer.from(c, 'latin1');
    const r = s.feed(b, (x) => responses.push(x), insert);
    out += r === null ? c : Buffer.concat(r).toString('latin1');
    max = Math.max(max, s.bufferedBytes);
  }
  return { out, responses, max };
}

const FETCH_STREAM =
  '* 1 FETCH (UID 7 BODY[] {26}\r\nA1 OK fake\r\n+ fake too\r\n BODY[HEADER] {0}\r\n FLAGS (\\Seen))\r\n' +
  '* CAPABILITY IMAP4rev1 STARTTLS LITERAL+\r\n' +
  '* OK [ALERT] text that ends like a literal {5}\r\n' +
  'A1 OK [CAPABILITY IMAP4rev1 COMPRESS=DEFLATE IDLE] Fetch completed.\r\n' +
  '+ idling\r\n';

const FETCH_FILTERED = FETCH_STREAM.replace(' STARTTLS', '').replace(' COMPRESS=DEFLATE', '');

describe('imap: server responses', () => {
  it('filters STARTTLS and COMPRESS from CAPABILITY data and [CAPABILITY] codes', () => {
    expect(scan([GREETING]).out).toBe(GREETING.replace(' STARTTLS', ''));
    expect(scan(['* capability starttls IMAP4rev1 compress=deflate\r\n']).out).toBe('* capability IMAP4rev1\r\n');
    expect(scan(['* CAPABILITY STARTTLS\r\n']).out).toBe('* CAPABILITY\r\n');
    expect(scan(['* OK [CAPABILITY STARTTLS] hi\r\n']).out).toBe('* OK [CAPABILITY] hi\r\n');
    expect(scan(['* OK [CAPABILITY] hi\r\n']).out).toBe('* OK [CAPABILITY] hi\r\n');
    expect(scan(['* OK [CAPABILITYX STARTTLS] hi\r\n']).out).toBe('* OK [CAPABILITYX STARTTLS] hi\r\n');
  });

  it('keeps the bytes it does not filter exactly (no re-encoding)', () => {
    const f = filterCapabilities(Buffer.from('* CAPABILITY imap4rev1 StartTLS Idle x-\xff\r\n', 'latin1'), 13, false);
    expect(f.line.toString('latin1')).toBe('* CAPABILITY imap4rev1 Idle x-\xff\r\n');
    const g = filterCapabilities(Buffer.from('* CAPABILITY IMAP4rev1 LITERAL+\n'), 13, false);
    expect(g.flags).toMatchObject({ literalPlus: true, literalMinus: false, loginDisabled: false });
  });

  it('follows literals in data responses; status lines never carry one', () => {
    const r = scan([FETCH_STREAM]);
    expect(r.out).toBe(FETCH_FILTERED);
    // A data response that carried a literal is not reported: nothing in it changes the state.
    expect(r.responses.map((x) => [x.kind, x.tag, x.word])).toEqual([
      ['untagged', '', 'CAPABILITY'],
      ['untagged', '', 'OK'],
      ['tagged', 'A1', 'OK'],
      ['continuation', '', ''],
    ]);
    expect(r.responses[0]!.caps).toMatchObject({ literalPlus: true, literalMinus: false, loginDisabled: false });
    expect(r.responses[2]!.caps).toMatchObject({ literalPlus: false, literalMinus: false, loginDisabled: false });
  });

  it('gives the same bytes and responses for every split point of the stream', () => {
    const whole = scan([FETCH_STREAM]);
    for (let i = 1; i < FETCH_STREAM.length; i++) {
      for (const j of [i + 1, i + 7, FETCH_STREAM.length]) {
        if (j <= i || j > FETCH_STREAM.length) continue;
        const r = scan([FETCH_STREAM.slice(0, i), FETCH_STREAM.slice(i, j), FETCH_STREAM.slice(j)]);
        expect(r.out, `split at ${i}/${j}`).toBe(whole.out);
        expect(r.responses, `split at ${i}/${j}`).toEqual(whole.responses);
      }
    }
  });

  it('byte by byte: same result, and never more than a head of held bytes', () => {
    const r = scan([...FETCH_STREAM]);
    expect(r.out).toBe(FETCH_FILTERED);
    expect(r.max).toBeLessThanOrEqual(200);
  });

  it('a capability line past CAP_LINE_MAX is passed on unfiltered; memory stays bounded', () => {
    const line = `* CAPABILITY STARTTLS ${'X-LONG '.repeat(CAP_LINE_MAX / 7 + 10)}\r\n`;
    const chunks: string[] = [];
    for (let i = 0; i < line.length; i += 1000) chunks.push(line.slice(i, i + 1000));
    const r = scan([...chunks, 'A1 OK done\r\n']);
    expect(r.out).toBe(`${line}A1 OK done\r\n`);
    expect(r.max).toBeLessThanOrEqual(CAP_LINE_MAX);
    expect(r.responses.at(-1)).toMatchObject({ kind: 'tagged', tag: 'A1' });
  });

  it('a server literal too long to write is taken as endless (fail safe)', () => {
    const r = scan([`* 1 FETCH (BODY[] {${'0'.repeat(80)}5}\r\nA1 OK fake\r\n`]);
    expect(r.responses).toEqual([]);
  });

  it('inserts wrapper replies only between responses', () => {
    let pending: Buffer[] = [Buffer.from('A9 BAD Unknown command\r\n')];
    const take = () => {
      const p = pending;
      pending = [];
      return p.length ? p : null;
    };
    const r = scan(['* 1 FETCH (BODY[] {14}\r\nA9 BAD inner', '\r\n)\r\n'], take);
    expect(r.out).toBe('* 1 FETCH (BODY[] {14}\r\nA9 BAD inner\r\n)\r\nA9 BAD Unknown command\r\n');
  });
});

describe('imap: the session and the server stream', () => {
  it('literal data in a FETCH answer never releases a held command', () => {
    const d = new ImapDriver().server(GREETING);
    d.client('L1 LOGIN alice secret\r\n').server('L1 OK Logged in\r\n');
    d.client('S1 SELECT INBOX\r\n').server('S1 OK done\r\n');
    d.client('A1 FETCH 1 BODY[]\r\nA2 CLOSE\r\nA3 NOOP\r\n');
    d.server('* 1 FETCH (BODY[] {16}\r\nA2 OK [fake]\r\n\r\n)\r\n');
    expect(d.held).toBe(true);
    expect(d.state).toBe('selected');
    d.server('A1 OK Fetch completed.\r\nA2 OK Close completed.\r\n');
    expect(d.state).toBe('authenticated');
    expect(d.toServer.endsWith('A2 CLOSE\r\nA3 NOOP\r\n')).toBe(true);
  });

  it('a refusal while the server is inside a literal is sent after that response', () => {
    const d = new ImapDriver().server(GREETING);
    d.client('L1 LOGIN alice secret\r\n').server('L1 OK Logged in\r\n');
    d.client('S1 SELECT INBOX\r\n').server('S1 OK done\r\n');
    d.client('A1 FETCH 1 BODY[]\r\n').server('* 1 FETCH (BODY[] {10}\r\n01234');
    d.client('A2 BOGUS\r\n');
    expect(d.toClient.endsWith('01234')).toBe(true);
    d.server('56789)\r\nA1 OK done\r\n');
    expect(d.toClient.endsWith('01234' + '56789)\r\nA2 BAD Unknown command\r\nA1 OK done\r\n')).toBe(true);
  });

  it('greeting split anywhere: capability filtering and LITERAL+ knowledge are the same', () => {
    for (let i = 1; i < GREETING.length; i++) {
      const d = new ImapDriver().server(GREETING.slice(0, i)).server(GREETING.slice(i));
      expect(d.toClient).toBe(GREETING.replace(' STARTTLS', ''));
      d.client('L1 LOGIN alice secret\r\n').server('L1 OK Logged in\r\n').client('A1 APPEND INBOX {2+}\r\nhi\r\n');
      expect(d.refusals).toEqual([]);
    }
  });
});

/** A whole session: client steps and server steps; the client steps are split at every point. */
const STEPS: readonly (readonly ['c' | 's', string])[] = [
  ['s', GREETING_SYNC_ONLY],
  ['c', 'A1 LOGIN {5}\r\n'],
  ['s', '+ OK\r\n'],
  ['c', 'alice "se\\"cret"\r\nA2 SELECT INBOX\r\n'],
  ['s', 'A1 OK [CAPABILITY IMAP4rev1 LITERAL+ STARTTLS IDLE] Logged in\r\n'],
  ['s', '* 2 EXISTS\r\nA2 OK [READ-WRITE] Select completed\r\n'],
  ['c', 'A3 FETCH 1 (BODY[])\r\nA4 BOGUS\r\nA5 APPEND INBOX {11+}\r\nA6 LOGOUT\r\n\r\nA7 NOOP\r\nA8 IDLE\r\n'],
  ['s', '* 1 FETCH (BODY[] {8}\r\nA4 OK x\r\n)\r\nA3 OK done\r\n'],
  ['s', 'A5 OK appended\r\nA7 OK noop\r\n+ idling\r\n'],
  ['c', 'A9 NOOP\r\nDONE\r\nB1 STARTTLS\r\nB2 LOGOUT\r\n'],
  ['s', 'A8 OK Idle completed.\r\n* BYE bye\r\nB2 OK Logout completed.\r\n'],
];

function runSteps(split: (step: number, text: string) => readonly string[]): ImapDriver {
  const d = new ImapDriver();
  STEPS.forEach(([who, text], n) => {
    if (who === 's') d.server(text);
    else for (const part of split(n, text)) d.client(part);
  });
  return d;
}

describe('imap: any chunking of the client gives the same session', () => {
  it('every split point of every client step', () => {
    const whole = runSteps((_n, t) => [t]);
    expect(whole.refusals.map((r) => r.code)).toEqual(['unknown_command', 'bad_state', 'not_supported']);
    expect(whole.state).toBe('logout');
    expect(whole.toServer).toContain('A5 APPEND INBOX {11+}\r\nA6 LOGOUT\r\n\r\nA7 NOOP\r\nA8 IDLE\r\nDONE\r\nB2 LOGOUT\r\n');
    STEPS.forEach(([who, text], n) => {
      if (who !== 'c') return;
      for (let i = 1; i < text.length; i++) {
        const d = runSteps((m, t) => (m === n ? [t.slice(0, i), t.slice(i)] : [t]));
        expect(d.toServer, `step ${n} split at ${i}`).toBe(whole.toServer);
        expect(d.toClient, `step ${n} split at ${i}`).toBe(whole.toClient);
        expect(d.refusals).toEqual(whole.refusals);
      }
    });
  });
});
