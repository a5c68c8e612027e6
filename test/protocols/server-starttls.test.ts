import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SERVER_STARTTLS_MAX_BYTES, type ServerStarttlsDialogue, type ServerStarttlsStep } from '../../src/core/server-starttls.js';
import { ImapServerStarttls, withoutCodes } from '../../src/protocols/imap/server-starttls.js';
import { Pop3ServerStarttls } from '../../src/protocols/pop3/server-starttls.js';
import { SmtpServerStarttls } from '../../src/protocols/smtp/server-starttls.js';

const b = (s: string) => Buffer.from(s, 'latin1');
type Shown = { kind: 'send'; text: string } | { kind: 'handshake'; greeting: string } | { kind: 'fail'; reason: string };
const show = (s: ServerStarttlsStep): Shown | null => {
  switch (s.kind) {
    case 'more':
      return null;
    case 'send':
      return { kind: 'send', text: s.bytes.toString('latin1') };
    case 'handshake':
      return { kind: 'handshake', greeting: s.greeting.toString('latin1') };
    case 'fail':
      return { kind: 'fail', reason: s.reason };
  }
};

/** Plays the server's turns, each cut at `cut`; returns the dialogue's answers in order, stopping at a handshake or failure. */
function play(make: () => ServerStarttlsDialogue, turns: readonly string[], cut: number): Shown[] {
  const d = make();
  const out: Shown[] = [];
  for (const t of turns) {
    const bytes = b(t);
    for (const piece of [bytes.subarray(0, Math.min(cut, bytes.length)), bytes.subarray(Math.min(cut, bytes.length))]) {
      if (piece.length === 0) continue;
      const s = show(d.feed(piece));
      if (s) out.push(s);
      if (s && s.kind !== 'send') return out;
    }
  }
  return out;
}

const smtp = () => new SmtpServerStarttls({ ehloName: 'wrapper.example' });
/** maxCut: splits beyond it are not the case's point (see the injection case). */
const cases: { name: string; make: () => ServerStarttlsDialogue; turns: string[]; want: Shown[]; maxCut?: number }[] = [
  {
    name: 'SMTP: multi-line greeting kept whole, EHLO, STARTTLS',
    make: smtp,
    turns: ['220-mx.example ESMTP\r\n220 hello\r\n', '250-mx.example\r\n250-PIPELINING\r\n250-STARTTLS\r\n250 8BITMIME\r\n', '220 2.0.0 Ready to start TLS\r\n'],
    want: [{ kind: 'send', text: 'EHLO wrapper.example\r\n' }, { kind: 'send', text: 'STARTTLS\r\n' }, { kind: 'handshake', greeting: '220-mx.example ESMTP\r\n220 hello\r\n' }],
  },
  { name: 'SMTP: no STARTTLS offered', make: smtp, turns: ['220 mx\r\n', '250-mx\r\n250 SIZE 10\r\n'], want: [{ kind: 'send', text: 'EHLO wrapper.example\r\n' }, { kind: 'fail', reason: 'server does not offer STARTTLS' }] },
  { name: 'SMTP: 554 greeting', make: smtp, turns: ['554 go away\r\n'], want: [{ kind: 'fail', reason: 'server greeting "554 go away"' }] },
  { name: 'SMTP: STARTTLS refused', make: smtp, turns: ['220 mx\r\n', '250 STARTTLS\r\n', '454 TLS not available\r\n'], want: [{ kind: 'send', text: 'EHLO wrapper.example\r\n' }, { kind: 'send', text: 'STARTTLS\r\n' }, { kind: 'fail', reason: 'server refused STARTTLS: "454 TLS not available"' }] },
  {
    name: 'SMTP: bytes after the 220 (a plaintext injection) fail',
    make: smtp,
    turns: ['220 mx\r\n', '250 STARTTLS\r\n', '220 go ahead\r\n250 injected\r\n'],
    want: [{ kind: 'send', text: 'EHLO wrapper.example\r\n' }, { kind: 'send', text: 'STARTTLS\r\n' }, { kind: 'fail', reason: 'server sent more than one reply before a command' }],
    // Injected bytes in a later segment than the 220 reach the TLS layer instead, whose handshake fails on them.
    maxCut: 13,
  },
  { name: 'SMTP: mixed codes in one reply', make: smtp, turns: ['220-mx\r\n250 x\r\n'], want: [{ kind: 'fail', reason: 'bad server reply line "250 x"' }] },
  { name: 'POP3: greeting with APOP stamp replayed', make: () => new Pop3ServerStarttls(), turns: ['+OK ready <1.2@x>\r\n', '+OK Begin TLS\r\n'], want: [{ kind: 'send', text: 'STLS\r\n' }, { kind: 'handshake', greeting: '+OK ready <1.2@x>\r\n' }] },
  { name: 'POP3: STLS refused', make: () => new Pop3ServerStarttls(), turns: ['+OK\r\n', '-ERR no\r\n'], want: [{ kind: 'send', text: 'STLS\r\n' }, { kind: 'fail', reason: 'server refused STLS: "-ERR no"' }] },
  { name: 'POP3: -ERR greeting', make: () => new Pop3ServerStarttls(), turns: ['-ERR busy\r\n'], want: [{ kind: 'fail', reason: 'server greeting "-ERR busy"' }] },
  {
    name: 'IMAP: capability code dropped from the greeting, untagged lines skipped',
    make: () => new ImapServerStarttls(),
    turns: ['* OK [CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED] Dovecot ready.\r\n', '* NOTE x\r\npw0 OK Begin TLS negotiation now.\r\n'],
    want: [{ kind: 'send', text: 'pw0 STARTTLS\r\n' }, { kind: 'handshake', greeting: '* OK Dovecot ready.\r\n' }],
  },
  { name: 'IMAP: PREAUTH cannot STARTTLS', make: () => new ImapServerStarttls(), turns: ['* PREAUTH hi\r\n'], want: [{ kind: 'fail', reason: 'server greeting "* PREAUTH hi"' }] },
  { name: 'IMAP: STARTTLS refused', make: () => new ImapServerStarttls(), turns: ['* OK hi\r\n', 'pw0 BAD no\r\n'], want: [{ kind: 'send', text: 'pw0 STARTTLS\r\n' }, { kind: 'fail', reason: 'server refused STARTTLS: "pw0 BAD no"' }] },
  { name: 'IMAP: another tag', make: () => new ImapServerStarttls(), turns: ['* OK hi\r\n', 'x OK\r\n'], want: [{ kind: 'send', text: 'pw0 STARTTLS\r\n' }, { kind: 'fail', reason: 'unexpected server line "x OK"' }] },
];

describe('server STARTTLS dialogues', () => {
  for (const c of cases) {
    it(`${c.name}: same answers at every split point`, () => {
      const longest = c.maxCut ?? Math.max(...c.turns.map((t) => t.length));
      for (let cut = 0; cut <= longest; cut++) expect(play(c.make, c.turns, cut), `cut at ${cut}`).toEqual(c.want);
    });
  }

  it('withoutCodes drops every response code of the pre-TLS greeting (a man in the middle could have written any)', () => {
    expect(withoutCodes(b('* OK [CAPABILITY IMAP4rev1] hi\r\n')).toString('latin1')).toBe('* OK hi\r\n');
    expect(withoutCodes(b('* OK hi\r\n')).toString('latin1')).toBe('* OK hi\r\n');
    expect(withoutCodes(b('* OK [ALERT] x\r\n')).toString('latin1')).toBe('* OK x\r\n');
    // Review 4: an unclosed code, and a second code that would move up into the first one's place.
    expect(withoutCodes(b('* OK [CAPABILITY IMAP4rev1 LITERAL+\r\n')).toString('latin1')).toBe('* OK Server ready\r\n');
    expect(withoutCodes(b('* OK [CAPABILITY IMAP4rev1] [CAPABILITY LITERAL+] hi\r\n')).toString('latin1')).toBe('* OK Server ready\r\n');
    expect(withoutCodes(b('* OK [REFERRAL imap://evil/]\n')).toString('latin1')).toBe('* OK Server ready\n');
  });

  it('a server that never ends its line is cut off at the bound (property: no throw, bounded)', () => {
    for (const make of [smtp, () => new Pop3ServerStarttls(), () => new ImapServerStarttls()]) {
      const d = make();
      let last: ServerStarttlsStep = { kind: 'more' };
      for (let sent = 0; sent <= SERVER_STARTTLS_MAX_BYTES && last.kind === 'more'; sent += 1000) last = d.feed(Buffer.alloc(1000, 0x41));
      expect(last).toEqual({ kind: 'fail', reason: 'server sent too much before TLS' });
    }
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 200 }), { maxLength: 30 }), (chunks) => {
        for (const make of [smtp, () => new Pop3ServerStarttls(), () => new ImapServerStarttls()]) {
          const d = make();
          for (const ch of chunks) {
            const s = d.feed(Buffer.from(ch));
            if (s.kind === 'fail' || s.kind === 'handshake') break;
          }
        }
      }),
    );
  });
});
