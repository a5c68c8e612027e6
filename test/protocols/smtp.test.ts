import { describe, expect, it } from 'vitest';
import { buildConfig } from '../../src/config.js';
import { parsePath, parseParams, isError, addressForms } from '../../src/protocols/smtp/path.js';
import { domainListed, ipAllowed, smtpPolicy } from '../../src/protocols/smtp/policy.js';
import { filterEhlo, ReplyReader } from '../../src/protocols/smtp/replies.js';
import { BodyScan } from '../../src/protocols/smtp/body.js';
import { compileLinear } from '../../src/core/safe-regex.js';
import { MAX_PENDING } from '../../src/protocols/smtp/conversation.js';
import { Harness, replyCodes } from './smtp-harness.js';

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

const EHLO = 'EHLO client.example\r\n';
const MAIL = 'MAIL FROM:<alice@client.example>\r\n';
const RCPT = 'RCPT TO:<bob@mydomain.org>\r\n';
const MSG = 'Subject: hi\r\n\r\n..leading dot\r\nbody\r\n.\r\n';
const SEED = {
  maxMsgSize: 1048576,
  blockAddrList: ['hahaha@sexyfun.net', '@spammer.org'],
  blockBodyList: ['^Content-Type: application.+\\.(PIF|EXE|VBS|COM|BAT|LNK|SCR)\\"'],
  relayIpList: ['192.168.150.', '192.168.160.'],
  relayDomainList: ['mydomain.org', 'gwolf.cx'],
  maxRcpt: 0,
};

describe('smtp session (state, verdict) tables', () => {
  it('relays a clean message in stream mode byte for byte', () => {
    const h = new Harness().send(EHLO, MAIL, RCPT, 'DATA\r\n', MSG, 'QUIT\r\n');
    expect(h.refusals()).toEqual([]);
    expect(h.server.messages.map(String)).toEqual(['Subject: hi\r\n\r\n..leading dot\r\nbody\r\n']);
    expect(h.serverText).toBe(EHLO + MAIL + RCPT + 'DATA\r\n' + MSG + 'QUIT\r\n');
    expect(replyCodes(h.clientText)).toEqual(['220', '250', '250', '250', '354', '250', '221']);
    expect(h.clientText).not.toMatch(/STARTTLS|ETRN/);
    expect(h.notes).toEqual(['accepted from=<alice@client.example> nrcpt=1 rcpt=<bob@mydomain.org> size=35']);
  });

  it('holds the body under the seed policy, then sends DATA and the exact bytes', () => {
    const h = new Harness(SEED).send(EHLO, MAIL, RCPT, 'DATA\r\n', MSG, 'QUIT\r\n');
    expect(h.refusals()).toEqual([]);
    expect(h.serverText).toBe(EHLO + MAIL + RCPT + 'DATA\r\n' + MSG + 'QUIT\r\n');
    expect(replyCodes(h.clientText)).toEqual(['220', '250', '250', '250', '354', '250', '221']);
    expect(h.clientText).toContain('250-SIZE 1048576\r\n');
    expect(h.clientText).not.toContain('CHUNKING');
    expect(h.notes).toHaveLength(1);
  });

  const hostile: [string, Record<string, unknown>, string[], string[], string][] = [
    // name, config, client input, refusal codes, what the server must NOT have seen
    ['blocked sender', SEED, [EHLO, 'MAIL FROM:<hahaha@sexyfun.net>\r\n'], ['blocked_sender'], 'MAIL'],
    ['blocked sender, upper case', SEED, [EHLO, 'MAIL FROM:<HaHaHa@SexyFun.NET>\r\n'], ['blocked_sender'], 'MAIL'],
    ['blocked sender, quoted', SEED, [EHLO, 'MAIL FROM:<"hahaha"@sexyfun.net>\r\n'], ['blocked_sender'], 'MAIL'],
    ['blocked sender, quoted-pairs', SEED, [EHLO, 'MAIL FROM:<"h\\aha\\ha"@sexyfun.net>\r\n'], ['blocked_sender'], 'MAIL'],
    ['blocked sender, source route', SEED, [EHLO, 'MAIL FROM:<@mx.gwolf.cx:hahaha@sexyfun.net>\r\n'], ['blocked_sender'], 'MAIL'],
    ['blocked sender, percent hack', SEED, [EHLO, 'MAIL FROM:<hahaha%sexyfun.net@gwolf.cx>\r\n'], ['blocked_sender'], 'MAIL'],
    ['blocked domain', SEED, [EHLO, 'MAIL FROM:<x@spammer.org>\r\n'], ['blocked_sender'], 'MAIL'],
    ['relay from outside', SEED, [EHLO, MAIL, 'RCPT TO:<victim@elsewhere.example>\r\n'], ['relay_denied'], 'RCPT'],
    ['relay via percent hack', SEED, [EHLO, MAIL, 'RCPT TO:<victim%elsewhere.example@mydomain.org>\r\n'], ['relay_denied'], 'RCPT'],
    ['relay via lookalike domain', SEED, [EHLO, MAIL, 'RCPT TO:<victim@evilmydomain.org>\r\n'], ['relay_denied'], 'RCPT'],
    ['oversize SIZE=', SEED, [EHLO, 'MAIL FROM:<a@b.example> SIZE=2000000\r\n'], ['too_large'], 'MAIL'],
    ['unknown parameter (555)', {}, [EHLO, 'MAIL FROM:<a@b.example> XYZ=1\r\n'], ['not_supported'], 'MAIL'],
    ['malformed parameter (501)', {}, [EHLO, 'MAIL FROM:<a@b.example> SIZE=12x\r\n'], ['bad_argument'], 'MAIL'],
    ['source-routed path without closing', {}, [EHLO, 'MAIL FROM:<@a.example:b@c.example\r\n'], ['bad_argument'], 'MAIL'],
    ['STARTTLS', {}, [EHLO, 'STARTTLS\r\n'], ['not_supported'], 'STARTTLS'],
    ['MAIL before EHLO', {}, [MAIL], ['bad_state'], 'MAIL'],
    ['RCPT before MAIL', {}, [EHLO, RCPT], ['bad_state'], 'RCPT'],
    ['DATA before RCPT', {}, [EHLO, MAIL, 'DATA\r\n'], ['bad_state'], 'DATA'],
    ['bare LF command', {}, [EHLO, 'NOOP\n'], ['bare_lf'], 'NOOP'],
    ['NUL in command', {}, [EHLO, 'NO\0OP\r\n'], ['nul_byte'], 'NO'],
    ['unknown verb', {}, [EHLO, 'XEXPS foo\r\n'], ['unknown_command'], 'XEXPS'],
    ['overlong command', {}, [EHLO, `NOOP ${'x'.repeat(600)}\r\n`], ['line_too_long'], 'NOOP'],
    ['BDAT without CHUNKING (policy took it out)', SEED, [EHLO, MAIL, RCPT, 'BDAT 3 LAST\r\n'], ['not_supported'], 'BDAT'],
    ['AUTH with a mechanism not offered', {}, [EHLO, 'AUTH CRAM-MD5\r\n'], ['bad_argument'], 'AUTH'],
  ];
  it.each(hostile)('%s', (_name, config, input, codes, unseen) => {
    const h = new Harness(config);
    h.send(...input);
    expect(h.refusals()).toEqual(codes);
    if (unseen) expect(h.serverText).not.toContain(unseen + (unseen === 'NO' ? '\0' : ''));
    // Every refusal was answered with an SMTP reply.
    expect(replyCodes(h.clientText).length).toBe(1 + input.length);
  });

  it('early talker: a line before the greeting is refused and the session closed', () => {
    const h = new Harness({}, {}, () => []); // the greeting never comes
    h.send('EHLO early\r\n');
    expect(h.refusals()).toEqual(['early_talker']);
    expect(h.closed).toBe(true);
    expect(h.serverText).toBe('');
    expect(replyCodes(h.clientText)).toEqual(['554']);
  });

  it('relay allowed: client in relayIpList, or sender domain listed (seed), not with relayStrict', () => {
    const out = 'RCPT TO:<x@elsewhere.example>\r\n';
    expect(new Harness(SEED, {}, undefined, '192.168.150.20').send(EHLO, MAIL, out).refusals()).toEqual([]);
    expect(new Harness(SEED, {}, undefined, '::ffff:192.168.160.3').send(EHLO, MAIL, out).refusals()).toEqual([]);
    expect(new Harness(SEED).send(EHLO, 'MAIL FROM:<a@gwolf.cx>\r\n', out).refusals()).toEqual([]);
    expect(new Harness({ ...SEED, relayStrict: true }).send(EHLO, 'MAIL FROM:<a@gwolf.cx>\r\n', out).refusals()).toEqual(['relay_denied']);
    expect(new Harness(SEED).send(EHLO, MAIL, 'RCPT TO:<postmaster>\r\n').refusals()).toEqual([]);
  });

  it('maxRcpt counts recipients in the session; beyond it 452', () => {
    const h = new Harness({ maxRcpt: 2 }).send(EHLO, MAIL, RCPT, RCPT, RCPT, 'DATA\r\n', MSG, MAIL, RCPT);
    expect(h.refusals()).toEqual(['too_many_recipients', 'too_many_recipients']);
    expect(replyCodes(h.clientText).filter((c) => c === '452')).toHaveLength(2);
    expect(h.server.messages).toHaveLength(1);
  });

  it('a blocked body is never accepted: 550 to the client, no DATA at the server, session usable', () => {
    const bad = 'Content-Type: application/octet-stream;\r\n\tname="virus.EXE"\r\n\r\nTVqQ\r\n.\r\n';
    const h = new Harness(SEED).send(EHLO, MAIL, RCPT, 'DATA\r\n', bad, MAIL, RCPT, 'DATA\r\n', MSG);
    expect(h.refusals()).toEqual(['blocked_body']);
    expect(h.serverText).toBe(EHLO + MAIL + RCPT + 'RSET\r\n' + MAIL + RCPT + 'DATA\r\n' + MSG);
    expect(replyCodes(h.clientText)).toEqual(['220', '250', '250', '250', '354', '550', '250', '250', '354', '250']);
    expect(h.server.messages).toHaveLength(1);
  });

  it('an oversize message is never accepted (552), with and without SIZE=', () => {
    const big = `${'x'.repeat(900)}\r\n`.repeat(1200) + '.\r\n';
    const h = new Harness(SEED).send(EHLO, MAIL, RCPT, 'DATA\r\n', big, 'MAIL FROM:<a@b.example> SIZE=1048577\r\n', MAIL, 'QUIT\r\n');
    expect(h.refusals()).toEqual(['too_large', 'too_large']);
    expect(h.server.messages).toHaveLength(0);
    expect(h.serverText).not.toContain('DATA');
    expect(replyCodes(h.clientText)).toEqual(['220', '250', '250', '250', '354', '552', '552', '250', '221']);
  });

  it('held mode: no recipient accepted → DATA answered 554 by the wrapper, pipelined body read as commands', () => {
    const h = new Harness(SEED, { badRcpt: 'nobody' }).send(EHLO);
    h.send('MAIL FROM:<a@client.example>\r\nRCPT TO:<nobody@mydomain.org>\r\nDATA\r\nSubject: x\r\n.\r\n');
    expect(replyCodes(h.clientText)).toEqual(['220', '250', '250', '550', '554', '500', '500']);
    expect(h.serverText).not.toContain('DATA');
    expect(h.refusals()).toEqual(['unknown_command', 'unknown_command']);
  });

  it('held mode: the server refuses our DATA → its answer goes to the client\'s end of data, RSET clears its transaction', () => {
    const h = new Harness(SEED, { refuseData: true }).send(EHLO, MAIL, RCPT, 'DATA\r\n', MSG, 'NOOP\r\n');
    expect(replyCodes(h.clientText)).toEqual(['220', '250', '250', '250', '354', '451', '250']);
    expect(h.serverText).toBe(EHLO + MAIL + RCPT + 'DATA\r\nRSET\r\nNOOP\r\n');
    expect(h.notes).toEqual([]);
  });

  it('smuggling in held mode: the whole message, smuggled commands included, is refused', () => {
    const evil = 'Subject: a\r\n\r\nx\n.\nMAIL FROM:<evil@x.example>\r\nRCPT TO:<v@mydomain.org>\r\nDATA\r\nsmuggled\r\n.\r\n';
    const h = new Harness(SEED).send(EHLO, MAIL, RCPT, 'DATA\r\n', evil, 'QUIT\r\n');
    expect(h.refusals()).toEqual(['smuggling']);
    expect(h.serverText).not.toContain('evil');
    expect(h.serverText).not.toContain('DATA');
    expect(replyCodes(h.clientText)).toEqual(['220', '250', '250', '250', '354', '550', '221']);
  });

  it('smuggling in stream mode: refused before the line is forwarded, session closed', () => {
    const h = new Harness().send(EHLO, MAIL, RCPT, 'DATA\r\n', 'Subject: a\r\n\r\nx\n.\nMAIL FROM:<evil@x.example>\r\n');
    expect(h.refusals()).toEqual(['smuggling']);
    expect(h.closed).toBe(true);
    expect(h.serverText.endsWith('DATA\r\nSubject: a\r\n\r\n')).toBe(true);
    expect(h.server.messages).toHaveLength(0);
  });

  it('overlong text line: limit 998 in DATA; in held mode the message is refused and the session goes on', () => {
    const ok = `${'y'.repeat(998)}\r\n.\r\n`;
    expect(new Harness(SEED).send(EHLO, MAIL, RCPT, 'DATA\r\n', ok).server.messages).toHaveLength(1);
    const h = new Harness(SEED).send(EHLO, MAIL, RCPT, 'DATA\r\n', `${'y'.repeat(999)}\r\n.\r\n`, 'NOOP\r\n');
    expect(h.refusals()).toEqual(['line_too_long']);
    expect(h.server.messages).toHaveLength(0);
    expect(replyCodes(h.clientText).slice(-2)).toEqual(['500', '250']);
  });

  it('pipelining: refusals wait their turn behind pending replies', () => {
    const h = new Harness(SEED).send(EHLO);
    h.send(MAIL + 'RCPT TO:<x@elsewhere.example>\r\n' + RCPT + 'DATA\r\n' + MSG);
    expect(h.refusals()).toEqual(['relay_denied']);
    expect(replyCodes(h.clientText)).toEqual(['220', '250', '250', '550', '250', '354', '250']);
    expect(h.server.messages).toHaveLength(1);
  });

  it('without PIPELINING offered, pipelined commands reach the server one at a time', () => {
    const h = new Harness({}, { ehlo: ['SIZE 1000'] }).send(EHLO);
    const before = h.server.received.length;
    h.send(MAIL + RCPT + 'DATA\r\n' + MSG);
    expect(h.serverText.slice(before)).toBe(MAIL + RCPT + 'DATA\r\n' + MSG);
    expect(replyCodes(h.clientText)).toEqual(['220', '250', '250', '250', '354', '250']);
  });

  it('DATA pipelined behind a refused MAIL: the body is read as commands, never as data', () => {
    const h = new Harness(SEED).send(EHLO, 'MAIL FROM:<hahaha@sexyfun.net>\r\nRCPT TO:<a@mydomain.org>\r\nDATA\r\nQUIT\r\n');
    expect(h.refusals()).toEqual(['blocked_sender', 'bad_state', 'bad_state']);
    expect(h.serverText).toBe(EHLO + 'QUIT\r\n');
  });

  it('BDAT chunks are counted, not parsed, when no body policy needs the body', () => {
    const chunk = 'Subject: x\r\n\r\nQUIT\r\nRSET\r\n';
    const h = new Harness().send(EHLO, MAIL, RCPT, `BDAT ${chunk.length} LAST\r\n${chunk}`, 'QUIT\r\n');
    expect(h.refusals()).toEqual([]);
    expect(h.serverText).toBe(EHLO + MAIL + RCPT + `BDAT ${chunk.length} LAST\r\n` + chunk + 'QUIT\r\n');
    expect(h.notes).toHaveLength(1);
  });

  it('AUTH: continuation lines are base64 or *, a bad one cancels the exchange', () => {
    const good = new Harness().send(EHLO, 'AUTH PLAIN\r\n', 'AGFsaWNlAHNlY3JldA==\r\n', MAIL);
    expect(good.refusals()).toEqual([]);
    expect(replyCodes(good.clientText)).toEqual(['220', '250', '334', '235', '250']);
    const bad = new Harness().send(EHLO, 'AUTH LOGIN\r\n', 'not base64!\r\n', 'NOOP\r\n');
    expect(bad.refusals()).toEqual(['bad_argument']);
    expect(bad.serverText).toBe(EHLO + 'AUTH LOGIN\r\n*\r\nNOOP\r\n');
    expect(replyCodes(bad.clientText)).toEqual(['220', '250', '334', '501', '250']);
  });

  it('limits are configurable and each one is hit: bodyHoldLimit, textLineLength, maxLineLength', () => {
    const held = new Harness({ blockBodyList: ['^X-Never:'], bodyHoldLimit: 1024 }).send(EHLO, MAIL, RCPT, 'DATA\r\n', `${'a'.repeat(100)}\r\n`.repeat(11) + '.\r\n');
    expect(held.refusals()).toEqual(['too_large']);
    expect(held.server.messages).toHaveLength(0);
    expect(held.clientText).toContain('250-SIZE 1024\r\n');
    expect(new Harness({ blockBodyList: ['^X-Never:'], bodyHoldLimit: 1024 }).send(EHLO, 'MAIL FROM:<a@b.example> SIZE=1025\r\n').refusals()).toEqual(['too_large']);
    const text = new Harness({ textLineLength: 100 }).send(EHLO, MAIL, RCPT, 'DATA\r\n', `${'a'.repeat(101)}\r\n`);
    expect(text.refusals()).toEqual(['line_too_long']);
    expect(text.closed).toBe(true);
    const cmd = new Harness({ maxLineLength: 100 }).send(EHLO, `NOOP ${'a'.repeat(95)}\r\n`, `NOOP ${'a'.repeat(96)}\r\n`);
    expect(cmd.refusals()).toEqual(['line_too_long']);
    expect(replyCodes(cmd.clientText)).toEqual(['220', '250', '250', '500']);
  });

  it('a pipelining client that never waits is read one command at a time past MAX_PENDING', () => {
    for (const rcpt of ['RCPT TO:<b@mydomain.org>\r\n', 'RCPT TO:<x@elsewhere.example>\r\n']) {
      const h = new Harness(SEED).send(EHLO);
      const queue = (h.proto as unknown as { pending: unknown[] }).pending;
      let most = 0;
      const orig = h.proto.serverData!.bind(h.proto);
      h.proto.serverData = (c: Buffer) => {
        most = Math.max(most, queue.length);
        return orig(c);
      };
      h.send(MAIL + rcpt.repeat(3 * MAX_PENDING) + 'QUIT\r\n');
      expect(most).toBeGreaterThan(MAX_PENDING / 2);
      expect(most).toBeLessThanOrEqual(MAX_PENDING + 1);
      expect(replyCodes(h.clientText)).toHaveLength(2 + 1 + 3 * MAX_PENDING + 1);
      expect(replyCodes(h.clientText).at(-1)).toBe('221');
    }
  });

  it('the wrapper\'s own replies are SMTP 421s', () => {
    const h = new Harness();
    for (const k of ['unavailable', 'timeout', 'too_many_violations', 'shutdown'] as const) expect(h.proto.reply(k)!.toString()).toMatch(/^421 /);
  });
});
