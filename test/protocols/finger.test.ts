import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { ProtocolOptions } from '../../src/core/protocol.js';
import { finger } from '../../src/protocols/finger/index.js';
import { isProblem, parseQuery } from '../../src/protocols/finger/query.js';
import { FingerReplyFilter } from '../../src/protocols/finger/reply-filter.js';
import { ANSWERS, FingerSession } from '../../src/protocols/finger/session.js';
import { Driver } from '../helpers/pop3-driver.js';

/** The options config.ts builds for --protocol finger with no flags (plus overrides). */
function fingerOptions(o: { allowUserList?: boolean; maxReplyBytes?: number; lineEnding?: ProtocolOptions['lineEnding']; maxLineLength?: number } = {}): ProtocolOptions {
  return {
    maxLineLength: o.maxLineLength ?? finger.defaultMaxLineLength,
    lineEnding: o.lineEnding ?? 'crlf',
    allowNul: false,
    allowBareCr: false,
    allow: [],
    deny: [],
    forwardUnterminated: true,
    extra: { allowUserList: o.allowUserList ?? true, maxReplyBytes: o.maxReplyBytes ?? 1048576 },
  };
}

function driver(o: Parameters<typeof fingerOptions>[0] = {}): Driver {
  const opts = fingerOptions(o);
  return new Driver(finger.createSession({ clientAddress: '127.0.0.1', maxLineLength: opts.maxLineLength }, opts), opts.maxLineLength);
}

const b = (s: string) => Buffer.from(s, 'latin1');

describe('finger query grammar (RFC 1288 section 2.3)', () => {
  const accepted: Array<[string, boolean, string | null]> = [
    ['', false, null],
    ['root', false, 'root'],
    ['/W root', true, 'root'],
    ['/w root', true, 'root'],
    ['/W', true, null],
    // finger -l @host sends "/W " (checked against Debian's finger client).
    ['/W ', true, null],
    ['/W   nobody', true, 'nobody'],
    ['root ', false, 'root'],
    ['first.last', false, 'first.last'],
    ['www-data', false, 'www-data'],
    ['_apt', false, '_apt'],
    ['User9', false, 'User9'],
  ];
  it.each(accepted)('%j is a query: verbose %s, user %s', (line, verbose, user) => {
    expect(parseQuery(b(line), line.length)).toEqual({ verbose, user });
  });

  /** Hostile queries: the code, and which answer the client gets. */
  const refused: Array<[string, string, string, 'forwarding' | 'refused']> = [
    ['forwarding', 'user@host', 'forwarding', 'forwarding'],
    ['finger bomb', 'user@host@host@host', 'forwarding', 'forwarding'],
    ['list forwarded', '@host', 'forwarding', 'forwarding'],
    ['verbose forwarded', '/W user@host', 'forwarding', 'forwarding'],
    ['@ after a control byte', '\x1b[2J@host', 'forwarding', 'forwarding'],
    ['@ alone', '@', 'forwarding', 'forwarding'],
    ['two users', 'root nobody', 'bad_argument', 'refused'],
    ['/W and two users', '/W root nobody', 'bad_argument', 'refused'],
    ['three users', 'a b c', 'bad_argument', 'refused'],
    ['ESC sequence', 'root\x1b[2J', 'bad_syntax', 'refused'],
    ['TAB between users', 'root\tnobody', 'bad_syntax', 'refused'],
    ['TAB after /W', '/W\troot', 'bad_syntax', 'refused'],
    ['bell', '\x07', 'bad_syntax', 'refused'],
    ['DEL', 'ro\x7fot', 'bad_syntax', 'refused'],
    ['NUL', 'root\x00x', 'bad_syntax', 'refused'],
    ['leading space', ' root', 'bad_syntax', 'refused'],
    ['/W glued to the user (in.fingerd makes an option of it)', '/Wroot', 'bad_syntax', 'refused'],
    ['/W twice', '/W /W root', 'bad_argument', 'refused'],
    ['an option', '-l', 'bad_argument', 'refused'],
    ['an option after /W', '/W -s', 'bad_argument', 'refused'],
    ['shell syntax', 'root;id', 'bad_argument', 'refused'],
    ['command substitution', '$(id)', 'bad_argument', 'refused'],
    ['a path', '../etc/passwd', 'bad_argument', 'refused'],
    ['quote', "o'brien", 'bad_argument', 'refused'],
    ['8-bit', 'jos\xe9', 'bad_argument', 'refused'],
    ['UTF-8', 'jos\xc3\xa9', 'bad_argument', 'refused'],
    ['a slash alone', '/', 'bad_argument', 'refused'],
    ['telnet IAC WILL ECHO (a control byte)', '\xff\xfb\x01root', 'bad_syntax', 'refused'],
    ['telnet IAC bytes', '\xff\xfdroot', 'bad_argument', 'refused'],
  ];
  it.each(refused)('%s: %j is refused (%s)', (_name, line, code, answer) => {
    const q = parseQuery(b(line), line.length);
    expect(isProblem(q)).toBe(true);
    if (isProblem(q)) {
      expect(q.code).toBe(code);
      expect(q.answer).toBe(answer);
    }
  });

  it('reads only the content: bytes past contentEnd (the line ending) are not judged', () => {
    expect(parseQuery(b('root\r\n'), 4)).toEqual({ verbose: false, user: 'root' });
  });

  it('property: an accepted query holds no @, no control byte, no 8-bit byte and at most one user', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 40 }), (bytes) => {
        const buf = Buffer.from(bytes);
        const q = parseQuery(buf, buf.length);
        if (isProblem(q)) return;
        expect([...buf].every((x) => x >= 0x20 && x < 0x7f && x !== 0x40)).toBe(true);
        const words = buf.toString('latin1').split(' ').filter((w) => w !== '' && w.toUpperCase() !== '/W');
        expect(words.length).toBeLessThanOrEqual(1);
        expect(q.user === null ? 0 : 1).toBe(words.length);
        if (q.user !== null) expect(q.user.startsWith('-')).toBe(false);
      }),
      { numRuns: 3000 },
    );
  });

  it('property: every query a real client builds from a valid name is accepted as that name', () => {
    const name = fc.stringMatching(/^[A-Za-z0-9._][A-Za-z0-9._-]{0,31}$/);
    fc.assert(
      fc.property(name, fc.boolean(), (user, verbose) => {
        const line = `${verbose ? '/W ' : ''}${user}`;
        expect(parseQuery(b(line), line.length)).toEqual({ verbose, user });
      }),
    );
  });
});

describe('finger session: one query, refusals answered with a line of text and a close', () => {
  it('the query goes to the server byte for byte; the reply comes back', () => {
    const d = driver().fromClient('/W root\r\n');
    expect(d.verdicts).toEqual(['forward']);
    expect(d.server).toBe('/W root\r\n');
    expect(d.proto.state).toBe('reply');
    d.fromServer('Login: root\r\n');
    expect(d.client).toBe('Login: root\r\n');
  });

  it('a second line is refused without an answer (nothing of ours inside the server reply) and never forwarded', () => {
    const d = driver().fromClient('root\r\nnobody\r\n');
    expect(d.verdicts).toEqual(['forward', 'bad_state']);
    expect(d.server).toBe('root\r\n');
    expect(d.client).toBe('');
    expect(d.closed).toBe(false);
  });

  it('a line after the query, however long, gets no answer either', () => {
    const d = driver({ maxLineLength: 16 }).fromClient(`root\r\n${'x'.repeat(40)}\r\n`);
    expect(d.verdicts).toEqual(['forward', 'bad_state']);
    expect(d.client).toBe('');
  });

  const refusals: Array<[string, string, string, Buffer]> = [
    ['forwarding', 'root@example.org\r\n', 'forwarding+close', ANSWERS.forwarding],
    ['a finger bomb', 'a@b@c@d\r\n', 'forwarding+close', ANSWERS.forwarding],
    ['two users', 'root nobody\r\n', 'bad_argument+close', ANSWERS.refused],
    ['an escape sequence', 'root\x1b]0;pwned\x07\r\n', 'bad_syntax+close', ANSWERS.refused],
    ['a bare LF (lineEnding crlf)', 'root\n', 'bare_lf+close', ANSWERS.refused],
    ['a bare CR', 'ro\rot\r\n', 'bare_cr+close', ANSWERS.refused],
    ['a NUL', 'ro\x00ot\r\n', 'nul_byte+close', ANSWERS.refused],
  ];
  it.each(refusals)('%s: the answer, the close, nothing to the server', (_n, input, verdict, answer) => {
    const d = driver().fromClient(input);
    expect(d.verdicts).toEqual([verdict]);
    expect(d.client).toBe(answer.toString('latin1'));
    expect(d.server).toBe('');
    expect(d.closed).toBe(true);
  });

  it('the line limit: maxLineLength bytes pass, one more is refused with the answer', () => {
    const ok = driver({ maxLineLength: 8 }).fromClient('abcdefgh\r\n');
    expect(ok.verdicts).toEqual(['forward']);
    const long = driver({ maxLineLength: 8 }).fromClient('abcdefghi\r\n');
    expect(long.verdicts).toEqual(['line_too_long+close']);
    expect(long.client).toBe(ANSWERS.refused.toString('latin1'));
    expect(long.server).toBe('');
  });

  it('the empty query lists users unless allowUserList = false (then /W alone is refused too)', () => {
    expect(driver().fromClient('\r\n').verdicts).toEqual(['forward']);
    for (const q of ['\r\n', '/W\r\n', '/W \r\n']) {
      const d = driver({ allowUserList: false }).fromClient(q);
      expect(d.verdicts).toEqual(['user_list+close']);
      expect(d.client).toBe(ANSWERS.user_list.toString('latin1'));
      expect(d.server).toBe('');
    }
    expect(driver({ allowUserList: false }).fromClient('/W root\r\n').verdicts).toEqual(['forward']);
  });

  it('lineEnding = "any" lets a bare LF end the query (netcat by hand)', () => {
    const d = driver({ lineEnding: 'any' }).fromClient('root\n');
    expect(d.verdicts).toEqual(['forward']);
    expect(d.server).toBe('root\n');
  });

  it('a query cut off by EOF is refused, never forwarded, even with forwardUnterminated', () => {
    const d = driver().fromClient('root');
    d.framer.end();
    expect(d.verdicts).toEqual(['unterminated+close']);
    expect(d.server).toBe('');
  });

  it('the query split at every byte is judged the same', () => {
    const q = '/W root\r\n';
    for (let i = 1; i < q.length; i++) {
      const d = driver().fromClient(q.slice(0, i)).fromClient(q.slice(i));
      expect(d.verdicts).toEqual(['forward']);
      expect(d.server).toBe(q);
    }
  });

  it('wrapper replies: unavailable is a line of text; the rest close without words', () => {
    const s = new FingerSession(fingerOptions(), { allowUserList: true, maxReplyBytes: 100 });
    expect(s.reply('unavailable')).toEqual(ANSWERS.unavailable);
    expect(s.reply('timeout')).toBeUndefined();
    expect(s.reply('too_many_violations')).toBeUndefined();
    expect(s.reply('shutdown')).toBeUndefined();
  });
});

/** The filter's meaning, written plainly: the whole stream at once. */
function reference(input: Buffer): Buffer {
  const out: number[] = [];
  for (let i = 0; i < input.length; i++) {
    const x = input[i]!;
    if ((x < 0x20 && x !== 0x09 && x !== 0x0a && x !== 0x0d) || x === 0x7f) continue;
    if (x === 0xc2 && i + 1 < input.length && input[i + 1]! >= 0x80 && input[i + 1]! <= 0x9f) {
      i++;
      continue;
    }
    out.push(x);
  }
  return Buffer.from(out);
}

/** Runs the filter over chunks, then the server's end; returns what the client gets and whether the cap closed it. */
function filterChunks(chunks: readonly Buffer[], max = 1 << 30): { out: Buffer; full: boolean } {
  const f = new FingerReplyFilter(max);
  const parts: Buffer[] = [];
  let full = false;
  for (const c of chunks) {
    const r = f.feed(c);
    parts.push(r.out);
    if (r.full) {
      full = true;
      break;
    }
  }
  if (!full) {
    const tail = f.end();
    if (tail) parts.push(tail);
  }
  return { out: Buffer.concat(parts), full };
}

describe('finger reply filter (RFC 1288 section 3.3)', () => {
  const cases: Array<[string, string, string]> = [
    ['plain text passes', 'Login: root\r\nNo Plan.\r\n', 'Login: root\r\nNo Plan.\r\n'],
    ['TAB, CR, LF are kept', 'a\tb\rc\nd', 'a\tb\rc\nd'],
    ['ESC sequences lose their ESC', 'x\x1b[2Jy\x1b]0;title\x07z', 'x[2Jy]0;titlez'],
    ['every other C0 byte and DEL go', '\x00\x01\x08\x0b\x0c\x0e\x1a\x1f\x7fok', 'ok'],
    ['UTF-8 text passes', 'Jos\xc3\xa9 M\xc3\xbcller \xe2\x82\xac \xc2\xa0\xc2\xbf', 'Jos\xc3\xa9 M\xc3\xbcller \xe2\x82\xac \xc2\xa0\xc2\xbf'],
    ['UTF-8 C1 controls go (U+009B CSI, U+0085, U+0080, U+009F)', 'a\xc2\x9b2Jb\xc2\x85c\xc2\x80\xc2\x9fd', 'a2Jbcd'],
    ['a C2 before a non-C1 byte stays', '\xc2A\xc2\xc2\x9b', '\xc2A\xc2'],
    ['a C2 at the very end stays (given back at the server end)', 'end\xc2', 'end\xc2'],
    ['raw 8-bit bytes other than UTF-8 C1 pass', '\x9b\x85\xff\xe9', '\x9b\x85\xff\xe9'],
  ];

  it.each(cases)('%s', (_n, input, want) => {
    expect(filterChunks([b(input)]).out.toString('latin1')).toBe(want);
    expect(reference(b(input)).toString('latin1')).toBe(want);
  });

  it.each(cases)('%s: the same for every split into two and three chunks', (_n, input, want) => {
    const whole = b(input);
    for (let i = 0; i <= whole.length; i++) {
      expect(filterChunks([whole.subarray(0, i), whole.subarray(i)]).out.toString('latin1')).toBe(want);
      for (let j = i; j <= whole.length; j++) {
        expect(filterChunks([whole.subarray(0, i), whole.subarray(i, j), whole.subarray(j)]).out.toString('latin1')).toBe(want);
      }
    }
  });

  it('a chunk with nothing to remove is passed on as it is (no copy)', () => {
    const f = new FingerReplyFilter(1000);
    const chunk = b('hello\r\n');
    expect(f.feed(chunk).out).toBe(chunk);
  });

  it('property: for any bytes and any chunking, the output is the reference filter of the whole', () => {
    const bytes = fc.uint8Array({ maxLength: 200 }).chain((arr) =>
      fc.tuple(fc.constant(arr), fc.array(fc.integer({ min: 0, max: arr.length }), { maxLength: 8 })),
    );
    // Bias toward the interesting bytes: C2, C1 continuation bytes, controls.
    const biased = fc
      .array(fc.oneof(fc.constantFrom(0xc2, 0x9b, 0x80, 0x9f, 0xa0, 0x1b, 0x09, 0x0a, 0x0d, 0x7f, 0x00), fc.integer({ min: 0, max: 255 })), { maxLength: 120 })
      .chain((arr) => fc.tuple(fc.constant(Uint8Array.from(arr)), fc.array(fc.integer({ min: 0, max: arr.length }), { maxLength: 8 })));
    for (const arb of [bytes, biased]) {
      fc.assert(
        fc.property(arb, ([arr, cuts]) => {
          const whole = Buffer.from(arr);
          const points = [...new Set(cuts)].sort((x, y) => x - y);
          const chunks: Buffer[] = [];
          let prev = 0;
          for (const p of points) {
            chunks.push(whole.subarray(prev, p));
            prev = p;
          }
          chunks.push(whole.subarray(prev));
          const got = filterChunks(chunks).out;
          expect(got.equals(reference(whole))).toBe(true);
          for (const x of got) expect((x < 0x20 && x !== 0x09 && x !== 0x0a && x !== 0x0d) || x === 0x7f).toBe(false);
        }),
        { numRuns: 2000 },
      );
    }
  });
});

describe('finger reply cap (maxReplyBytes)', () => {
  it('exactly maxReplyBytes pass without a close; one more byte is cut and closes', () => {
    const exact = filterChunks([b('0123456789')], 10);
    expect(exact).toEqual({ out: b('0123456789'), full: false });
    const over = filterChunks([b('0123456789X')], 10);
    expect(over).toEqual({ out: b('0123456789'), full: true });
  });

  it('the cut is at the same byte for every split of the stream', () => {
    const whole = b('ab\x1bcd\xc2\x9bef\r\nghij');
    const want = filterChunks([whole.subarray(0, 9)]).out;
    for (let i = 0; i <= whole.length; i++) {
      for (let j = i; j <= whole.length; j++) {
        const r = filterChunks([whole.subarray(0, i), whole.subarray(i, j), whole.subarray(j)], 9);
        expect(r.full).toBe(true);
        expect(r.out.equals(want)).toBe(true);
      }
    }
  });

  it('a C2 held back at the cap is given to the client (it was within the cap)', () => {
    expect(filterChunks([b('abc\xc2'), b('\x9b')], 4)).toEqual({ out: b('abc\xc2'), full: true });
  });

  it('the session closes when the cap is hit and says so in the log', () => {
    const d = driver({ maxReplyBytes: 5 }).fromClient('root\r\n');
    d.fromServer('abc').fromServer('defgh');
    expect(d.client).toBe('abcde');
    expect(d.closed).toBe(true);
    const s = new FingerSession(fingerOptions(), { allowUserList: true, maxReplyBytes: 2 });
    const v = s.serverData(b('xyz'));
    expect(v.notes?.[0]).toMatch(/reply cut at 2 bytes \(maxReplyBytes\)/);
    // The server is to blame: the closing line says so (fail2ban does not count it against the client).
    expect(v.closeWhy).toBe('server reply past maxReplyBytes');
  });

  it('the default cap is 1 MiB', () => {
    expect(finger.options?.['maxReplyBytes']?.default).toBe(1048576);
  });
});
