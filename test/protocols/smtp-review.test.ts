import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { buildConfig } from '../../src/config.js';
import { BodyScan, MAX_UNFOLDED } from '../../src/protocols/smtp/body.js';
import { smtp } from '../../src/protocols/smtp/index.js';
import { ipAllowed, smtpPolicy } from '../../src/protocols/smtp/policy.js';
import { compileLinear } from '../../src/core/safe-regex.js';
import { decodedHeader } from '../../src/protocols/smtp/mime.js';
import { filterEhlo } from '../../src/protocols/smtp/replies.js';
import { Harness, replyCodes, SEED } from './smtp-harness.js';

/**
 * Regression tests from the adversarial review of the SMTP mode: each one
 * failed before its fix (see the comment on each).
 */

const EHLO = 'EHLO client.example\r\n';
const RCPT = 'RCPT TO:<bob@mydomain.org>\r\n';
const NO_BODY_POLICY = { ...SEED, maxMsgSize: 0, blockBodyList: [] };

const B = (s: string) => Buffer.from(s, 'latin1');

describe('smtp review: envelope', () => {
  // Before the fix, the reply to a pipelined MAIL the server refused reset
  // whatever transaction was current by then: the wrapper forgot the
  // sender the server held, and took a later MAIL (refused by the server as
  // nested) as the sender for its relay decision and its log.
  it.each([
    ['held', SEED],
    ['stream', NO_BODY_POLICY],
  ])('a late refusal of an earlier MAIL does not reset a later transaction (%s)', (_mode, config) => {
    const h = new Harness(config, { badMail: 'RET=BOGUS' }).send(EHLO);
    h.send('MAIL FROM:<a@x.example> RET=BOGUS\r\nRSET\r\nMAIL FROM:<spam@x.example>\r\n');
    h.send('MAIL FROM:<a@gwolf.cx>\r\nRCPT TO:<victim@elsewhere.example>\r\nDATA\r\n', 'Subject: relayed\r\n\r\nx\r\n.\r\n');
    // The server has spam@x.example's transaction: the wrapper's relay rule
    // must judge that sender, not a MAIL the server never took.
    expect(h.serverText).not.toContain('victim');
    expect(h.serverText).not.toContain('gwolf');
    expect(h.server.messages).toHaveLength(0);
    expect(h.refusals()[0]).toBe('bad_state');
  });

  it('a refused MAIL still ends its own transaction', () => {
    const h = new Harness(SEED, { badMail: 'RET=BOGUS' }).send(EHLO, 'MAIL FROM:<a@x.example> RET=BOGUS\r\n', RCPT, 'MAIL FROM:<a@x.example>\r\n', RCPT, 'DATA\r\n', 'hi\r\n.\r\n');
    expect(h.refusals()).toEqual(['bad_state']);
    expect(replyCodes(h.clientText)).toEqual(['220', '250', '501', '503', '250', '250', '354', '250']);
    expect(h.server.messages).toHaveLength(1);
  });

  // Postfix maps an SMTPUTF8 domain to ASCII with UTS #46 (ICU) for its
  // lookups and for any hop without SMTPUTF8: full-width letters and the
  // ideographic full stop are spammer.org to it. Before the fix, only the
  // raw UTF-8 spelling was compared with blockAddrList.
  it.each(['<x@ｓｐａｍｍｅｒ.org>', '<x@spammer。org>', '<ｈａｈａｈａ%ｓｅｘｙｆｕｎ.net@gwolf.cx>'.replace('ｈａｈａｈａ', 'hahaha'), '<hahaha@ＳＥＸＹＦＵＮ.ＮＥＴ>'])(
    'blockAddrList sees an SMTPUTF8 domain as the server reads it: %s',
    (addr) => {
      const h = new Harness(SEED).send(EHLO, Buffer.from(`MAIL FROM:${addr} SMTPUTF8\r\n`, 'utf8'));
      expect(h.refusals()).toEqual(['blocked_sender']);
      expect(h.serverText).not.toContain('MAIL');
    },
  );

  it('an SMTPUTF8 domain that is not blocked still passes', () => {
    const h = new Harness(SEED).send(EHLO, Buffer.from('MAIL FROM:<x@bücher.example> SMTPUTF8\r\n', 'utf8'));
    expect(h.refusals()).toEqual([]);
  });

  // Postfix's percent hack repeats while the domain is its own:
  // user%a%b@local -> user%a@b -> user@a. Before the fix, only the last % was tried.
  it('blockAddrList: the percent hack applied more than once', () => {
    const h = new Harness(SEED).send(EHLO, 'MAIL FROM:<hahaha%sexyfun.net%mydomain.org@gwolf.cx>\r\n');
    expect(h.refusals()).toEqual(['blocked_sender']);
  });
});

describe('smtp review: relayIpList', () => {
  const rules = (list: string[]) => smtpPolicy(buildConfig(null, { protocol: 'smtp', relayIpList: list }, { exec: 'true' }).options).relayIp;
  // The seed allows "specific addresses" in relayIpList. Read as a prefix,
  // 192.168.150.1 also let 192.168.150.10-19 and .100-199 relay (before the fix).
  it('a complete IPv4 address is that address, not a prefix of others', () => {
    const r = rules(['192.168.150.1', '10.1.']);
    expect(ipAllowed(r, '192.168.150.1')).toBe(true);
    expect(ipAllowed(r, '::ffff:192.168.150.1')).toBe(true);
    for (const other of ['192.168.150.12', '192.168.150.100', '192.168.150.199']) expect(ipAllowed(r, other)).toBe(false);
    // Prefixes keep the seed's meaning.
    expect(ipAllowed(r, '10.1.2.3')).toBe(true);
    expect(ipAllowed(r, '10.10.2.3')).toBe(false);
    expect(ipAllowed(rules(['192.168.150.']), '192.168.150.10')).toBe(true);
    expect(ipAllowed(rules(['192.168.150.']), '192.168.15.0')).toBe(false);
  });
});

describe('smtp review: memory', () => {
  // Before the fix every recipient the server took was kept for the log line
  // (which shows 20): with maxRcpt 0 a server without a recipient limit let a
  // client grow that list without bound.
  it('recipients kept for the log are bounded; the count stays exact', () => {
    const h = new Harness({}).send(EHLO, 'MAIL FROM:<a@client.example>\r\n', 'RCPT TO:<r@mydomain.org>\r\n'.repeat(3000), 'DATA\r\n', 'hi\r\n.\r\n');
    expect(h.notes).toEqual([expect.stringMatching(/^accepted from=<a@client\.example> nrcpt=3000 rcpt=(<r@mydomain\.org>,){19}<r@mydomain\.org>,\.\.\.\(\+2980\) size=4$/)]);
    const h2 = new Harness({}).send(EHLO, 'MAIL FROM:<a@client.example>\r\n', 'RCPT TO:<r@mydomain.org>\r\n'.repeat(3000));
    expect((h2.proto as unknown as { tx: { rcpts: unknown[] } }).tx.rcpts.length).toBeLessThanOrEqual(20);
  });
});

describe('smtp review: body', () => {
  const seedRule = compileLinear('blockBodyList', SEED.blockBodyList[0]!, true);
  const run = (body: string) => {
    const s = new BodyScan([seedRule], 0);
    const buf = B(body);
    let pos = 0;
    while (pos < buf.length) {
      const lf = buf.indexOf(10, pos);
      const line = buf.subarray(pos, lf + 1);
      pos = lf + 1;
      const crlf = line.length >= 2 && line[line.length - 2] === 13;
      if (s.line(line, crlf ? line.length - 2 : line.length - 1, crlf ? 'crlf' : 'lf').kind === 'end') break;
    }
    return s.poison?.code ?? null;
  };

  // Before the fix, continuation lines past MAX_UNFOLDED were dropped from the
  // unfolded header, so a long enough folded Content-Type hid its file name.
  it('a folded header too long to check whole is not let through', () => {
    // Short padding lines fill the unfolded header to within a few bytes of the limit, so the name does not fit.
    const pad = '\tp=1;\r\n'.repeat(Math.ceil(MAX_UNFOLDED / 5) + 2);
    expect(run(`Content-Type: application/octet-stream;\r\n${pad}\tname="x.exe"\r\n\r\nTVqQ\r\n.\r\n`)).not.toBeNull();
    // A long folded header that is not near the limit passes.
    expect(run(`To: ${Array.from({ length: 40 }, (_, i) => `u${i}@example.org`).join(',\r\n ')}\r\nSubject: many\r\n\r\nhi\r\n.\r\n`)).toBeNull();
  });

  // An attached message (message/rfc822) carries its own header: before the
  // fix it was read as part content, so its folded Content-Type was never unfolded.
  it('a folded Content-Type in the header of an attached message is caught', () => {
    const body =
      'Subject: fwd\r\nContent-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\nContent-Type: message/rfc822\r\n\r\n' +
      'Subject: inner\r\nContent-Type: application/octet-stream;\r\n\tname="invoice.exe"\r\n\r\nTVqQ\r\n--b--\r\n.\r\n';
    expect(run(body)).toBe('blocked_body');
    // Part content that is not a header: no unfolding, so no refusal for a long indented block.
    expect(run(`Subject: x\r\nContent-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\nContent-Type: text/x-python\r\n\r\nclass A:\r\n${'    x = 1\r\n'.repeat(MAX_UNFOLDED / 5)}--b--\r\n.\r\n`)).toBeNull();
    // Plain text in a part is still not unfolded into a header.
    expect(run('Subject: x\r\nContent-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nhello\r\n there\r\n--b--\r\n.\r\n')).toBeNull();
  });
});

describe('smtp review: encoded file names', () => {
  const seedRule = compileLinear('blockBodyList', SEED.blockBodyList[0]!, true);
  const run = (body: string) => {
    const s = new BodyScan([seedRule], 0);
    for (const l of body.split('\r\n').slice(0, -1)) {
      const b = B(`${l}\r\n`);
      if (s.line(b, b.length - 2, 'crlf').kind === 'end') break;
    }
    return s.poison?.code ?? null;
  };
  const part = (header: string) => `Subject: x\r\nContent-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\n${header}\r\n\r\nTVqQ\r\n--b--\r\n.\r\n`;
  // A mail reader shows all of these as x.exe; before the fix the seed's rule saw only the encoded text.
  it.each([
    ['RFC 2047 B', 'Content-Type: application/octet-stream; name="=?UTF-8?B?eC5leGU=?="'],
    ['RFC 2047 Q, folded', 'Content-Type: application/octet-stream;\r\n name="=?iso-8859-1?Q?x=2Eexe?="'],
    ['RFC 2047, two words', 'Content-Type: application/octet-stream; name="=?UTF-8?Q?x.e?= =?UTF-8?Q?xe?="'],
    ['RFC 2231 extended value', "Content-Type: application/octet-stream; name*=UTF-8''x%2Eexe"],
    ['RFC 2231 continuations, folded', 'Content-Type: application/octet-stream;\r\n\tname*0="x.";\r\n\tname*1="exe"'],
    ['RFC 2231 mixed sections', "Content-Type: application/octet-stream; name*0*=UTF-8''x%2E; name*1=\"ex\"; name*2*=e"],
  ])('%s is caught', (_n, header) => {
    expect(run(part(header))).toBe('blocked_body');
    expect(run(`${header}\r\n\r\nTVqQ\r\n.\r\n`)).toBe('blocked_body');
  });
  it.each([
    ['an encoded subject', 'Subject: =?UTF-8?B?aGVsbG8=?='],
    ['a text part with an encoded name', 'Content-Type: text/plain; name="=?UTF-8?B?YS50eHQ=?="'],
    ['a broken encoded word', 'Content-Type: application/octet-stream; name="=?UTF-8?X?eC5leGU=?="'],
    ['RFC 2231 for a PDF', "Content-Type: application/pdf; name*=UTF-8''report%2Epdf"],
  ])('%s passes', (_n, header) => {
    expect(run(part(header))).toBeNull();
  });
});

describe('smtp review: MIME decoding never throws and stays bounded', () => {
  it('decodedHeader on hostile headers', () => {
    const unit = fc.constantFrom(...'=?Bb Qq_*\';"%0a9F.x\\\t;'.split(''), '=?UTF-8?B?', '?=', 'name*0*=', "UTF-8''", '%2E');
    fc.assert(
      fc.property(fc.array(unit, { maxLength: 200 }), (parts) => {
        const text = `Content-Type: a/b; ${parts.join('')}`;
        const d = decodedHeader(text);
        if (d !== null) expect(d.length).toBeLessThanOrEqual(4 * text.length + 16);
      }),
      { numRuns: 1000 },
    );
  });
});

describe('smtp review: server side', () => {
  // Before the fix SmtpSession had no serverEnd(): an unfinished last reply
  // line from a server that then closed never reached the client.
  it('bytes of an unfinished reply are handed back when the server closes', () => {
    const cfg = buildConfig(null, { protocol: 'smtp' }, { exec: 'true' });
    const s = smtp.createSession({ clientAddress: '192.0.2.1', maxLineLength: cfg.options.maxLineLength }, cfg.options);
    expect(Buffer.concat(s.serverData!(B('220 hi\r\n')).toClient as Buffer[]).toString()).toBe('220 hi\r\n');
    expect(Buffer.concat(s.serverData!(B('421-going\r\n421 4.3.2 bye')).toClient as Buffer[]).toString()).toBe('');
    expect(Buffer.concat(s.serverEnd!() ?? []).toString()).toBe('421-going\r\n421 4.3.2 bye');
  });

  // Before the fix, a server that died before its greeting (a spawned
  // sendmail -bs that cannot start) or with replies owed left the client
  // with a silent close.
  it('a server gone before its greeting or with replies owed leaves the client a 421', () => {
    const cfg = buildConfig(null, { protocol: 'smtp' }, { exec: 'true' });
    const fresh = () => smtp.createSession({ clientAddress: '192.0.2.1', maxLineLength: cfg.options.maxLineLength }, cfg.options);
    expect(Buffer.concat(fresh().serverEnd!() ?? []).toString()).toMatch(/^421 4\.3\.2 /);
    const s = fresh();
    s.serverData!(B('220 hi\r\n'));
    expect(s.serverEnd!()).toBeNull();
    const t = fresh();
    t.serverData!(B('220 hi\r\n'));
    expect(t.clientLine(B('NOOP\r\n'), 4, 'crlf')).toMatchObject({ kind: 'forward' });
    expect(Buffer.concat(t.serverEnd!() ?? []).toString()).toMatch(/^421 4\.3\.2 /);
    // Held body: the server gives up while the wrapper holds the message (its command timeout).
    const h = new Harness({ maxMsgSize: 2048 }).send(EHLO, 'MAIL FROM:<a@client.example>\r\n', RCPT, 'DATA\r\n', 'Subject: x\r\n');
    expect(h.proto.state).toBe('data');
    expect(Buffer.concat(h.proto.serverEnd!() ?? []).toString()).toMatch(/^421 4\.3\.2 /);
  });
});

describe('smtp review: EHLO and size edges', () => {
  it('EHLO lines in other cases and spacings: STARTTLS never survives, known keywords are recognised', () => {
    const lines = ['250-mx.example', '250-starttls', '250-StartTLS ', '250-pipelining', '250-size 5000000', '250-AUTH=LOGIN PLAIN', '250-auth login PLAIN', '250 Chunking'].map((l) => B(`${l}\r\n`));
    const f = filterEhlo(lines, { dropChunking: true, maxSize: 1048576 });
    expect(Buffer.concat(f.lines).toString()).toBe('250-mx.example\r\n250-pipelining\r\n250-SIZE 1048576\r\n250 auth login PLAIN\r\n');
    expect(f.caps).toMatchObject({ pipelining: true, chunking: false });
    expect([...f.caps.auth]).toEqual(['LOGIN', 'PLAIN']);
    // A SIZE keyword followed by a tab is no SIZE line: taken out, ours announced instead.
    const g = filterEhlo([B('250-mx\r\n'), B('250 SIZE\t99\r\n')], { dropChunking: false, maxSize: 1000 });
    expect(Buffer.concat(g.lines).toString()).toBe('250-mx\r\n250 SIZE 1000\r\n');
  });

  it('SIZE= and the body at exactly maxMsgSize pass, one byte more is refused; stuffing dots do not count', () => {
    const cfg = { maxMsgSize: 1024 };
    // A message of exactly `total` bytes as RFC 1870 counts them, mostly dot-stuffed lines:
    // "..xx…\r\n" of k + 1 bytes on the wire counts k (the stuffing dot is not message data).
    const msgOf = (total: number) => {
      let out = '';
      let left = total;
      while (left > 200) {
        out += `..${'x'.repeat(200 - 3)}\r\n`;
        left -= 200;
      }
      return `${out}${'y'.repeat(left - 2)}\r\n.\r\n`;
    };
    const run = (bytes: number) => new Harness(cfg).send(EHLO, 'MAIL FROM:<a@client.example> SIZE=1024\r\n', RCPT, 'DATA\r\n', msgOf(bytes), 'QUIT\r\n');
    const ok = run(1024);
    expect(ok.refusals()).toEqual([]);
    expect(ok.server.messages).toHaveLength(1);
    expect(ok.notes[0]).toMatch(/ size=1024$/);
    const big = run(1025);
    expect(big.refusals()).toEqual(['too_large']);
    expect(big.server.messages).toHaveLength(0);
    expect(new Harness(cfg).send(EHLO, 'MAIL FROM:<a@client.example> SIZE=1025\r\n').refusals()).toEqual(['too_large']);
  });
});
