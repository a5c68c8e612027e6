import { describe, expect, it } from 'vitest';
import { BodyScan } from '../../src/protocols/smtp/body.js';
import { checkQueryArg } from '../../src/protocols/smtp/commands.js';
import { parsePath, isError } from '../../src/protocols/smtp/path.js';
import { Harness, replyCodes, SEED } from './smtp-harness.js';

/**
 * Issue 12 item 4, no false positives on real clients: bareLineFeed
 * (normalize by default, as Postfix 3.9), VRFY/EXPN with SMTPUTF8 (RFC 6531
 * §3.7.4), allowUnqualifiedAddress. Every CVE-2023-51764 ending, in stream
 * and held mode, split at every byte: the server gets exactly the normalised
 * bytes, and never a second transaction.
 */

const B = (s: string) => Buffer.from(s, 'latin1');
const EHLO = 'EHLO client.example\r\n';
const TX = 'MAIL FROM:<alice@client.example>\r\nRCPT TO:<bob@mydomain.org>\r\nDATA\r\n';
const HIDDEN = 'MAIL FROM:<evil@x.example>\r\nRCPT TO:<victim@mydomain.org>\r\nDATA\r\nsmuggled\r\n.\r\n';
const body = (end: string) => `Subject: a\r\n\r\nfirst${end}${HIDDEN}`;

/** What the server must get for each ending under normalize: CRLF only, the lone "." stuffed; null: refused (bare CR). */
const NORMALIZED: [string, string | null][] = [
  ['\n.\n', '\r\n..\r\n'],
  ['\r\n.\n', '\r\n..\r\n'],
  ['\n.\r\n', '\r\n..\r\n'],
  ['\n..\n', '\r\n..\r\n'],
  ['\r.\r', null],
  ['\r\n.\r', null],
  ['\r.\r\n', null],
  ['\r\n\0.\r\n', null],
];

function scan(text: string, mode: 'normalize' | 'refuse') {
  const s = new BodyScan([], 0, mode);
  const out: Buffer[] = [];
  for (const l of text.split(/(?<=\n)/)) {
    const b = B(l);
    const ending = l.endsWith('\r\n') ? 'crlf' : l.endsWith('\n') ? 'lf' : 'none';
    const step = s.line(b, b.length - (ending === 'crlf' ? 2 : ending === 'lf' ? 1 : 0), ending);
    if (step.kind === 'end') return { end: true, poison: s.poison?.code ?? null, out: Buffer.concat(out).toString('latin1'), size: s.size };
    out.push(step.bytes);
  }
  return { end: false, poison: s.poison?.code ?? null, out: Buffer.concat(out).toString('latin1'), size: s.size };
}

describe('BodyScan, bareLineFeed', () => {
  it.each(NORMALIZED)('normalize %j: only CRLF.CRLF ends the data; what follows is text', (end, sent) => {
    const r = scan(body(end), 'normalize');
    if (sent === null) return expect(r).toMatchObject({ end: true, poison: 'smuggling' });
    expect(r).toMatchObject({ end: true, poison: null });
    expect(r.out).toBe(`Subject: a\r\n\r\nfirst${sent}${HIDDEN.slice(0, -3)}`);
  });
  it.each(NORMALIZED)('refuse %j: the message is poisoned', (end) => {
    expect(scan(body(end), 'refuse')).toMatchObject({ poison: 'smuggling' });
  });
  it('a CRLF line is passed on as the very slice received; an LF line is rebuilt once', () => {
    const s = new BodyScan([], 0, 'normalize');
    const crlf = B('abc\r\n');
    const lf = B('abc\n');
    const a = s.line(crlf, 3, 'crlf');
    const b = s.line(lf, 3, 'lf');
    expect(a.kind === 'line' && a.bytes).toBe(crlf);
    expect(b.kind === 'line' && b.bytes.toString('latin1')).toBe('abc\r\n');
  });
  it('size counts the CRLF a bare LF became (RFC 1870), the stuffing dot not', () => {
    expect(scan('ab\n..c\n.\r\n.\r\n', 'normalize')).toMatchObject({ end: true, size: 4 + 4 + 3 });
  });
  it('unterminated data and a dot-only last line after a bare LF stay open', () => {
    expect(scan('a\n.\r\n', 'normalize')).toMatchObject({ end: false, out: 'a\r\n..\r\n' });
    expect(scan('a\r\n.', 'normalize')).toMatchObject({ end: false, poison: 'smuggling' });
  });
});

type Mode = 'stream' | 'held';
const config = (mode: Mode, bareLineFeed: 'normalize' | 'refuse') => ({ ...(mode === 'held' ? SEED : {}), bareLineFeed });

/** Sends the whole session split into two chunks at `at`. */
function run(mode: Mode, lf: 'normalize' | 'refuse', wire: string, at: number) {
  const h = new Harness(config(mode, lf));
  h.send(wire.slice(0, at), wire.slice(at));
  return h;
}

describe('every smuggling ending through the session, split at every byte', () => {
  for (const mode of ['stream', 'held'] as const) {
    it.each(NORMALIZED)(`${mode}, normalize %j`, (end, sent) => {
      const wire = EHLO + TX + body(end) + 'NOOP\r\n';
      for (let at = EHLO.length + TX.length; at <= wire.length; at++) {
        const h = run(mode, 'normalize', wire, at);
        // Never a second transaction: the hidden MAIL is text inside the one message, or nothing reaches the server.
        expect(h.serverText.split('MAIL FROM:').length - 1).toBeLessThanOrEqual(sent === null ? 1 : 2);
        if (sent === null) {
          expect(h.refusals()).toEqual(['smuggling']);
          expect(h.server.messages).toHaveLength(0);
          expect(h.serverText).not.toContain('evil');
          if (mode === 'stream') expect(h.closed).toBe(true);
          else expect(h.serverText.endsWith('RCPT TO:<bob@mydomain.org>\r\nRSET\r\nNOOP\r\n')).toBe(true);
          continue;
        }
        expect(h.refusals()).toEqual([]);
        const msg = `Subject: a\r\n\r\nfirst${sent}${HIDDEN.slice(0, -3)}`;
        expect(h.server.messages.map(String)).toEqual([msg]);
        expect(h.serverText).toBe(EHLO + TX + msg + '.\r\nNOOP\r\n');
        expect(replyCodes(h.clientText)).toEqual(['220', '250', '250', '250', '354', '250', '250']);
      }
    });
    it.each(NORMALIZED)(`${mode}, refuse %j`, (end) => {
      const wire = EHLO + TX + body(end) + 'NOOP\r\n';
      for (let at = EHLO.length + TX.length; at <= wire.length; at++) {
        const h = run(mode, 'refuse', wire, at);
        expect(h.refusals()).toEqual(['smuggling']);
        expect(h.server.messages).toHaveLength(0);
        expect(h.serverText).not.toContain('evil');
        expect(h.closed).toBe(mode === 'stream');
      }
    });
  }

  it('curl 646 style: an LF-only file, then curl\'s own CRLF.CRLF, delivered with CRLF', () => {
    const file = 'From: a@client.example\nSubject: mime\n\nline one\n.hidden dot\n.\nlast\n';
    for (const mode of ['stream', 'held'] as const) {
      const h = new Harness(config(mode, 'normalize')).send(EHLO, TX, file + '\r\n.\r\n', 'QUIT\r\n');
      expect(h.refusals()).toEqual([]);
      expect(h.server.messages.map(String)).toEqual(['From: a@client.example\r\nSubject: mime\r\n\r\nline one\r\n.hidden dot\r\n..\r\nlast\r\n\r\n']);
    }
  });

  it('bare LF outside DATA stays refused, whatever bareLineFeed says', () => {
    const h = new Harness({ bareLineFeed: 'normalize' }).send(EHLO, 'NOOP\n');
    expect(h.refusals()).toEqual(['bare_lf']);
  });

  it('BDAT chunks are raw: a bare LF inside one is the server\'s business, never rebuilt', () => {
    const chunk = 'a\n.\nMAIL FROM:<e@x.example>\n';
    const h = new Harness().send(EHLO, 'MAIL FROM:<alice@client.example>\r\nRCPT TO:<bob@mydomain.org>\r\n', `BDAT ${chunk.length} LAST\r\n${chunk}`);
    expect(h.refusals()).toEqual([]);
    expect(h.serverText.endsWith(`BDAT ${chunk.length} LAST\r\n${chunk}`)).toBe(true);
  });
});

describe('VRFY / EXPN with SMTPUTF8 (RFC 6531 §3.7.4)', () => {
  const utf8 = Buffer.from('VRFY Fred\u00e9ric SMTPUTF8', 'utf8');
  const arg = (s: Buffer | string, caps: boolean) => {
    const b = typeof s === 'string' ? B(s) : s;
    return checkQueryArg(b, 5, b.length, caps);
  };
  it('accepts a UTF-8 argument with the parameter when the server offers SMTPUTF8', () => {
    expect(arg(utf8, true)).toBeNull();
    expect(arg(Buffer.from('EXPN \u7528\u6237 smtputf8', 'utf8'), true)).toBeNull();
    expect(arg('VRFY fred SMTPUTF8', true)).toBeNull();
  });
  it('refuses 8-bit without the parameter, without the capability, or as bad UTF-8', () => {
    expect(arg(Buffer.from('VRFY Fred\u00e9ric', 'utf8'), true)).toMatchObject({ error: 'bad character in argument' });
    expect(arg(utf8, false)).toMatchObject({ error: 'bad character in argument' });
    expect(arg(B('VRFY Fr\xe9d SMTPUTF8'), true)).toMatchObject({ error: 'argument is not valid UTF-8' });
    expect(arg(B('VRFY \x01x SMTPUTF8'), true)).toMatchObject({ error: 'bad character in argument' });
    expect(arg(B('VRFY SMTPUTF8'), true)).toBeNull(); // the word alone is the string, not the parameter
  });
  it('through the session: forwarded with the capability, 501 without', () => {
    const line = Buffer.concat([utf8, B('\r\n')]);
    const ok = new Harness().send(EHLO, line);
    expect(ok.refusals()).toEqual([]);
    expect(ok.server.received.includes(line)).toBe(true);
    const no = new Harness({}, { ehlo: ['PIPELINING', '8BITMIME'] }).send(EHLO, line);
    expect(no.refusals()).toEqual(['bad_argument']);
    expect(replyCodes(no.clientText).at(-1)).toBe('501');
  });
});

describe('allowUnqualifiedAddress', () => {
  const p = (s: string, allowUnqualified: boolean) => parsePath(B(s), 0, s.length, { allowNull: true, allowPostmaster: true, utf8: false, allowUnqualified });
  it('parses <root> only when allowed; the domain is the server\'s', () => {
    expect(p('<root>', false)).toMatchObject({ error: 'mailbox without @domain' });
    expect(p('<root>', true)).toMatchObject({ unqualified: true, domain: '', address: 'root', local: 'root' });
    expect(p('<"r t">', true)).toMatchObject({ unqualified: true, address: 'r t' });
    expect(isError(p('<root@>', true))).toBe(true);
    expect(isError(p('<root', true))).toBe(true);
  });
  it('MAIL FROM:<root> and RCPT TO:<root>: 501 by default, forwarded with the option', () => {
    const cmds = 'MAIL FROM:<root>\r\nRCPT TO:<root>\r\n';
    const strict = new Harness().send(EHLO, cmds);
    expect(strict.refusals()).toEqual(['bad_argument', 'bad_state']);
    const lax = new Harness({ allowUnqualifiedAddress: true }).send(EHLO, cmds, 'DATA\r\nx\r\n.\r\n');
    expect(lax.refusals()).toEqual([]);
    expect(lax.serverText).toContain(cmds);
    expect(lax.server.messages).toHaveLength(1);
  });
  it('under relay control an unqualified recipient is local; one that would route elsewhere is not', () => {
    const h = new Harness({ ...SEED, allowUnqualifiedAddress: true }).send(
      EHLO,
      'MAIL FROM:<root>\r\nRCPT TO:<root>\r\nRCPT TO:<user%evil.example>\r\nRCPT TO:<evil.example!user>\r\nRCPT TO:<user@evil.example>\r\n',
    );
    expect(h.refusals()).toEqual(['relay_denied', 'relay_denied', 'relay_denied']);
    expect(h.serverText).toContain('RCPT TO:<root>\r\n');
  });
  it('blockAddrList still sees the percent-hack and bang forms of an unqualified sender', () => {
    const h = new Harness({ ...SEED, allowUnqualifiedAddress: true }).send(EHLO, 'MAIL FROM:<hahaha%sexyfun.net>\r\nRSET\r\nMAIL FROM:<sexyfun.net!hahaha>\r\n');
    expect(h.refusals()).toEqual(['blocked_sender', 'blocked_sender']);
  });
});
