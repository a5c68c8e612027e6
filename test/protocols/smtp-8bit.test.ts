import { describe, expect, it } from 'vitest';
import { buildConfig } from '../../src/config.js';
import type { ProtocolSession } from '../../src/core/protocol.js';

/** curl tests 955-960 (replay): an 8-bit address without SMTPUTF8 is refused, and the log says why. */
function session(): ProtocolSession {
  const cfg = buildConfig(null, { protocol: 'smtp' }, { connect: '127.0.0.1:1' });
  return cfg.protocol.createSession({ clientAddress: 'test', maxLineLength: cfg.options.maxLineLength }, cfg.options);
}
const line = (p: ProtocolSession, s: string) => {
  const b = Buffer.from(s, 'latin1');
  return p.clientLine(b, b.length - 2, 'crlf');
};

describe('SMTP: 8-bit addresses without SMTPUTF8', () => {
  it.each([
    ['MAIL FROM:<Avs\xc3\xa4ndaren@example.com>\r\n'],
    ['MAIL FROM:<sender@\xc3\xa5\xc3\xa4\xc3\xb6.se>\r\n'],
  ])('%j: 501, logged as 8-bit without SMTPUTF8 (not as a malformed mailbox)', (cmd) => {
    const p = session();
    p.serverData!(Buffer.from('220 mx ESMTP\r\n'));
    line(p, 'EHLO x\r\n');
    p.serverData!(Buffer.from('250-mx\r\n250 8BITMIME\r\n'));
    const v = line(p, cmd);
    expect(v).toMatchObject({ kind: 'refuse', code: 'bad_argument', reason: 'MAIL: 8-bit address without SMTPUTF8' });
  });
});
