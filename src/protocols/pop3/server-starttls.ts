import { lineText, ReplyLines, shown, type ServerStarttlsDialogue, type ServerStarttlsStep } from '../../core/server-starttls.js';

type State = 'greeting' | 'stls' | 'done';

/**
 * POP3's STLS (RFC 2595) done by the wrapper toward the server: the greeting
 * (+OK, kept for the client; its APOP timestamp stays valid, it is the same
 * session), STLS, +OK, then the handshake.
 */
export class Pop3ServerStarttls implements ServerStarttlsDialogue {
  private state: State = 'greeting';
  private readonly lines = new ReplyLines();
  private greeting: Buffer = Buffer.alloc(0);

  feed(bytes: Buffer): ServerStarttlsStep {
    if (this.state === 'done') return { kind: 'fail', reason: 'server bytes after its STLS reply, before TLS' };
    if (!this.lines.push(bytes)) return { kind: 'fail', reason: 'server sent too much before TLS' };
    const line = this.lines.next();
    if (!line) return { kind: 'more' };
    if (this.lines.pending > 0) return { kind: 'fail', reason: 'server sent more than one line before a command' };
    const ok = lineText(line).startsWith('+OK');
    switch (this.state) {
      case 'greeting':
        if (!ok) return { kind: 'fail', reason: `server greeting ${shown(line)}` };
        this.greeting = this.lines.take();
        this.state = 'stls';
        return { kind: 'send', bytes: Buffer.from('STLS\r\n', 'latin1') };
      case 'stls':
        if (!ok) return { kind: 'fail', reason: `server refused STLS: ${shown(line)}` };
        this.state = 'done';
        return { kind: 'handshake', greeting: this.greeting };
      default: {
        const never: never = this.state;
        throw new Error(`unknown state ${String(never)}`);
      }
    }
  }
}
