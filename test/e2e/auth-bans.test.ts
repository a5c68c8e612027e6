import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDovecot, type Dovecot } from '../helpers/dovecot.js';
import { pop3Login } from '../helpers/pop3-login.js';
import { disconnectLines, startPostfix, type Postfix } from '../helpers/postfix.js';
import { proxyClient, v2Header } from '../helpers/proxy-client.js';
import { runPiped, startStandalone, waitFor, type Standalone } from '../helpers/wrapper.js';
import { spawnSync } from 'node:child_process';
import { WRAPPER } from '../helpers/wrapper.js';

/**
 * maxAuthFailures with the memory store in one standalone process, in front
 * of a real Dovecot (POP3): failed logins counted across sessions per client
 * address, the ban refusing new connections before Dovecot is dialled. The
 * wrapper passes each client's address on to Dovecot in a PROXY header
 * (Dovecot haproxy = yes), so Dovecot's own log (rip=…) shows which clients
 * reached it. Clients dial from 127.0.0.x, or, for IPv6, send a PROXY header
 * the wrapper trusts (--proxy-from 127.0.0.1). SMTP: a real Postfix with
 * Dovecot SASL, its 535 to AUTH counted the same way.
 */

const BANNED_POP3 = '-ERR [SYS/TEMP] service temporarily unavailable\r\n';

describe('bans with the memory store (standalone, real Dovecot)', () => {
  let dc: Dovecot;
  let w: Standalone;
  let w6: Standalone;
  beforeAll(async () => {
    dc = await startDovecot({ haproxy: true });
    const common = ['-p', 'pop3', '--connect', `127.0.0.1:${dc.pop3Port}`, '--proxy-to-server', 'v2', '--max-auth-failures', '3', '--log-level', '1'];
    [w, w6] = await Promise.all([startStandalone(common), startStandalone([...common, '--proxy-from', '127.0.0.1'])]);
  });
  afterAll(async () => {
    await Promise.all([w?.stop(), w6?.stop()]);
    await dc?.stop();
  });

  const dovecotSaw = (rip: string) => dc.log().split('\n').filter((l) => l.includes('pop3-login:') && l.includes(`rip=${rip},`)).length;

  it('3 failed logins over 3 sessions (a success between them does not clear them) ban the address; another address still gets in', async () => {
    expect(await pop3Login(w.port, 'wrong1', { from: '127.0.0.2' })).toContain('-ERR [AUTH]');
    expect(await pop3Login(w.port, 'wrong2', { from: '127.0.0.2' })).toContain('-ERR [AUTH]');
    expect(await pop3Login(w.port, 'secret', { from: '127.0.0.2' })).toContain('+OK Logged in');
    // Not banned yet: 2 failures.
    expect(await pop3Login(w.port, 'wrong3', { from: '127.0.0.2' })).toContain('-ERR [AUTH]');
    await waitFor(() => w.logs().includes('banning client=127.0.0.2'), 'the ban line');
    expect(w.logs()).toMatch(/banning client=127\.0\.0\.2 protocol=pop3 reason="3 failed logins within 600 s \(maxAuthFailures\)" key=127\.0\.0\.2 session=[0-9a-f]{12}: new connections refused for 900 s/);
    expect(w.logs().match(/login failed client=127\.0\.0\.2 protocol=pop3 state=\S+ user="alice"/g)).toHaveLength(3);
    await waitFor(() => dovecotSaw('127.0.0.2') === 4, `Dovecot's 4 sessions from 127.0.0.2: ${dc.log()}`);

    // Banned: the wrapper's reply is all the client gets, twice.
    expect(await pop3Login(w.port, 'secret', { from: '127.0.0.2' })).toBe(BANNED_POP3);
    expect(await pop3Login(w.port, 'secret', { from: '127.0.0.2' })).toBe(BANNED_POP3);
    expect(w.logs().match(/refused connection client=127\.0\.0\.2 protocol=pop3 code=banned /g)).toHaveLength(2);
    expect(w.logs()).toMatch(/session close client=127\.0\.0\.2 protocol=pop3 end=banned /);

    // Another client is served; by the time its session is over, Dovecot has logged it, and still
    // only the 4 sessions of 127.0.0.2 from before the ban (the refused ones never reached it).
    expect(await pop3Login(w.port, 'secret', { from: '127.0.0.3' })).toContain('+OK Logged in');
    await waitFor(() => dovecotSaw('127.0.0.3') >= 1, "Dovecot's session from 127.0.0.3");
    expect(dovecotSaw('127.0.0.2')).toBe(4);
  });

  it('IPv6 clients count per /64, an IPv4-mapped address as IPv4 (addresses from trusted PROXY headers)', async () => {
    const h = (src: string) => v2Header(src, 40000, src.includes(':') && !src.startsWith('::ffff:') ? '2001:db8::25' : '192.0.2.25', 110);
    expect(await pop3Login(w6.port, 'x', { header: h('2001:db8:0:1::a') })).toContain('-ERR [AUTH]');
    expect(await pop3Login(w6.port, 'x', { header: h('2001:db8:0:1:ffff::b') })).toContain('-ERR [AUTH]');
    // Another /64: its own count.
    expect(await pop3Login(w6.port, 'x', { header: h('2001:db8:0:2::a') })).toContain('-ERR [AUTH]');
    expect(await pop3Login(w6.port, 'x', { header: h('2001:db8:0:1:1:2:3:4') })).toContain('-ERR [AUTH]');
    await waitFor(() => w6.logs().includes('key=2001:db8:0:1::/64'), 'the /64 ban');
    expect(await pop3Login(w6.port, 'secret', { header: h('2001:db8:0:1:9::9') })).toBe(BANNED_POP3);
    expect(w6.logs()).toContain('refused connection client=2001:db8:0:1:9::9 protocol=pop3 code=banned');
    expect(await pop3Login(w6.port, 'secret', { header: h('2001:db8:0:2::b') })).toContain('+OK Logged in');

    // ::ffff:198.51.100.7 in an IPv6 header and 198.51.100.7 in an IPv4 one: one client.
    const mapped = (src: string) => v2Header(src, 40000, '::ffff:192.0.2.25', 110);
    expect(await pop3Login(w6.port, 'x', { header: mapped('::ffff:c633:6407') })).toContain('-ERR [AUTH]');
    expect(await pop3Login(w6.port, 'x', { header: h('198.51.100.7') })).toContain('-ERR [AUTH]');
    expect(await pop3Login(w6.port, 'x', { header: mapped('::ffff:c633:6407') })).toContain('-ERR [AUTH]');
    await waitFor(() => w6.logs().includes('key=198.51.100.7 '), 'the IPv4 ban');
    expect(await pop3Login(w6.port, 'secret', { header: h('198.51.100.7') })).toBe(BANNED_POP3);
  });

  it('without maxAuthFailures nothing is counted; a piped session (client=stdin) never is', async () => {
    const plain = await startStandalone(['-p', 'pop3', '--connect', `127.0.0.1:${dc.pop3Port}`, '--proxy-to-server', 'v2']);
    try {
      for (let i = 0; i < 4; i++) expect(await pop3Login(plain.port, 'wrong', { from: '127.0.0.4' })).toContain('-ERR [AUTH]');
      expect(await pop3Login(plain.port, 'secret', { from: '127.0.0.4' })).toContain('+OK Logged in');
      expect(plain.logs()).not.toContain('banning');
    } finally {
      await plain.stop();
    }
    const r = await runPiped(['-p', 'pop3', '--connect', `127.0.0.1:${dc.pop3Port}`, '--proxy-to-server', 'v2', '--max-auth-failures', '1'], 'USER alice\r\nPASS wrong\r\nQUIT\r\n');
    expect(r.stdout.toString('latin1')).toContain('-ERR [AUTH]');
    expect(r.stderr).toContain('login failed client=stdin');
    expect(r.stderr).not.toContain('banning');
  });

  it('--check: inetd mode with the memory store says that nothing is counted across sessions; a Redis store does not', () => {
    const check = (...extra: string[]) => spawnSync(process.execPath, [WRAPPER, '-p', 'pop3', '--connect', '127.0.0.1:110', '--check', ...extra], { encoding: 'utf8' });
    const mem = check('--max-auth-failures', '5');
    expect(mem.status).toBe(0);
    expect(mem.stdout).toContain('maxAuthFailures 5 within 600 s, then banned for 900 s; IPv6 per /64');
    expect(mem.stdout).toMatch(/warning +inetd mode with the memory store: each process serves one connection, so nothing is counted across sessions/);
    const redis = check('--max-auth-failures', '5', '--state-store', 'redis://127.0.0.1:6379/1');
    expect(redis.stdout).toContain('stateStore      redis://127.0.0.1:6379/1 timeout=1s');
    expect(redis.stdout).not.toContain('warning');
    const standalone = check('--max-auth-failures', '5', '--listen', '127.0.0.1:1110');
    expect(standalone.stdout).not.toContain('warning');
    expect(check().stdout).toContain('maxAuthFailures none');
    const bad = check('--state-store', 'redis://h:99999');
    expect(bad.status).toBe(78);
    expect(bad.stderr).toContain('stateStore');
  });
});

/** One SMTP session: EHLO, AUTH PLAIN, QUIT; every byte received (a refused connection: its reply). */
async function smtpAuth(port: number, password: string, from: string): Promise<string> {
  const c = await proxyClient(port, from);
  let ended = false;
  void c.closed.then(() => (ended = true));
  const done = async () => {
    await c.closed;
    c.sock.end();
    return c.received();
  };
  const reply = (n: number, what: string) => waitFor(() => ended || (c.received().match(/^\d{3} /gm) ?? []).length >= n, `${what}: ${c.received()}`, 20_000);
  await reply(1, 'greeting');
  if (ended || !c.received().startsWith('220')) return done();
  c.send('EHLO client.example\r\n');
  await reply(2, 'EHLO');
  c.send(`AUTH PLAIN ${Buffer.from(`\0alice\0${password}`).toString('base64')}\r\n`);
  await reply(3, 'AUTH');
  c.send('QUIT\r\n');
  return done();
}

describe('bans in SMTP: the server\'s 535 to AUTH counts (real Postfix with Dovecot SASL)', () => {
  let pf: Postfix;
  let w: Standalone;
  beforeAll(async () => {
    pf = await startPostfix({ sasl: true });
    w = await startStandalone(['-p', 'smtp', '--connect', `127.0.0.1:${pf.port}`, '--max-auth-failures', '2', '--log-level', '1']);
  });
  afterAll(async () => {
    await w?.stop();
    await pf?.stop();
  });

  it('two sessions with a 535 each ban the client: the next connection gets 421 and never reaches Postfix', async () => {
    expect(await smtpAuth(w.port, 'wrong', '127.0.0.5')).toMatch(/\r\n535 /);
    expect(await smtpAuth(w.port, 'secret', '127.0.0.5')).toMatch(/\r\n235 /);
    expect(await smtpAuth(w.port, 'wrong', '127.0.0.5')).toMatch(/\r\n535 /);
    await waitFor(() => w.logs().includes('banning client=127.0.0.5'), 'the ban line');
    expect(w.logs().match(/login failed client=127\.0\.0\.5 protocol=smtp state=\S+ user="alice"/g)).toHaveLength(2);
    // Postfix's sessions with an EHLO (its start-up probes have none).
    const sessions = () => disconnectLines(pf.log()).filter((l) => l.includes(' ehlo=1 '));
    await waitFor(() => sessions().length === 3, `Postfix's three sessions: ${pf.log()}`);
    const got = await smtpAuth(w.port, 'secret', '127.0.0.5');
    expect(got).toMatch(/^421 [^\r]*\r\n$/);
    expect(w.logs()).toContain('refused connection client=127.0.0.5 protocol=smtp code=banned');
    // Another client is served; once Postfix has logged it, it has logged 4 sessions: not the refused one.
    expect(await smtpAuth(w.port, 'secret', '127.0.0.6')).toMatch(/\r\n235 /);
    await waitFor(() => sessions().length >= 4, "Postfix's session of 127.0.0.6");
    expect(sessions()).toHaveLength(4);
  });
});
