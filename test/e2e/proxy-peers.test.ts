import { spawn, type ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDovecot, type Dovecot } from '../helpers/dovecot.js';
import { startHaproxy, type Haproxy } from '../helpers/haproxy.js';
import { startPostfix, type Postfix } from '../helpers/postfix.js';
import { proxyClient, v2Header } from '../helpers/proxy-client.js';
import { freePort, startStandalone, waitFor, WRAPPER, type Standalone } from '../helpers/wrapper.js';

/**
 * The PROXY protocol with real peers on both sides: HAProxy (send-proxy,
 * send-proxy-v2) in front of the wrapper, Dovecot (haproxy = yes) and
 * Postfix (smtpd_upstream_proxy_protocol = haproxy) behind it
 * (--proxy-to-server v1/v2). The client dials from 127.0.0.2 or 127.0.0.3, so
 * the address each hop logs shows whether the header carried it.
 */
describe('PROXY protocol with HAProxy, Dovecot and Postfix', () => {
  let dc: Dovecot;
  let pf: Postfix;
  let popV2: Standalone;
  let imapV1: Standalone;
  let smtpV1: Standalone;
  let smtpV2: Standalone;
  let hV1: Haproxy;
  let hV2: Haproxy;
  beforeAll(async () => {
    [dc, pf] = await Promise.all([startDovecot({ haproxy: true }), startPostfix({ extraSmtpd: ['smtpd_upstream_proxy_protocol=haproxy'] })]);
    const common = ['--log-level', '1', '--proxy-from', '127.0.0.1'];
    [popV2, imapV1, smtpV1, smtpV2] = await Promise.all([
      startStandalone(['-p', 'pop3', '--connect', `127.0.0.1:${dc.pop3Port}`, '--proxy-to-server', 'v2', ...common]),
      startStandalone(['-p', 'imap', '--connect', `127.0.0.1:${dc.imapPort}`, '--proxy-to-server', 'v1', ...common]),
      startStandalone(['-p', 'smtp', '--connect', `127.0.0.1:${pf.extraPort}`, '--proxy-to-server', 'v1', ...common]),
      startStandalone(['-p', 'smtp', '--connect', `127.0.0.1:${pf.extraPort}`, '--proxy-to-server', 'v2', ...common]),
    ]);
    [hV1, hV2] = await Promise.all([startHaproxy(popV2.port, 'send-proxy'), startHaproxy(imapV1.port, 'send-proxy-v2')]);
  });
  afterAll(async () => {
    await Promise.all([hV1?.stop(), hV2?.stop()]);
    await Promise.all([popV2?.stop(), imapV1?.stop(), smtpV1?.stop(), smtpV2?.stop()]);
    await Promise.all([dc?.stop(), pf?.stop()]);
  });

  it('client → HAProxy (send-proxy) → wrapper → Dovecot (haproxy = yes, v2 header): both log the client 127.0.0.2', async () => {
    const mark = dc.logMark();
    const c = await proxyClient(hV1.port, '127.0.0.2');
    await c.until('+OK');
    c.send('USER alice\r\n');
    await c.until('+OK\r\n');
    c.send('PASS secret\r\n');
    await c.until('Logged in');
    c.send('QUIT\r\n');
    await c.closed;
    await waitFor(() => /pop3-login: Info: Login: user=<alice>.*rip=127\.0\.0\.2,/.test(dc.logSince(mark)), `Dovecot's login line with rip=127.0.0.2: ${dc.logSince(mark)}`);
    expect(popV2.logs()).toMatch(/proxy v1 header from peer=127\.0\.0\.1: client=127\.0\.0\.2:\d+ dialled=127\.0\.0\.1:\d+/);
    expect(popV2.logs()).toContain('session open client=127.0.0.2 protocol=pop3');
  });

  it('client → HAProxy (send-proxy-v2) → wrapper → Dovecot (v1 header): IMAP login with rip=127.0.0.3', async () => {
    const mark = dc.logMark();
    const c = await proxyClient(hV2.port, '127.0.0.3');
    await c.until('* OK');
    c.send('a LOGIN alice secret\r\n');
    await c.until('a OK');
    c.send('b LOGOUT\r\n');
    await c.closed;
    await waitFor(() => /imap-login: Info: Login: user=<alice>.*rip=127\.0\.0\.3,/.test(dc.logSince(mark)), `Dovecot's login line with rip=127.0.0.3: ${dc.logSince(mark)}`);
    expect(imapV1.logs()).toMatch(/proxy v2 header from peer=127\.0\.0\.1: client=127\.0\.0\.3:\d+/);
  });

  for (const [v, front] of [['v1', () => smtpV1], ['v2', () => smtpV2]] as const) {
    it(`a header claiming 192.0.2.7 from a listed client → wrapper → Postfix (--proxy-to-server ${v}): Postfix logs connect from unknown[192.0.2.7]`, async () => {
      const before = pf.log().length;
      const c = await proxyClient(front().port);
      const header = v === 'v1' ? 'PROXY TCP4 192.0.2.7 198.51.100.25 41000 25\r\n' : v2Header('192.0.2.7', 41000, '198.51.100.25', 25);
      c.send(header);
      await c.until('220 ');
      c.send('EHLO client.example\r\n');
      await c.until('250 ');
      c.send('QUIT\r\n');
      await c.until('221');
      await waitFor(() => pf.log().slice(before).includes('connect from unknown[192.0.2.7]'), `Postfix's connect line: ${pf.log().slice(before)}`);
      expect(front().logs()).toContain('session open client=192.0.2.7 protocol=smtp');
      c.sock.destroy();
    });
  }

  it('inetd (systemd-socket-activate) → Postfix with a v2 header: the client address from the socket, 127.0.0.3', async () => {
    const port = await freePort();
    const launcher: ChildProcess = spawn(
      'systemd-socket-activate',
      ['--inetd', '-a', '-l', `127.0.0.1:${port}`, '--', process.execPath, WRAPPER, '--log-stderr', '-p', 'smtp', '--connect', `127.0.0.1:${pf.extraPort}`, '--proxy-to-server', 'v2'],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let err = '';
    launcher.stderr!.on('data', (b: Buffer) => (err += b.toString('latin1')));
    try {
      await waitFor(() => err.includes('Listening on'), 'systemd-socket-activate');
      const before = pf.log().length;
      const c = await proxyClient(port, '127.0.0.3');
      await c.until('220 ');
      c.send('QUIT\r\n');
      await c.until('221');
      await waitFor(() => /connect from \S*\[127\.0\.0\.3\]/.test(pf.log().slice(before)), `Postfix's connect line: ${pf.log().slice(before)}`);
      c.sock.destroy();
    } finally {
      launcher.kill('SIGTERM');
    }
  });
});
