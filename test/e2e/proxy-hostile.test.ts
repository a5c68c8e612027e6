import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROXY_HEADER_DEADLINE_MS } from '../../src/io/proxy-in.js';
import { proxyClient, v2Header } from '../helpers/proxy-client.js';
import { startRecorder, type Recorder } from '../helpers/recorder.js';
import { socketActivated } from '../helpers/socket-activate.js';
import { startStandalone, waitFor, type Standalone } from '../helpers/wrapper.js';

/**
 * Incoming PROXY headers under attack, standalone and inetd
 * (systemd-socket-activate), in front of a recording server: a header is
 * taken only from a listed peer, whole, within the deadline; anything else
 * closes the connection before the server is dialled, and is logged.
 */

interface Front {
  readonly port: number;
  logs(): string;
  stop(): Promise<void>;
}

/** Under systemd-socket-activate: the wrappers' --log-stderr lines reach the launcher's stderr. */
const inetd = (args: readonly string[]): Promise<Front> => socketActivated(['--log-stderr', ...args]);

const HEADER = 'PROXY TCP4 192.0.2.7 198.51.100.1 40000 110\r\n';

describe('PROXY header in: hostile peers', () => {
  let rec: Recorder;
  let listed: Standalone;
  let unlisted: Standalone;
  let optional: Standalone;
  let viaInetd: Front;
  beforeAll(async () => {
    rec = await startRecorder({ banner: '+OK ready\r\n' });
    const base = ['--protocol', 'pop3', '--connect', `127.0.0.1:${rec.port}`, '--log-level', '1'];
    [listed, unlisted, optional, viaInetd] = await Promise.all([
      startStandalone([...base, '--proxy-from', '127.0.0.0/30']),
      // 127.0.0.1 is not in the list: its "PROXY …" is a POP3 command like any other.
      startStandalone([...base, '--proxy-from', '127.0.0.2']),
      startStandalone([...base, '--proxy-from', '127.0.0.1', '--no-proxy-required']),
      inetd([...base, '--proxy-from', '127.0.0.1']),
    ]);
  });
  afterAll(async () => {
    await Promise.all([listed?.stop(), unlisted?.stop(), optional?.stop(), viaInetd?.stop()]);
    await rec?.close();
  });

  /** The recorder's connections, before and after run(); asserts it saw none. */
  async function noServerConnection(run: () => Promise<void>): Promise<void> {
    const before = rec.received().length;
    await run();
    // Give a (wrong) dial time to arrive.
    await new Promise((r) => setTimeout(r, 200));
    expect(rec.received().length).toBe(before);
  }

  /** The server got exactly `lines` on the newest connection. */
  async function serverGot(lines: string): Promise<void> {
    await waitFor(() => rec.received().at(-1)?.toString('latin1') === lines, `server to get ${JSON.stringify(lines)}; got ${JSON.stringify(rec.received().at(-1)?.toString('latin1'))}`);
  }

  for (const mode of ['standalone', 'inetd'] as const) {
    const front = () => (mode === 'standalone' ? { port: listed.port, logs: listed.logs } : viaInetd);

    it(`${mode}: a header split across writes is taken whole; its bytes never reach the server`, async () => {
      const c = await proxyClient(front().port);
      await c.sendPieces(['PRO', 'XY TCP4 192.0.2.7 198.51', '.100.1 40000 110\r', '\nUS', 'ER alice\r\n']);
      await c.until('+OK ready');
      await serverGot('USER alice\r\n');
      await waitFor(() => front().logs().includes('session open client=192.0.2.7 protocol=pop3'), 'session open with the header\'s address');
      expect(front().logs()).toContain('proxy v1 header from peer=127.0.0.1: client=192.0.2.7:40000 dialled=198.51.100.1:110');
      c.sock.destroy();
    });

    it(`${mode}: a truncated header, then close: closed and logged, the server is never dialled`, async () => {
      await noServerConnection(async () => {
        const c = await proxyClient(front().port);
        c.send('PROXY TCP4 192.0.2.7 19');
        await new Promise((r) => setTimeout(r, 100));
        c.sock.end();
        await c.closed;
        await waitFor(() => front().logs().includes('closed after 23 bytes of an incomplete PROXY header'), 'the refusal in the log');
        expect(c.received()).toBe('');
      });
    });

    it(`${mode}: a listed peer that sends no header within the deadline is closed, the server never dialled`, async () => {
      await noServerConnection(async () => {
        const c = await proxyClient(front().port);
        await c.closed;
        expect(c.closedAfter()).toBeGreaterThanOrEqual(PROXY_HEADER_DEADLINE_MS - 100);
        expect(c.received()).toBe('');
        await waitFor(() => front().logs().includes(`refused connection client=127.0.0.1: no PROXY header within ${PROXY_HEADER_DEADLINE_MS} ms`), 'the refusal in the log');
      });
    }, PROXY_HEADER_DEADLINE_MS + 10_000);
  }

  it('a v1 line longer than 107 bytes is refused', async () => {
    await noServerConnection(async () => {
      const c = await proxyClient(listed.port);
      c.send(`PROXY UNKNOWN ${'x'.repeat(200)}\r\n`);
      await c.closed;
      await waitFor(() => listed.logs().includes('bad PROXY header (v1_too_long)'), 'the refusal in the log');
    });
  });

  it('garbage (protocol bytes first) from a listed peer is refused', async () => {
    await noServerConnection(async () => {
      const c = await proxyClient(listed.port);
      c.send('USER alice\r\n');
      await c.closed;
      await waitFor(() => listed.logs().includes('refused connection client=127.0.0.1: no PROXY header (protocol bytes first)'), 'the refusal in the log');
    });
    await noServerConnection(async () => {
      const c = await proxyClient(listed.port);
      c.send(Buffer.concat([v2Header('192.0.2.7', 1, '192.0.2.8', 2).subarray(0, 12), Buffer.from([0x31, 0x11, 0, 12]), Buffer.alloc(12)]));
      await c.closed;
      await waitFor(() => listed.logs().includes('bad PROXY header (v2_bad_version)'), 'the refusal in the log');
    });
  });

  it('v2 with TLVs: skipped, AUTHORITY logged, the session bytes after it in the same write are the first the server gets', async () => {
    const c = await proxyClient(listed.port, '127.0.0.2');
    const tlvs = [{ type: 0x02, value: Buffer.from('pop.example') }, { type: 0x20, value: Buffer.alloc(40, 1) }, { type: 0x04, value: Buffer.alloc(0) }];
    c.send(Buffer.concat([v2Header('203.0.113.9', 5555, '198.51.100.1', 110, tlvs), Buffer.from('USER bob\r\n')]));
    await c.until('+OK ready');
    await serverGot('USER bob\r\n');
    await waitFor(() => listed.logs().includes('proxy v2 header from peer=127.0.0.2: client=203.0.113.9:5555 dialled=198.51.100.1:110 authority=pop.example'), 'the header in the log');
    expect(listed.logs()).toContain('session open client=203.0.113.9 protocol=pop3');
    c.sock.destroy();
  });

  it('v2 LOCAL (a health check): the peer\'s own address is used', async () => {
    const c = await proxyClient(listed.port, '127.0.0.3');
    const local = Buffer.concat([v2Header('0.0.0.0', 0, '0.0.0.0', 0).subarray(0, 12), Buffer.from([0x20, 0x00, 0, 0])]);
    c.send(Buffer.concat([local, Buffer.from('QUIT\r\n')]));
    await serverGot('QUIT\r\n');
    await waitFor(() => listed.logs().includes('session open client=127.0.0.3 protocol=pop3'), 'session with the peer\'s address');
    c.sock.destroy();
  });

  it('a header from a peer not in proxyFrom is not parsed: POP3 refuses it, the server never sees it', async () => {
    const c = await proxyClient(unlisted.port);
    c.send(`${HEADER}USER carol\r\n`);
    await c.until('-ERR');
    await serverGot('USER carol\r\n');
    expect(unlisted.logs()).toContain('session open client=127.0.0.1 protocol=pop3');
    // Before login an unknown line is hidden whole in the log (it may be a stray password).
    expect(unlisted.logs()).toMatch(/refused client=127\.0\.0\.1 protocol=pop3 state=authorization code=unknown_command/);
    c.sock.destroy();
  });

  it('proxyRequired = false: a listed peer without a header is served with its own address', async () => {
    const c = await proxyClient(optional.port);
    c.send('USER dave\r\n');
    await serverGot('USER dave\r\n');
    expect(optional.logs()).toContain('session open client=127.0.0.1 protocol=pop3');
    c.sock.destroy();
  });
});
