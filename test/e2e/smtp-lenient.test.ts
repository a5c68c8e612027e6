import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { finalReplies, smtpRaw, startPostfix, type Postfix } from '../helpers/postfix.js';
import { startStandalone, waitFor, type Standalone } from '../helpers/wrapper.js';

const run = promisify(execFile);

/**
 * Issue 12 item 4 against the real Postfix (3.7.11 here, which has
 * smtpd_forbid_bare_newline backported, with "normalize"): every
 * CVE-2023-51764 ending, with a second MAIL/RCPT/DATA hidden after it, sent
 * directly (to see what Postfix itself does) and through the wrapper with
 * bareLineFeed normalize and refuse, body held and streamed; real clients
 * that send bare LFs (python smtplib, curl -T), VRFY with SMTPUTF8, and an
 * unqualified <root>. What Postfix delivered is the verdict.
 */

const ENDINGS = ['\n.\n', '\r\n.\n', '\n.\r\n', '\r.\r', '\r\n.\r', '\r.\r\n'] as const;
/** The ending holds a CR that is not part of a CRLF: refused under either setting. */
const BARE_CR = (e: string) => e.replace(/\r\n/g, '').includes('\r');

let serial = 0;
const marker = () => `m${process.pid}x${++serial}`;
const session = (id: string, end: string) =>
  'EHLO client.example\r\nMAIL FROM:<alice@client.example>\r\nRCPT TO:<bob@mydomain.org>\r\nDATA\r\n' +
  `Subject: ${id}\r\n\r\nfirst-${id}${end}MAIL FROM:<evil@client.example>\r\nRCPT TO:<victim@mydomain.org>\r\nDATA\r\nSubject: smuggled-${id}\r\n\r\nx\r\n.\r\nQUIT\r\n`;

describe('bare LF, VRFY SMTPUTF8, unqualified addresses: Postfix and real clients', () => {
  let pf: Postfix;
  let dir: string;
  const w: Record<'streamN' | 'heldN' | 'streamR' | 'heldR' | 'unq', Standalone> = {} as never;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'pw-smtp-lenient-'));
    // The exclusions default to $mynetworks, which holds 127.0.0.1: cleared, or loopback would be exempt.
    pf = await startPostfix({ extraSmtpd: ['smtpd_forbid_bare_newline=normalize', 'smtpd_forbid_bare_newline_exclusions='] });
    const to = ['--connect', `127.0.0.1:${pf.port}`];
    [w.streamN, w.heldN, w.streamR, w.heldR, w.unq] = await Promise.all([
      startStandalone(['-p', 'smtp', ...to]),
      startStandalone(['-p', 'smtp', '--max-msg-size', '1048576', ...to]),
      startStandalone(['-p', 'smtp', '--bare-line-feed', 'refuse', ...to]),
      startStandalone(['-p', 'smtp', '--bare-line-feed', 'refuse', '--max-msg-size', '1048576', ...to]),
      startStandalone(['-p', 'smtp', '--allow-unqualified-address', ...to]),
    ]);
  });
  afterAll(async () => {
    await Promise.all(Object.values(w).map((s) => s.stop()));
    await pf?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Delivered messages that carry the marker; waits for `want`, then a little more so that a late second one shows. */
  const deliveredWith = async (id: string, want: number) => {
    const mine = () => pf.delivered().filter((m) => m.includes(id));
    if (want > 0) await waitFor(() => mine().length >= want, `${want} messages ${id}`, 15_000);
    await new Promise((r) => setTimeout(r, 700));
    return mine().map((m) => m.toString('latin1'));
  };

  const send = async (port: number, wire: string) => {
    const { text, client } = await smtpRaw(port, [{ send: wire, replies: 0 }]);
    await Promise.race([client.eof, new Promise((r) => setTimeout(r, 3000))]);
    client.sock.destroy();
    return text + client.received().toString('latin1').slice(text.length);
  };

  it.each(ENDINGS)('Postfix alone, %j: default (no) runs the hidden commands, normalize does not', async (end) => {
    const a = marker();
    await send(pf.port, session(a, end));
    const b = marker();
    await send(pf.extraPort!, session(b, end));
    const plain = await deliveredWith(a, 1);
    const norm = await deliveredWith(b, 1);
    // Postfix 3.7's default takes a bare LF for CRLF: <LF>.<LF> ends the data there and the smuggled message is delivered.
    const lfEnds = end === '\n.\n' || end === '\r\n.\n' || end === '\n.\r\n';
    expect(plain.some((m) => m.includes(`Subject: smuggled-${a}`) && !m.includes(`first-${a}`))).toBe(lfEnds);
    expect(norm.filter((m) => m.includes(`Subject: smuggled-${b}`) && !m.includes(`first-${b}`))).toEqual([]);
    expect(norm).toHaveLength(1);
  });

  for (const mode of ['stream', 'held'] as const) {
    it.each(ENDINGS)(`through the wrapper (${mode}, normalize), %j: one message at most, the hidden commands its text`, async (end) => {
      const id = marker();
      const text = await send(mode === 'stream' ? w.streamN.port : w.heldN.port, session(id, end));
      const got = await deliveredWith(id, BARE_CR(end) ? 0 : 1);
      if (BARE_CR(end)) {
        expect(got).toEqual([]);
        expect(finalReplies(text).some((l) => /^55[04] 5\.6\.0/.test(l))).toBe(true);
        return;
      }
      expect(got).toHaveLength(1);
      // The lone dot went as "..": Postfix stores it as ".", and the hidden commands are lines of the one message.
      expect(got[0]).toContain(`first-${id}\n.\nMAIL FROM:<evil@client.example>\nRCPT TO:<victim@mydomain.org>\nDATA\nSubject: smuggled-${id}\n\nx\n`);
      expect(got[0]).not.toContain('\r');
    });
    it.each(ENDINGS)(`through the wrapper (${mode}, refuse), %j: nothing delivered`, async (end) => {
      const id = marker();
      const text = await send(mode === 'stream' ? w.streamR.port : w.heldR.port, session(id, end));
      expect(await deliveredWith(id, 0)).toEqual([]);
      expect(finalReplies(text).some((l) => /^55[04] 5\.6\.0/.test(l))).toBe(true);
    });
  }

  it('python smtplib sendmail with bare LFs in the body: delivered once, with CRLF', async () => {
    const id = marker();
    const py = [
      'import smtplib, sys',
      `s = smtplib.SMTP('127.0.0.1', int(sys.argv[1]))`,
      `s.sendmail('alice@client.example', ['bob@mydomain.org'], b'Subject: ${id}\\n\\nline one\\n.\\nMAIL FROM:<evil@client.example>\\nlast\\n')`,
      's.quit()',
    ].join('\n');
    for (const s of [w.streamN, w.heldN]) await run('python3', ['-c', py, String(s.port)]);
    const got = await deliveredWith(id, 2);
    expect(got).toHaveLength(2);
    // smtplib stuffed the dot ("..\n"); Postfix unstuffs it.
    for (const m of got) expect(m).toContain('\nline one\n.\nMAIL FROM:<evil@client.example>\nlast\n');
    // Refused as smuggling under bareLineFeed = refuse.
    await expect(run('python3', ['-c', py, String(w.streamR.port)])).rejects.toThrow(/554|SMTP/);
  });

  it('curl -T with an LF-only file (curl test 646): delivered; its lone "." line stays text', async () => {
    const id = marker();
    const file = join(dir, `${id}.eml`);
    writeFileSync(file, `From: alice@client.example\nSubject: ${id}\n\nline one\n.\nRCPT TO:<victim@mydomain.org>\nlast\n`);
    for (const s of [w.streamN, w.heldN]) {
      await run('curl', ['-sS', '--mail-from', 'alice@client.example', '--mail-rcpt', 'bob@mydomain.org', '-T', file, `smtp://127.0.0.1:${s.port}`]);
    }
    const got = await deliveredWith(id, 2);
    expect(got).toHaveLength(2);
    for (const m of got) expect(m).toContain('line one\n.\nRCPT TO:<victim@mydomain.org>\nlast\n');
  });

  it('VRFY / EXPN <utf8> SMTPUTF8 reach Postfix (curl 967/968); without the parameter 501 from the wrapper', async () => {
    const name = Buffer.from('Fr\u00e9d\u00e9ric', 'utf8');
    const line = (verb: string, param: boolean) => Buffer.concat([Buffer.from(`${verb} `), name, Buffer.from(param ? ' SMTPUTF8\r\n' : '\r\n')]);
    const direct = await smtpRaw(pf.port, [{ send: 'EHLO client.example\r\n', replies: 1 }, { send: line('VRFY', true), replies: 1 }, { send: line('EXPN', true), replies: 1 }]);
    direct.client.sock.destroy();
    const wrapped = await smtpRaw(w.streamN.port, [
      { send: 'EHLO client.example\r\n', replies: 1 },
      { send: line('VRFY', true), replies: 1 },
      { send: line('EXPN', true), replies: 1 },
      { send: line('VRFY', false), replies: 1 },
    ]);
    wrapped.client.sock.destroy();
    const codes = (t: string) => finalReplies(t).map((l) => l.slice(0, 3));
    // What Postfix answers itself (its own verdict on the name), the wrapper passes on.
    expect(codes(wrapped.text).slice(0, 4)).toEqual(codes(direct.text));
    expect(codes(wrapped.text).at(-1)).toBe('501');
    expect(w.streamN.logs()).toMatch(/code=bad_argument reason="VRFY: bad character in argument"/);
  });

  it('unqualified <root>: 501 by default; with allowUnqualifiedAddress Postfix gets it and adds its own domain', async () => {
    const cmds = 'EHLO client.example\r\nMAIL FROM:<root>\r\nRCPT TO:<root>\r\nRSET\r\nQUIT\r\n';
    const direct = await smtpRaw(pf.port, [{ send: cmds, replies: 5 }]);
    const strict = await smtpRaw(w.streamN.port, [{ send: cmds, replies: 5 }]);
    const lax = await smtpRaw(w.unq.port, [{ send: cmds, replies: 5 }]);
    for (const r of [direct, strict, lax]) r.client.sock.destroy();
    const codes = (t: string) => finalReplies(t).map((l) => l.slice(0, 3));
    // Postfix reads <root> as root@$myorigin (mx.test.example here, which it does not deliver): its own 550.
    expect(finalReplies(direct.text)[3]).toBe('550 5.1.1 <root>: Recipient address rejected: mx.test.example');
    expect(finalReplies(lax.text).slice(2)).toEqual(finalReplies(direct.text).slice(2));
    expect(codes(strict.text)).toEqual(['220', '250', '501', '503', '250', '221']);
    const id = marker();
    await send(w.unq.port, `EHLO client.example\r\nMAIL FROM:<root>\r\nRCPT TO:<bob@mydomain.org>\r\nDATA\r\nSubject: ${id}\r\n\r\nx\r\n.\r\nQUIT\r\n`);
    const got = await deliveredWith(id, 1);
    expect(got).toHaveLength(1);
    expect(got[0]).toMatch(/^Return-Path: <root@mx\.test\.example>\n/);
  });
});
