import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { renderJson, renderText, type LogEventName, type LogFields } from '../../src/log/event.js';
import { Logger, MemorySink } from '../../src/log/logger.js';

const T = new Date('2026-12-01T12:00:00.000Z');
const TAG = { client: '192.0.2.7', protocol: 'pop3', session: '0123456789ab' } as const;

/** The key=value fields of a text line (values quoted or bare), and what follows ': ' after the last field. */
function parseText(line: string): { head: string; fields: Record<string, string>; words: string | null } {
  const fields: Record<string, string> = {};
  const first = line.search(/ [a-z_]+=/);
  const head = first < 0 ? line : line.slice(0, first);
  let i = first < 0 ? line.length : first;
  while (i < line.length && line[i] === ' ') {
    const m = /^ ([a-z_]+)=("[^"]*"|[^ ]*?)(?= [a-z_]+=|: |$)/.exec(line.slice(i));
    if (!m) break;
    let v = m[2]!;
    if (v.startsWith('"')) v = v.slice(1, -1);
    fields[m[1]!] = v;
    i += m[0].length;
  }
  return { head, fields, words: line.startsWith(': ', i) ? line.slice(i + 2) : null };
}

describe('log events: one event, two forms with the same information', () => {
  it('a refusal: text in the shape fail2ban anchors on, session= last; JSON with the stable field names', () => {
    const f: LogFields = { ...TAG, state: 'authorization', code: 'bad_state', reason: 'PASS without USER', line: 'PASS <hidden>' };
    expect(renderText('refused', f)).toBe('refused client=192.0.2.7 protocol=pop3 state=authorization code=bad_state reason="PASS without USER" line="PASS <hidden>" session=0123456789ab');
    const j = renderJson('refused', 'warning', f, T);
    expect(j).toBe(
      '{"time":"2026-12-01T12:00:00.000Z","severity":"warning","event":"refused","session":"0123456789ab","client":"192.0.2.7","protocol":"pop3","state":"authorization","code":"bad_state","reason":"PASS without USER","line":"PASS <hidden>"}',
    );
  });

  it('a failed login names the user; a user the protocol did not see is absent from the text and null in JSON', () => {
    expect(renderText('login_failed', { ...TAG, state: 'authorization', user: 'alice' })).toBe(
      'login failed client=192.0.2.7 protocol=pop3 state=authorization user="alice" session=0123456789ab',
    );
    expect(renderText('login_failed', { ...TAG, state: 'authorization', user: null })).toBe('login failed client=192.0.2.7 protocol=pop3 state=authorization session=0123456789ab');
    expect(JSON.parse(renderJson('login_failed', 'warning', { ...TAG, user: null }, T))).toMatchObject({ event: 'login_failed', user: null, client: '192.0.2.7' });
  });

  it('session close carries the counters; words follow the session id after ": "', () => {
    const close = { ...TAG, end: 'done', bytes_in: 10, bytes_out: 20, refused: 1, duration_ms: 5 };
    expect(renderText('session_close', close)).toBe('session close client=192.0.2.7 protocol=pop3 end=done bytes_in=10 bytes_out=20 refused=1 duration_ms=5 session=0123456789ab');
    expect(JSON.parse(renderJson('session_close', 'info', close, T))).toMatchObject({ bytes_in: 10, bytes_out: 20, refused: 1, duration_ms: 5 });
    expect(renderText('closing', { ...TAG, message: '3 refused lines' })).toBe('closing client=192.0.2.7 protocol=pop3 session=0123456789ab: 3 refused lines');
    expect(renderText('session_state', { ...TAG, message: 'client closed its side' })).toBe('client closed its side client=192.0.2.7 protocol=pop3 session=0123456789ab');
    expect(renderText('line', { ...TAG, state: 'transaction', line: 'RETR 1' })).toBe('line client=192.0.2.7 protocol=pop3 state=transaction session=0123456789ab: RETR 1');
  });

  it("SMTP's accounting note is message_accepted, its envelope in detail; a refusal's envelope follows the fields", () => {
    const detail = 'from=<a@b.example> nrcpt=1 rcpt=<c@d.example> size=35';
    expect(renderText('message_accepted', { ...TAG, protocol: 'smtp', detail })).toBe(`note client=192.0.2.7 protocol=smtp session=0123456789ab: accepted ${detail}`);
    expect(JSON.parse(renderJson('message_accepted', 'notice', { ...TAG, detail }, T))).toMatchObject({ event: 'message_accepted', detail });
    expect(renderText('refused', { ...TAG, code: 'relay_denied', reason: 'relay', detail: 'from=<a@b> nrcpt=0 rcpt=' })).toBe(
      'refused client=192.0.2.7 protocol=pop3 code=relay_denied reason="relay" from=<a@b> nrcpt=0 rcpt= session=0123456789ab',
    );
  });

  it('service is shown when set, after protocol, in both forms', () => {
    const f = { ...TAG, service: 'pop3s', code: 'nul_byte', reason: 'NUL' };
    expect(renderText('refused', f)).toMatch(/^refused client=192\.0\.2\.7 protocol=pop3 service=pop3s code=nul_byte /);
    expect(JSON.parse(renderJson('refused', 'warning', f, T))).toMatchObject({ service: 'pop3s' });
    expect(renderText('refused', TAG)).not.toContain('service=');
  });

  it('JSON escapes what the text form only quotes: a forged field in client text stays inside its value', () => {
    const line = 'x" client=10.6.6.6 "a\\x00';
    const o = JSON.parse(renderJson('refused', 'warning', { ...TAG, line }, T)) as Record<string, unknown>;
    expect(o['client']).toBe('192.0.2.7');
    expect(o['line']).toBe(line);
    expect(renderJson('refused', 'warning', { ...TAG, line }, T)).not.toContain('\n');
  });

  const safe = fc.stringMatching(/^[!#-~]{1,20}$/).filter((s) => !s.endsWith(':') && !s.includes('='));
  const words = fc.stringMatching(/^[ -!#-~]{0,30}$/).filter((s) => !/ [a-z_]+=/.test(s) && !s.endsWith(' '));
  const arbitraryFields = fc.record(
    {
      client: safe,
      protocol: safe,
      service: safe,
      state: safe,
      code: safe,
      reason: words,
      line: words,
      user: words,
      end: safe,
      bytes_in: fc.nat(),
      refused: fc.nat(),
      session: fc.stringMatching(/^[0-9a-f]{12}$/),
      message: words,
    },
    { requiredKeys: ['client', 'protocol', 'session'] },
  );

  it('property: every field of the JSON form is in the text form with the same value, and nothing else is', () => {
    fc.assert(
      fc.property(arbitraryFields, fc.constantFrom<LogEventName>('refused', 'login_failed', 'session_close', 'closing'), (f, event) => {
        const json = JSON.parse(renderJson(event, 'warning', f, T)) as Record<string, unknown>;
        const { time, severity, event: name, message, ...fields } = json;
        expect([time, severity, name]).toEqual([T.toISOString(), 'warning', event]);
        const text = parseText(renderText(event, f));
        expect(text.fields).toEqual(Object.fromEntries(Object.entries(fields).map(([k, v]) => [k, String(v)])));
        expect(text.words).toBe(message === undefined ? null : message);
      }),
      { numRuns: 300 },
    );
  });
});

describe('Logger', () => {
  it('renders each event once, in its format, for every sink', () => {
    const a = new MemorySink();
    const b = new MemorySink();
    const log = new Logger([a, b], 1, 'json');
    log.event('warning', 'login_failed', { ...TAG, user: 'bob' });
    log.log('notice', 'plain words');
    expect(a.lines).toEqual(b.lines);
    expect(a.lines.map((l) => l.severity)).toEqual(['warning', 'notice']);
    expect(JSON.parse(a.lines[0]!.message)).toMatchObject({ event: 'login_failed', severity: 'warning', user: 'bob', session: TAG.session });
    expect(JSON.parse(a.lines[1]!.message)).toMatchObject({ event: 'message', message: 'plain words' });
    const text = new MemorySink();
    new Logger([text], 0).log('err', 'plain words');
    expect(text.lines).toEqual([{ severity: 'err', message: 'plain words' }]);
  });
});
