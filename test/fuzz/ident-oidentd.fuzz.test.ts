import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkReply } from '../../src/protocols/ident/grammar.js';
import { startOidentd, type Oidentd } from '../helpers/oidentd.js';
import { clientSession } from '../helpers/superservers.js';
import { startStandalone, waitFor, type Standalone } from '../helpers/wrapper.js';

/**
 * Random query lines through the wrapper to the real oidentd: whatever the
 * client sends, oidentd never logs a request it could not read (only port
 * pairs reach it), and every reply the client gets is valid RFC 1413 for the
 * ports it names.
 */
describe('ident fuzz against the real oidentd', () => {
  let oid: Oidentd;
  let w: Standalone;
  beforeAll(async () => {
    oid = await startOidentd();
    w = await startStandalone(['-p', 'ident', '--connect', `127.0.0.1:${oid.port}`, '--log-level', '1']);
  });
  afterAll(async () => {
    await w?.stop();
    await oid?.stop();
  });

  const ws = fc.constantFrom('', ' ', '\t', '  ');
  const port = fc.oneof(fc.integer({ min: 0, max: 99999 }).map(String), fc.stringMatching(/^[0-9+-]{1,7}$/));
  const valid = fc.integer({ min: 1, max: 65535 }).map(String);
  const query = fc.oneof(
    fc.tuple(ws, valid, ws, ws, valid, ws).map(([a, p, b, c, q, d]) => `${a}${p}${b},${c}${q}${d}\r\n`),
    fc.tuple(ws, port, ws, ws, port, ws).map(([a, p, b, c, q, d]) => `${a}${p}${b},${c}${q}${d}\r\n`),
    fc.uint8Array({ maxLength: 40 }).map((b) => `${Buffer.from(b).toString('latin1')}\r\n`),
    fc.tuple(port, port, fc.constantFrom('x', ' junk', ',5', '\n', '\x1b')).map(([p, q, t]) => `${p},${q}${t}\r\n`),
  );

  it('oidentd reads only port pairs; the client gets only valid replies', async () => {
    await fc.assert(
      fc.asyncProperty(query, async (q) => {
        const closes = w.logs().match(/session close /g)?.length ?? 0;
        const reply = (await clientSession(w.port, Buffer.from(q, 'latin1'))).toString('latin1');
        await waitFor(() => (w.logs().match(/session close /g)?.length ?? 0) > closes, 'the session close');
        expect(reply, JSON.stringify(q)).not.toBe('');
        expect(reply.endsWith('\r\n')).toBe(true);
        const line = reply.slice(0, -2);
        expect(line).not.toContain('\n');
        const m = /^(\d+) ?, ?(\d+)/.exec(line);
        expect(m, line).not.toBeNull();
        expect(checkReply(Buffer.from(line, 'latin1'), line.length, { server: Number(m![1]), client: Number(m![2]) }), line).toBeNull();
      }),
      { numRuns: 60 },
    );
    // One known port pair last: oidentd answers it, so its log is read up to here.
    expect((await clientSession(w.port, Buffer.from('1 , 2\r\n'))).toString('latin1')).toBe('1,2:ERROR:NO-USER\r\n');
    await waitFor(() => oid.log().some((l) => l === '[localhost] 1 , 2 : ERROR : NO-USER'), 'oidentd to log the last query');
    expect(oid.log().filter((l) => l.includes('Malformed request'))).toEqual([]);
  }, 120_000);
});
