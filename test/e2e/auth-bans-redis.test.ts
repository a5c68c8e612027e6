import { rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { outageMarker } from '../../src/io/redis-store.js';
import { startDovecot, type Dovecot } from '../helpers/dovecot.js';
import { startHaproxy, type Haproxy } from '../helpers/haproxy.js';
import { pop3Login } from '../helpers/pop3-login.js';
import { proxyClient } from '../helpers/proxy-client.js';
import { redisCli, silentListener, startRedis, type Redis } from '../helpers/redis.js';
import { socketActivated } from '../helpers/socket-activate.js';
import { freePort, startStandalone, waitFor, type Standalone } from '../helpers/wrapper.js';

/**
 * maxAuthFailures with stateStore = redis://: a real redis-server shared by
 * wrapper instances that share nothing else. Two standalone instances behind
 * a real HAProxy (send-proxy-v2, round robin), inetd-mode processes under
 * systemd-socket-activate (one process per connection), all in front of a
 * real Dovecot that is told each client's address (PROXY v2, haproxy = yes),
 * so its rip= lines show which clients reached it. Then failing open: Redis
 * down from the start, killed mid-run, and a listener that never answers.
 */

const BANNED_POP3 = '-ERR [SYS/TEMP] service temporarily unavailable\r\n';
const BANNED_IMAP = '* BYE Server unavailable, try again later\r\n';

/** One IMAP session: LOGIN, then LOGOUT; every byte received. */
async function imapLogin(port: number, password: string, from: string): Promise<string> {
  const c = await proxyClient(port, from);
  let ended = false;
  void c.closed.then(() => (ended = true));
  await waitFor(() => ended || c.received().includes('\r\n'), `IMAP greeting: ${c.received()}`, 20_000);
  // The wrapper has closed its side: close ours, so that the session (an inetd process) ends.
  const done = async () => {
    await c.closed;
    c.sock.end();
    return c.received();
  };
  if (ended || !c.received().startsWith('* OK')) return done();
  c.send(`a LOGIN alice ${password}\r\n`);
  await waitFor(() => ended || /\r\na (OK|NO|BAD)/.test(c.received()), `LOGIN reply: ${c.received()}`, 20_000);
  c.send('b LOGOUT\r\n');
  return done();
}

describe('bans shared through a real Redis', () => {
  let dc: Dovecot;
  let redis: Redis;
  beforeAll(async () => {
    [dc, redis] = await Promise.all([startDovecot({ haproxy: true }), startRedis()]);
  });
  afterAll(async () => {
    await Promise.all([dc?.stop(), redis?.stop()]);
  });

  const dovecotSaw = (service: 'pop3' | 'imap', rip: string) => dc.log().split('\n').filter((l) => l.includes(`${service}-login:`) && l.includes(`rip=${rip},`)).length;
  const count = (text: string, re: RegExp) => (text.match(re) ?? []).length;

  describe('HAProxy (send-proxy-v2) in front of two standalone instances on one Redis', () => {
    let a: Standalone;
    let b: Standalone;
    let lb: Haproxy;
    beforeAll(async () => {
      const args = ['-p', 'pop3', '--connect', `127.0.0.1:${dc.pop3Port}`, '--proxy-from', '127.0.0.1', '--proxy-to-server', 'v2', '--max-auth-failures', '3', '--state-store', `${redis.url}/2`];
      [a, b] = await Promise.all([startStandalone(args), startStandalone(args)]);
      lb = await startHaproxy([a.port, b.port], 'send-proxy-v2');
    });
    afterAll(async () => {
      await lb?.stop();
      await Promise.all([a?.stop(), b?.stop()]);
    });

    it('a brute-forcer spread over both instances is banned after 3 failures in total, on both; others get in', async () => {
      for (let i = 0; i < 3; i++) expect(await pop3Login(lb.port, `wrong${i}`, { from: '127.0.0.2' })).toContain('-ERR [AUTH]');
      const failed = (s: Standalone) => count(s.logs(), /login failed client=127\.0\.0\.2 protocol=pop3/g);
      // Round robin: each instance saw some of the three, neither all of them.
      expect(failed(a)).toBeGreaterThan(0);
      expect(failed(b)).toBeGreaterThan(0);
      expect(failed(a) + failed(b)).toBe(3);
      await waitFor(() => /banning client=127\.0\.0\.2 /.test(a.logs() + b.logs()), 'the ban line');
      // The keys are in database 2, with TTLs.
      expect(await redisCli(redis.port, '-n', '2', 'EXISTS', 'protowrap:ban:127.0.0.2')).toBe('1');
      const ttl = Number(await redisCli(redis.port, '-n', '2', 'PTTL', 'protowrap:ban:127.0.0.2'));
      expect(ttl).toBeGreaterThan(0);
      expect(ttl).toBeLessThanOrEqual(900_000);

      // Two more connections: one to each instance, both refused.
      expect(await pop3Login(lb.port, 'secret', { from: '127.0.0.2' })).toBe(BANNED_POP3);
      expect(await pop3Login(lb.port, 'secret', { from: '127.0.0.2' })).toBe(BANNED_POP3);
      expect(a.logs()).toContain('refused connection client=127.0.0.2 protocol=pop3 code=banned');
      expect(b.logs()).toContain('refused connection client=127.0.0.2 protocol=pop3 code=banned');

      expect(await pop3Login(lb.port, 'secret', { from: '127.0.0.3' })).toContain('+OK Logged in');
      await waitFor(() => dovecotSaw('pop3', '127.0.0.3') >= 1, "Dovecot's session from 127.0.0.3");
      // Dovecot saw the three failures of 127.0.0.2 and nothing of it after the ban.
      expect(dovecotSaw('pop3', '127.0.0.2')).toBe(3);
    });
  });

  describe('inetd mode: one process per connection (systemd-socket-activate --inetd), one Redis', () => {
    it('three processes with one failed IMAP login each add up to a ban; the next process refuses at once', async () => {
      const inetd = await socketActivated(['-p', 'imap', '--connect', `127.0.0.1:${dc.imapPort}`, '--proxy-to-server', 'v2', '--log-stderr', '--max-auth-failures', '3', '--state-store', redis.url]);
      try {
        for (let i = 0; i < 3; i++) expect(await imapLogin(inetd.port, 'wrong', '127.0.0.4')).toMatch(/\r\na NO /);
        await waitFor(() => inetd.logs().includes('banning client=127.0.0.4'), 'the ban line');
        expect(count(inetd.logs(), /login failed client=127\.0\.0\.4 protocol=imap state=\S+ user="alice"/g)).toBe(3);
        expect(await imapLogin(inetd.port, 'secret', '127.0.0.4')).toBe(BANNED_IMAP);
        await waitFor(() => inetd.logs().includes('refused connection client=127.0.0.4 protocol=imap code=banned'), 'the refusal line');
        expect(await imapLogin(inetd.port, 'secret', '127.0.0.5')).toMatch(/\r\na OK /);
        await waitFor(() => dovecotSaw('imap', '127.0.0.5') >= 1, "Dovecot's session from 127.0.0.5");
        expect(dovecotSaw('imap', '127.0.0.4')).toBe(3);
      } finally {
        await inetd.stop();
      }
    });

    it('Redis down: every process fails open, the outage is logged once across them, its end once', async () => {
      const port = await freePort();
      const url = `redis://127.0.0.1:${port}`;
      const marker = outageMarker(`${url}/0`);
      rmSync(marker, { force: true });
      const inetd = await socketActivated(['-p', 'imap', '--connect', `127.0.0.1:${dc.imapPort}`, '--proxy-to-server', 'v2', '--log-stderr', '--max-auth-failures', '1', '--state-store', url]);
      try {
        for (let i = 0; i < 3; i++) expect(await imapLogin(inetd.port, 'wrong', '127.0.0.6')).toMatch(/\r\na NO /);
        expect(await imapLogin(inetd.port, 'secret', '127.0.0.6')).toMatch(/\r\na OK /);
        await waitFor(() => count(inetd.logs(), /session close client=127\.0\.0\.6 /g) === 4, `four sessions closed: ${inetd.logs()}`);
        expect(count(inetd.logs(), /state store redis:\/\/127\.0\.0\.1:\d+\/0 unavailable \(connection: ECONNREFUSED\): failing open/g)).toBe(1);
        expect(inetd.logs()).not.toContain('banning');
      } finally {
        await inetd.stop();
      }
      // The same store back (a Redis on that port): the first process to reach it logs that, once.
      const back = await startRedisOn(port);
      const inetd2 = await socketActivated(['-p', 'imap', '--connect', `127.0.0.1:${dc.imapPort}`, '--proxy-to-server', 'v2', '--log-stderr', '--max-auth-failures', '3', '--state-store', url]);
      try {
        for (let i = 0; i < 2; i++) expect(await imapLogin(inetd2.port, 'secret', '127.0.0.6')).toMatch(/\r\na OK /);
        await waitFor(() => count(inetd2.logs(), /session close client=127\.0\.0\.6 /g) === 2, 'two sessions closed');
        expect(count(inetd2.logs(), /reachable again/g)).toBe(1);
      } finally {
        await inetd2.stop();
        await back.stop();
        rmSync(marker, { force: true });
      }
    });
  });

  describe('standalone: failing open', () => {
    const popArgs = (store: string, extra: string[] = []) => ['-p', 'pop3', '--connect', `127.0.0.1:${dc.pop3Port}`, '--proxy-to-server', 'v2', '--max-auth-failures', '1', '--state-store', store, ...extra];

    it('Redis down from the start: sessions go on, nobody is banned, one log line', async () => {
      const w = await startStandalone(popArgs(`redis://127.0.0.1:${await freePort()}`));
      try {
        expect(await pop3Login(w.port, 'wrong', { from: '127.0.0.7' })).toContain('-ERR [AUTH]');
        expect(await pop3Login(w.port, 'secret', { from: '127.0.0.7' })).toContain('+OK Logged in');
        expect(await pop3Login(w.port, 'secret', { from: '127.0.0.7' })).toContain('+OK Logged in');
        expect(count(w.logs(), /unavailable \(connection: ECONNREFUSED\): failing open/g)).toBe(1);
      } finally {
        await w.stop();
      }
    });

    it('Redis killed mid-run: counted before, fail open during (one line), counted again after (one line)', async () => {
      await redisCli(redis.port, 'FLUSHALL');
      const w = await startStandalone(popArgs(redis.url, ['--max-auth-failures', '2']));
      try {
        expect(await pop3Login(w.port, 'wrong', { from: '127.0.0.8' })).toContain('-ERR [AUTH]');
        // Written to Redis (the session does not wait for it).
        for (let i = 0; (await redisCli(redis.port, 'ZCARD', 'protowrap:fail:127.0.0.8')) !== '1'; i++) {
          if (i > 200) throw new Error('the failure never reached Redis');
          await new Promise((r) => setTimeout(r, 50));
        }
        await redis.kill();
        expect(await pop3Login(w.port, 'wrong', { from: '127.0.0.8' })).toContain('-ERR [AUTH]');
        expect(await pop3Login(w.port, 'secret', { from: '127.0.0.8' })).toContain('+OK Logged in');
        expect(await pop3Login(w.port, 'secret', { from: '127.0.0.8' })).toContain('+OK Logged in');
        expect(count(w.logs(), /unavailable \(connection: [^)]+\): failing open/g)).toBe(1);
        await redis.start();
        // Back, and empty (nothing was saved): two failures ban again.
        expect(await pop3Login(w.port, 'secret', { from: '127.0.0.8' })).toContain('+OK Logged in');
        expect(count(w.logs(), /reachable again/g)).toBe(1);
        expect(await pop3Login(w.port, 'wrong', { from: '127.0.0.8' })).toContain('-ERR [AUTH]');
        expect(await pop3Login(w.port, 'wrong', { from: '127.0.0.8' })).toContain('-ERR [AUTH]');
        await waitFor(() => w.logs().includes('banning client=127.0.0.8'), 'the ban after the outage');
        expect(await pop3Login(w.port, 'secret', { from: '127.0.0.8' })).toBe(BANNED_POP3);
        expect(count(w.logs(), /unavailable/g)).toBe(1);
      } finally {
        await w.stop();
      }
    });

    it('a Redis that never answers: each session goes on after the timeout, one log line', async () => {
      const silent = await silentListener();
      const w = await startStandalone(popArgs(`redis://127.0.0.1:${silent.port}`));
      try {
        expect(await pop3Login(w.port, 'wrong', { from: '127.0.0.9' })).toContain('-ERR [AUTH]');
        expect(await pop3Login(w.port, 'secret', { from: '127.0.0.9' })).toContain('+OK Logged in');
        expect(silent.connections()).toBeGreaterThan(0);
        expect(silent.received()).toContain('EXISTS');
        expect(count(w.logs(), /unavailable \(timeout: no reply within 1000 ms\): failing open/g)).toBe(1);
        expect(w.logs()).not.toContain('banning');
      } finally {
        await w.stop();
        await silent.stop();
      }
    });
  });
});

/** A Redis on a given port (the outage's end), stopped by the caller. */
async function startRedisOn(port: number): Promise<{ stop(): Promise<void> }> {
  const { spawn } = await import('node:child_process');
  const c = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: ['ignore', 'pipe', 'ignore'] });
  let out = '';
  c.stdout!.on('data', (b: Buffer) => (out += b.toString('latin1')));
  await waitFor(() => out.includes('Ready to accept connections'), 'redis-server on the outage port');
  return {
    stop: () =>
      new Promise<void>((r) => {
        if (c.exitCode !== null) return r();
        c.once('exit', () => r());
        c.kill('SIGKILL');
      }),
  };
}
