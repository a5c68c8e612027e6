import { beginsWithAnyCI, verbOf } from '../../core/bytes.js';
import type { LineEnding } from '../../core/framer.js';
import type { ClientVerdict, ProtocolOptions, ProtocolSession, RefusalCode, Secrecy, ServerVerdict, WrapperReply } from '../../core/protocol.js';
import { isPlainMechanism, plainAuthcid } from '../../core/sasl.js';
import { checkLine } from '../generic.js';
import { COMMANDS, MAX_VERB, isBase64, type Pop3State } from './commands.js';
import { ReplyTracker, type Completed, type Expected } from './replies.js';

/** The one answer to every failed login, whatever the server said (Dovecot's own words). */
export const AUTH_FAILED = Buffer.from('-ERR [AUTH] Authentication failed.\r\n');
/** The answer to a USER the server refused: the client learns nothing before its password. */
const USER_OK = Buffer.from('+OK\r\n');
/** Cancels a SASL exchange whose client line was refused (RFC 5034 section 4). */
const SASL_CANCEL = Buffer.from('*\r\n');

/**
 * Commands sent but not answered (pipelining, RFC 2449). More than this and
 * client lines wait until replies come: a client cannot make the wrapper
 * remember an endless list of owed replies.
 */
export const MAX_PENDING = 64;

/** The go-ahead for STLS (RFC 2595 section 4). */
const STLS_GO_AHEAD = Buffer.from('+OK Begin TLS negotiation\r\n');
/** Commands refused before TLS when tls = require. */
const CREDENTIAL_KINDS: ReadonlySet<string> = new Set(['user', 'pass', 'apop', 'auth']);

/** Verbs whose arguments are credentials. */
const CREDENTIAL_VERBS = ['PASS', 'APOP', 'AUTH'];

const err = (text: string): Buffer => Buffer.from(`-ERR ${text}\r\n`);

const REPLIES: Readonly<Record<WrapperReply, Buffer>> = {
  unavailable: err('[SYS/TEMP] service temporarily unavailable'),
  timeout: err('session timed out'),
  too_many_violations: err('too many invalid commands'),
  shutdown: err('server shutting down'),
};

export interface Pop3Limits {
  /** TLS toward the client (SessionContext.tls). */
  readonly tls: 'none' | 'implicit' | 'starttls' | 'require';
  /** A session piped in by hand (SessionContext.piped): every command waits for its reply. */
  readonly piped?: boolean;
  readonly maxLoginAttempts: number;
  /** Line limit while an AUTH exchange runs: SASL responses (GSSAPI) outgrow 255 octets. */
  readonly maxAuthLineLength: number;
}

/**
 * One POP3 client (RFC 1939, 2449, 5034). Phases follow the server's
 * replies: +OK to PASS, APOP or AUTH moves to TRANSACTION; a "+ " challenge
 * makes the next client line a SASL response; QUIT ends forwarding. A line
 * whose meaning depends on the reply (USER, PASS, APOP, AUTH and SASL lines)
 * is held until the reply came. Failed logins are counted on the server's
 * -ERR and answered alike; at maxLoginAttempts the session closes.
 */
export class Pop3Session implements ProtocolSession {
  private phase: Pop3State = 'authorization';
  /** The server's answer to the last USER: PASS is legal only after one. 'faked': refused, answered +OK by us. */
  private user: 'none' | 'accepted' | 'faked' = 'none';
  private failures = 0;
  /**
   * The name the login in flight tried (USER's, APOP's, a PLAIN authcid), for
   * the log of a failed login; never a password. Credential commands are held
   * until their reply, so there is one login in flight at most.
   */
  private loginUser: string | null = null;
  /** AUTH PLAIN went without an initial response: the next SASL line names the user. */
  private plainResponseNext = false;
  /** A failed login seen in the server bytes being judged (reported in their verdict). */
  private failedNow: { readonly user: string | null } | null = null;
  /** The client is held: no more lines until release. */
  private holding = false;
  /** The line limit the framer has now (raised during AUTH). */
  private framerMax: number;
  private readonly tracker = new ReplyTracker({ kind: 'greeting', multi: false, held: false });
  private readonly strict: ProtocolOptions;
  /** The client side runs inside TLS (implicit, or after STLS). */
  private secure: boolean;

  constructor(
    private readonly options: ProtocolOptions,
    private readonly limits: Pop3Limits,
  ) {
    // RFC 1939: only CRLF ends a line; NUL and bare CR never belong in a command.
    this.strict = { ...options, lineEnding: 'crlf', allowNul: false, allowBareCr: false, forwardUnterminated: false };
    this.framerMax = options.maxLineLength;
    this.secure = limits.tls === 'implicit';
    this.tracker.offerStls = this.offersStls;
  }

  /** The wrapper offers STLS (RFC 2595) itself, until TLS is on. */
  private get offersStls(): boolean {
    return !this.secure && (this.limits.tls === 'starttls' || this.limits.tls === 'require');
  }

  get state(): Pop3State {
    return this.phase;
  }

  get failedLogins(): number {
    return this.failures;
  }

  /**
   * SASL responses are hidden whole; in AUTHORIZATION every line but USER may
   * be a (mistyped) password, and PASS, APOP and AUTH carry credentials in
   * any phase: the log shows a known verb only.
   */
  lineSecrecy(line: Buffer, contentEnd: number): Secrecy {
    if (this.phase === 'sasl') return 'line';
    const verb = verbOf(line, 0, contentEnd, MAX_VERB);
    const known = COMMANDS.has(verb);
    // A line that is no command (a stray or retyped password, a SASL response sent behind a
    // refused AUTH) is hidden whole, in any phase.
    if (!known) return 'line';
    // USER shows its name, unless more follows it ("USER alice secret": a password typed on the same line).
    if (verb === 'USER') return line.indexOf(0x20, 5) >= 0 && line.indexOf(0x20, 5) < contentEnd;
    // In AUTHORIZATION every other command shows its verb only; PASS, APOP and AUTH in any phase.
    return this.phase === 'authorization' || beginsWithAnyCI(line, 0, contentEnd, CREDENTIAL_VERBS);
  }

  clientLine(line: Buffer, contentEnd: number, ending: LineEnding): ClientVerdict {
    const bad = this.check(line, contentEnd, ending);
    if (this.phase === 'sasl') {
      if (bad) return this.cancelSasl(bad.code, bad.reason);
      // A SASL response is base64, or "*" to cancel (RFC 5034 section 4).
      const cancel = contentEnd === 1 && line[0] === 0x2a;
      if (!cancel && contentEnd > 0 && !isBase64(line, 0, contentEnd)) return this.cancelSasl('bad_argument', 'SASL response is not base64');
      if (this.plainResponseNext) {
        this.plainResponseNext = false;
        this.loginUser = cancel ? null : plainAuthcid(line, 0, contentEnd);
      }
      return this.forward({ kind: 'sasl', multi: false, held: true, rewriteErr: AUTH_FAILED }, 'line');
    }
    const verb = verbOf(line, 0, contentEnd, MAX_VERB);
    // In AUTHORIZATION any refused line but USER may be a mistyped password: logs show its first word only.
    const secret = this.phase === 'authorization' && verb !== 'USER';
    if (bad) return this.refuse(bad.code, bad.reason, 'invalid line', secret);
    if (contentEnd > this.options.maxLineLength) {
      // The framer's limit was raised for an AUTH exchange that has ended; the POP3 limit applies again.
      return this.refuse('line_too_long', `line longer than ${this.options.maxLineLength} bytes`, 'line too long', secret);
    }
    const spec = COMMANDS.get(verb);
    if (!spec) return this.refuse('unknown_command', 'unknown command', 'unknown command', secret);
    if (spec.kind === 'stls') return this.stls(contentEnd > verb.length);
    if (this.limits.tls === 'require' && !this.secure && CREDENTIAL_KINDS.has(spec.kind)) {
      return this.refuse('policy', `${spec.verb} before TLS (tls = require)`, 'TLS required: use STLS first', spec.secret || secret);
    }
    if (!spec.states.has(this.phase)) return this.refuse('bad_state', `${spec.verb} not valid in ${this.phase}`, 'command not valid in this state', spec.secret || secret);
    if (spec.kind === 'pass' && this.user === 'none') return this.refuse('bad_state', 'PASS without an accepted USER', 'USER first', true);
    const argError = spec.args(line, verb.length, contentEnd);
    if (argError) return this.refuse('bad_argument', `${spec.verb}: ${argError}`, 'invalid arguments', spec.secret || secret);
    if (spec.kind === 'pass' && this.user === 'faked') return this.localLoginFailure();
    const expected: Expected = {
      kind: spec.kind,
      multi: spec.multiline(contentEnd > verb.length),
      held: spec.hold,
      ...(spec.kind === 'user' ? { rewriteErr: USER_OK } : spec.secret ? { rewriteErr: AUTH_FAILED } : {}),
    };
    if (spec.kind === 'quit') this.phase = 'update';
    this.noteUser(spec.kind, line, verb.length, contentEnd);
    return this.forward(expected, spec.secret);
  }

  /**
   * Remembers the name a credential command tries (its arguments passed the
   * table's checks): USER's argument, APOP's first, the authcid of an AUTH
   * PLAIN initial response. PASS keeps USER's.
   */
  private noteUser(kind: Expected['kind'], line: Buffer, verbEnd: number, contentEnd: number): void {
    const args = verbEnd + 1;
    switch (kind) {
      case 'user':
        this.loginUser = line.toString('latin1', args, contentEnd);
        return;
      case 'apop': {
        const sp = line.indexOf(0x20, args);
        this.loginUser = line.toString('latin1', args, sp >= 0 && sp < contentEnd ? sp : contentEnd);
        return;
      }
      case 'auth': {
        this.loginUser = null;
        this.plainResponseNext = false;
        if (args >= contentEnd) return;
        const sp = line.indexOf(0x20, args);
        const mechEnd = sp >= 0 && sp < contentEnd ? sp : contentEnd;
        if (!isPlainMechanism(line, args, mechEnd)) return;
        if (mechEnd < contentEnd) this.loginUser = plainAuthcid(line, mechEnd + 1, contentEnd);
        else this.plainResponseNext = true;
        return;
      }
      default:
        return;
    }
  }

  /**
   * STLS (RFC 2595), answered by the wrapper: only in AUTHORIZATION before a
   * USER, with no reply owed (so no server byte can land inside the
   * handshake). After it the session starts over in AUTHORIZATION.
   */
  private stls(hasArgs: boolean): ClientVerdict {
    if (!this.offersStls) return this.refuse('not_supported', this.secure ? 'STLS inside TLS' : 'STLS is not offered (tls = none)', 'STLS not available', false);
    if (hasArgs) return this.refuse('bad_argument', 'STLS takes no argument', 'invalid arguments', false);
    if (this.phase !== 'authorization' || this.user !== 'none') return this.refuse('bad_state', 'STLS after USER or outside AUTHORIZATION', 'command not valid in this state', false);
    if (this.tracker.pending > 0) return this.refuse('pipelining', 'STLS with replies outstanding', 'STLS must be sent alone', false);
    this.secure = true;
    this.tracker.offerStls = false;
    return { kind: 'forward', keep: true, toClient: STLS_GO_AHEAD, startTls: true };
  }

  clientOverlong(): ClientVerdict {
    if (this.phase === 'sasl') return this.cancelSasl('line_too_long', `SASL line longer than ${this.framerMax} bytes`);
    // The head in the log may be a password: show the first word only.
    return this.refuse('line_too_long', `line longer than ${this.framerMax} bytes`, 'line too long', true);
  }

  serverEnd(): readonly Buffer[] {
    return this.tracker.end();
  }

  serverData(chunk: Buffer): ServerVerdict {
    const { out, done } = this.tracker.feed(chunk);
    let close = false;
    for (const c of done) close = this.completed(c) || close;
    const loginFailed = this.failedNow;
    this.failedNow = null;
    let maxLineLength: number | undefined;
    const want = this.phase === 'sasl' ? this.limits.maxAuthLineLength : this.options.maxLineLength;
    if (want !== this.framerMax) {
      this.framerMax = want;
      maxLineLength = want;
    }
    let release = false;
    if (this.holding && !this.tracker.awaitingHeld && this.tracker.pending < MAX_PENDING) {
      this.holding = false;
      release = true;
    }
    return {
      toClient: out,
      ...(release ? { release } : {}),
      ...(close ? { close } : {}),
      ...(maxLineLength !== undefined ? { maxLineLength } : {}),
      ...(loginFailed ? { loginFailed } : {}),
    };
  }

  reply(kind: WrapperReply): Buffer {
    return REPLIES[kind];
  }

  /** The checks every protocol makes (generic.ts), with POP3's fixed CRLF / no NUL / no bare CR. */
  private check(line: Buffer, contentEnd: number, ending: LineEnding): { code: RefusalCode; reason: string } | null {
    const v = checkLine(this.strict, line, contentEnd, ending);
    return v?.kind === 'refuse' ? { code: v.code, reason: v.reason } : null;
  }

  /** Applies one complete server reply; returns true when the session must close. */
  private completed(c: Completed): boolean {
    const { expected: e, outcome } = c;
    switch (e.kind) {
      case 'user':
        this.user = outcome === 'ok' ? 'accepted' : c.rewritten ? 'faked' : 'none';
        return false;
      case 'pass':
      case 'apop':
      case 'auth':
      case 'sasl':
        if (outcome === 'ok') {
          // Bare AUTH (a mechanism list) logs nobody in.
          if (!e.multi && this.phase !== 'update') this.phase = 'transaction';
          return false;
        }
        if (outcome === 'cont' && (e.kind === 'auth' || e.kind === 'sasl')) {
          this.phase = 'sasl';
          return false;
        }
        if (this.phase === 'sasl') this.phase = 'authorization';
        this.user = 'none';
        // The server refused the credentials: a failed login for the log (the verdict's loginFailed).
        this.failedNow = { user: this.loginUser };
        this.loginUser = null;
        this.plainResponseNext = false;
        return this.loginFailed();
      case 'greeting':
      case 'plain':
      case 'capa':
      case 'quit':
      case 'stls':
        return false;
      default: {
        const never: never = e.kind;
        throw new Error(`unknown reply kind ${String(never)}`);
      }
    }
  }

  /** Counts a failed login; true when maxLoginAttempts is reached. */
  private loginFailed(): boolean {
    this.failures++;
    return this.failures >= this.limits.maxLoginAttempts;
  }

  /** PASS after a USER the server refused: answered here, as a wrong password would be. */
  private localLoginFailure(): ClientVerdict {
    this.user = 'none';
    const user = this.loginUser;
    this.loginUser = null;
    const close = this.loginFailed();
    return { ...this.refuse(close ? 'too_many_logins' : 'policy', 'PASS for a user the server refused', AUTH_FAILED, true, close), loginFailed: { user } };
  }

  private forward(e: Expected, secret: boolean | 'line'): ClientVerdict {
    this.tracker.expect(e);
    const hold = e.held || this.limits.piped === true || this.tracker.pending >= MAX_PENDING;
    if (hold) this.holding = true;
    return { kind: 'forward', ...(hold ? { hold } : {}), ...(secret ? { secret } : {}) };
  }

  /**
   * A refusal. Its -ERR must answer the refused line in order: when replies
   * to earlier pipelined lines are still owed, it is queued behind them.
   */
  private refuse(code: RefusalCode, reason: string, text: string | Buffer, secret: boolean, close = false): Extract<ClientVerdict, { kind: 'refuse' }> {
    const reply = typeof text === 'string' ? err(text) : text;
    const queued = !close && this.tracker.inject(reply);
    // Queued replies count as owed: a flood of refused lines behind a slow reply waits too.
    const hold = queued && this.tracker.pending >= MAX_PENDING;
    if (hold) this.holding = true;
    return { kind: 'refuse', code, reason, ...(queued ? {} : { reply }), ...(secret ? { secret } : {}), ...(close ? { close } : {}), ...(hold ? { hold } : {}) };
  }

  /**
   * A bad line inside an AUTH exchange: the server still waits for a response,
   * so the wrapper cancels the exchange ("*") and the server's -ERR is the answer.
   */
  private cancelSasl(code: RefusalCode, reason: string): ClientVerdict {
    this.tracker.expect({ kind: 'sasl', multi: false, held: true, rewriteErr: AUTH_FAILED });
    this.holding = true;
    return { kind: 'refuse', code, reason, toServer: [SASL_CANCEL], hold: true, secret: 'line' };
  }
}
