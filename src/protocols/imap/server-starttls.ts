import { lineText, ReplyLines, shown, type ServerStarttlsDialogue, type ServerStarttlsStep } from '../../core/server-starttls.js';

type State = 'greeting' | 'starttls' | 'done';

/** The tag of our STARTTLS: never seen by the client, whose tags start after TLS. */
const TAG = 'pw0';

/**
 * IMAP's STARTTLS (RFC 9051 §6.2.1) done by the wrapper toward the server:
 * the greeting (* OK), `pw0 STARTTLS`, untagged lines skipped, `pw0 OK`, the
 * handshake. The greeting is replayed without its [CAPABILITY …] code: that
 * list is from before TLS (STARTTLS, LOGINDISABLED) and RFC 9051 makes the
 * client discard it after TLS anyway; without it, the client (and the
 * wrapper's IMAP session, which follows what the server advertises) asks
 * CAPABILITY and gets the list that holds now.
 */
export class ImapServerStarttls implements ServerStarttlsDialogue {
  private state: State = 'greeting';
  private readonly lines = new ReplyLines();
  private greeting: Buffer = Buffer.alloc(0);

  feed(bytes: Buffer): ServerStarttlsStep {
    if (this.state === 'done') return { kind: 'fail', reason: 'server bytes after its STARTTLS reply, before TLS' };
    if (!this.lines.push(bytes)) return { kind: 'fail', reason: 'server sent too much before TLS' };
    for (let line = this.lines.next(); line; line = this.lines.next()) {
      const text = lineText(line);
      switch (this.state) {
        case 'greeting': {
          // PREAUTH: already logged in, no STARTTLS possible; BYE: refused.
          if (!statusIs(text, '*', 'OK')) return { kind: 'fail', reason: `server greeting ${shown(line)}` };
          if (this.lines.pending > 0) return { kind: 'fail', reason: 'server sent more than its greeting before a command' };
          this.greeting = withoutCodes(this.lines.take());
          this.state = 'starttls';
          return { kind: 'send', bytes: Buffer.from(`${TAG} STARTTLS\r\n`, 'latin1') };
        }
        case 'starttls': {
          if (text.startsWith('* ')) continue;
          if (!text.toUpperCase().startsWith(`${TAG.toUpperCase()} `)) return { kind: 'fail', reason: `unexpected server line ${shown(line)}` };
          if (!statusIs(text, TAG, 'OK')) return { kind: 'fail', reason: `server refused STARTTLS: ${shown(line)}` };
          if (this.lines.pending > 0) return { kind: 'fail', reason: 'server bytes after its STARTTLS reply, before TLS' };
          this.state = 'done';
          return { kind: 'handshake', greeting: this.greeting };
        }
        default: {
          const never: never = this.state;
          throw new Error(`unknown state ${String(never)}`);
        }
      }
    }
    return { kind: 'more' };
  }
}

/** `TAG STATUS` then a space or the end, case-insensitively. */
function statusIs(text: string, tag: string, status: string): boolean {
  const head = `${tag} ${status}`.toUpperCase();
  return text.slice(0, head.length).toUpperCase() === head && (text.length === head.length || text[head.length] === ' ');
}

/**
 * The greeting as replayed to the client: `* OK` and its text, without any
 * response code. The greeting came before TLS: its [CAPABILITY …] is stale
 * (STARTTLS, LOGINDISABLED), and on that stretch a man in the middle could
 * have written any code ([CAPABILITY LITERAL+], [ALERT], [REFERRAL]); the
 * client and the wrapper then ask CAPABILITY over TLS. A text that would
 * still read as a code, or none, becomes a neutral one.
 */
export function withoutCodes(greeting: Buffer): Buffer {
  const s = greeting.toString('latin1');
  const ending = s.endsWith('\r\n') ? '\r\n' : '\n';
  let rest = s.slice(5, s.length - ending.length);
  if (rest.startsWith('[')) {
    const close = rest.indexOf(']');
    rest = close < 0 ? '' : rest.slice(close + 1).trimStart();
  }
  if (rest === '' || rest.startsWith('[')) rest = 'Server ready';
  return Buffer.from(`* OK ${rest}${ending}`, 'latin1');
}
