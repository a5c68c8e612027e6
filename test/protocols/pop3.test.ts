import { describe, expect, it } from 'vitest';
import { COMMANDS, isBase64, splitArgs } from '../../src/protocols/pop3/commands.js';
import { pop3 } from '../../src/protocols/pop3/index.js';
import { AUTH_FAILED, MAX_PENDING } from '../../src/protocols/pop3/session.js';
import { pop3Options, run, SCENARIOS, type Step } from './pop3.scenarios.js';

const GREET: Step = ['s', '+OK ready\r\n'];
const LOGGED_IN: Step[] = [GREET, ['c', 'USER alice\r\n'], ['s', '+OK\r\n'], ['c', 'PASS secret\r\n'], ['s', '+OK Logged in.\r\n']];
const IN_SASL: Step[] = [GREET, ['c', 'AUTH PLAIN\r\n'], ['s', '+ \r\n']];
const AFTER_USER: Step[] = [GREET, ['c', 'USER alice\r\n'], ['s', '+OK\r\n']];

/** The verdict for one more client line after the setup steps. */
function verdictAfter(setup: Step[], line: string): string {
  const d = run(setup);
  const before = d.verdicts.length;
  d.fromClient(line);
  const v = d.verdicts.slice(before);
  expect(v.length).toBe(1);
  return v[0]!;
}

describe('pop3 command table: (state, line) → verdict', () => {
  const cases: Array<[string, Step[], string, string]> = [
    ['authorization', [GREET], 'USER alice\r\n', 'forward+hold'],
    ['authorization', [GREET], 'user alice\r\n', 'forward+hold'],
    ['authorization', [GREET], 'USER\r\n', 'bad_argument'],
    ['authorization', [GREET], 'USER  alice\r\n', 'bad_argument'],
    ['authorization', [GREET], 'USER alice \r\n', 'bad_argument'],
    ['authorization', [GREET], 'USER a b\r\n', 'bad_argument'],
    ['authorization', [GREET], 'USER al\x01ice\r\n', 'bad_argument'],
    ['authorization', [GREET], 'PASS secret\r\n', 'bad_state'],
    ['after USER', AFTER_USER, 'PASS secret with spaces\r\n', 'forward+hold'],
    ['after USER', AFTER_USER, 'PASS\r\n', 'bad_argument'],
    ['after USER', AFTER_USER, 'PASS \r\n', 'bad_argument'],
    ['after USER', AFTER_USER, 'PASS a\tb\r\n', 'bad_argument'],
    ['authorization', [GREET], 'APOP alice c4c9334bac560ecc979e58001b3e22fb\r\n', 'forward+hold'],
    ['authorization', [GREET], 'APOP alice c4c9334bac560ecc979e58001b3e22f\r\n', 'bad_argument'],
    ['authorization', [GREET], 'APOP alice c4c9334bac560ecc979e58001b3e22fg\r\n', 'bad_argument'],
    ['authorization', [GREET], 'AUTH PLAIN\r\n', 'forward+hold'],
    ['authorization', [GREET], 'AUTH PLAIN AGFsaWNlAHNlY3JldA==\r\n', 'forward+hold'],
    ['authorization', [GREET], 'AUTH PLAIN =\r\n', 'forward+hold'],
    ['authorization', [GREET], 'AUTH\r\n', 'forward+hold'],
    ['authorization', [GREET], 'AUTH PLAIN AGFsaWNl=AHNl\r\n', 'bad_argument'],
    ['authorization', [GREET], 'AUTH PL@IN\r\n', 'bad_argument'],
    ['authorization', [GREET], 'AUTH ABCDEFGHIJKLMNOPQRSTU\r\n', 'bad_argument'],
    ['authorization', [GREET], 'AUTH PLAIN AAAA BBBB\r\n', 'bad_argument'],
    ['authorization', [GREET], 'STAT\r\n', 'bad_state'],
    ['authorization', [GREET], 'RETR 1\r\n', 'bad_state'],
    ['authorization', [GREET], 'CAPA\r\n', 'forward'],
    ['authorization', [GREET], 'QUIT\r\n', 'forward'],
    ['authorization', [GREET], 'STLS\r\n', 'not_supported'],
    ['authorization', [GREET], 'XCLIENT ADDR=1.2.3.4\r\n', 'unknown_command'],
    ['authorization', [GREET], 'STATUS\r\n', 'unknown_command'],
    ['authorization', [GREET], '\r\n', 'unknown_command'],
    ['transaction', LOGGED_IN, 'STAT\r\n', 'forward'],
    ['transaction', LOGGED_IN, 'STAT 1\r\n', 'bad_argument'],
    ['transaction', LOGGED_IN, 'LIST\r\n', 'forward'],
    ['transaction', LOGGED_IN, 'LIST 2\r\n', 'forward'],
    ['transaction', LOGGED_IN, 'LIST 2 3\r\n', 'bad_argument'],
    ['transaction', LOGGED_IN, 'LIST 0\r\n', 'bad_argument'],
    ['transaction', LOGGED_IN, 'RETR 1\r\n', 'forward'],
    ['transaction', LOGGED_IN, 'RETR\r\n', 'bad_argument'],
    ['transaction', LOGGED_IN, 'RETR 01\r\n', 'bad_argument'],
    ['transaction', LOGGED_IN, 'RETR -1\r\n', 'bad_argument'],
    ['transaction', LOGGED_IN, 'RETR 12345678901\r\n', 'bad_argument'],
    ['transaction', LOGGED_IN, 'DELE 1\r\n', 'forward'],
    ['transaction', LOGGED_IN, 'DELE x\r\n', 'bad_argument'],
    ['transaction', LOGGED_IN, 'NOOP\r\n', 'forward'],
    ['transaction', LOGGED_IN, 'RSET\r\n', 'forward'],
    ['transaction', LOGGED_IN, 'TOP 1 0\r\n', 'forward'],
    ['transaction', LOGGED_IN, 'TOP 1 00\r\n', 'bad_argument'],
    ['transaction', LOGGED_IN, 'TOP 1\r\n', 'bad_argument'],
    ['transaction', LOGGED_IN, 'UIDL\r\n', 'forward'],
    ['transaction', LOGGED_IN, 'UIDL 3\r\n', 'forward'],
    ['transaction', LOGGED_IN, 'CAPA\r\n', 'forward'],
    ['transaction', LOGGED_IN, 'USER bob\r\n', 'bad_state'],
    ['transaction', LOGGED_IN, 'PASS x\r\n', 'bad_state'],
    ['transaction', LOGGED_IN, 'AUTH PLAIN\r\n', 'bad_state'],
    ['transaction', LOGGED_IN, 'STLS\r\n', 'not_supported'],
    ['transaction', LOGGED_IN, 'QUIT\r\n', 'forward'],
    ['transaction', LOGGED_IN, 'STAT\n', 'bare_lf'],
    ['transaction', LOGGED_IN, 'ST\rAT\r\n', 'bare_cr'],
    ['transaction', LOGGED_IN, 'ST\0AT\r\n', 'nul_byte'],
    ['update', [...LOGGED_IN, ['c', 'QUIT\r\n']], 'STAT\r\n', 'bad_state'],
    ['sasl', IN_SASL, 'AGFsaWNlAHNlY3JldA==\r\n', 'forward+hold'],
    ['sasl', IN_SASL, '*\r\n', 'forward+hold'],
    ['sasl', IN_SASL, '\r\n', 'forward+hold'],
    ['sasl', IN_SASL, 'STAT 1\r\n', 'bad_argument+hold'],
    ['sasl', IN_SASL, 'STAT\r\n', 'forward+hold'], // four base64 letters: the server judges it
    ['sasl', IN_SASL, 'AGFs\0aWNl\r\n', 'nul_byte+hold'],
  ];
  it.each(cases)('%s: %j → %s', (_state, setup, line, want) => {
    expect(verdictAfter(setup, line)).toBe(want);
  });

  it('has every RFC 1939/2449/5034 verb and nothing else', () => {
    expect([...COMMANDS.keys()].sort()).toEqual(['APOP', 'AUTH', 'CAPA', 'DELE', 'LIST', 'NOOP', 'PASS', 'QUIT', 'RETR', 'RSET', 'STAT', 'STLS', 'TOP', 'UIDL', 'USER'].sort());
  });

  it('argument helpers: splitArgs and isBase64', () => {
    const b = (s: string) => Buffer.from(s, 'latin1');
    expect(splitArgs(b(' a bc'), 0, 5)).toEqual([
      [1, 2],
      [3, 5],
    ]);
    expect(splitArgs(b('  a'), 0, 3)).toBeNull();
    expect(splitArgs(b(' \xe9'), 0, 2)).toBeNull();
    for (const ok of ['AAAA', 'AAA=', 'AA==', 'YWJjZA==']) expect(isBase64(b(ok), 0, ok.length)).toBe(true);
    for (const bad of ['', 'A', 'AAA', 'A===', '=AAA', 'AA=A', 'AA A', 'AAA-']) expect(isBase64(b(bad), 0, bad.length)).toBe(false);
  });
});

describe('pop3 sessions (client and server together)', () => {
  it.each(SCENARIOS.map((s) => [s.name, s] as const))('%s', (_n, s) => {
    const d = run(s.steps);
    expect(d.verdicts).toEqual(s.verdicts);
    expect(d.server).toBe(s.server);
    expect(d.client).toBe(s.client);
    expect(d.proto.state).toBe(s.state);
    expect(d.closed).toBe(s.closed ?? false);
  });

  it.each(SCENARIOS.map((s) => [s.name, s] as const))('every split point of every step gives the same result: %s', (_n, s) => {
    const whole = run(s.steps);
    s.steps.forEach(([, bytes], at) => {
      for (let k = 1; k < bytes.length; k++) {
        const d = run(s.steps, (i, b) => (i === at ? [b.slice(0, k), b.slice(k)] : [b]));
        expect({ at, k, v: d.verdicts, s: d.server, c: d.client, st: d.proto.state }).toEqual({ at, k, v: whole.verdicts, s: whole.server, c: whole.client, st: whole.proto.state });
      }
    });
  });

  it('byte by byte from both sides gives the same result', () => {
    for (const s of SCENARIOS) {
      const d = run(s.steps, (_i, b) => [...b]);
      expect(d.client).toBe(s.client);
      expect(d.server).toBe(s.server);
      expect(d.verdicts).toEqual(s.verdicts);
    }
  });
});

describe('pop3 limits', () => {
  it('line limit: 255 octets with CRLF pass, 256 are refused (RFC 2449), the line is not forwarded', () => {
    const d = run(LOGGED_IN);
    d.fromClient(`NOOP ${'x'.repeat(248)}\r\n`); // 253 + CRLF: reaches the table, bad argument
    d.fromClient(`NOOP ${'x'.repeat(249)}\r\n`); // 254 + CRLF: too long
    expect(d.verdicts.slice(-2)).toEqual(['bad_argument', 'line_too_long']);
    expect(d.server).not.toContain('xxx');
    expect(d.client.endsWith('-ERR line too long\r\n')).toBe(true);
  });

  it('an overlong line in AUTHORIZATION is refused with the log showing its first word only', () => {
    const d = run(AFTER_USER);
    d.fromClient(`PASS ${'p'.repeat(400)}\r\nQUIT\r\n`);
    const v = d.judged.at(-2)!.verdict;
    expect(v).toMatchObject({ kind: 'refuse', code: 'line_too_long', secret: true });
    expect(d.verdicts.at(-1)).toBe('forward');
    expect(d.server).toBe('USER alice\r\nQUIT\r\n');
  });

  it('credentials are marked secret: PASS, APOP, AUTH show their verb, a SASL line nothing', () => {
    const d = run(AFTER_USER);
    d.fromClient('PASS secret\r\n');
    expect(d.judged.at(-1)!.verdict).toMatchObject({ kind: 'forward', secret: true });
    const a = run(IN_SASL);
    expect(a.judged.at(-1)!.verdict).toMatchObject({ kind: 'forward', secret: true });
    a.fromClient('AGFsaWNlAHNlY3JldA==\r\n');
    expect(a.judged.at(-1)!.verdict).toMatchObject({ kind: 'forward', secret: 'line' });
    expect(run(AFTER_USER).fromClient('USER bob\r\n').judged.at(-1)!.verdict.secret).toBeUndefined();
  });

  it('the line limit is raised for SASL responses and restored after the exchange', () => {
    const d = run(IN_SASL, undefined);
    const long = 'QUFB'.repeat(500); // 2000 bytes of base64
    expect(d.framer.maxLineLength).toBe(8192);
    d.fromClient(`${long}\r\n`);
    expect(d.verdicts.at(-1)).toBe('forward+hold');
    d.fromServer('-ERR [AUTH] Authentication failed.\r\n');
    expect(d.framer.maxLineLength).toBe(253);
    expect(d.proto.state).toBe('authorization');
    d.fromClient(`USER ${'a'.repeat(300)}\r\n`);
    expect(d.verdicts.at(-1)).toBe('line_too_long');
  });

  it('an overlong SASL line cancels the exchange instead of leaving the server waiting', () => {
    const d = run(IN_SASL, undefined, { maxAuthLineLength: 300 });
    d.fromClient(`${'QUFB'.repeat(100)}\r\n`);
    expect(d.judged.at(-1)!.verdict).toMatchObject({ kind: 'refuse', code: 'line_too_long', hold: true, secret: 'line' });
    expect(d.server).toBe('AUTH PLAIN\r\n*\r\n');
    d.fromServer('-ERR Authentication aborted.\r\n');
    expect(d.client.endsWith(AUTH_FAILED.toString())).toBe(true);
    expect((d.proto as unknown as { failedLogins: number }).failedLogins).toBe(1);
  });

  it(`at most ${MAX_PENDING} replies are owed: further pipelined lines wait, none is lost`, () => {
    const d = run(LOGGED_IN);
    const base = d.server.length;
    d.fromClient('NOOP\r\n'.repeat(100));
    expect((d.server.length - base) / 6).toBe(MAX_PENDING);
    expect(d.held).toBe(true);
    for (let i = 0; i < 100; i++) d.fromServer('+OK\r\n');
    expect((d.server.length - base) / 6).toBe(100);
    expect(d.verdicts.filter((v) => v.startsWith('forward')).length).toBe(2 + 100);
  });

  it('queued refusal replies count as owed too', () => {
    const d = run(LOGGED_IN);
    d.fromClient('RETR 1\r\n' + 'BOGUS\r\n'.repeat(100));
    expect(d.verdicts.length).toBe(2 + MAX_PENDING);
    d.fromServer('+OK\r\nbody\r\n.\r\n');
    expect(d.verdicts.length).toBe(2 + 1 + 100);
    expect(d.client.endsWith('-ERR unknown command\r\n'.repeat(100))).toBe(true);
  });

  it('maxLoginAttempts is configurable; AUTH failures count', () => {
    const d = run([GREET], undefined, { maxLoginAttempts: 1 });
    d.fromClient('AUTH PLAIN AGFsaWNlAHdyb25n\r\n');
    d.fromServer('-ERR [AUTH] Authentication failed.\r\n');
    expect(d.closed).toBe(true);
    expect(pop3.options?.['maxLoginAttempts']).toMatchObject({ kind: 'integer', default: 3 });
  });

  it('an unsolicited server line passes through untouched', () => {
    const d = run(LOGGED_IN);
    d.fromServer('-ERR Disconnected for inactivity.\r\n');
    expect(d.client.endsWith('-ERR Disconnected for inactivity.\r\n')).toBe(true);
    expect(d.proto.state).toBe('transaction');
  });

  it('the wrapper replies are POP3 -ERR lines', () => {
    const s = pop3.createSession({ clientAddress: 'local', maxLineLength: 253 }, pop3Options());
    for (const k of ['unavailable', 'timeout', 'too_many_violations', 'shutdown'] as const) expect(s.reply(k)?.toString()).toMatch(/^-ERR [^\r\n]+\r\n$/);
    expect(pop3.defaultMaxLineLength).toBe(253);
  });

  it('a bare AUTH (mechanism list) is followed to its end and logs nobody in', () => {
    const d = run([GREET, ['c', 'AUTH\r\n'], ['s', '+OK\r\nPLAIN\r\nLOGIN\r\n.\r\n'], ['c', 'STAT\r\n']]);
    expect(d.verdicts).toEqual(['forward+hold', 'bad_state']);
    expect(d.proto.state).toBe('authorization');
  });
});
