import { beginsWithAnyCI, verbOf } from '../../core/bytes.js';
import type { LineEnding } from '../../core/framer.js';
import type { ClientVerdict, ProtocolSession, RefusalCode, Secrecy } from '../../core/protocol.js';
import { isPlainMechanism, plainAuthcid } from '../../core/sasl.js';
import { checkLine } from '../generic.js';
import { checkDomainArg, checkQueryArg, checkText, COMMANDS, isBase64, parseAuth, parseBdat, parseEnvelope, type Verb } from './commands.js';
import { CANCEL, Conversation, CRLF_DOT_CRLF, DATA, MAX_PENDING, newTx, RSET } from './conversation.js';
import { decimal, isError, type ParsedPath } from './path.js';
import { domainListed, ipAllowed, senderBlocked } from './policy.js';

/** The verdict of a body line passed as it is: one frozen object, not one per line. */
const FORWARD: ClientVerdict = Object.freeze({ kind: 'forward' });

const AUTH_VERB = ['AUTH'];
const BDAT_VERB = ['BDAT'];
const STARTTLS_GO_AHEAD = Buffer.from('220 2.0.0 Ready to start TLS\r\n');

/**
 * The client side of an SMTP session: every line judged against the command
 * table, the envelope policy and the body rules, in the state the server's
 * replies have set (see Conversation).
 */
export class SmtpSession extends Conversation implements ProtocolSession {
  // ---- client side --------------------------------------------------------

  /**
   * Any byte before the greeting is an early talker, even half a line (`EH`
   * now, `LO x` after the greeting would pass the line rule). Runs on every
   * client chunk: one state comparison.
   */
  clientData(): ClientVerdict | null {
    if (this.st !== 'greeting') return null;
    // A session piped in by hand was written before the greeting existed: it waits for it.
    if (this.ctx.piped) return { kind: 'forward', hold: true };
    return this.earlyTalker();
  }

  /**
   * An AUTH response line is hidden whole; an AUTH command (its initial
   * response) shows only its first word, in whatever state it comes (before
   * EHLO, inside a transaction, overlong, with a bare LF). Message text is
   * not a credential.
   */
  lineSecrecy(line: Buffer, contentEnd: number): Secrecy {
    if (this.st === 'auth') return 'line';
    if (this.st === 'data') return false;
    if (beginsWithAnyCI(line, 0, contentEnd, AUTH_VERB)) return true;
    // A SASL response sent behind an AUTH that got no 334 (refused, or pipelined before EHLO) is
    // base64 and no command: hidden whole. A real verb is never mistaken for one (QUIT is base64 too).
    return contentEnd >= 4 && isBase64(line, 0, contentEnd) && !COMMANDS.has(verbOf(line, 0, contentEnd)) ? 'line' : false;
  }

  clientLine(line: Buffer, contentEnd: number, ending: LineEnding): ClientVerdict {
    switch (this.st) {
      case 'greeting':
        return this.earlyTalker();
      case 'data':
        return this.dataLine(line, contentEnd, ending);
      case 'auth':
        return this.authLine(line, contentEnd, ending);
      case 'quit':
        return this.refuse('bad_state', 'command after QUIT', '503 5.5.1 Error: session is ending\r\n');
      case 'connected':
      case 'ready':
      case 'mail':
      case 'rcpt':
        return this.command(line, contentEnd, ending);
      default: {
        const never: never = this.st;
        throw new Error(`unknown SMTP state ${String(never)}`);
      }
    }
  }

  clientOverlong(head?: Buffer): ClientVerdict {
    switch (this.st) {
      case 'greeting':
        return this.earlyTalker();
      case 'data':
        if (this.held) {
          // Kept, not forwarded: the message is refused when its end comes; nothing of it is kept meanwhile.
          this.scan!.overlong(this.policy.textLineLength);
          this.held.release();
          return { kind: 'forward', keep: true };
        }
        // The server has part of the message and can only be stopped by closing.
        return { ...this.refuse('line_too_long', `message line longer than ${this.policy.textLineLength} bytes`, '500 5.5.0 Message line too long\r\n'), close: true };
      case 'auth':
        return this.cancelAuth('line_too_long', `AUTH response longer than ${this.policy.authLineLength} bytes`);
      case 'connected':
      case 'ready':
      case 'mail':
      case 'rcpt':
      case 'quit':
      {
        const v = this.refuse('line_too_long', `command line longer than ${this.policy.commandLineLength} bytes`, '500 5.5.0 Line too long\r\n');
        // An overlong BDAT line: where its chunk ends is unknown, the stream cannot be followed.
        return head && beginsWithAnyCI(head, 0, head.length, BDAT_VERB) ? { ...v, close: true } : v;
      }
      default: {
        const never: never = this.st;
        throw new Error(`unknown SMTP state ${String(never)}`);
      }
    }
  }

  private earlyTalker(): ClientVerdict {
    return { ...this.refuse('early_talker', 'client talked before the greeting', '554 5.5.1 Error: talked before the greeting\r\n'), close: true };
  }

  private command(line: Buffer, end: number, ending: LineEnding): ClientVerdict {
    const v = this.commandVerdict(line, end, ending);
    return v.kind === 'refuse' && beginsWithAnyCI(line, 0, end, BDAT_VERB) ? this.refusedBdat(v, line, end) : v;
  }

  /**
   * A refused BDAT: its chunk follows at once and must not be read as
   * commands (RFC 3030 §2: the server discards it). With a size that parses,
   * the chunk is read and dropped; without one nobody can tell where it
   * ends, so the session closes.
   */
  private refusedBdat(v: Extract<ClientVerdict, { kind: 'refuse' }>, line: Buffer, end: number): ClientVerdict {
    if (v.close) return v;
    const p = line[4] === 0x20 ? parseBdat(line, 5, end) : null;
    if (!p || isError(p)) return { ...v, close: true };
    return { ...v, skipRaw: p.size };
  }

  private commandVerdict(line: Buffer, end: number, ending: LineEnding): ClientVerdict {
    const bad = checkLine(this.options, line, end, ending);
    if (bad && bad.kind === 'refuse') return this.refuse(bad.code, bad.reason, '500 5.5.2 Error: bad command line\r\n');
    if (end > this.policy.commandLineLength) return this.refuse('line_too_long', `command line longer than ${this.policy.commandLineLength} bytes`, '500 5.5.0 Line too long\r\n');
    const verb = verbOf(line, 0, end);
    const spec = COMMANDS.get(verb);
    if (!spec) return this.refuse('unknown_command', 'unknown command', '500 5.5.2 Error: command not recognized\r\n');
    if (spec.verb === 'STARTTLS') {
      if (this.offersStarttls) return this.starttls(verb.length, end);
      return this.refuse('not_supported', 'STARTTLS is not offered through the wrapper', '502 5.5.1 Error: command not implemented\r\n');
    }
    if (!spec.states.includes(this.st)) {
      return this.refuse('bad_state', `${verb} not allowed in state ${this.st}`, this.helo || verb === 'EHLO' ? '503 5.5.1 Error: bad sequence of commands\r\n' : '503 5.5.1 Error: send HELO/EHLO first\r\n');
    }
    // verbOf stops at the first space, so the argument starts after it.
    const argStart = verb.length < end ? verb.length + 1 : verb.length;
    const hold = this.ctx.piped === true || !(spec.pipelined && this.caps.pipelining) || this.pending.length >= MAX_PENDING;
    return this.run(spec.verb, line, argStart, end, hold);
  }

  /** A command's argument check and effect; the state change waits for the reply unless pipelined. */
  private run(verb: Verb, line: Buffer, a: number, end: number, hold: boolean): ClientVerdict {
    const syntax = (why: string) => this.refuse('bad_argument', `${verb}: ${why}`, '501 5.5.4 Syntax error in parameters or arguments\r\n');
    const noArg = () => (a < end ? syntax('takes no argument') : null);
    switch (verb) {
      case 'HELO':
      case 'EHLO': {
        const e = checkDomainArg(line, a, end);
        if (e) return syntax(e.error);
        return this.send({ kind: 'helo', ehlo: verb === 'EHLO', release: true }, true);
      }
      case 'MAIL':
        return this.mail(line, a, end, hold, syntax);
      case 'RCPT':
        return this.rcpt(line, a, end, hold, syntax);
      case 'DATA':
        return noArg() ?? this.data();
      case 'BDAT': {
        const p = parseBdat(line, a, end);
        if (isError(p)) return syntax(p.error);
        if (!this.caps.chunking) return this.refuse('not_supported', 'BDAT without CHUNKING', '502 5.5.1 Error: command not implemented\r\n');
        const tx = this.tx;
        tx.bdatUsed = true;
        tx.bdatBytes += p.size;
        if (p.last) this.resetTx();
        // Without PIPELINING, or past the cap, the client is read no further
        // until this BDAT's reply; it cannot be held before its chunk (the
        // server answers after it).
        this.pending.push({ kind: 'bdat', release: hold, last: p.last, tx, size: tx.bdatBytes });
        // The chunk's bytes are counted by the framer and forwarded raw, never parsed.
        return { kind: 'forward', raw: p.size, ...(hold ? { holdAfterRaw: true } : {}) };
      }
      case 'RSET': {
        const e = noArg();
        if (e) return e;
        this.resetTx();
        return this.send({ kind: 'rset', release: hold }, hold);
      }
      case 'QUIT':
        return noArg() ?? this.send({ kind: 'quit', release: true }, true);
      case 'NOOP':
      case 'HELP':
      case 'VRFY':
      case 'EXPN': {
        const e = verb === 'VRFY' || verb === 'EXPN' ? checkQueryArg(line, a, end, this.caps.smtputf8) : checkText(line, a, end, false);
        if (e) return syntax(e.error);
        return this.send({ kind: 'other', release: true }, true);
      }
      case 'AUTH': {
        if (this.ctx.tls === 'require' && !this.secure) {
          return { ...this.refuse('policy', 'AUTH before TLS (tls = require)', '530 5.7.0 Must issue a STARTTLS command first\r\n'), secret: true };
        }
        if (this.authenticated) return this.refuse('bad_state', 'already authenticated', '503 5.5.1 Error: already authenticated\r\n', true);
        const p = parseAuth(line, a, end, this.caps.auth);
        if (isError(p)) return { ...this.refuse('bad_argument', `AUTH: ${p.error}`, '504 5.5.4 Unrecognized authentication type\r\n'), secret: true };
        this.noteUser(line, a, end);
        return { ...this.send({ kind: 'auth', release: true }, true), secret: true };
      }
      case 'STARTTLS':
        return this.refuse('not_supported', 'STARTTLS is not offered through the wrapper', '502 5.5.1 Error: command not implemented\r\n');
      default: {
        const never: never = verb;
        throw new Error(`unknown SMTP verb ${String(never)}`);
      }
    }
  }

  private mail(line: Buffer, a: number, end: number, hold: boolean, syntax: (w: string) => ClientVerdict): ClientVerdict {
    const env = parseEnvelope(line, a, end, 'FROM:', this.caps.smtputf8, this.policy.allowUnqualified);
    if (isError(env)) return env.unsupported ? this.unsupported(env.error) : syntax(this.addressError(env.error, line, a, end));
    for (const p of env.params) {
      if (p.key === 'SIZE') {
        const n = p.value === null ? null : decimal(p.value);
        if (n === null) return syntax('bad SIZE value');
        const limit = this.policy.sizeLimit;
        if (limit > 0 && n > limit) {
          return this.refuse('too_large', `declared SIZE ${n} over the limit ${limit} (maxMsgSize, bodyHoldLimit)`, '552 5.3.4 Message size exceeds fixed limit\r\n', false, this.envNote(env.path.address));
        }
      } else if (p.key === 'BODY') {
        const v = (p.value ?? '').toUpperCase();
        if (v !== '7BIT' && v !== '8BITMIME' && !(v === 'BINARYMIME' && this.caps.chunking)) return syntax('unsupported BODY value');
      } else if (p.key === 'SMTPUTF8' && (p.value !== null || !this.caps.smtputf8)) {
        return this.unsupported('SMTPUTF8 not offered');
      }
    }
    const blocked = senderBlocked(this.policy, env.path);
    if (blocked !== null) {
      return this.refuse('blocked_sender', `sender matches blockAddrList ${JSON.stringify(blocked)}`, '550 5.7.1 Sender address rejected\r\n', false, this.envNote(env.path.address));
    }
    this.st = 'mail';
    this.tx = newTx(env.path.address, env.path.domain);
    return this.send({ kind: 'mail', release: hold, tx: this.tx }, hold);
  }

  private rcpt(line: Buffer, a: number, end: number, hold: boolean, syntax: (w: string) => ClientVerdict): ClientVerdict {
    const env = parseEnvelope(line, a, end, 'TO:', this.caps.smtputf8, this.policy.allowUnqualified);
    if (isError(env)) return env.unsupported ? this.unsupported(env.error) : syntax(this.addressError(env.error, line, a, end));
    const note = this.envNote(this.tx.from ?? '', env.path.address);
    if (this.policy.maxRcpt > 0 && this.rcptCount >= this.policy.maxRcpt) {
      return this.refuse('too_many_recipients', `more than maxRcpt ${this.policy.maxRcpt} recipients in this session`, '452 4.5.3 Error: too many recipients\r\n', false, note);
    }
    const relay = this.relayRefusal(env.path);
    if (relay) return this.refuse('relay_denied', relay, '550 5.7.1 Relaying denied\r\n', false, note);
    this.st = 'rcpt';
    this.rcptCount++;
    return this.send({ kind: 'rcpt', release: hold, addr: env.path.address, tx: this.tx }, hold);
  }

  /**
   * STARTTLS (RFC 3207), answered by the wrapper: outside a transaction,
   * before AUTH, with no reply owed (so no server byte can land inside the
   * handshake). Afterwards the session is back before EHLO, as the RFC says:
   * a MAIL before the new EHLO gets 503, and the server resets its own state
   * at that EHLO.
   */
  private starttls(verbEnd: number, end: number): ClientVerdict {
    if (verbEnd < end) return this.refuse('bad_argument', 'STARTTLS takes no argument', '501 5.5.4 Syntax: STARTTLS\r\n');
    if (this.st === 'mail' || this.st === 'rcpt') return this.refuse('bad_state', 'STARTTLS inside a transaction', '503 5.5.1 Error: MAIL transaction in progress\r\n');
    if (this.authenticated) return this.refuse('bad_state', 'STARTTLS after AUTH', '503 5.5.1 Error: already authenticated\r\n');
    if (this.pending.length > 0) return this.refuse('pipelining', 'STARTTLS with replies outstanding', '503 5.5.1 Error: STARTTLS must be the last command of a group\r\n');
    this.secure = true;
    this.st = 'connected';
    this.helo = false;
    this.resetTx();
    this.caps = { pipelining: false, chunking: false, smtputf8: false, auth: new Set() };
    return { kind: 'forward', keep: true, toClient: STARTTLS_GO_AHEAD, startTls: true };
  }

  /** For the log: an address with 8-bit bytes fails because the server did not offer SMTPUTF8, not for its shape. */
  private addressError(error: string, line: Buffer, a: number, end: number): string {
    if (this.caps.smtputf8) return error;
    for (let i = a; i < end; i++) if (line[i]! >= 0x80) return '8-bit address without SMTPUTF8';
    return error;
  }

  private unsupported(why: string): ClientVerdict {
    return this.refuse('not_supported', why, '555 5.5.4 Unsupported parameter\r\n');
  }

  /** relayIpList / relayDomainList (seed): null when the recipient may be relayed to. */
  private relayRefusal(p: ParsedPath): string | null {
    const pol = this.policy;
    if (!pol.relayControl || p.isPostmaster) return null;
    if (ipAllowed(pol.relayIp, this.ctx.clientAddress)) return null;
    // A server may route on a local part holding %, ! or @ (percent hack, bang path, quoted @).
    for (const c of ['%', '!', '@']) if (p.local.includes(c)) return 'recipient local part would route elsewhere; client not in relayIpList';
    // <root> (allowUnqualifiedAddress): the server adds its own domain, so the
    // recipient is its own, as <Postmaster> is; with % ! @ ruled out above, no
    // local part can name another host. (A server whose own domain, $myorigin,
    // is delivered elsewhere relays it there: its own relay rules see that.)
    if (p.unqualified) return null;
    if (domainListed(pol.relayDomains, p.domain)) return null;
    if (!pol.relayStrict && domainListed(pol.relayDomains, this.tx.fromDomain)) return null;
    return 'relaying denied: recipient domain, sender domain and client address not in the relay lists';
  }

  private data(): ClientVerdict {
    if (this.tx.bdatUsed) return this.refuse('bad_state', 'DATA after BDAT', '503 5.5.1 Error: bad sequence of commands\r\n');
    if (!this.policy.holdBody) {
      return this.send({ kind: 'data', release: true }, true);
    }
    // The body is taken from the client and checked before the server sees a DATA.
    if (this.pending.length > 0) {
      this.pending.push({ kind: 'holdData', release: true });
      return { kind: 'forward', keep: true, hold: true };
    }
    const r = this.openHeldData();
    return { kind: 'forward', keep: true, toClient: r.reply, ...(r.ok ? { maxLineLength: this.policy.textLineLength } : {}) };
  }

  private dataLine(line: Buffer, end: number, ending: LineEnding): ClientVerdict {
    const scan = this.scan!;
    const step = scan.line(line, end, ending);
    const cmd = this.policy.commandLineLength;
    if (step.kind === 'line') {
      if (this.held) {
        // Past the process's memory budget and spool: refused (452) at the end of the data.
        if (!step.poison && this.held.append(step.bytes) === 'full') scan.storageFull();
        // A message that will be refused keeps nothing (release() is idempotent).
        if (scan.poison) this.held.release();
        return { kind: 'forward', keep: true };
      }
      if (step.poison) return { ...this.refuse(step.poison.code, step.poison.reason, '554 5.6.0 Error: message refused\r\n'), close: true };
      // A rebuilt line (bare LF normalised, a lone "." stuffed) goes in place of the one received.
      return step.bytes === line ? FORWARD : { kind: 'forward', keep: true, toServer: [step.bytes] };
    }
    // The end of the data.
    const tx = this.tx;
    const envelope = this.txNote(tx);
    const held = this.held;
    this.scan = null;
    this.held = null;
    this.resetTx();
    if (!held) return this.send({ kind: 'dot', release: true, tx, size: scan.size }, true, cmd);
    if (scan.poison) {
      held.release();
      // Discarded: the server saw no DATA; RSET ends its transaction and its reply is ours.
      this.pending.push({ kind: 'wRset', release: true });
      return { ...this.refuse(scan.poison.code, scan.poison.reason, scan.poison.reply, false, envelope), toServer: [RSET], hold: true };
    }
    this.pending.push({ kind: 'wData', release: false, body: held.take(CRLF_DOT_CRLF) }, { kind: 'wDot', release: true, tx, size: scan.size });
    return { kind: 'forward', keep: true, toServer: [DATA], hold: true, maxLineLength: cmd };
  }

  private authLine(line: Buffer, end: number, ending: LineEnding): ClientVerdict {
    const bad = checkLine(this.options, line, end, ending);
    if (bad && bad.kind === 'refuse') return this.cancelAuth(bad.code, bad.reason);
    if (!(end === 1 && line[0] === 0x2a) && !isBase64(line, 0, end)) return this.cancelAuth('bad_argument', 'AUTH response is not base64');
    if (this.plainResponseNext) {
      this.plainResponseNext = false;
      this.loginUser = end === 1 && line[0] === 0x2a ? null : plainAuthcid(line, 0, end);
    }
    // The whole line is a credential (a SASL response): the log shows none of it.
    return { ...this.send({ kind: 'auth', release: true }, true), secret: 'line' };
  }

  /** AUTH PLAIN went without an initial response: the next response line names the user. */
  private plainResponseNext = false;

  /** Remembers the authcid of an AUTH PLAIN (initial response, or the response line that follows). */
  private noteUser(line: Buffer, argStart: number, end: number): void {
    this.loginUser = null;
    this.plainResponseNext = false;
    const sp = line.indexOf(0x20, argStart);
    const mechEnd = sp >= 0 && sp < end ? sp : end;
    if (!isPlainMechanism(line, argStart, mechEnd)) return;
    if (mechEnd < end) this.loginUser = plainAuthcid(line, mechEnd + 1, end);
    else this.plainResponseNext = true;
  }

  /** A bad AUTH response is not forwarded; "*" cancels the exchange and the server's answer to it is ours. */
  private cancelAuth(code: RefusalCode, reason: string): ClientVerdict {
    this.pending.push({ kind: 'wCancel', release: true });
    return { ...this.refuse(code, reason, '501 5.5.2 Error: bad AUTH response, exchange cancelled\r\n', 'line'), toServer: [CANCEL], hold: true };
  }
}
