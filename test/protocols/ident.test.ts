import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { ProtocolOptions } from '../../src/core/protocol.js';
import { checkReply, parseQuery } from '../../src/protocols/ident/grammar.js';
import { ident } from '../../src/protocols/ident/index.js';
import { IdentSession } from '../../src/protocols/ident/session.js';
import { Driver } from '../helpers/pop3-driver.js';

/** The options config.ts builds for --protocol ident with no flags (plus overrides). */
function identOptions(o: { maxQueries?: number; maxReplyLineLength?: number; lineEnding?: ProtocolOptions['lineEnding']; maxLineLength?: number } = {}): ProtocolOptions {
  return {
    maxLineLength: o.maxLineLength ?? ident.defaultMaxLineLength,
    lineEnding: o.lineEnding ?? 'crlf',
    allowNul: false,
    allowBareCr: false,
    allow: [],
    deny: [],
    forwardUnterminated: true,
    extra: { maxQueries: o.maxQueries ?? 1, maxReplyLineLength: o.maxReplyLineLength ?? 1000 },
  };
}

function driver(o: Parameters<typeof identOptions>[0] = {}): Driver {
  const opts = identOptions(o);
  return new Driver(ident.createSession({ clientAddress: '127.0.0.1', maxLineLength: opts.maxLineLength }, opts), opts.maxLineLength);
}

const b = (s: string) => Buffer.from(s, 'latin1');
const Q = { server: 6193, client: 23 };

describe('ident query grammar (RFC 1413)', () => {
  const accepted: Array<[string, number, number]> = [
    ['6193, 23', 6193, 23],
    ['6193,23', 6193, 23],
    ['6193 , 23', 6193, 23],
    ['  6193\t,\t23  ', 6193, 23],
    ['1,65535', 1, 65535],
    ['65535,1', 65535, 1],
    ['00023,00001', 23, 1],
  ];
  it.each(accepted)('%j → %d , %d', (line, server, client) => {
    expect(parseQuery(b(line), line.length)).toEqual({ ok: true, ports: { server, client } });
  });

  /** Garbage: the kind, and the port pair the INVALID-PORT reply repeats. */
  const refused: Array<[string, string, 'syntax' | 'range', number, number]> = [
    ['port 0', '0,23', 'range', 0, 23],
    ['both 0', '0 , 0', 'range', 0, 0],
    ['past 65535', '65536,23', 'range', 65536, 23],
    ['past 65535, second', '23,99999', 'range', 23, 99999],
    ['six digits', '100000,23', 'syntax', 0, 0],
    ['six digits, second', '23,000023', 'syntax', 0, 0],
    ['a sign (sscanf takes it)', '+23,+24', 'syntax', 0, 0],
    ['negative', '-1,5', 'syntax', 0, 0],
    ['a real', '23.0,24', 'syntax', 0, 0],
    ['hex', '0x17,24', 'syntax', 0, 0],
    ['trailing garbage (oidentd takes it)', '23,24junk', 'syntax', 0, 0],
    ['a second pair', '23,24,25', 'syntax', 0, 0],
    ['two pairs on one line', '23,24 23,24', 'syntax', 0, 0],
    ['no comma', '23 24', 'syntax', 0, 0],
    ['no second port', '23,', 'syntax', 0, 0],
    ['no first port', ',24', 'syntax', 0, 0],
    ['empty', '', 'syntax', 0, 0],
    ['white space only', ' \t ', 'syntax', 0, 0],
    ['a space inside a number', '2 3,24', 'syntax', 0, 0],
    ['a control byte', '23,\x1b24', 'syntax', 0, 0],
    ['an HTTP request', 'GET / HTTP/1.0', 'syntax', 0, 0],
    ['8-bit digits look-alike', '\xb2\xb3,24', 'syntax', 0, 0],
    ['a colon', '23,24:USERID', 'syntax', 0, 0],
  ];
  it.each(refused)('%s: %j is refused (%s)', (_n, line, kind, server, client) => {
    const r = parseQuery(b(line), line.length);
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.kind).toBe(kind);
      expect(r.shown).toEqual({ server, client });
    }
  });

  it('property: any two ports in 1..65535 with any white space around the tokens are read as those ports', () => {
    const ws = fc.stringMatching(/^[ \t]{0,4}$/);
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 65535 }), fc.integer({ min: 1, max: 65535 }), ws, ws, ws, ws, (s, c, w1, w2, w3, w4) => {
        const line = `${w1}${s}${w2},${w3}${c}${w4}`;
        expect(parseQuery(b(line), line.length)).toEqual({ ok: true, ports: { server: s, client: c } });
      }),
    );
  });

  it('property: an accepted query holds nothing but digits, one comma, spaces and tabs', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 30 }), (bytes) => {
        const buf = Buffer.from(bytes);
        const r = parseQuery(buf, buf.length);
        if (!r.ok) return;
        expect([...buf].every((x) => (x >= 0x30 && x <= 0x39) || x === 0x2c || x === 0x20 || x === 0x09)).toBe(true);
        expect([...buf].filter((x) => x === 0x2c)).toHaveLength(1);
      }),
      { numRuns: 3000 },
    );
  });
});

describe('ident reply grammar (RFC 1413), checked against the query', () => {
  const good = [
    '6193, 23 : USERID : UNIX : stjohns',
    '6193,23:USERID:UNIX:root',
    '6193 , 23 : USERID : UNIX , US-ASCII : root',
    '6193 , 23 : USERID : OTHER : 3A9F0C',
    '6193 , 23 : USERID : UNIX,UTF-8 :j\xc3\xb6rg',
    '6193 , 23 : USERID : UNIX : two words\tand a tab',
    '6193,23:USERID:UNIX:' + 'u'.repeat(512),
    '6193, 23 : ERROR : INVALID-PORT',
    '6193, 23 : ERROR : NO-USER',
    '6193, 23 : ERROR : HIDDEN-USER',
    '6193, 23 : ERROR : UNKNOWN-ERROR',
    '6193, 23 : ERROR : X-BUSY',
    '  6193 , 23 : ERROR : NO-USER  ',
    '00006193,00023:ERROR:NO-USER'.slice(3),
  ];
  it.each(good)('%j is a reply', (line) => {
    expect(checkReply(b(line), line.length, Q)).toBeNull();
  });

  const bad: Array<[string, string, RegExp]> = [
    ['another port pair', '23, 6193 : USERID : UNIX : root', /answers no query/],
    ['another server port', '6194, 23 : USERID : UNIX : root', /answers no query/],
    ['no port pair', 'USERID : UNIX : root', /no port pair/],
    ['lower-case keyword', '6193, 23 : userid : UNIX : root', /neither USERID nor ERROR/],
    ['unknown keyword', '6193, 23 : HELLO : UNIX : root', /neither USERID nor ERROR/],
    ['unknown error type', '6193, 23 : ERROR : BUSY', /unknown error type/],
    ['X alone', '6193, 23 : ERROR : X', /unknown error type/],
    ['error token of 65 bytes', `6193, 23 : ERROR : X${'Y'.repeat(64)}`, /no error type/],
    ['bytes after the error', '6193, 23 : ERROR : NO-USER extra', /bytes after the error type/],
    ['no error type', '6193, 23 : ERROR :', /no error type/],
    ['no opsys', '6193, 23 : USERID : : root', /no operating system/],
    ['opsys of 65 bytes', `6193, 23 : USERID : ${'U'.repeat(65)} : root`, /no operating system|no colon before/],
    ['empty charset', '6193, 23 : USERID : UNIX , : root', /no character set/],
    ['no user id field', '6193, 23 : USERID : UNIX', /no colon before the user id/],
    ['empty user id', '6193, 23 : USERID : UNIX :', /empty user id/],
    ['blank user id', '6193, 23 : USERID : UNIX :  \t ', /empty user id/],
    ['user id of 513 bytes', `6193,23:USERID:UNIX:${'u'.repeat(513)}`, /longer than 512/],
    ['ESC in the user id', '6193, 23 : USERID : UNIX : ro\x1b[2Jot', /control byte 0x1b/],
    ['NUL in the user id', '6193, 23 : USERID : UNIX : ro\x00ot', /control byte 0x00/],
    ['bare CR in the user id', '6193, 23 : USERID : UNIX : ro\rot', /control byte 0x0d/],
    ['DEL in the user id', '6193, 23 : USERID : UNIX : ro\x7fot', /control byte 0x7f/],
    ['HTTP', 'HTTP/1.1 400 Bad Request', /no port pair/],
    ['empty', '', /no port pair/],
  ];
  it.each(bad)('%s: %j is refused', (_n, line, why) => {
    expect(checkReply(b(line), line.length, Q)).toMatch(why);
  });
});

describe('ident session: one query, one checked reply', () => {
  const reply = '6193,23:USERID:UNIX:root\r\n';

  it('the query goes to the server as it came and holds the client; the reply goes back as it came and releases', () => {
    const d = driver().fromClient('6193, 23\r\n');
    expect(d.verdicts).toEqual(['forward+hold']);
    expect(d.server).toBe('6193, 23\r\n');
    expect(d.proto.state).toBe('reply');
    const chunk = b(reply);
    const v = d.proto.serverData!(chunk);
    expect(v.toClient).toBeNull();
    expect(v.release).toBe(true);
    expect(d.proto.state).toBe('done');
  });

  it('the reply split at every byte reaches the client unchanged, once', () => {
    for (let i = 0; i <= reply.length; i++) {
      for (let j = i; j <= reply.length; j++) {
        const d = driver().fromClient('6193, 23\r\n');
        d.fromServer(reply.slice(0, i)).fromServer(reply.slice(i, j)).fromServer(reply.slice(j));
        expect(d.client).toBe(reply);
        expect(d.closed).toBe(false);
        expect(d.held).toBe(false);
      }
    }
  });

  it('maxQueries = 1: a second query closes the session unanswered and never reaches the server', () => {
    const d = driver().fromClient('6193, 23\r\n1,2\r\n').fromServer(reply);
    expect(d.verdicts).toEqual(['forward+hold', 'too_many_queries+close']);
    expect(d.server).toBe('6193, 23\r\n');
    expect(d.client).toBe(reply);
    expect(d.closed).toBe(true);
  });

  it('maxQueries = 3: queries in turn, each waiting for its reply; the fourth closes', () => {
    const d = driver({ maxQueries: 3 }).fromClient('1,2\r\n3,4\r\n5,6\r\n7,8\r\n');
    expect(d.server).toBe('1,2\r\n');
    d.fromServer('1,2:ERROR:NO-USER\r\n');
    expect(d.server).toBe('1,2\r\n3,4\r\n');
    d.fromServer('3,4:ERROR:NO-USER\r\n');
    d.fromServer('5,6:ERROR:NO-USER\r\n');
    expect(d.verdicts).toEqual(['forward+hold', 'forward+hold', 'forward+hold', 'too_many_queries+close']);
    expect(d.server).toBe('1,2\r\n3,4\r\n5,6\r\n');
    expect(d.client).toBe('1,2:ERROR:NO-USER\r\n3,4:ERROR:NO-USER\r\n5,6:ERROR:NO-USER\r\n');
  });

  it('a reply to another query than the one pending is replaced (a reply to 3,4 while 1,2 is asked)', () => {
    const d = driver({ maxQueries: 2 }).fromClient('1,2\r\n').fromServer('3,4:USERID:UNIX:root\r\n');
    expect(d.client).toBe('1 , 2 : ERROR : UNKNOWN-ERROR\r\n');
    expect(d.closed).toBe(true);
  });

  /** Hostile queries: what the client gets, what the server gets (nothing). */
  const garbage: Array<[string, string, string, string]> = [
    ['a port out of range', '0,23\r\n', 'bad_argument+close', '0 , 23 : ERROR : INVALID-PORT\r\n'],
    ['garbage', 'GET / HTTP/1.0\r\n', 'bad_syntax+close', '0 , 0 : ERROR : INVALID-PORT\r\n'],
    ['trailing junk', '6193,23junk\r\n', 'bad_syntax+close', '0 , 0 : ERROR : INVALID-PORT\r\n'],
    ['a bare LF', '6193,23\n', 'bare_lf+close', '0 , 0 : ERROR : INVALID-PORT\r\n'],
    ['a NUL', '6193,\x0023\r\n', 'nul_byte+close', '0 , 0 : ERROR : INVALID-PORT\r\n'],
    ['a bare CR', '6193\r,23\r\n', 'bare_cr+close', '0 , 0 : ERROR : INVALID-PORT\r\n'],
    ['an overlong line', `${' '.repeat(100)}6193,23\r\n`, 'line_too_long+close', '0 , 0 : ERROR : INVALID-PORT\r\n'],
  ];
  it.each(garbage)('%s: INVALID-PORT from the wrapper, the close, nothing to the server', (_n, input, verdict, answer) => {
    const d = driver().fromClient(input);
    expect(d.verdicts).toEqual([verdict]);
    expect(d.client).toBe(answer);
    expect(d.server).toBe('');
    expect(d.closed).toBe(true);
  });

  it('with maxQueries = 2 a refused query counts, and the next one still goes', () => {
    const d = driver({ maxQueries: 2 }).fromClient('x\r\n6193,23\r\n');
    expect(d.verdicts).toEqual(['bad_syntax', 'forward+hold']);
    expect(d.server).toBe('6193,23\r\n');
    d.fromServer(reply);
    expect(d.client).toBe('0 , 0 : ERROR : INVALID-PORT\r\n' + reply);
  });

  it('the query line limit: 64 bytes pass, 65 are refused', () => {
    const ok = `${' '.repeat(64 - 7)}6193,23`;
    expect(driver().fromClient(`${ok}\r\n`).verdicts).toEqual(['forward+hold']);
    expect(driver().fromClient(` ${ok}\r\n`).verdicts).toEqual(['line_too_long+close']);
  });

  /** Malformed replies: all replaced by UNKNOWN-ERROR for the query, then the close. */
  const malformed: Array<[string, string]> = [
    ['a bare LF', '6193,23:USERID:UNIX:root\n'],
    ['garbage', 'hello there\r\n'],
    ['an ESC in the user id', '6193,23:USERID:UNIX:r\x1b[31moot\r\n'],
    ['a wrong port pair', '1,2:USERID:UNIX:root\r\n'],
    ['an unknown error', '6193,23:ERROR:BROKEN\r\n'],
    ['a second line nobody asked for', '6193,23:USERID:UNIX:root\r\n6193,23:USERID:UNIX:admin\r\n'],
  ];
  it.each(malformed)('a reply with %s is replaced by UNKNOWN-ERROR, at every split point', (_n, bad) => {
    const good = bad.startsWith('6193,23:USERID:UNIX:root\r\n') ? '6193,23:USERID:UNIX:root\r\n' : '';
    const want = good + '6193 , 23 : ERROR : UNKNOWN-ERROR\r\n';
    for (let i = 0; i <= bad.length; i++) {
      const d = driver().fromClient('6193,23\r\n').fromServer(bad.slice(0, i)).fromServer(bad.slice(i));
      expect(d.client).toBe(good ? good : want);
      if (!good) expect(d.closed).toBe(true);
    }
    // The unasked line after a good reply: dropped, and the session closed.
    if (good) {
      const d = driver().fromClient('6193,23\r\n').fromServer(bad);
      expect(d.client).toBe(good);
      expect(d.closed).toBe(true);
    }
  });

  it('server bytes before any query are dropped and close the session', () => {
    const s = new IdentSession(identOptions(), { maxQueries: 1, maxReplyLineLength: 1000 });
    const v = s.serverData(b('6193,23:USERID:UNIX:root\r\n'));
    expect(v.toClient).toEqual([]);
    expect(v.close).toBe(true);
    expect(v.notes?.[0]).toMatch(/server bytes dropped: server bytes with no query outstanding/);
  });

  it('maxReplyLineLength: a reply of exactly that many bytes passes, one more is replaced, at every split point', () => {
    const max = 100;
    const head = '6193,23:USERID:UNIX:';
    const exact = head + 'u'.repeat(max - head.length) + '\r\n';
    const over = head + 'u'.repeat(max + 1 - head.length) + '\r\n';
    for (let i = 0; i <= exact.length; i++) {
      const d = driver({ maxReplyLineLength: max }).fromClient('6193,23\r\n').fromServer(exact.slice(0, i)).fromServer(exact.slice(i));
      expect(d.client).toBe(exact);
      expect(d.closed).toBe(false);
    }
    for (let i = 0; i <= over.length; i++) {
      const d = driver({ maxReplyLineLength: max }).fromClient('6193,23\r\n').fromServer(over.slice(0, i)).fromServer(over.slice(i));
      expect(d.client).toBe('6193 , 23 : ERROR : UNKNOWN-ERROR\r\n');
      expect(d.closed).toBe(true);
    }
  });

  it('an unfinished reply line is kept up to maxReplyLineLength + 1 bytes (content and CR), no byte more', () => {
    const start = () => {
      const s = new IdentSession(identOptions(), { maxQueries: 1, maxReplyLineLength: 100 });
      s.clientLine(b('6193,23\r\n'), 7, 'crlf');
      return s;
    };
    expect(start().serverData(Buffer.alloc(101, 0x75)).close).toBeUndefined();
    expect(start().serverData(Buffer.alloc(102, 0x75)).close).toBe(true);
    const s = start();
    expect(s.serverData(Buffer.alloc(60, 0x75)).close).toBeUndefined();
    expect(s.serverData(Buffer.alloc(41, 0x75)).close).toBeUndefined();
    expect(s.serverData(Buffer.alloc(1, 0x75)).close).toBe(true);
  });

  it('an endless reply line is replaced as soon as it passes the limit: its memory stays bounded', () => {
    const s = new IdentSession(identOptions(), { maxQueries: 1, maxReplyLineLength: 1000 });
    s.clientLine(b('6193,23\r\n'), 7, 'crlf');
    let v = s.serverData(b('6193,23:USERID:UNIX:'));
    for (let n = 0; n < 10 && !v.close; n++) v = s.serverData(Buffer.alloc(200, 0x75));
    expect(v.close).toBe(true);
    expect(v.notes?.[0]).toMatch(/reply line longer than 1000 bytes/);
    expect(v.closeWhy).toBe('server reply refused');
    expect(Buffer.concat(v.toClient as Buffer[]).toString()).toBe('6193 , 23 : ERROR : UNKNOWN-ERROR\r\n');
    expect(s.serverData(b('more')).toClient).toEqual([]);
  });

  it('a reply cut off by the server close is answered UNKNOWN-ERROR; a close with no reply byte says nothing', () => {
    const cut = new IdentSession(identOptions(), { maxQueries: 1, maxReplyLineLength: 1000 });
    cut.clientLine(b('6193,23\r\n'), 7, 'crlf');
    expect(cut.serverData(b('6193,23:USERID:UN')).toClient).toEqual([]);
    expect(cut.serverEnd()).toEqual([b('6193 , 23 : ERROR : UNKNOWN-ERROR\r\n')]);
    const silent = new IdentSession(identOptions(), { maxQueries: 1, maxReplyLineLength: 1000 });
    silent.clientLine(b('6193,23\r\n'), 7, 'crlf');
    expect(silent.serverEnd()).toBeNull();
  });

  it('property: any reply stream, cut anywhere, gives the client the same bytes', () => {
    const replies = fc.constantFrom(
      '6193,23:USERID:UNIX:root\r\n',
      '6193 , 23 : ERROR : NO-USER\r\n',
      '6193,23:USERID:UNIX:ro\x1bot\r\n',
      '6193,23:USERID:UNIX:root\n',
      '6193,23:USERID:UNIX:root\r\nextra\r\n',
      'junk',
      '',
    );
    fc.assert(
      fc.property(replies, fc.array(fc.integer({ min: 0, max: 40 }), { maxLength: 6 }), (text, cuts) => {
        const whole = driver().fromClient('6193,23\r\n').fromServer(text);
        const points = [...new Set(cuts.map((c) => Math.min(c, text.length)))].sort((x, y) => x - y);
        const d = driver().fromClient('6193,23\r\n');
        let prev = 0;
        for (const p of points) {
          d.fromServer(text.slice(prev, p));
          prev = p;
        }
        d.fromServer(text.slice(prev));
        expect(d.client).toBe(whole.client);
        expect(d.closed).toBe(whole.closed);
      }),
      { numRuns: 1000 },
    );
  });

  it('the wrapper says nothing of its own when it closes (a close means UNKNOWN-ERROR, RFC 1413)', () => {
    const s = new IdentSession(identOptions(), { maxQueries: 1, maxReplyLineLength: 1000 });
    expect(s.reply()).toBeUndefined();
  });

  it('idle timeout: 60 s by default for ident', () => {
    expect(ident.defaultIdleTimeout).toBe(60);
  });
});
