import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { LineFramer, OVERLONG_HEAD_BYTES, type FramerSink, type LineEnding } from '../../src/core/framer.js';

type Event = ['line', string, LineEnding] | ['overlong', string] | ['raw', string] | ['rawDone'];

/** A sink that records events; `onLine` may steer the framer (raw runs, pauses). */
function recorder(onLine?: (f: LineFramer, text: string) => void) {
  const events: Event[] = [];
  let framer!: LineFramer;
  const sink: FramerSink = {
    line: (line, contentEnd, ending) => {
      events.push(['line', line.toString('latin1'), ending]);
      expect(contentEnd).toBe(line.length - (ending === 'crlf' ? 2 : ending === 'lf' ? 1 : 0));
      onLine?.(framer, line.toString('latin1'));
    },
    overlong: (head) => events.push(['overlong', head.toString('latin1')]),
    raw: (b) => {
      const last = events.at(-1);
      if (last && last[0] === 'raw') last[1] += b.toString('latin1');
      else events.push(['raw', b.toString('latin1')]);
    },
    rawDone: () => events.push(['rawDone']),
  };
  return {
    events,
    make: (max: number) => (framer = new LineFramer(sink, max)),
  };
}

function feed(input: string, max: number, cuts: number[], onLine?: (f: LineFramer, t: string) => void): Event[] {
  const r = recorder(onLine);
  const f = r.make(max);
  const buf = Buffer.from(input, 'latin1');
  let prev = 0;
  for (const c of [...cuts, buf.length]) {
    if (c > prev) f.push(buf.subarray(prev, c));
    prev = Math.max(prev, c);
  }
  f.end();
  return r.events;
}

const cases: { name: string; input: string; max: number; want: Event[] }[] = [
  { name: 'CRLF and LF lines, ending kept', input: 'a\r\nbb\ncc\r\n', max: 10, want: [['line', 'a\r\n', 'crlf'], ['line', 'bb\n', 'lf'], ['line', 'cc\r\n', 'crlf']] },
  { name: 'unterminated tail at end of input', input: 'a\r\ntail', max: 10, want: [['line', 'a\r\n', 'crlf'], ['line', 'tail', 'none']] },
  { name: 'bare CR does not end a line', input: 'a\rb\r\n', max: 10, want: [['line', 'a\rb\r\n', 'crlf']] },
  { name: 'content of exactly max bytes with CRLF', input: '12345\r\nx\n', max: 5, want: [['line', '12345\r\n', 'crlf'], ['line', 'x\n', 'lf']] },
  { name: 'content of exactly max bytes with LF', input: '12345\n', max: 5, want: [['line', '12345\n', 'lf']] },
  { name: 'max + 1 bytes is overlong, then the next line is fine', input: '123456\r\nok\r\n', max: 5, want: [['overlong', '123456\r\n'.slice(0, 8)], ['line', 'ok\r\n', 'crlf']] },
  { name: 'max + 1 with LF is overlong', input: '123456\nok\n', max: 5, want: [['overlong', '123456\n'], ['line', 'ok\n', 'lf']] },
  { name: 'a CR as byte max+1 not followed by LF is overlong', input: '12345\rX\nok\n', max: 5, want: [['overlong', '12345\rX\n'], ['line', 'ok\n', 'lf']] },
  { name: 'endless line reported once, discarded to its LF', input: 'x'.repeat(50) + '\nok\n', max: 5, want: [['overlong', 'x'.repeat(50) + '\n'], ['line', 'ok\n', 'lf']] },
  { name: 'empty lines', input: '\r\n\n', max: 5, want: [['line', '\r\n', 'crlf'], ['line', '\n', 'lf']] },
];

describe('LineFramer', () => {
  for (const c of cases) {
    it(`${c.name}: same events at every single split point`, () => {
      for (let cut = 0; cut <= c.input.length; cut++) {
        const got = feed(c.input, c.max, [cut]);
        // The overlong head depends on where the framer saw the limit pass; compare its prefix only.
        const norm = (evs: Event[]) => evs.map((e) => (e[0] === 'overlong' ? (['overlong', ''] as Event) : e));
        expect(norm(got), `cut at ${cut}`).toEqual(norm(c.want));
        for (const e of got) if (e[0] === 'overlong') expect(c.input.startsWith(e[1])).toBe(true);
      }
    });
  }

  it('every pair of split points of a mixed input gives the same lines', () => {
    const input = 'USER a\r\nPASS b\r\n' + 'z'.repeat(12) + '\r\nQUIT\r\n';
    const norm = (evs: Event[]) => evs.map((e) => (e[0] === 'overlong' ? 'overlong' : JSON.stringify(e)));
    const want = norm(feed(input, 10, []));
    expect(want).toHaveLength(4);
    for (let i = 0; i <= input.length; i++) {
      for (let j = i; j <= input.length; j++) {
        expect(norm(feed(input, 10, [i, j]))).toEqual(want);
      }
    }
  });

  it('the overlong head for the log is at most OVERLONG_HEAD_BYTES', () => {
    const got = feed('y'.repeat(5000) + '\n', 100, [1000, 3000]);
    expect(got[0]![0]).toBe('overlong');
    expect((got[0] as ['overlong', string])[1].length).toBeLessThanOrEqual(OVERLONG_HEAD_BYTES);
  });

  it('a line inside one chunk is handed out as a slice of that chunk (no copy)', () => {
    const chunk = Buffer.from('abc\r\ndef\r\n');
    const seen: Buffer[] = [];
    const f = new LineFramer({ line: (l) => seen.push(l), overlong: () => {}, raw: () => {}, rawDone: () => {} }, 100);
    f.push(chunk);
    expect(seen[0]!.buffer).toBe(chunk.buffer);
    expect(seen[1]!.byteOffset).toBe(chunk.byteOffset + 5);
  });

  it('raw runs: bytes are handed out unparsed, then line mode resumes', () => {
    const input = 'A {5}\r\nx\r\ny\nB\r\n';
    const want: Event[] = [['line', 'A {5}\r\n', 'crlf'], ['raw', 'x\r\ny\n'], ['rawDone'], ['line', 'B\r\n', 'crlf']];
    for (let cut = 0; cut <= input.length; cut++) {
      const got = feed(input, 10, [cut], (f, t) => {
        if (t.startsWith('A')) f.rawBytes(5);
      });
      expect(got, `cut at ${cut}`).toEqual(want);
    }
  });

  it('pause keeps the rest of the chunk and resume hands it out in order', () => {
    const r = recorder((f, t) => {
      if (t.startsWith('HOLD')) f.pause();
    });
    const f = r.make(20);
    f.push(Buffer.from('HOLD\r\nnext\r\nlast\r\n'));
    expect(r.events).toEqual([['line', 'HOLD\r\n', 'crlf']]);
    expect(f.isPaused).toBe(true);
    expect(f.bufferedBytes).toBe(12);
    expect(() => f.push(Buffer.from('x'))).toThrow();
    f.resume();
    expect(r.events.map((e) => e[1])).toEqual(['HOLD\r\n', 'next\r\n', 'last\r\n']);
  });

  it('a chunk pushed while paused (a verdict before framing held) waits whole; a second one is a bug', () => {
    const r = recorder();
    const f = r.make(20);
    f.pause();
    f.push(Buffer.from('one\r\ntw'));
    expect(r.events).toEqual([]);
    expect(f.bufferedBytes).toBe(7);
    expect(() => f.push(Buffer.from('o\r\n'))).toThrow();
    f.resume();
    f.push(Buffer.from('o\r\n'));
    expect(r.events).toEqual([
      ['line', 'one\r\n', 'crlf'],
      ['line', 'two\r\n', 'crlf'],
    ]);
  });

  it('end() reports an input that stopped inside a discarded line or raw run', () => {
    const a = recorder();
    const fa = a.make(3);
    fa.push(Buffer.from('toolong'));
    expect(fa.end()).toBe(false);
    const b = recorder();
    const fb = b.make(3);
    fb.rawBytes(10);
    fb.push(Buffer.from('abc'));
    expect(fb.end()).toBe(false);
  });

  it('property: any chunking gives the same events', () => {
    const alphabet = fc.constantFrom('a', 'b', '\r', '\n', '\0', ' ');
    fc.assert(
      fc.property(fc.array(alphabet, { maxLength: 200 }), fc.array(fc.nat(200), { maxLength: 10 }), fc.integer({ min: 1, max: 12 }), (chars, cuts, max) => {
        const input = chars.join('');
        const norm = (evs: Event[]) => evs.map((e) => (e[0] === 'overlong' ? 'overlong' : JSON.stringify(e)));
        expect(norm(feed(input, max, [...cuts].sort((x, y) => x - y)))).toEqual(norm(feed(input, max, [])));
      }),
      { numRuns: 500 },
    );
  });

  it('property: lines reassemble the input exactly when nothing is overlong', () => {
    fc.assert(
      fc.property(fc.array(fc.constantFrom('a', '\r', '\n', 'é'), { maxLength: 100 }), fc.array(fc.nat(100), { maxLength: 6 }), (chars, cuts) => {
        const input = chars.join('');
        const evs = feed(input, 1000, [...cuts].sort((x, y) => x - y));
        expect(evs.map((e) => e[1]).join('')).toBe(Buffer.from(input, 'latin1').toString('latin1'));
      }),
    );
  });

  it('memory stays bounded under an endless line', () => {
    const r = recorder();
    const f = r.make(1024);
    const chunk = Buffer.alloc(64 * 1024, 0x41);
    for (let i = 0; i < 2000; i++) {
      f.push(chunk); // 128 MiB without a newline
      expect(f.bufferedBytes).toBeLessThanOrEqual(1025);
    }
    expect(r.events.filter((e) => e[0] === 'overlong')).toHaveLength(1);
    f.push(Buffer.from('\nok\n'));
    expect(r.events.at(-1)).toEqual(['line', 'ok\n', 'lf']);
  });

  it('property: memory stays bounded under an endless line, for any chunk sizes and limit', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 4096 }), fc.array(fc.integer({ min: 1, max: 20_000 }), { minLength: 1, maxLength: 60 }), (max, sizes) => {
        const r = recorder();
        const f = r.make(max);
        for (const n of sizes) {
          f.push(Buffer.alloc(n, 0x42));
          expect(f.bufferedBytes).toBeLessThanOrEqual(max + 1);
        }
        const total = sizes.reduce((a, b) => a + b, 0);
        expect(r.events.filter((e) => e[0] === 'overlong')).toHaveLength(total > max + 1 ? 1 : 0);
      }),
      { numRuns: 300 },
    );
  });

  it('memory stays bounded when a long line arrives one byte at a time', () => {
    const r = recorder();
    const f = r.make(100);
    const one = Buffer.from('x');
    for (let i = 0; i < 10_000; i++) {
      f.push(one);
      expect(f.bufferedBytes).toBeLessThanOrEqual(101);
    }
    expect(r.events).toHaveLength(1);
  });
});
