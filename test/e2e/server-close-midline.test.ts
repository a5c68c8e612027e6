import { createServer, type AddressInfo, type Server } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { runPiped } from '../helpers/wrapper.js';

/**
 * A server that dies in the middle of a line: no real server does that on
 * purpose, so a scripted one. Whatever it sent must reach the client even
 * where the protocol was holding a line's head back to look at it whole.
 */
function scripted(greeting: string, onLine: string): Promise<Server> {
  const srv = createServer((s) => {
    s.write(greeting);
    s.once('data', () => s.end(onLine));
    s.on('error', () => {});
  });
  return new Promise((r) => srv.listen(0, '127.0.0.1', () => r(srv)));
}

let srv: Server | null = null;
afterEach(() => {
  srv?.close();
  srv = null;
});

describe('a server closing in the middle of a line loses nothing', () => {
  it('pop3: the held head of a login reply reaches the client', async () => {
    srv = await scripted('+OK ready\r\n', '-ER');
    const r = await runPiped(['--protocol', 'pop3', '--connect', `127.0.0.1:${(srv.address() as AddressInfo).port}`], 'USER alice\r\n');
    expect(r.stdout.toString('latin1')).toBe('+OK ready\r\n-ER');
  });

  it('imap: the head of a response not yet classified reaches the client', async () => {
    srv = await scripted('* OK [CAPABILITY IMAP4rev1] ready\r\n', '* CAP');
    const r = await runPiped(['--protocol', 'imap', '--connect', `127.0.0.1:${(srv.address() as AddressInfo).port}`], 'a1 NOOP\r\n');
    expect(r.stdout.toString('latin1')).toBe('* OK [CAPABILITY IMAP4rev1] ready\r\n* CAP');
  });

  it('imap: an unfinished capability line is passed on, still filtered', async () => {
    srv = await scripted('* OK ready\r\n', '* CAPABILITY IMAP4rev1 STARTTLS LITERAL+');
    const r = await runPiped(['--protocol', 'imap', '--connect', `127.0.0.1:${(srv.address() as AddressInfo).port}`], 'a1 CAPABILITY\r\n');
    const got = r.stdout.toString('latin1');
    expect(got.startsWith('* OK ready\r\n* CAPABILITY IMAP4rev1')).toBe(true);
    expect(got).toContain('LITERAL+');
    expect(got).not.toContain('STARTTLS');
  });
});
