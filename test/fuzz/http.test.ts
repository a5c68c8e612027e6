import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { HOSTILE, VALID } from '../protocols/http-cases.js';
import { MiniShell } from '../protocols/http-harness.js';

const SEEDS = [...VALID.filter((c) => !c.flags), ...HOSTILE.filter((c) => !c.flags)].map((c) => c.input);

/** A seed request with a few bytes changed, inserted or removed (CR, LF, SP, digits, letters, ';', ':', NUL). */
const mutated = fc
  .tuple(
    fc.constantFrom(...SEEDS),
    fc.array(fc.tuple(fc.nat(), fc.constantFrom('\r', '\n', ' ', '\t', '0', '5', 'f', 'a', ';', ':', ',', '\0', 'x', ''), fc.boolean()), { maxLength: 4 }),
  )
  .map(([seed, edits]) => {
    let s = seed;
    for (const [pos, ch, replace] of edits) {
      const i = pos % (s.length + 1);
      s = s.slice(0, i) + ch + s.slice(replace ? i + 1 : i);
    }
    return s;
  });

const cutsOf = (len: number) => fc.uniqueArray(fc.integer({ min: 1, max: Math.max(1, len - 1) }), { maxLength: 10 }).map((a) => a.sort((x, y) => x - y));

describe('http fuzz: mutated requests', () => {
  it('the verdict and the forwarded bytes do not depend on how the input is cut', () => {
    fc.assert(
      fc.property(mutated.chain((s) => fc.tuple(fc.constant(s), cutsOf(s.length))), ([input, cuts]) => {
        const whole = new MiniShell().push(input);
        whole.end();
        const cut = new MiniShell().pushSplit(input, cuts);
        cut.end();
        expect(cut.server).toBe(whole.server);
        expect(cut.status).toBe(whole.status);
        expect(cut.refusals.map((r) => r.code)).toEqual(whole.refusals.map((r) => r.code));
      }),
      { numRuns: 3000 },
    );
  });

  it('what reaches the server is a prefix of the input, and a refusal always answers and closes', () => {
    fc.assert(
      fc.property(mutated, (input) => {
        const s = new MiniShell().push(input);
        s.end();
        expect(input.startsWith(s.server)).toBe(true);
        if (s.refusals.length > 0) {
          expect(s.closed).toBe(true);
          expect(s.client).toMatch(/^HTTP\/1\.1 \d{3} [^]*Connection: close\r\n\r\n/);
        }
      }),
      { numRuns: 3000 },
    );
  });
});
