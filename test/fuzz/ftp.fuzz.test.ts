import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { COMMANDS } from '../../src/protocols/ftp/commands.js';
import { ftpDriver, loggedIn } from '../protocols/ftp.harness.js';

/** Lines of FTP-ish bytes: known verbs, random words, random bytes (IAC, NUL, CR, 8-bit), random endings. */
const verbs = [...COMMANDS.keys()];
const lineArb = fc
  .tuple(
    fc.oneof(fc.constantFrom(...verbs), fc.constantFrom(...verbs.map((v) => v.toLowerCase())), fc.string({ maxLength: 6 })),
    fc.oneof(fc.constant(''), fc.string({ maxLength: 40 }).map((s) => ` ${s}`), fc.uint8Array({ maxLength: 30 }).map((u) => ` ${Buffer.from(u).toString('latin1')}`)),
    fc.constantFrom('\r\n', '\n', '\r\n', '\r\n'),
  )
  .map(([v, a, e]) => Buffer.from(`${v}${a}${e}`, 'latin1'));

const replyArb = fc.oneof(
  fc.constantFrom('200 ok\r\n', '331 pw\r\n', '230 in\r\n', '530 no\r\n', '350 go\r\n', '150 data\r\n', '226 done\r\n', '227 (127,0,0,1,4,1)\r\n', '229 (|||2000|)\r\n', '211-F\r\n EPSV\r\n211 E\r\n', '421 bye\r\n'),
  fc.uint8Array({ maxLength: 40 }).map((u) => Buffer.from(u).toString('latin1')),
);

describe('ftp core under random input (fast-check)', () => {
  it('never throws; forwards only known verbs, never a line with IAC, NUL, a bare CR or a bare LF', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(lineArb, replyArb), { maxLength: 30 }), (steps) => {
        const d = loggedIn(ftpDriver({ maxLoginAttempts: 1000 }));
        for (const [line, reply] of steps) {
          const v = d.client(line);
          if (v.kind === 'forward' && !v.keep) {
            const lf = line.indexOf(0x0a);
            expect(line[lf - 1]).toBe(0x0d);
            const content = line.subarray(0, lf - 1);
            expect(content.includes(0xff) || content.includes(0x00) || content.includes(0x0d)).toBe(false);
            const sp = content.indexOf(0x20);
            expect(COMMANDS.has(content.subarray(0, sp < 0 ? content.length : sp).toString('latin1').toUpperCase())).toBe(true);
          }
          const s = d.server(reply);
          if (s.data) d.opened({ ok: true, kind: 'passive', host: '198.51.100.1', port: 50000 });
          if (v.kind === 'forward' && v.data) d.opened({ ok: true, kind: 'active', host: '127.0.0.1', port: 50001 });
        }
      }),
      { numRuns: 300 },
    );
  });

  it('PORT / EPRT forwarded only toward the client\'s own address and a port from minDataPort up', () => {
    const hostArb = fc.oneof(fc.constant('192.0.2.7'), fc.ipV4());
    fc.assert(
      fc.property(hostArb, fc.integer({ min: 0, max: 65535 }), fc.boolean(), (host, port, eprt) => {
        const d = loggedIn(ftpDriver());
        const line = eprt ? `EPRT |1|${host}|${port}|\r\n` : `PORT ${host.split('.').join(',')},${port >> 8},${port & 0xff}\r\n`;
        const v = d.client(line);
        const ok = host === '192.0.2.7' && port >= 1024;
        expect(v.kind === 'forward', line).toBe(ok);
        if (v.kind === 'forward') expect(v.data).toEqual({ kind: 'active', clientHost: '192.0.2.7', clientPort: port, tls: false });
      }),
      { numRuns: 500 },
    );
  });
});
