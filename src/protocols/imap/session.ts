import type { LineEnding } from '../../core/framer.js';
import type { ClientVerdict, ProtocolOptions, ProtocolSession, RefusalCode, Secrecy, ServerVerdict, WrapperReply } from '../../core/protocol.js';
import { beginsWithAnyCI } from '../../core/bytes.js';
import { isPlainMechanism, plainAuthcid } from '../../core/sasl.js';
import { checkLine } from '../generic.js';
import { NO_CAPABILITIES, type CapabilityFlags } from './capability.js';
import { COMMANDS, MAX_VERB_LENGTH, UID_COMMANDS, advertised, type CommandDef, type ImapState } from './commands.js';
import { ArgParser } from './grammar-core.js';
import { ServerScanner, type ServerResponse } from './server.js';
import { atomEnd, EOL, firstAstring, isBase64, MAX_PAREN_DEPTH, newScan, nonSyncAtEnd, scanComplete, scanTag, tokenize, type LiteralSpec, type ScanState, type Token } from './syntax.js';

/** RFC 7888: LITERAL- (and IMAP4rev2) allow non-synchronizing literals up to this size. */
export const LITERAL_MINUS_MAX = 4096;
/**
 * Refusal replies waiting for the server to reach the end of a response (a
 * reply must never land inside a FETCH literal). More than this many
 * pipelined refusals while the server is mid-response close the session.
 */
const MAX_QUEUED_REPLIES = 32;
/**
 * Commands sent and not yet answered by a tagged response. Each tag in flight
 * is unique, so a tagged answer is matched to its own command (a reused tag
 * would let a BAD to one command hide a failed LOGIN, or an OK count as a
 * login). The bound keeps the set of remembered tags small: at the bound the
 * client is no longer read (backpressure) until a tagged answer comes, so a
 * legal burst of any length goes through, just not all at once.
 */
export const MAX_IN_FLIGHT = 128;

/** Dovecot's imap-login line limit (IMAP_LOGIN_MAX_LINE_LENGTH). */
export const PRE_LOGIN_LIMIT = 8192;
/** Bytes below the server's limit at which the wrapper refuses a command. */
export const SERVER_LIMIT_MARGIN = 64;

export interface ImapLimits {
  /** TLS toward the client (SessionContext.tls). */
  readonly tls: 'none' | 'implicit' | 'starttls' | 'require';
  readonly maxLoginAttempts: number;
  readonly maxLiteralSize: number;
  readonly maxCommandSize: number;
  /** The server's own limit on one command, literals included (Dovecot imap_max_line_length). */
  readonly serverCommandLimit: number;
}

/**
 * Where the client's byte stream is:
 *   command:  a new command starts with the next line
 *   rest:     the line after a literal goes on with the same command
 *   auth:     AUTHENTICATE: the server asked for a SASL response line
 *   idle:     IDLE is active: only DONE may follow
 */
type Mode = 'command' | 'rest' | 'auth' | 'idle';

/** What a held client waits for from the server. */
interface Wait {
  /** literal: '+' or the tagged answer; auth/idle: '+' or the tagged answer; tagged: the tagged answer. */
  readonly kind: 'literal' | 'auth' | 'idle' | 'tagged';
  readonly tag: string;
  readonly cmd: CommandDef;
}

/** The command being read (it spans lines when it carries literals). */
interface Current {
  readonly tag: string;
  readonly cmd: CommandDef;
  readonly scan: ScanState;
  /** The command's argument grammar, fed token by token (null for a SASL exchange). */
  readonly parser: ArgParser | null;
  size: number;
  /**
   * Bytes the server parses (and counts against its own command limit): the
   * lines and the literals it does not stream (not an APPEND message, a
   * CATENATE TEXT part or a SETMETADATA value).
   */
  counted: number;
  /** The server sent the tagged answer while the command was still being read (APPEND, SETMETADATA). */
  answered?: boolean;
}

/** Commands whose arguments are credentials. */
const SECRET_VERBS = ['LOGIN', 'AUTHENTICATE'];

const crlf = (s: string) => Buffer.from(`${s}\r\n`, 'latin1');

/** The wrapper's own words, as untagged BYE (the connection closes after each). */
const WRAPPER_REPLIES: Readonly<Record<WrapperReply, string>> = {
  unavailable: '* BYE Server unavailable, try again later',
  timeout: '* BYE Autologout; idle for too long',
  too_many_violations: '* BYE Too many invalid commands',
  shutdown: '* BYE Server shutting down',
};

/**
 * One IMAP client connection (RFC 9051, RFC 3501). Pure: it sees client
 * lines and server bytes and answers with verdicts. The state follows the
 * server's tagged answers to the commands that change it; the client is held
 * after such a command until that answer, and after a synchronizing literal
 * until the server's '+'.
 */
export class ImapSession implements ProtocolSession {
  private st: ImapState = 'not_authenticated';
  private mode: Mode = 'command';
  private wait: Wait | null = null;
  private cur: Current | null = null;
  private idleTag = '';
  private failures = 0;
  /**
   * The name the login in flight tried (LOGIN's first argument, a PLAIN
   * authcid), for the log of a failed login; never a password. LOGIN and
   * AUTHENTICATE are held until their tagged answer: one in flight at most.
   */
  private loginUser: string | null = null;
  /** AUTHENTICATE PLAIN went without an initial response: the next SASL line names the user. */
  private plainResponseNext = false;
  /** A failed login seen in the server bytes being judged (reported in their verdict). */
  private failedNow: { readonly user: string | null } | null = null;
  private caps: CapabilityFlags = NO_CAPABILITIES;
  /** A tagged response has been seen: a PREAUTH now would not be a greeting. */
  private taggedSeen = false;
  private queued: Buffer[] = [];
  /** Tags of commands forwarded and not yet answered (at most MAX_IN_FLIGHT). */
  private readonly inFlight = new Set<string>();
  /** The client is held because MAX_IN_FLIGHT commands await their answers. */
  private capHeld = false;
  /** The client side runs inside TLS (implicit, or after STARTTLS). */
  private secure: boolean;
  private readonly scanner = new ServerScanner();

  constructor(
    private readonly options: ProtocolOptions,
    private readonly limits: ImapLimits,
  ) {
    this.secure = limits.tls === 'implicit';
    this.scanner.addCapabilities = this.ownCapabilities();
  }

  /** The wrapper offers STARTTLS itself (tls = starttls or require) until TLS is on. */
  private get offersStarttls(): boolean {
    return !this.secure && (this.limits.tls === 'starttls' || this.limits.tls === 'require');
  }

  /** What the wrapper adds to the server's capability lists: STARTTLS, and LOGINDISABLED before TLS under require. */
  private ownCapabilities(): string[] {
    if (!this.offersStarttls) return [];
    return this.limits.tls === 'require' ? ['STARTTLS', 'LOGINDISABLED'] : ['STARTTLS'];
  }

  get state(): string {
    return this.mode === 'command' ? this.st : `${this.st}/${this.mode}`;
  }

  /** For tests: bytes the session holds (server head, capability line, queued replies). */
  get bufferedBytes(): number {
    let n = this.scanner.bufferedBytes;
    for (const b of this.queued) n += b.length;
    return n;
  }

  // ---- client → server ----------------------------------------------------

  /**
   * Before any verdict: a SASL response, or the line after a LOGIN literal,
   * is hidden whole; a line with no valid tag may be a stray password and is
   * hidden whole; LOGIN and AUTHENTICATE show their tag only.
   */
  lineSecrecy(line: Buffer, contentEnd: number): Secrecy {
    switch (this.mode) {
      case 'auth':
        return 'line';
      case 'rest':
        return this.cur?.cmd.secret === true ? 'line' : false;
      case 'idle':
        return false;
      case 'command': {
        const tagEnd = scanTag(line, contentEnd);
        if (tagEnd < 0) return 'line';
        // LOGIN sent without a tag ("LOGIN alice secret") takes LOGIN for the tag.
        if (beginsWithAnyCI(line, 0, contentEnd, SECRET_VERBS)) return 'line';
        if (beginsWithAnyCI(line, tagEnd + 1, contentEnd, SECRET_VERBS)) return true;
        // Before login any line may be a stray password: the log shows its tag only.
        return this.st === 'not_authenticated';
      }
      default: {
        const never: never = this.mode;
        throw new Error(`unknown IMAP mode ${String(never)}`);
      }
    }
  }

  clientLine(line: Buffer, contentEnd: number, ending: LineEnding): ClientVerdict {
    if (ending === 'none') return { kind: 'refuse', code: 'unterminated', reason: 'input ended inside a command line', secret: 'line' };
    const bad = checkLine(this.options, line, contentEnd, ending);
    switch (this.mode) {
      case 'command':
        return this.command(line, contentEnd, bad);
      case 'rest':
        return this.rest(line, contentEnd, bad);
      case 'auth':
        return this.authResponse(line, contentEnd, bad);
      case 'idle':
        return this.idleLine(line, contentEnd, bad);
      default: {
        const never: never = this.mode;
        throw new Error(`unknown IMAP mode ${String(never)}`);
      }
    }
  }

  clientOverlong(): ClientVerdict {
    // The line was discarded unseen: whether it announced a literal is unknown,
    // so the stream cannot be followed safely any more (Dovecot also disconnects).
    return this.closeWith('line_too_long', `command line longer than ${this.options.maxLineLength} bytes`, '', 'Command line too long');
  }

  private command(line: Buffer, contentEnd: number, bad: ClientVerdict | null): ClientVerdict {
    // A refused line that announced a non-synchronizing literal is followed by
    // the literal's bytes at once: they cannot be told from commands, so every
    // refusal of such a line closes the session.
    const lost = nonSyncAtEnd(line, contentEnd);
    const tagEnd = scanTag(line, contentEnd);
    if (tagEnd < 0) {
      // Not a command at all: it may be a stray SASL response or password, so logs show none of it.
      if (bad?.kind === 'refuse') return this.refuse(bad.code, bad.reason, '', 'BAD', 'Invalid line', 'line', lost);
      return this.refuse('bad_syntax', 'no valid tag', '', 'BAD', 'Missing or invalid tag', 'line', lost);
    }
    const tag = line.toString('latin1', 0, tagEnd);
    const verbStart = tagEnd + 1;
    const verbEnd = atomEnd(line, verbStart, contentEnd);
    const verb = verbEnd - verbStart <= MAX_VERB_LENGTH ? line.toString('latin1', verbStart, verbEnd).toUpperCase() : '';
    const secret = verb === 'LOGIN' || verb === 'AUTHENTICATE';
    if (bad?.kind === 'refuse') return this.refuse(bad.code, bad.reason, tag, 'BAD', 'Invalid characters in command', secret, lost);
    if (this.inFlight.has(tag)) return this.refuse('pipelining', 'tag of a command still in progress', tag, 'BAD', 'Tag already in use', secret, lost);
    if (this.inFlight.size >= MAX_IN_FLIGHT) {
      return this.refuse('pipelining', `over ${MAX_IN_FLIGHT} commands in progress`, tag, 'BAD', 'Too many commands in progress', secret, lost);
    }
    const v = this.judge(line, contentEnd, tag, verbEnd, verb, secret, lost);
    // A command the wrapper answered itself (STARTTLS) is not in flight.
    if (v.kind === 'forward' && !v.keep) this.inFlight.add(tag);
    return v;
  }

  /** The command after its tag: table lookup, state, capability, arguments. */
  private judge(line: Buffer, contentEnd: number, tag: string, wordEnd: number, word: string, secret: boolean, lost: boolean): ClientVerdict {
    let verbEnd = wordEnd;
    let verb = word;
    if (verbEnd < contentEnd && line[verbEnd] !== 0x20) verb = '';
    let cmd = COMMANDS.get(verb);
    if (cmd && verb === 'UID') {
      const subStart = verbEnd + 1;
      const subEnd = verbEnd < contentEnd ? atomEnd(line, subStart, contentEnd) : subStart;
      const sub = subEnd - subStart <= MAX_VERB_LENGTH ? line.toString('latin1', subStart, subEnd).toUpperCase() : '';
      cmd = subEnd < contentEnd && line[subEnd] !== 0x20 ? undefined : UID_COMMANDS.get(sub);
      verbEnd = subEnd;
    }
    if (!cmd) return this.refuse('unknown_command', 'unknown command', tag, 'BAD', 'Unknown command', false, lost);
    if (cmd.name === 'STARTTLS' && this.offersStarttls) return this.starttls(tag, verbEnd < contentEnd, lost);
    if (cmd.unsupported) return this.refuse('not_supported', `${cmd.name} not supported`, tag, 'BAD', cmd.unsupported, false, lost);
    if (cmd.requires && !advertised(cmd.requires, this.caps.names)) {
      return this.refuse('unknown_command', `${cmd.name}: the server did not advertise ${cmd.requires[0]!}`, tag, 'BAD', 'Unknown command', false, lost);
    }
    if (!cmd.states.includes(this.st)) {
      return this.refuse('bad_state', `${cmd.name} not allowed in state ${this.st}`, tag, 'BAD', 'Command not allowed in this state', secret, lost);
    }
    if ((cmd.effect === 'login' || cmd.effect === 'authenticate') && this.limits.tls === 'require' && !this.secure) {
      return this.refuse('policy', `${cmd.name} before TLS (tls = require)`, tag, 'NO', '[PRIVACYREQUIRED] Use STARTTLS first', true, lost);
    }
    if (cmd.effect === 'login' && this.caps.loginDisabled) {
      return this.refuse('policy', 'LOGIN while the server advertises LOGINDISABLED', tag, 'NO', '[PRIVACYREQUIRED] LOGIN is disabled', true, lost);
    }
    const c: Current = { tag, cmd, scan: newScan(), parser: this.parserFor(cmd), size: line.length, counted: line.length };
    if (cmd.effect === 'login' || cmd.effect === 'authenticate') this.noteUser(cmd.effect, line, verbEnd, contentEnd);
    if (verbEnd < contentEnd) {
      if (verbEnd + 1 === contentEnd) return this.refuse('bad_syntax', `${cmd.name}: trailing space`, tag, 'BAD', 'Invalid arguments', secret, lost);
      const r = this.feedLine(c, line, verbEnd + 1, contentEnd);
      if (r.error) return this.refuse(r.code, `${cmd.name}: ${r.error}`, tag, 'BAD', r.text, secret, lost);
      if (r.literal) return this.literal(c, r.literal, true);
    }
    const end = c.parser!.feed(EOL);
    if (end) return this.refuse(end.code, `${cmd.name}: ${end.reason}`, tag, 'BAD', end.text, secret);
    if (cmd.effect === 'authenticate') {
      // SASL-IR (RFC 4959): the initial response is base64 or '='.
      const sp = line.indexOf(0x20, verbEnd + 1);
      if (sp >= 0 && sp < contentEnd && !isBase64(line, sp + 1, contentEnd)) {
        return this.refuse('bad_argument', 'initial response is not base64', tag, 'BAD', 'Invalid initial response', true);
      }
    }
    if (line.length > this.limits.maxCommandSize || line.length > this.serverLimit()) {
      return this.refuse('too_large', `${cmd.name}: command over the size limit`, tag, 'BAD', 'Command too large', secret);
    }
    return this.complete(tag, cmd, true);
  }

  /**
   * STARTTLS (RFC 9051 6.2.1), answered by the wrapper: only with nothing in
   * flight and the server at a response boundary, so no server byte can land
   * inside the handshake. Afterwards the capabilities the wrapper knew are
   * forgotten (the client re-reads them; RFC 9051 says it must).
   */
  private starttls(tag: string, hasArgs: boolean, lost: boolean): ClientVerdict {
    if (hasArgs) return this.refuse('bad_argument', 'STARTTLS takes no argument', tag, 'BAD', 'Too many arguments', false, lost);
    if (this.st !== 'not_authenticated') return this.refuse('bad_state', 'STARTTLS after login', tag, 'BAD', 'Command not allowed in this state', false);
    if (this.inFlight.size > 0 || !this.scanner.atBoundary || this.queued.length > 0) {
      return this.refuse('pipelining', 'STARTTLS with commands in flight', tag, 'BAD', 'STARTTLS must be sent alone', false);
    }
    this.secure = true;
    this.caps = NO_CAPABILITIES;
    this.scanner.addCapabilities = this.ownCapabilities();
    return { kind: 'forward', keep: true, toClient: crlf(`${tag} OK Begin TLS negotiation now`), startTls: true };
  }

  /**
   * The most bytes of one command, literals included, the server reads
   * whole: Dovecot counts them against imap_max_line_length (64 KiB; 8 KiB in
   * imap-login before login) and answers a longer one with a BAD, then reads
   * the rest as commands (skipping to the next LF). A margin below it covers
   * what the server counts differently. Literals the server streams (APPEND
   * messages, CATENATE TEXT parts, SETMETADATA values) are not counted;
   * everything else is, APPEND's mailbox and CATENATE URLs included.
   */
  private serverLimit(): number {
    const limit = this.st === 'not_authenticated' ? Math.min(PRE_LOGIN_LIMIT, this.limits.serverCommandLimit) : this.limits.serverCommandLimit;
    return limit - SERVER_LIMIT_MARGIN;
  }

  private parserFor(cmd: CommandDef): ArgParser {
    return new ArgParser(cmd.grammar, { caps: this.caps.names, maxDepth: MAX_PAREN_DEPTH });
  }

  /**
   * Tokenizes line[start, end) and feeds the tokens to the command's grammar.
   * A literal at the end is returned unfed: literal() checks its kind first.
   */
  private feedLine(c: Current, line: Buffer, start: number, end: number): { error: string | null; code: RefusalCode; text: string; literal: LiteralSpec | null } {
    const toks: Token[] = [];
    const r = tokenize(line, start, end, c.scan, toks);
    if (!r.ok) return { error: r.reason, code: 'bad_syntax', text: 'Invalid arguments', literal: null };
    for (const t of toks) {
      const e = c.parser!.feed(t);
      if (e) return { error: e.reason, code: e.code, text: e.text, literal: null };
    }
    if (!r.literal) {
      const incomplete = scanComplete(c.scan);
      if (incomplete) return { error: incomplete, code: 'bad_syntax', text: 'Invalid arguments', literal: null };
    }
    return { error: null, code: 'bad_syntax', text: '', literal: r.literal };
  }

  /**
   * A literal announced at the end of a line of the current command. It is
   * accepted only where the command's grammar has a string, after every
   * earlier argument parsed (the grammar has seen them all by now).
   */
  private literal(c: Current, lit: LiteralSpec, firstLine: boolean): ClientVerdict {
    const secret: boolean | 'line' = c.cmd.secret === true ? (firstLine ? true : 'line') : false;
    const nonSync = lit.nonSync || lit.minus;
    // Once part of the command has reached the server, a refusal cannot be
    // answered cleanly: the session is closed.
    const close = nonSync || !firstLine;
    if (lit.minus) return this.refuse('literal', 'literal {n-} is not IMAP syntax', c.tag, 'BAD', 'Invalid literal', secret, close);
    const placed = c.parser!.feed({ kind: 'literal', nonSync: lit.nonSync, binary: lit.binary });
    if (placed) return this.refuse(placed.code === 'bad_argument' ? 'bad_argument' : 'literal', `${c.cmd.name}: ${placed.reason}`, c.tag, 'BAD', placed.text, secret, close);
    if (lit.nonSync && c.cmd.syncLiteralsOnly) return this.refuse('literal', `{n+} literal in ${c.cmd.name}`, c.tag, 'BAD', 'Invalid literal', secret, close);
    if (lit.nonSync && !this.caps.literalPlus && !(this.caps.literalMinus && lit.size <= LITERAL_MINUS_MAX)) {
      const why = this.caps.literalMinus ? 'non-synchronizing literal over 4096 octets (LITERAL-)' : 'non-synchronizing literal without LITERAL+';
      return this.refuse('literal', why, c.tag, 'BAD', 'Non-synchronizing literal not allowed', secret, close);
    }
    if (lit.size > this.limits.maxLiteralSize) {
      return this.refuse('too_large', `literal of ${lit.size} octets over maxLiteralSize`, c.tag, 'NO', '[TOOBIG] Literal too large', secret, close);
    }
    if (c.size + lit.size > this.limits.maxCommandSize) {
      return this.refuse('too_large', 'command over maxCommandSize', c.tag, 'NO', '[TOOBIG] Command too large', secret, close);
    }
    if (!c.parser!.literalStreamed && c.counted + lit.size > this.serverLimit()) {
      return this.refuse('too_large', `${c.cmd.name}: command with its literals over the server's limit (serverCommandLimit)`, c.tag, 'NO', '[TOOBIG] Command too large', secret, close);
    }
    if (c.answered && !lit.nonSync) {
      // Answered already: the server sends no '+' and ends the command after "{n}" (Dovecot,
      // cmd-append.c); what the client sends next is a command for both.
      this.cur = null;
      this.mode = 'command';
      return { kind: 'forward', secret };
    }
    c.size += lit.size;
    if (!c.parser!.literalStreamed) c.counted += lit.size;
    this.cur = c;
    this.mode = 'rest';
    if (lit.nonSync) return { kind: 'forward', raw: lit.size, secret };
    this.wait = { kind: 'literal', tag: c.tag, cmd: c.cmd };
    return { kind: 'forward', raw: lit.size, hold: true, secret };
  }

  /** The line after a literal: more arguments, maybe another literal, or the command's end. */
  private rest(line: Buffer, contentEnd: number, bad: ClientVerdict | null): ClientVerdict {
    const c = this.cur!;
    // The line after a LOGIN literal may be the password itself: logs show none of it.
    const secret: boolean | 'line' = c.cmd.secret === true ? 'line' : false;
    if (bad?.kind === 'refuse') return this.closeWith(bad.code, `${bad.reason} (inside a command)`, c.tag, 'Invalid characters in command', secret);
    c.size += line.length;
    if (c.size > this.limits.maxCommandSize) return this.closeWith('too_large', 'command over maxCommandSize', c.tag, 'Command too large', secret);
    c.counted += line.length;
    if (c.counted > this.serverLimit()) {
      return this.closeWith('too_large', `${c.cmd.name}: command over the server's limit (serverCommandLimit)`, c.tag, 'Command too large', secret);
    }
    const r = this.feedLine(c, line, 0, contentEnd);
    if (r.error) return this.closeWith(r.code, `${c.cmd.name}: ${r.error} (after a literal)`, c.tag, r.text, secret);
    if (r.literal) return this.literal(c, r.literal, false);
    const end = c.parser!.feed(EOL);
    if (end) return this.closeWith(end.code, `${c.cmd.name}: ${end.reason} (after a literal)`, c.tag, end.text, secret);
    return this.complete(c.tag, c.cmd, false);
  }

  /** A whole command has been read: forward its last line; hold when its answer changes the state. */
  private complete(tag: string, cmd: CommandDef, firstLine: boolean): ClientVerdict {
    this.cur = null;
    this.mode = 'command';
    const secret: boolean | 'line' = cmd.secret === true ? (firstLine ? true : 'line') : false;
    // A first line's tag joins inFlight once this verdict is returned.
    if (this.inFlight.size + (firstLine ? 1 : 0) >= MAX_IN_FLIGHT) this.capHeld = true;
    const hold = this.capHeld;
    switch (cmd.effect) {
      case undefined:
        return { kind: 'forward', secret, ...(hold ? { hold } : {}) };
      case 'authenticate':
        this.wait = { kind: 'auth', tag, cmd };
        return { kind: 'forward', hold: true, secret };
      case 'idle':
        this.wait = { kind: 'idle', tag, cmd };
        return { kind: 'forward', hold: true };
      case 'login':
      case 'select':
      case 'close':
      case 'logout':
        this.wait = { kind: 'tagged', tag, cmd };
        return { kind: 'forward', hold: true, secret };
      default: {
        const never: never = cmd.effect;
        throw new Error(`unknown IMAP effect ${String(never)}`);
      }
    }
  }

  /** A SASL response line (RFC 9051 6.2.2): base64, or '*' to cancel. */
  private authResponse(line: Buffer, contentEnd: number, bad: ClientVerdict | null): ClientVerdict {
    const c = this.cur!;
    if (bad?.kind === 'refuse') return this.closeWith(bad.code, `${bad.reason} (SASL response)`, c.tag, 'Invalid SASL response', 'line');
    const cancel = contentEnd === 1 && line[0] === 0x2a;
    if (!cancel && !isBase64(line, 0, contentEnd)) return this.closeWith('bad_syntax', 'SASL response is not base64', c.tag, 'Invalid SASL response', 'line');
    if (this.plainResponseNext) {
      this.plainResponseNext = false;
      this.loginUser = cancel ? null : plainAuthcid(line, 0, contentEnd);
    }
    this.wait = { kind: 'auth', tag: c.tag, cmd: c.cmd };
    return { kind: 'forward', hold: true, secret: 'line' };
  }

  /**
   * Remembers the name a LOGIN or AUTHENTICATE tries, from its first line:
   * LOGIN's first argument when it is an atom or a quoted string (a literal
   * gives null), the authcid of a PLAIN initial response (SASL-IR).
   */
  private noteUser(effect: 'login' | 'authenticate', line: Buffer, verbEnd: number, contentEnd: number): void {
    this.loginUser = null;
    this.plainResponseNext = false;
    const args = verbEnd + 1;
    if (args >= contentEnd) return;
    if (effect === 'login') {
      this.loginUser = firstAstring(line, args, contentEnd);
      return;
    }
    const sp = line.indexOf(0x20, args);
    const mechEnd = sp >= 0 && sp < contentEnd ? sp : contentEnd;
    if (!isPlainMechanism(line, args, mechEnd)) return;
    if (mechEnd < contentEnd) this.loginUser = plainAuthcid(line, mechEnd + 1, contentEnd);
    else this.plainResponseNext = true;
  }

  /** IDLE is active (RFC 2177): DONE ends it; nothing else may be sent. */
  private idleLine(line: Buffer, contentEnd: number, bad: ClientVerdict | null): ClientVerdict {
    if (bad?.kind === 'refuse') return this.refuse(bad.code, bad.reason, '', 'BAD', 'Expected DONE', false);
    const done = contentEnd === 4 && line.toString('latin1', 0, 4).toUpperCase() === 'DONE';
    if (!done) return this.refuse('bad_state', 'a line other than DONE during IDLE', '', 'BAD', 'Expected DONE', false);
    this.mode = 'command';
    // At the in-flight bound the client waits again after DONE until a slot is free.
    return { kind: 'forward', ...(this.capHeld ? { hold: true } : {}) };
  }

  /**
   * A refusal answered in IMAP form: `TAG BAD text` (or `* BAD` without a
   * valid tag). With close, `* BYE` follows and the session ends. A reply
   * that would land inside a server response waits for its end.
   */
  private refuse(code: RefusalCode, reason: string, tag: string, status: 'BAD' | 'NO', text: string, secret: boolean | 'line', close = false): ClientVerdict {
    if (close) return this.closeWith(code, reason, tag, text, secret, status);
    const reply = crlf(`${tag || '*'} ${status} ${text}`);
    if (this.scanner.atBoundary) return { kind: 'refuse', code, reason, reply, secret };
    if (this.queued.length >= MAX_QUEUED_REPLIES) return this.closeWith('pipelining', 'too many refused commands pipelined', tag, text, secret, status);
    this.queued.push(reply);
    return { kind: 'refuse', code, reason, secret };
  }

  private closeWith(code: RefusalCode, reason: string, tag: string, text: string, secret: boolean | 'line' = true, status: 'BAD' | 'NO' = 'BAD'): ClientVerdict {
    const lines = tag ? [`${tag} ${status} ${text}`, '* BYE Closing connection'] : [`* BYE ${text}`];
    return { kind: 'refuse', code, reason, reply: Buffer.concat([...this.queued.splice(0), ...lines.map(crlf)]), close: true, secret };
  }

  // ---- server → client ----------------------------------------------------

  /** The server closed: held server bytes, then wrapper replies still queued. */
  serverEnd(): readonly Buffer[] {
    return [...this.scanner.end(), ...this.queued.splice(0)];
  }

  serverData(chunk: Buffer): ServerVerdict {
    let release = false;
    let cancelRaw = false;
    let close: string | null = null;
    const onResponse = (r: ServerResponse) => {
      if (r.caps) this.caps = r.caps;
      const a = this.onResponse(r);
      release ||= a.release;
      cancelRaw ||= a.cancelRaw;
      close ??= a.close;
    };
    const atBoundary = () => (this.queued.length > 0 ? this.queued.splice(0) : null);
    const out = this.scanner.feed(chunk, onResponse, atBoundary);
    const loginFailed = this.failedNow;
    this.failedNow = null;
    const failed = loginFailed ? { loginFailed } : {};
    if (this.capHeld && (this.mode === 'command' || this.mode === 'rest')) {
      // Held at the in-flight bound: go on only once a slot is free and no other answer is awaited.
      // (A '+' that starts IDLE or a SASL exchange still releases: DONE and a SASL response are no new commands.)
      if (this.inFlight.size < MAX_IN_FLIGHT && !this.wait) {
        this.capHeld = false;
        release = true;
      } else {
        release = false;
      }
    }
    if (close) {
      return { toClient: [...(out ?? [chunk]), crlf(`* BYE ${close}`)], close: true, ...failed };
    }
    return { toClient: out, release, cancelRaw, ...failed };
  }

  /** close: the BYE text when the session must end. */
  private onResponse(r: ServerResponse): { release: boolean; cancelRaw: boolean; close: string | null } {
    const none = { release: false, cancelRaw: false, close: null };
    const w = this.wait;
    switch (r.kind) {
      case 'continuation':
        // A '+' nothing waits for: the server reads the stream otherwise than the wrapper (it
        // took bytes for a literal the wrapper judged as a command): nothing more can be followed.
        if (!w || w.kind === 'tagged') return { ...none, close: 'Unexpected continuation from the server' };
        this.wait = null;
        if (w.kind === 'auth') {
          this.mode = 'auth';
          this.cur = { tag: w.tag, cmd: w.cmd, scan: newScan(), parser: null, size: 0, counted: 0 };
        } else if (w.kind === 'idle') {
          this.mode = 'idle';
          this.idleTag = w.tag;
        }
        return { ...none, release: true };
      case 'tagged': {
        this.taggedSeen = true;
        this.inFlight.delete(r.tag);
        if (this.mode === 'idle' && r.tag === this.idleTag) this.mode = 'command';
        if (this.mode === 'rest' && this.cur?.tag === r.tag && (!w || w.tag !== r.tag)) {
          // The server answered a command the wrapper is still reading. APPEND and SETMETADATA do
          // that and read on (Dovecot: a mailbox that fails to open, a bad entry name); any other
          // command ended early on the server, which reads what follows as commands.
          if (!this.cur.cmd.answersEarly) return { ...none, close: 'Server ended a command early' };
          this.cur.answered = true;
          return none;
        }
        if (!w || r.tag !== w.tag) return none;
        this.wait = null;
        const cancelRaw = w.kind === 'literal';
        if (cancelRaw || w.kind === 'auth') {
          this.mode = 'command';
          this.cur = null;
        }
        return { release: true, cancelRaw, close: this.applyTagged(w.cmd, r.word) ? 'Too many failed login attempts' : null };
      }
      case 'untagged':
        if (r.word === 'BYE') this.st = 'logout';
        // PREAUTH is a greeting (Dovecot may send "* OK Waiting for authentication..." before it).
        else if (r.word === 'PREAUTH' && !this.taggedSeen && this.st === 'not_authenticated') this.st = 'authenticated';
        return none;
      default: {
        const never: never = r.kind;
        throw new Error(`unknown response kind ${String(never)}`);
      }
    }
  }

  /** The tagged answer to a state-changing command. Returns true when the session must close. */
  private applyTagged(cmd: CommandDef, status: string): boolean {
    switch (cmd.effect) {
      case 'login':
      case 'authenticate':
        if (status === 'OK') this.st = 'authenticated';
        else if (status === 'NO') {
          // The server refused the credentials: a failed login for the log (the verdict's loginFailed).
          this.failedNow = { user: this.loginUser };
          this.loginUser = null;
          if (++this.failures >= this.limits.maxLoginAttempts) return true;
        }
        return false;
      case 'select':
        // A failed SELECT closes the open mailbox; Dovecot deselects on BAD too (QRESYNC not enabled).
        if (status === 'OK') this.st = 'selected';
        else if (status === 'NO' || status === 'BAD') this.st = 'authenticated';
        return false;
      case 'close':
        if (status === 'OK') this.st = 'authenticated';
        return false;
      case 'logout':
        if (status === 'OK') this.st = 'logout';
        return false;
      case 'idle':
      case undefined:
        return false;
      default: {
        const never: never = cmd.effect;
        throw new Error(`unknown IMAP effect ${String(never)}`);
      }
    }
  }

  reply(kind: WrapperReply): Buffer {
    return crlf(WRAPPER_REPLIES[kind]);
  }
}
