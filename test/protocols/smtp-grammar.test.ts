import { describe, expect, it } from 'vitest';
import { buildConfig } from '../../src/config.js';
import { parsePath, parseParams, isError, addressForms } from '../../src/protocols/smtp/path.js';
import { domainListed, ipAllowed, smtpPolicy } from '../../src/protocols/smtp/policy.js';
import { filterEhlo, ReplyReader } from '../../src/protocols/smtp/replies.js';
import { BodyScan } from '../../src/protocols/smtp/body.js';
import { compileLinear } from '../../src/core/safe-regex.js';

/** The SMTP mode's pure parts: path grammar, policy helpers, server replies, body scan (smtp.test.ts has the session tables). */

const B = (s: string) => Buffer.from(s, 'latin1');
const path = (s: string, o = { allowNull: true, allowPostmaster: true, utf8: false }) => {
  const b = B(s);
  return parsePath(b, 0, b.length, o);
};

describe('smtp path parser (RFC 5321 §4.1.2)', () => {
  const good: [string, string][] = [
    ['<a@b.example>', 'a@b.example'],
    ['<A.B@EXAMPLE.org>', 'a.b@example.org'],
    ['<"hahaha"@sexyfun.net>', 'hahaha@sexyfun.net'],
    ['<"ha\\ha\\ha"@sexyfun.net>', 'hahaha@sexyfun.net'],
    ['<@relay.example,@r2.example:hahaha@sexyfun.net>', 'hahaha@sexyfun.net'],
    ['<user@[192.0.2.1]>', 'user@[192.0.2.1]'],
    ['<user@[IPv6:2001:db8::1]>', 'user@[ipv6:2001:db8::1]'],
    ['<"a b"@x.example>', 'a b@x.example'],
    ['<>', ''],
    ['<Postmaster>', 'postmaster'],
  ];
  it.each(good)('accepts %s as %s', (input, want) => {
    const p = path(input);
    expect(isError(p)).toBe(false);
    if (!isError(p)) {
      expect(p.address).toBe(want);
      expect(p.end).toBe(input.length);
    }
  });
  const bad: [string, string][] = [
    ['a@b.example', 'no brackets'],
    ['<a@b.example', 'unclosed'],
    ['<a@>', 'empty domain'],
    ['<@b.example>', 'no local part'],
    ['<a..b@x.example>', 'empty atom'],
    ['<a@-x.example>', 'label starts with hyphen'],
    ['<a@x.example.>', 'trailing dot'],
    ['<a@[999.1.1.1]>', 'bad literal'],
    ['<"a\x01"@x.example>', 'control char in quotes'],
    ['<a b@x.example>', 'space in dot-string'],
    ['<a@x_y.example>', 'underscore in domain'],
    [`<${'a'.repeat(65)}@x.example>`, 'local part > 64'],
    ['<@r.example:a@x.example', 'route without close'],
    ['<\xc3\xa9@x.example>', 'UTF-8 without SMTPUTF8'],
  ];
  it.each(bad)('refuses %s (%s)', (input) => {
    expect(isError(path(input))).toBe(true);
  });
  it('takes UTF-8 when SMTPUTF8 was offered, and only valid UTF-8', () => {
    expect(isError(path('<\xc3\xa9@x.example>', { allowNull: false, allowPostmaster: false, utf8: true }))).toBe(false);
    expect(isError(path('<\xc3@x.example>', { allowNull: false, allowPostmaster: false, utf8: true }))).toBe(true);
  });
  it('refuses <> and <Postmaster> where they are not allowed', () => {
    expect(isError(path('<>', { allowNull: false, allowPostmaster: false, utf8: false }))).toBe(true);
    expect(isError(path('<postmaster>', { allowNull: false, allowPostmaster: false, utf8: false }))).toBe(true);
  });
  it('parses ESMTP parameters strictly', () => {
    const text = ' SIZE=100 BODY=8BITMIME SMTPUTF8';
    const ok = parseParams(B(text), 0, text.length, false);
    expect(ok).toEqual([{ key: 'SIZE', value: '100' }, { key: 'BODY', value: '8BITMIME' }, { key: 'SMTPUTF8', value: null }]);
    for (const s of ['  SIZE=1', ' SIZE=', ' SIZE=1 SIZE=2', ' -X=1', ' SIZE=a=b\x7f']) expect(isError(parseParams(B(s), 0, s.length, false))).toBe(true);
  });
  it('lists the forms a server may read (percent hack, bang path)', () => {
    const p = path('<hahaha%sexyfun.net@relay.example>');
    expect(!isError(p) && addressForms(p)).toContain('hahaha@sexyfun.net');
    const q = path('<sexyfun.net!hahaha@relay.example>');
    expect(!isError(q) && addressForms(q)).toContain('hahaha@sexyfun.net');
  });
});

describe('smtp policy helpers', () => {
  it('relayIpList: prefix anchored at the start, CIDR, v4-mapped IPv6 normalised', () => {
    const cfg = buildConfig(null, { protocol: 'smtp', relayIpList: ['192.168.150.', '10.0.0.0/8', '::ffff:172.16.1.', '2001:db8::/32'] }, { exec: 'true' });
    const rules = smtpPolicy(cfg.options).relayIp;
    expect(ipAllowed(rules, '192.168.150.9')).toBe(true);
    expect(ipAllowed(rules, '::ffff:192.168.150.9')).toBe(true);
    expect(ipAllowed(rules, '192.168.15.9')).toBe(false);
    expect(ipAllowed(rules, '1.192.168.150.9')).toBe(false);
    expect(ipAllowed(rules, '10.9.8.7')).toBe(true);
    expect(ipAllowed(rules, '::FFFF:10.9.8.7')).toBe(true);
    expect(ipAllowed(rules, '11.0.0.1')).toBe(false);
    expect(ipAllowed(rules, '172.16.1.4')).toBe(true);
    expect(ipAllowed(rules, '2001:db8::5')).toBe(true);
    expect(ipAllowed(rules, 'stdin')).toBe(false);
  });
  it('relayIpList: a bad entry is a configuration error', () => {
    for (const bad of ['10.0.0.0/33', 'example.org', '10.0.0.1/x', '']) {
      expect(() => buildConfig(null, { protocol: 'smtp', relayIpList: [bad] }, { exec: 'true' })).toThrow(/relayIpList/);
    }
  });
  it('blockBodyList: an invalid or non-linear regex is refused when the configuration is read', () => {
    expect(() => buildConfig(null, { protocol: 'smtp', blockBodyList: ['(a)\\1'] }, { exec: 'true' })).toThrow(/blockBodyList/);
    expect(() => buildConfig(null, { protocol: 'smtp', blockBodyList: ['('] }, { exec: 'true' })).toThrow(/blockBodyList/);
  });
  it('relayDomainList: anchored to the end at a label boundary', () => {
    const l = ['mydomain.org', 'gwolf.cx'];
    expect(domainListed(l, 'mydomain.org')).toBe(true);
    expect(domainListed(l, 'mail.mydomain.org')).toBe(true);
    expect(domainListed(l, 'evilmydomain.org')).toBe(false);
    expect(domainListed(l, 'mydomain.org.evil.example')).toBe(false);
  });
});

describe('smtp server replies', () => {
  it('reassembles multi-line replies across any split', () => {
    const text = B('250-a\r\n250-PIPELINING\r\n250 SIZE 10\r\n354 go\r\n');
    for (let i = 0; i <= text.length; i++) {
      const r = new ReplyReader();
      const got = [...r.feed(text.subarray(0, i)), ...r.feed(text.subarray(i))];
      expect(got.map((x) => x.code)).toEqual([250, 354]);
      expect(Buffer.concat(got.flatMap((x) => [...x.lines]))).toEqual(text);
    }
  });
  it('filters the EHLO reply: STARTTLS, unknown extensions and (on demand) CHUNKING out, SIZE lowered', () => {
    const lines = ['250-mx.example', '250-PIPELINING', '250-SIZE 10240000', '250-STARTTLS', '250-ETRN', '250-XCLIENT NAME', '250-CHUNKING', '250 STARTTLS'].map((l) => B(`${l}\r\n`));
    const f = filterEhlo(lines, { dropChunking: true, maxSize: 1048576 });
    expect(Buffer.concat(f.lines).toString()).toBe('250-mx.example\r\n250-PIPELINING\r\n250 SIZE 1048576\r\n');
    expect(f.caps.pipelining).toBe(true);
    expect(f.caps.chunking).toBe(false);
    const g = filterEhlo(lines, { dropChunking: false, maxSize: 0 });
    expect(Buffer.concat(g.lines).toString()).toBe('250-mx.example\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250 CHUNKING\r\n');
    expect(Buffer.concat(filterEhlo([B('250-mx\r\n'), B('250 STARTTLS\r\n')], { dropChunking: false, maxSize: 0 }).lines).toString()).toBe('250 mx\r\n');
  });
});

describe('smtp body scan', () => {
  const seed = compileLinear('blockBodyList', '^Content-Type: application.+\\.(PIF|EXE|VBS|COM|BAT|LNK|SCR)\\"', true);
  const run = (body: string, limit = 0) => {
    const s = new BodyScan([seed], limit);
    for (const l of body.split(/(?<=\n)/)) {
      const b = B(l);
      const ending = l.endsWith('\r\n') ? 'crlf' : l.endsWith('\n') ? 'lf' : 'none';
      const step = s.line(b, b.length - (ending === 'crlf' ? 2 : ending === 'lf' ? 1 : 0), ending);
      if (step.kind === 'end') return { end: true, poison: s.poison?.code ?? null, size: s.size };
    }
    return { end: false, poison: s.poison?.code ?? null, size: s.size };
  };
  const table: [string, string, { end: boolean; poison: string | null }][] = [
    ['clean message', 'Subject: hi\r\n\r\nbody\r\n.\r\n', { end: true, poison: null }],
    ['dot-stuffed line is not the end', 'a\r\n..\r\n.\r\n', { end: true, poison: null }],
    ['bare LF line', 'a\nb\r\n.\r\n', { end: true, poison: 'smuggling' }],
    ['<LF>.<LF> is not the end', 'a\r\n.\nMAIL FROM:<x@y.z>\r\n', { end: false, poison: 'smuggling' }],
    ['<LF>.<CRLF> is not the end', 'a\n.\r\nRCPT TO:<x@y.z>\r\n', { end: false, poison: 'smuggling' }],
    ['<CR>.<CR> inside a line', 'a\r.\rMAIL\r\n.\r\n', { end: true, poison: 'smuggling' }],
    ['NUL', 'a\0b\r\n.\r\n', { end: true, poison: 'smuggling' }],
    ['attachment, one line', 'Content-Type: application/octet-stream; name="x.exe"\r\n\r\n.\r\n', { end: true, poison: 'blocked_body' }],
    ['attachment, lower case', 'content-type: APPLICATION/x; name="Virus.Exe"\r\n.\r\n', { end: true, poison: 'blocked_body' }],
    ['attachment, folded header', 'Content-Type: application/octet-stream;\r\n\tname="x.scr"\r\nX: y\r\n\r\nb\r\n.\r\n', { end: true, poison: 'blocked_body' }],
    ['attachment, folded last header before the end', 'Content-Type: application/x;\r\n name="x.pif"\r\n.\r\n', { end: true, poison: 'blocked_body' }],
    ['attachment in a MIME part header, folded', 'Subject: x\r\n\r\n--b1\r\nContent-Type: application/x-msdownload;\r\n  name="a.bat"\r\n\r\nAAAA\r\n--b1--\r\n.\r\n', { end: true, poison: 'blocked_body' }],
    ['folded text outside headers is not unfolded', 'Subject: x\r\n\r\nContent-Type: application/x;\r\n name="a.bat"\r\n.\r\n', { end: true, poison: null }],
    ['text attachment passes', 'Content-Type: text/plain; name="a.txt"\r\n.\r\n', { end: true, poison: null }],
  ];
  it.each(table)('%s', (_n, body, want) => {
    expect(run(body)).toMatchObject(want);
  });
  it('counts size as RFC 1870 does (CRLF counted, stuffing dots not) and poisons past the limit', () => {
    expect(run('ab\r\n..c\r\n.\r\n')).toMatchObject({ size: 8 });
    expect(run('ab\r\n..c\r\n.\r\n', 8)).toMatchObject({ poison: null });
    expect(run('ab\r\n..c\r\n.\r\n', 7)).toMatchObject({ poison: 'too_large' });
  });
});
