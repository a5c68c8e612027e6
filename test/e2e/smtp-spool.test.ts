import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tcpClient, type TestClient } from '../helpers/client.js';
import { asDelivered, disconnectLines, finalReplies, startPostfix, type Postfix } from '../helpers/postfix.js';
import { startStandalone, waitFor, type Standalone } from '../helpers/wrapper.js';

/**
 * Issue 13 item 6 end to end, through the built wrapper in front of a real
 * Postfix: held bodies past bodyHoldTotal spill to an unlinked file in
 * spoolDir and Postfix gets exactly the bytes; past spoolMax too the client
 * gets 452 4.3.1 and Postfix no DATA; and a server that goes away while a
 * slow client sends its body (Postfix smtpd_timeout, or a server that just
 * closes) ends the session at once instead of at the wrapper's idle timeout.
 */

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const TX = 'MAIL FROM:<alice@client.example>\r\nRCPT TO:<bob@mydomain.org>\r\nDATA\r\n';

/** About n bytes of message: headers, then base64-like lines, some of them dot-stuffed. */
function message(id: string, n: number): string {
  const lines = [`From: alice@client.example`, `To: bob@mydomain.org`, `Date: Thu, 26 Nov 2026 10:00:00 +0000`, `Message-ID: <${id}@client.example>`, `Subject: ${id}`, ''];
  let size = lines.join('\r\n').length;
  for (let i = 0; size < n; i++) {
    const l = (i % 97 === 0 ? '..' : '') + randomBytes(57).toString('base64');
    lines.push(l);
    size += l.length + 2;
  }
  return lines.join('\r\n') + '\r\n';
}

/** Paths of the wrapper's open descriptors that point into dir. */
function fdsInto(pid: number, dir: string): string[] {
  return readdirSync(`/proc/${pid}/fd`)
    .map((fd) => {
      try {
        return readlinkSync(`/proc/${pid}/fd/${fd}`);
      } catch {
        return '';
      }
    })
    .filter((l) => l.startsWith(`${dir}/`));
}

async function openTx(port: number): Promise<TestClient> {
  const c = await tcpClient(port);
  await c.waitFor('220 ');
  c.sock.write('EHLO client.example\r\n' + TX);
  await waitFor(() => finalReplies(c.received().toString('latin1')).length >= 5, '354');
  expect(finalReplies(c.received().toString('latin1')).at(-1)).toMatch(/^354 /);
  return c;
}

const replies = (c: TestClient) => finalReplies(c.received().toString('latin1')).map((l) => l.slice(0, 3));

describe('smtp held bodies past bodyHoldTotal, and a server that leaves mid-body (real Postfix)', () => {
  let pf: Postfix;
  let dir: string;
  let spill: Standalone;
  let full: Standalone;
  let slow: Standalone;
  let spillDir: string;
  let fullDir: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'pw-spool-e2e-'));
    // Not created beforehand: the wrapper makes it, mode 0700, on first use.
    spillDir = join(dir, 'spool');
    fullDir = join(dir, 'spool-full');
    const toml = (extra: string) => `protocol = "smtp"\nmaxMsgSize = 4194304\nbodyHoldTotal = 65536\n${extra}\n`;
    writeFileSync(join(dir, 'spill.toml'), toml(`spoolDir = "${spillDir}"`));
    writeFileSync(join(dir, 'full.toml'), toml(`spoolDir = "${fullDir}"\nspoolMax = 65536`));
    // Held (maxMsgSize), default budget: the server-gone tests need no new key.
    writeFileSync(join(dir, 'held.toml'), 'protocol = "smtp"\nmaxMsgSize = 4194304\n');
    pf = await startPostfix({ extraSmtpd: ['smtpd_timeout=2s'] });
    [spill, full, slow] = await Promise.all([
      startStandalone(['-f', join(dir, 'spill.toml'), '--connect', `127.0.0.1:${pf.port}`]),
      startStandalone(['-f', join(dir, 'full.toml'), '--connect', `127.0.0.1:${pf.port}`]),
      startStandalone(['-f', join(dir, 'held.toml'), '--idle-timeout', '30', '--connect', `127.0.0.1:${pf.extraPort}`]),
    ]);
  });
  afterAll(async () => {
    await Promise.all([spill?.stop(), full?.stop(), slow?.stop()]);
    await pf?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a 1 MiB body past a 64 KiB budget goes to an unlinked file in spoolDir; Postfix delivers exactly the bytes sent', async () => {
    const n = pf.delivered().length;
    const msg = message('spilled', 1 << 20);
    const c = await openTx(spill.port);
    const pid = spill.child.pid!;
    const seen: string[] = [];
    const step = 64 * 1024;
    for (let i = 0; i < msg.length; i += step) {
      c.sock.write(msg.slice(i, i + step), 'latin1');
      await sleep(20);
      // No name in spoolDir at any time: each file is unlinked once open.
      if (existsSync(spillDir)) expect(readdirSync(spillDir)).toEqual([]);
      seen.push(...fdsInto(pid, spillDir));
    }
    expect(statSync(spillDir).mode & 0o777).toBe(0o700);
    // The wrapper held the spilled part in a deleted file in spoolDir.
    expect(seen.length).toBeGreaterThan(0);
    expect(seen.every((l) => /\/hold-\d+-\d+-[0-9a-f]+ \(deleted\)$/.test(l))).toBe(true);
    c.sock.write('.\r\nQUIT\r\n');
    await c.eof;
    c.sock.destroy();
    expect(replies(c)).toEqual(['220', '250', '250', '250', '354', '250', '221']);
    const got = (await pf.waitDelivered(n + 1)).find((m) => m.includes('<spilled@client.example>'))!;
    const want = asDelivered(msg);
    expect(got.length).toBeGreaterThan(want.length);
    expect(got.subarray(-want.length).equals(want)).toBe(true);
    // Once the session is over, no descriptor and no file is left.
    await waitFor(() => fdsInto(pid, spillDir).length === 0, 'spool file closed');
    expect(readdirSync(spillDir)).toEqual([]);
  });

  it('spoolMax spent too: 452 4.3.1, Postfix gets RSET and no DATA; the next message of the session is delivered', async () => {
    const n = pf.delivered().length;
    const logBefore = pf.log().length;
    const c = await openTx(full.port);
    c.sock.write(message('refused', 1 << 20) + '.\r\n');
    await waitFor(() => replies(c).length >= 6, '452');
    expect(c.received().toString('latin1')).toContain('452 4.3.1 Insufficient system storage\r\n');
    const small = message('after-452', 2000);
    c.sock.write(TX);
    await waitFor(() => replies(c).length >= 9, '354');
    c.sock.write(small + '.\r\nQUIT\r\n');
    await c.eof;
    c.sock.destroy();
    expect(replies(c)).toEqual(['220', '250', '250', '250', '354', '452', '250', '250', '354', '250', '221']);
    expect(full.logs()).toMatch(/refused client=127\.0\.0\.1 protocol=smtp state=\w+ code=no_storage /);
    const want = /ehlo=1 mail=2 rcpt=2 data=1 rset=1 quit=1 commands=8$/;
    await waitFor(() => disconnectLines(pf.log().slice(logBefore)).some((l) => want.test(l)), 'Postfix disconnect line', 20_000);
    const got = await pf.waitDelivered(n + 1);
    expect(got).toHaveLength(n + 1);
    expect(got.at(-1)!.subarray(-asDelivered(small).length).equals(asDelivered(small))).toBe(true);
    expect(got.some((m) => m.includes('<refused@client.example>'))).toBe(false);
    await waitFor(() => fdsInto(full.child.pid!, fullDir).length === 0, 'spool file closed');
    expect(readdirSync(fullDir)).toEqual([]);
  });

  /**
   * Sends a body line every 500 ms until the wrapper closes; returns when the
   * client first saw a 421 and when the wrapper logged the session's end.
   */
  async function slowBody(w: Standalone, port: number): Promise<{ text: string; to421: number; toClose: number; log: string }> {
    const logBefore = w.logs().length;
    const c = await openTx(port);
    const t0 = Date.now();
    let t421 = 0;
    let tClose = 0;
    let next = 0;
    for (let i = 0; Date.now() - t0 < 12_000; ) {
      if (!t421 && c.received().toString('latin1').includes('\r\n421 ')) t421 = Date.now();
      if (/session close client=127\.0\.0\.1 /.test(w.logs().slice(logBefore))) {
        tClose = Date.now();
        break;
      }
      if (Date.now() >= next && !c.sock.destroyed) {
        c.sock.write(`body line ${i++}\r\n`);
        next = Date.now() + 500;
      }
      await sleep(20);
    }
    c.sock.destroy();
    return { text: c.received().toString('latin1'), to421: t421 - t0, toClose: tClose ? tClose - t0 : Infinity, log: w.logs().slice(logBefore) };
  }

  it('Postfix smtpd_timeout (2 s) while the wrapper holds a slow body: its 421 reaches the client and the session ends at once', async () => {
    const r = await slowBody(slow, slow.port);
    expect(r.text).toMatch(/\r\n421 4\.4\.2 .*timeout exceeded\r\n$/);
    expect(r.to421).toBeGreaterThan(1000);
    // The wrapper stops reading the client as soon as Postfix is gone (idle timeout: 30 s).
    expect(r.toClose - r.to421).toBeLessThan(1500);
    expect(r.log).toMatch(/session close client=127\.0\.0\.1 protocol=smtp end=server_closed /);
    // Nothing of the body was judged after the server left (before the fix: 503 bad_state per line, then too_many_violations).
    expect(r.log).not.toMatch(/code=bad_state/);
  });

  it('a server that closes without a word while a body is held: 421 from the wrapper, the session ends at once', async () => {
    // One that answers EHLO, MAIL and RCPT, then closes 300 ms later (a crash, a restart).
    const srv: Server = createServer((s) => {
      s.on('error', () => {});
      s.write('220 scripted ESMTP\r\n');
      let buf = '';
      s.on('data', (b: Buffer) => {
        buf += b.toString('latin1');
        let i: number;
        while ((i = buf.indexOf('\r\n')) >= 0) {
          const line = buf.slice(0, i);
          buf = buf.slice(i + 2);
          s.write('250 ok\r\n');
          if (line.startsWith('RCPT')) setTimeout(() => s.destroy(), 300);
        }
      });
    });
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
    writeFileSync(join(dir, 'crash.toml'), 'protocol = "smtp"\nmaxMsgSize = 4194304\n');
    const w = await startStandalone(['-f', join(dir, 'crash.toml'), '--idle-timeout', '30', '--connect', `127.0.0.1:${(srv.address() as AddressInfo).port}`]);
    try {
      const r = await slowBody(w, w.port);
      expect(r.text).toMatch(/\r\n421 4\.3\.2 Service not available, closing transmission channel\r\n$/);
      expect(r.toClose).toBeLessThan(2000);
      expect(r.log).toMatch(/end=server_closed /);
    } finally {
      await w.stop();
      srv.close();
    }
  });
});
