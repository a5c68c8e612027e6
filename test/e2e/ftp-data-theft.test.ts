import { writeFileSync } from 'node:fs';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startVsftpd, type Vsftpd } from '../helpers/vsftpd.js';
import { raw, type Raw } from '../helpers/wire.js';
import { startStandalone, waitFor, type Standalone } from '../helpers/wrapper.js';

const FILE = 'the real file\r\n'.repeat(1000);

async function cmd(c: Raw, line: string, code: string): Promise<string> {
  const before = c.received().length;
  c.send(line);
  await waitFor(() => c.received().slice(before).includes(`\n${code}`) || c.received().slice(before).startsWith(code), `${code} after ${JSON.stringify(line)}`);
  return c.received().slice(before);
}

/** The client's own active-mode listener: what every connection to it carried. */
async function clientListener(): Promise<{ server: Server; port: number; got: string[] }> {
  const got: string[] = [];
  const server = createServer((s: Socket) => {
    let data = '';
    s.on('data', (b: Buffer) => (data += b.toString('latin1')));
    s.on('error', () => {});
    s.on('close', () => got.push(data));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return { server, port: (server.address() as AddressInfo).port, got };
}

/**
 * Active mode (PORT) through the wrapper in front of a real vsftpd. The
 * wrapper's listener toward the server is on the server's side (loopback
 * here), where every local process has the server's address: a local user
 * who connects to it (its port is in /proc/net/tcp as soon as it listens)
 * before vsftpd does is a data-connection thief. The server connects only
 * once it has a transfer command (RFC 959 section 3.2), so a connection
 * before that is never the server's.
 */
describe('ftp active mode: the wrapper\'s listener toward the server', () => {
  let vs: Vsftpd;
  let w: Standalone;
  beforeAll(async () => {
    vs = await startVsftpd();
    writeFileSync(join(vs.root, 'pub', 'a.txt'), FILE);
    w = await startStandalone(['--protocol', 'ftp', '--connect', `127.0.0.1:${vs.port}`, '--log-level', '2']);
  });
  afterAll(async () => {
    await w?.stop();
    await vs?.stop();
  });

  it('a local process that connects before the transfer command is never relayed to the client, nor is anything after it', async () => {
    const mine = await clientListener();
    try {
      const c = await raw(w.port);
      await c.until('220 ');
      await cmd(c, 'USER anonymous\r\n', '331');
      await cmd(c, 'PASS x@example.org\r\n', '230');
      const n = vs.commands().length;
      await cmd(c, `PORT 127,0,0,1,${mine.port >> 8},${mine.port & 0xff}\r\n`, '200');
      // The PORT vsftpd got names the wrapper's listener.
      await waitFor(() => vs.commands().slice(n).some((x) => x.startsWith('PORT ')), 'vsftpd to log the PORT');
      const p = vs.commands().slice(n).find((x) => x.startsWith('PORT '))!.slice(5).split(',').map(Number);
      const thief = connect({ host: '127.0.0.1', port: p[4]! * 256 + p[5]! });
      thief.on('error', () => {});
      await new Promise<void>((r) => thief.once('connect', () => r()));
      thief.write('EVIL DATA\r\n');
      await waitFor(() => w.logs().includes('data connection before the transfer command'), 'the refusal in the log');
      // The transfer fails (the server's own connection is refused too: the listener is contested), nothing reaches the client.
      // vsftpd's connection is refused too (the listener is contested): its 150 and a final reply, and no data for the client.
      const before = c.received().length;
      c.send('RETR pub/a.txt\r\n');
      await waitFor(() => /(^|\n)[2-5]\d\d /.test(c.received().slice(before)), 'the final reply to RETR');
      c.send('QUIT\r\n');
      await c.closed;
      expect(mine.got.join('')).not.toContain('EVIL');
      expect(mine.got.join('')).not.toContain('the real file');
      // No connection at all was made to the client's listener.
      expect(mine.got).toEqual([]);
    } finally {
      mine.server.close();
    }
  });

  it('a transfer vsftpd refuses (550, it never connects) leaves no window: a thief after the 550 is not relayed either', async () => {
    const mine = await clientListener();
    try {
      const c = await raw(w.port);
      await c.until('220 ');
      await cmd(c, 'USER anonymous\r\n', '331');
      await cmd(c, 'PASS x@example.org\r\n', '230');
      const n = vs.commands().length;
      await cmd(c, `PORT 127,0,0,1,${mine.port >> 8},${mine.port & 0xff}\r\n`, '200');
      await waitFor(() => vs.commands().slice(n).some((x) => x.startsWith('PORT ')), 'vsftpd to log the PORT');
      const p = vs.commands().slice(n).find((x) => x.startsWith('PORT '))!.slice(5).split(',').map(Number);
      await cmd(c, 'RETR pub/no-such-file\r\n', '550');
      // The client is released by that 550 as before.
      await cmd(c, 'NOOP\r\n', '200');
      const refusals = () => w.logs().split('data connection before the transfer command').length - 1;
      const before = refusals();
      const thief = connect({ host: '127.0.0.1', port: p[4]! * 256 + p[5]! });
      thief.on('error', () => {});
      await new Promise<void>((r) => thief.once('connect', () => r()));
      thief.write('EVIL DATA\r\n');
      await waitFor(() => refusals() === before + 1, 'this refusal in the log');
      c.send('QUIT\r\n');
      await c.closed;
      expect(mine.got).toEqual([]);
    } finally {
      mine.server.close();
    }
  });

  it('without a thief, the same active RETR delivers the file byte for byte', async () => {
    const mine = await clientListener();
    try {
      const c = await raw(w.port);
      await c.until('220 ');
      await cmd(c, 'USER anonymous\r\n', '331');
      await cmd(c, 'PASS x@example.org\r\n', '230');
      await cmd(c, 'TYPE I\r\n', '200');
      await cmd(c, `PORT 127,0,0,1,${mine.port >> 8},${mine.port & 0xff}\r\n`, '200');
      await cmd(c, 'RETR pub/a.txt\r\n', '226');
      await waitFor(() => mine.got.length === 1, 'the data connection to end');
      expect(mine.got).toEqual([FILE]);
      c.send('QUIT\r\n');
      await c.closed;
    } finally {
      mine.server.close();
    }
  });
});
