import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { findNulOrBareCr } from '../../src/core/bytes.js';

/** The plain loop findNulOrBareCr replaced with a native search where the range ends near the buffer's end. */
function reference(bytes: Uint8Array, start: number, end: number): { nul: number; cr: number } {
  let nul = -1;
  let cr = -1;
  for (let i = start; i < end; i++) {
    if (bytes[i] === 0 && nul < 0) nul = i;
    if (bytes[i] === 13 && cr < 0) cr = i;
  }
  return { nul, cr };
}

describe('findNulOrBareCr', () => {
  // Bytes drawn mostly from NUL, CR, LF and 'a', so that every case occurs often.
  const bytes = fc.array(fc.constantFrom(0, 13, 10, 0x61, 0x61, 0x61), { maxLength: 40 }).map((a) => Buffer.from(a));

  it('finds the first NUL and the first CR of [start, end), wherever end lies in the buffer', () => {
    fc.assert(
      fc.property(bytes, fc.nat(), fc.nat(), (buf, a, b) => {
        const start = buf.length === 0 ? 0 : a % (buf.length + 1);
        const end = start + (b % (buf.length - start + 1));
        expect(findNulOrBareCr(buf, start, end)).toEqual(reference(buf, start, end));
      }),
      { numRuns: 2000 },
    );
  });

  it('ignores the CRLF after the content of a framed line, and NUL or CR before start', () => {
    const line = Buffer.from('\0\rab\r\n', 'latin1');
    expect(findNulOrBareCr(line, 2, 4)).toEqual({ nul: -1, cr: -1 });
    expect(findNulOrBareCr(line, 0, 4)).toEqual({ nul: 0, cr: 1 });
    expect(findNulOrBareCr(line.subarray(1), 0, 3)).toEqual({ nul: -1, cr: 0 });
  });
});
