import { lineText, ReplyLines, shown, type ServerStarttlsContext, type ServerStarttlsDialogue, type ServerStarttlsStep } from '../../core/server-starttls.js';

type State = 'greeting' | 'ehlo' | 'starttls' | 'done';

/**
 * SMTP's STARTTLS (RFC 3207) done by the wrapper toward the server: the 220
 * greeting (kept for the client), EHLO, a 250 that lists STARTTLS, STARTTLS,
 * 220, the handshake. After TLS the server is back in its initial state
 * (RFC 3207 §4.2), so the client's own EHLO, after the replayed greeting, is
 * the first command of the session that counts.
 */
export class SmtpServerStarttls implements ServerStarttlsDialogue {
  private state: State = 'greeting';
  private readonly lines = new ReplyLines();
  private greeting: Buffer = Buffer.alloc(0);
  /** The lines of the reply being read: its code and whether a line said STARTTLS. */
  private code: string | null = null;
  private offersStarttls = false;

  constructor(private readonly ctx: ServerStarttlsContext) {}

  feed(bytes: Buffer): ServerStarttlsStep {
    if (this.state === 'done') return { kind: 'fail', reason: 'server bytes after its STARTTLS reply, before TLS' };
    if (!this.lines.push(bytes)) return { kind: 'fail', reason: 'server sent too much before TLS' };
    for (let line = this.lines.next(); line; line = this.lines.next()) {
      const text = lineText(line);
      const r = replyLine(text);
      if (!r || (this.code !== null && r.code !== this.code)) return { kind: 'fail', reason: `bad server reply line ${shown(line)}` };
      this.code = r.code;
      if (r.text.trim().split(' ')[0]!.toUpperCase() === 'STARTTLS') this.offersStarttls = true;
      if (r.more) continue;
      // The reply is complete; no command was pipelined, so nothing may follow it.
      if (this.lines.pending > 0) return { kind: 'fail', reason: 'server sent more than one reply before a command' };
      const step = this.replied(this.code, line);
      this.code = null;
      return step;
    }
    return { kind: 'more' };
  }

  private replied(code: string, last: Buffer): ServerStarttlsStep {
    switch (this.state) {
      case 'greeting':
        if (code !== '220') return { kind: 'fail', reason: `server greeting ${shown(last)}` };
        this.greeting = this.lines.take();
        this.state = 'ehlo';
        this.offersStarttls = false;
        return { kind: 'send', bytes: Buffer.from(`EHLO ${this.ctx.ehloName}\r\n`, 'latin1') };
      case 'ehlo':
        this.lines.take();
        if (code !== '250') return { kind: 'fail', reason: `server refused EHLO: ${shown(last)}` };
        if (!this.offersStarttls) return { kind: 'fail', reason: 'server does not offer STARTTLS' };
        this.state = 'starttls';
        return { kind: 'send', bytes: Buffer.from('STARTTLS\r\n', 'latin1') };
      case 'starttls':
        if (code !== '220') return { kind: 'fail', reason: `server refused STARTTLS: ${shown(last)}` };
        this.state = 'done';
        return { kind: 'handshake', greeting: this.greeting };
      case 'done':
        return { kind: 'fail', reason: 'server bytes after its STARTTLS reply, before TLS' };
      default: {
        const never: never = this.state;
        throw new Error(`unknown state ${String(never)}`);
      }
    }
  }
}

/** A reply line: three digits, then "-" (more lines follow), " " or the end, then text. No regex: a small parser. */
function replyLine(text: string): { code: string; more: boolean; text: string } | null {
  if (text.length < 3) return null;
  for (let i = 0; i < 3; i++) if (text[i]! < '0' || text[i]! > '9') return null;
  const sep = text[3];
  if (sep !== undefined && sep !== ' ' && sep !== '-') return null;
  return { code: text.slice(0, 3), more: sep === '-', text: text.slice(4) };
}
