import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { buildConfig } from '../../src/config.js';
import { smtp } from '../../src/protocols/smtp/index.js';
import { MAX_PENDING } from '../../src/protocols/smtp/conversation.js';
import { Harness, replyCodes, SEED } from './smtp-harness.js';

/** SMTP session (state, verdict) tables through the mini shell (smtp-grammar.test.ts has the parsers). */

const EHLO = 'EHLO client.example\r\n';
const MAIL = 'MAIL FROM:<alice@client.example>\r\n';
const RCPT = 'RCPT TO:<bob@mydomain.org>\r\n';
const MSG = 'Subject: hi\r\n\r\n..leading dot\r\nbody\r\n.\r\n';

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

  // Review item: the line rule saw only complete lines, so `EH` before the
  // greeting and `LO x` after it reached the server as EHLO x.
  it('early talker: half a line before the greeting is refused at its first byte, nothing forwarded', () => {
    const late = (h: Harness) => h.deliver('220 fake.example ESMTP\r\n');
    let greeting = true;
    // The greeting is kept back until deliver(); replies after it flow.
    const slow = (s: Buffer) => (greeting ? ((greeting = false), []) : [s]);
    const h = new Harness({}, {}, slow).send('EH');
    expect(h.refusals()).toEqual(['early_talker']);
    expect(h.closed).toBe(true);
    late(h).send('LO x\r\n');
    expect(h.serverText).toBe('');
    expect(replyCodes(h.clientText)).toEqual(['554']);
    // The line rule alone (no clientData) lets the split line through: what the check stops.
    greeting = true;
    const lineOnly = new Harness({}, {}, slow);
    (lineOnly.proto as { clientData?: unknown }).clientData = undefined;
    late(lineOnly.send('EH')).send('LO x\r\n');
    expect(lineOnly.serverText).toBe('EHLO x\r\n');
  });

  it('property: any bytes before the greeting are refused (554, close); after it clientData says nothing', () => {
    const cfg = buildConfig(null, { protocol: 'smtp' }, { exec: 'true' });
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 1, maxLength: 64 }), (bytes) => {
        const s = smtp.createSession({ clientAddress: '192.0.2.7', maxLineLength: cfg.options.maxLineLength }, cfg.options);
        const v = s.clientData!(Buffer.from(bytes));
        expect(v).toMatchObject({ kind: 'refuse', code: 'early_talker', close: true });
        expect(v!.kind === 'refuse' && v!.reply!.toString()).toMatch(/^554 /);
        s.serverData!(Buffer.from('220 mx ESMTP\r\n'));
        expect(s.clientData!(Buffer.from(bytes))).toBeNull();
      }),
    );
    const h = new Harness().send(EHLO, MAIL, RCPT, 'DATA\r\n');
    expect(h.proto.clientData!(Buffer.from('x'))).toBeNull();
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
    const h = new Harness({ ...SEED, bareLineFeed: 'refuse' }).send(EHLO, MAIL, RCPT, 'DATA\r\n', evil, 'QUIT\r\n');
    expect(h.refusals()).toEqual(['smuggling']);
    expect(h.serverText).not.toContain('evil');
    expect(h.serverText).not.toContain('DATA');
    expect(replyCodes(h.clientText)).toEqual(['220', '250', '250', '250', '354', '550', '221']);
  });

  it('smuggling in stream mode: refused before the line is forwarded, session closed', () => {
    const h = new Harness({ bareLineFeed: 'refuse' }).send(EHLO, MAIL, RCPT, 'DATA\r\n', 'Subject: a\r\n\r\nx\n.\nMAIL FROM:<evil@x.example>\r\n');
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

  it('without PIPELINING offered, each BDAT holds the client after its chunk until its reply', () => {
    const h = new Harness({}, { ehlo: ['CHUNKING'] }).send(EHLO, MAIL, RCPT);
    expect(h.proto.clientLine(Buffer.from('BDAT 1\r\n'), 6, 'crlf')).toEqual({ kind: 'forward', raw: 1, holdAfterRaw: true });
    const h2 = new Harness({}, { ehlo: ['CHUNKING'] }).send(EHLO, MAIL, RCPT, 'BDAT 3\r\nabcBDAT 2 LAST\r\nde', 'QUIT\r\n');
    expect(replyCodes(h2.clientText)).toEqual(['220', '250', '250', '250', '250', '250', '221']);
    expect(h2.mostPending).toBeLessThanOrEqual(1);
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

  // Review item: a BDAT cannot be held before its chunk (the server answers
  // after the chunk), so BDAT 1 after BDAT 1 grew the queue past the cap.
  it.each([
    ['BDAT 1 chunks', 3 * MAX_PENDING, 'BDAT 0 LAST\r\nRSET\r\nRSET\r\n'],
    ['BDAT 0 LAST at the cap (its run ends at once)', MAX_PENDING, 'BDAT 0 LAST\r\nRSET\r\nRSET\r\n'],
  ])('BDAT past MAX_PENDING: held after its chunk, the queue stays bounded, everything completes (%s)', (_n, n, tail) => {
    const h = new Harness().send(EHLO, MAIL, RCPT);
    const chunks = Array.from({ length: n }, (_, i) => `BDAT 1\r\n${String.fromCharCode(97 + (i % 26))}`).join('');
    h.send(chunks + tail + 'QUIT\r\n');
    expect(h.refusals()).toEqual([]);
    expect(h.mostPending).toBeGreaterThanOrEqual(MAX_PENDING);
    expect(h.mostPending).toBeLessThanOrEqual(MAX_PENDING + 1);
    expect(h.serverText).toBe(EHLO + MAIL + RCPT + chunks + tail + 'QUIT\r\n');
    const codes = replyCodes(h.clientText);
    expect(codes).toHaveLength(4 + n + 3 + 1);
    expect(codes.slice(4).every((c, i, a) => (i === a.length - 1 ? c === '221' : c === '250'))).toBe(true);
    expect(h.notes).toEqual([`accepted from=<alice@client.example> nrcpt=1 rcpt=<bob@mydomain.org> size=${n}`]);
  });

  it('BDAT asks to hold after its chunk only at the cap', () => {
    const h = new Harness().send(EHLO, MAIL, RCPT);
    const queue = (h.proto as unknown as { pending: unknown[] }).pending;
    const bdat = Buffer.from('BDAT 1\r\n');
    expect(h.proto.clientLine(bdat, 6, 'crlf')).toEqual({ kind: 'forward', raw: 1 });
    while (queue.length < MAX_PENDING) queue.push({ kind: 'other', release: false });
    expect(h.proto.clientLine(bdat, 6, 'crlf')).toEqual({ kind: 'forward', raw: 1, holdAfterRaw: true });
    expect(queue.at(-1)).toMatchObject({ kind: 'bdat', release: true });
  });

  it('the wrapper\'s own replies are SMTP 421s', () => {
    const h = new Harness();
    for (const k of ['unavailable', 'timeout', 'too_many_violations', 'shutdown'] as const) expect(h.proto.reply(k)!.toString()).toMatch(/^421 /);
  });
});
