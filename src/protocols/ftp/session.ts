import { verbOf } from '../../core/bytes.js';
import type { DataAnswer, DataOpened, DataRequest } from '../../core/data-channel.js';
import type { LineEnding } from '../../core/framer.js';
import type { ClientVerdict, ProtocolOptions, ProtocolSession, RefusalCode, Secrecy, ServerVerdict, WrapperReply } from '../../core/protocol.js';
import { checkLine } from '../generic.js';
import { addressBytes, ipv4Bytes, sameAddress } from '../../core/ip.js';
import { activeCommand, parse227, parse229, parseEprtArg, parsePortArg, rewriteReply, type ReplyAddress } from './address.js';
import { COMMANDS, LOGGED_IN_STATES, MAX_VERB, type CommandKind, type FtpState } from './commands.js';
import { ReplyTracker, type Expected, type ReplyEvent } from './replies.js';

export interface FtpLimits {
  readonly tls: 'none' | 'implicit' | 'starttls' | 'require';
  readonly maxLoginAttempts: number;
  /** SITE subcommands let through, upper case. */
  readonly siteCommands: ReadonlySet<string>;
  /** The address announced in 227 replies; null: the control connection's local address. */
  readonly pasvAddress: string | null;
  /** PORT / EPRT to a port below this are refused (the bounce attack's favourite targets). */
  readonly minDataPort: number;
}

export interface FtpContext {
  readonly clientAddress: string;
  readonly localAddress: string | null;
}

const line = (s: string): Buffer => Buffer.from(`${s}\r\n`);

const REPLIES: Readonly<Record<WrapperReply, Buffer>> = {
  unavailable: line('421 Service not available, closing control connection.'),
  timeout: line('421 Timeout.'),
  too_many_violations: line('421 Too many invalid commands.'),
  shutdown: line('421 Server shutting down.'),
};

const NOT_LOGGED_IN = '530 Please login with USER and PASS.';
const BAD_SEQUENCE = '503 Bad sequence of commands.';
const BAD_ARGS = '501 Syntax error in parameters or arguments.';
const NO_DATA = line("425 Can't open data connection.");
const CLOSING_AFTER_LOGINS = line('421 Too many failed logins, closing control connection.');

/** Features of a server's FEAT reply that the wrapper follows (RFC 2389); the rest are dropped. */
const KNOWN_FEATURES: ReadonlySet<string> = new Set(['EPRT', 'EPSV', 'MDTM', 'MLST', 'PASV', 'SIZE', 'TVFS', 'UTF8']);

/** Replies owed plus queued refusals; past it the client is read no more until the server answers. */
export const MAX_QUEUED = 64;

/** A name for the log's login_failed: at most this many bytes of it. */
const USER_SHOWN = 64;

function featureName(l: Buffer): string {
  let i = 0;
  while (i < l.length && l[i] === 0x20) i++;
  return verbOf(l, i, l.length - (l[l.length - 2] === 0x0d ? 2 : 1), 8);
}

/** Keeps a FEAT line the wrapper follows: REST only as REST STREAM (RFC 3659 section 5.4). */
function keepFeature(l: Buffer): boolean {
  const name = featureName(l);
  if (name === 'REST') return /* " REST STREAM" */ l.toString('latin1').trim().toUpperCase() === 'REST STREAM';
  return KNOWN_FEATURES.has(name);
}

/**
 * One FTP control connection (RFC 959, 2228, 2389, 2428, 3659, 4217). Every
 * command is held until the first line of its reply, so the state the
 * wrapper judges the next line in is the server's: USER's 331 lets PASS
 * through, 230 logs in, RNFR's 350 lets only RNTO, REST's 350 a transfer. A
 * transfer command is released at its 1xx, so that ABOR and STAT can follow
 * it. PORT / EPRT, PASV / EPSV go through the shell's data relay
 * (src/io/ftp-data.ts): the client gets the wrapper's listener in 227 / 229,
 * the server a PORT / EPRT of the wrapper's own listener.
 */
export class FtpSession implements ProtocolSession {
  private phase: FtpState = 'login';
  private user: string | null = null;
  private failures = 0;
  private holding = false;
  /** The reply whose first line releases the held client; 'data': waiting for the shell's data listener. */
  private heldFor: Expected | 'data' | null = null;
  private readonly tracker: ReplyTracker;
  private readonly strict: ProtocolOptions;
  private secure: boolean;
  private pbsz = false;
  private protP = false;
  private epsvAll = false;
  /** The PASV / EPSV or PORT / EPRT waiting for the shell's listener. */
  private pendingData: { kind: 'pasv' | 'epsv'; text: Buffer; at: ReplyAddress } | { kind: 'active'; eprt: boolean } | null = null;
  /** An active-mode listener waits for the server: the next transfer command arms it (DataRequest 'transfer'). */
  private activeListening = false;
  /** The transfer command that armed the active listener, until its first reply. */
  private armedBy: Expected | null = null;
  /** The reply that disarmed it also released the held client: the shell's answer to the disarm carries the release. */
  private releaseOnDisarm = false;

  constructor(
    private readonly options: ProtocolOptions,
    private readonly limits: FtpLimits,
    private readonly ctx: FtpContext,
  ) {
    // RFC 959 section 4.1: commands end in CRLF (Telnet end of line); NUL and bare CR never belong in one.
    this.strict = { ...options, lineEnding: 'crlf', allowNul: false, allowBareCr: false, forwardUnterminated: false };
    this.secure = limits.tls === 'implicit';
    this.tracker = new ReplyTracker({ kind: 'greeting', held: false }, keepFeature, () => this.ownFeatures());
  }

  get state(): FtpState {
    return this.phase;
  }

  get failedLogins(): number {
    return this.failures;
  }

  private get offersTls(): boolean {
    return !this.secure && (this.limits.tls === 'starttls' || this.limits.tls === 'require');
  }

  private ownFeatures(): Buffer[] {
    if (this.offersTls) return [line(' AUTH TLS'), line(' PBSZ'), line(' PROT')];
    if (this.secure) return [line(' PBSZ'), line(' PROT')];
    return [];
  }

  /** PASS and ACCT in any state; after USER every line may be a mistyped password. */
  lineSecrecy(l: Buffer, contentEnd: number): Secrecy {
    const verb = verbOf(l, 0, contentEnd, MAX_VERB);
    if (this.phase === 'password' || this.phase === 'account') return COMMANDS.has(verb) ? true : 'line';
    return verb === 'PASS' || verb === 'ACCT';
  }

  clientLine(l: Buffer, contentEnd: number, ending: LineEnding): ClientVerdict {
    // Telnet IAC (RFC 854) in a command: the ProFTPD CVE-2010-4221 class of overflows. Nobody sends it today.
    const iac = l.indexOf(0xff);
    if (iac >= 0 && iac < contentEnd) return this.refuse('telnet_iac', `Telnet IAC byte at offset ${iac}`, '500 Telnet commands are not accepted.');
    const bad = checkLine(this.strict, l, contentEnd, ending);
    if (bad?.kind === 'refuse') return this.refuse(bad.code, bad.reason, '500 Syntax error, command unrecognized.');
    const verb = verbOf(l, 0, contentEnd, MAX_VERB);
    const spec = COMMANDS.get(verb);
    if (!spec) return this.refuse('unknown_command', 'unknown command', '500 Unknown command.');
    if (spec.kind === 'never') return this.refuse('not_supported', `${spec.verb} is not supported through the wrapper`, '502 Command not implemented.');
    if (this.limits.tls === 'require' && !this.secure && (spec.kind === 'user' || spec.kind === 'pass' || spec.kind === 'acct')) {
      return this.refuse('policy', `${spec.verb} before TLS (tls = require)`, '530 TLS required: use AUTH TLS first.', spec.secret);
    }
    if (!spec.states.has(this.phase)) {
      const loggedInOnly = this.phase === 'login' && [...spec.states].every((s) => LOGGED_IN_STATES.has(s));
      return this.refuse('bad_state', `${spec.verb} not valid in ${this.phase}`, loggedInOnly ? NOT_LOGGED_IN : BAD_SEQUENCE, spec.secret);
    }
    const argError = spec.args(l, verb.length, contentEnd);
    if (argError) return this.refuse('bad_argument', `${spec.verb}: ${argError}`, BAD_ARGS, spec.secret);
    switch (spec.kind) {
      case 'auth':
        return this.auth();
      case 'pbsz':
        if (!this.secure) return this.refuse('bad_state', 'PBSZ without TLS', '503 PBSZ needs a TLS session (AUTH TLS).');
        this.pbsz = true;
        return this.answer(line('200 PBSZ=0'));
      case 'prot':
        return this.prot(l[verb.length + 1]! & 0xdf);
      case 'site':
        return this.site(l, verb.length + 1, contentEnd);
      case 'port':
      case 'eprt':
        return this.active(l, verb.length + 1, contentEnd, spec.kind === 'eprt');
      case 'pasv':
      case 'epsv':
        return this.passive(spec.kind, l, verb.length, contentEnd);
      case 'user':
        this.user = l.toString('latin1', verb.length + 1, Math.min(contentEnd, verb.length + 1 + USER_SHOWN));
        return this.forward(spec.kind);
      case 'transfer': {
        // The server uses the REST marker on this transfer, whatever it answers.
        if (this.phase === 'restart') this.phase = 'ready';
        const v = this.forward(spec.kind);
        if (!this.activeListening) return v;
        this.activeListening = false;
        this.armedBy = this.heldFor === 'data' ? null : this.heldFor;
        return { ...v, data: { kind: 'transfer' } };
      }
      case 'rnto':
        this.phase = 'ready';
        return this.forward(spec.kind);
      case 'quit':
        this.phase = 'closing';
        return this.forward(spec.kind);
      case 'rest': {
        let zero = true;
        for (let i = verb.length + 1; i < contentEnd; i++) if (l[i] !== 0x30) zero = false;
        return this.forward('rest', false, false, zero);
      }
      case 'plain':
      case 'pass':
      case 'acct':
      case 'feat':
      case 'rnfr':
        return this.forward(spec.kind, spec.secret);
      default: {
        const never: never = spec.kind;
        throw new Error(`unknown command kind ${String(never)}`);
      }
    }
  }

  clientOverlong(): ClientVerdict {
    // The head in the log may be a password: the first word only.
    return this.refuse('line_too_long', `line longer than ${this.options.maxLineLength} bytes`, '500 Command line too long.', true);
  }

  /** AUTH TLS (RFC 4217 section 4): answered by the wrapper, which then runs TLS on the control connection. */
  private auth(): ClientVerdict {
    if (!this.offersTls) return this.refuse('not_supported', this.secure ? 'AUTH inside TLS' : 'AUTH is not offered (tls = none)', '502 AUTH not available.');
    if (this.user !== null) return this.refuse('bad_state', 'AUTH after USER', BAD_SEQUENCE);
    if (this.tracker.pending > 0) return this.refuse('pipelining', 'AUTH with replies outstanding', '503 AUTH must be sent alone.');
    this.secure = true;
    return { kind: 'forward', keep: true, toClient: line('234 Proceed with negotiation.'), startTls: true };
  }

  /** PROT C|P (RFC 4217 section 9): the protection of the wrapper's own data connections toward the client. */
  private prot(level: number): ClientVerdict {
    if (!this.secure) return this.refuse('bad_state', 'PROT without TLS', '503 PROT needs a TLS session (AUTH TLS).');
    if (!this.pbsz) return this.refuse('bad_state', 'PROT before PBSZ', '503 PBSZ first.');
    if (level !== 0x43 && level !== 0x50) return this.refuse('not_supported', 'PROT S or E', '536 Protection level not supported.');
    this.protP = level === 0x50;
    return this.answer(line(`200 Protection level set to ${this.protP ? 'P' : 'C'}.`));
  }

  private site(l: Buffer, from: number, to: number): ClientVerdict {
    let end = from;
    while (end < to && l[end] !== 0x20) end++;
    const sub = verbOf(l, from, end, 16);
    if (!this.limits.siteCommands.has(sub)) return this.refuse('site_command', 'SITE subcommand not in siteCommands', '500 Unknown SITE command.');
    return this.forward('site');
  }

  /**
   * PORT / EPRT: the FTP bounce attack (CVE-1999-0017) makes the server
   * connect to a third party. Only the control client's own address, and
   * ports from minDataPort up, are accepted; the server then gets a PORT /
   * EPRT of the wrapper's own listener (see dataOpened).
   */
  private active(l: Buffer, from: number, to: number, eprt: boolean): ClientVerdict {
    const name = eprt ? 'EPRT' : 'PORT';
    if (this.epsvAll) return this.refuse('bad_state', `${name} after EPSV ALL`, '503 EPSV ALL in effect: use EPSV.');
    const hp = eprt ? parseEprtArg(l, from, to) : parsePortArg(l, from, to);
    if (hp === 'af') return this.refuse('bad_argument', 'EPRT: network protocol not 1 or 2', '522 Network protocol not supported, use (1,2)');
    if (typeof hp === 'string') return this.refuse('bad_argument', `${name}: ${hp}`, BAD_ARGS);
    if (!addressBytes(this.ctx.clientAddress)) return this.refuse('not_supported', `${name} without a client address (piped session)`, NO_DATA);
    if (!sameAddress(hp.host, this.ctx.clientAddress)) return this.refuse('bounce', `${name} to ${hp.host}, not the client's address`, `500 Illegal ${name} command.`);
    if (hp.port < this.limits.minDataPort) return this.refuse('bounce', `${name} to port ${hp.port} (below minDataPort)`, `500 Illegal ${name} command.`);
    this.pendingData = { kind: 'active', eprt };
    this.activeListening = false;
    this.hold('data');
    const data: DataRequest = { kind: 'active', clientHost: this.ctx.clientAddress, clientPort: hp.port, tls: this.protP };
    return { kind: 'forward', keep: true, hold: true, data };
  }

  /** PASV / EPSV: forwarded; the reply is rewritten to the wrapper's listener (see serverData). */
  private passive(kind: 'pasv' | 'epsv', l: Buffer, verbEnd: number, contentEnd: number): ClientVerdict {
    const all = kind === 'epsv' && contentEnd - verbEnd === 4 && (l[verbEnd + 1]! & 0xdf) === 0x41;
    if (kind === 'pasv' && this.epsvAll) return this.refuse('bad_state', 'PASV after EPSV ALL', '503 EPSV ALL in effect: use EPSV.');
    if (!all) {
      if (!this.ctx.localAddress) return this.refuse('not_supported', `${kind.toUpperCase()} without a local address (piped session)`, NO_DATA);
      if (kind === 'pasv' && !ipv4Bytes(this.announced)) return this.refuse('not_supported', 'PASV: no IPv4 address to announce', "425 Can't open data connection: use EPSV.");
    }
    return this.forward(all ? 'plain' : kind, false, all);
  }

  private get announced(): string {
    return this.limits.pasvAddress ?? this.ctx.localAddress ?? '';
  }

  serverEnd(): readonly Buffer[] {
    return this.tracker.end();
  }

  serverData(chunk: Buffer): ServerVerdict {
    const toClient: Buffer[] = [];
    let close = false;
    let loginFailed: { user: string | null } | undefined;
    let data: DataRequest | undefined;
    let disarm = false;
    let rest: Buffer | null = chunk;
    while (rest !== null && rest.length > 0 && !close) {
      const fed = this.tracker.feed(rest);
      toClient.push(...fed.out);
      rest = fed.rest;
      for (const ev of fed.events) {
        if (this.armedBy !== null && ev.expected === this.armedBy) {
          // A 1xx: the server has connected (or is about to). A final reply alone: it never will for this command.
          if (!ev.preliminary) {
            disarm = true;
            this.activeListening = true;
          }
          this.armedBy = null;
        }
        const r = this.completed(ev);
        if (r === 'failed' || r === 'closing') {
          loginFailed = { user: this.user };
          this.user = null;
          if (r === 'closing') {
            // The server's 530 first, then the wrapper's 421 (RFC 959 section 5.4).
            toClient.push(CLOSING_AFTER_LOGINS);
            close = true;
          }
        }
      }
      if (close || rest === null) break;
      // A reply to PASV / EPSV: the shell opens the listener before anything after it is read.
      const last = fed.events[fed.events.length - 1]!;
      const req = this.passiveRequest(last);
      if (req) {
        data = req;
        break;
      }
      // Not a passive-mode reply (a 4xx / 5xx, or a 227 / 229 without a usable address): as it came.
      if (last.text) toClient.push(last.text);
      toClient.push(...this.tracker.flushInjected());
    }
    let release = this.takeRelease();
    if (disarm && !data && !close) {
      // A passive request in the same chunk replaces the listener anyway.
      data = { kind: 'transfer-refused' };
      // The shell answers a data request before it acts on a release: the answer carries it.
      this.releaseOnDisarm = release;
      release = false;
    }
    return {
      toClient,
      ...(release ? { release } : {}),
      ...(close ? { close } : {}),
      ...(loginFailed ? { loginFailed } : {}),
      ...(data ? { data, rest: rest ?? Buffer.alloc(0) } : {}),
    };
  }

  /** The data request a 227 / 229 asks for, or null (then the reply goes out as it is). */
  private passiveRequest(ev: ReplyEvent): DataRequest | null {
    const kind = ev.expected?.kind;
    if (!ev.text || ev.preliminary) return null;
    const at = kind === 'pasv' && ev.code === 227 ? parse227(ev.text) : kind === 'epsv' && ev.code === 229 ? parse229(ev.text) : null;
    if (!at || (kind !== 'pasv' && kind !== 'epsv')) return null;
    this.pendingData = { kind, text: ev.text, at };
    // The shell's new listener replaces an active one still waiting.
    this.activeListening = false;
    this.heldFor = 'data';
    return { kind: 'passive', serverHost: at.host, serverPort: at.port, tls: this.protP };
  }

  dataOpened(result: DataOpened): DataAnswer {
    if (result.kind === 'transfer') return {};
    if (result.kind === 'transfer-refused') {
      const release = this.releaseOnDisarm;
      this.releaseOnDisarm = false;
      return release ? { release } : {};
    }
    const pending = this.pendingData;
    this.pendingData = null;
    if (!pending) return {};
    if (pending.kind === 'active') {
      if (!result.ok) return this.dataFailed(result.reason);
      this.activeListening = true;
      // The server's answer to the wrapper's own PORT / EPRT releases the client.
      const e: Expected = { kind: 'port', held: true };
      this.tracker.expect(e);
      this.heldFor = e;
      return { toServer: [activeCommand(result.host, result.port, pending.eprt)] };
    }
    if (!result.ok) return this.dataFailed(result.reason);
    this.heldFor = null;
    this.holding = false;
    const reply = rewriteReply(pending.text, pending.at, pending.kind === 'pasv' ? this.announced : null, result.port);
    return { toClient: [reply, ...this.tracker.flushInjected()], release: true };
  }

  private dataFailed(reason: string): DataAnswer {
    this.heldFor = null;
    this.holding = false;
    return { toClient: [NO_DATA, ...this.tracker.flushInjected()], release: true, note: `data listener not opened: ${reason}` };
  }

  reply(kind: WrapperReply): Buffer {
    return REPLIES[kind];
  }

  private takeRelease(): boolean {
    if (!this.holding || this.heldFor !== null) return false;
    this.holding = false;
    return true;
  }

  /**
   * One reply line that matters: the first of a 1xx, or a final reply.
   * Returns 'failed' for a refused PASS, 'closing' when that was the last
   * attempt maxLoginAttempts allows.
   */
  private completed(ev: ReplyEvent): 'failed' | 'closing' | null {
    const e = ev.expected;
    if (e && e === this.heldFor) this.heldFor = null;
    if (!e || ev.preliminary) return null;
    const ok = ev.code >= 200 && ev.code < 300;
    switch (e.kind) {
      case 'greeting':
        // A server that needs no login greets with 230 (curl takes it so too).
        if (ev.code === 230) this.phase = 'ready';
        return null;
      case 'user':
        this.phase = ev.code === 331 ? 'password' : ev.code === 332 ? 'account' : ok ? 'ready' : 'login';
        if (this.phase === 'login') this.user = null;
        return null;
      case 'pass':
      case 'acct':
        if (ev.code === 332) this.phase = 'account';
        else if (ok) this.phase = 'ready';
        else {
          this.phase = 'login';
          if (ev.code === 530 && e.kind === 'pass') {
            this.failures++;
            return this.failures >= this.limits.maxLoginAttempts ? 'closing' : 'failed';
          }
          this.user = null;
        }
        return null;
      case 'rnfr':
        this.phase = ev.code === 350 ? 'rename' : 'ready';
        return null;
      case 'rest':
        // REST 0 restarts nothing: the session stays as it was (a probe of REST STREAM).
        if (ev.code === 350) this.phase = e.zero ? 'ready' : 'restart';
        return null;
      case 'plain':
        if (e.all && ok) this.epsvAll = true;
        return null;
      case 'quit':
      case 'port':
      case 'eprt':
      case 'pasv':
      case 'epsv':
      case 'feat':
      case 'auth':
      case 'pbsz':
      case 'prot':
      case 'site':
      case 'rnto':
      case 'transfer':
      case 'never':
      case 'wrapper-port':
        return null;
      default: {
        const never: never = e.kind;
        throw new Error(`unknown reply kind ${String(never)}`);
      }
    }
  }

  private hold(what: Expected | 'data'): void {
    this.holding = true;
    this.heldFor = what;
  }

  /** Forwards the line; the client is held until the first line of its reply. */
  private forward(kind: CommandKind, secret = false, all = false, zero = false): ClientVerdict & { kind: 'forward' } {
    const e: Expected = { kind, held: true, ...(all ? { all } : {}), ...(zero ? { zero } : {}) };
    this.tracker.expect(e);
    this.hold(e);
    return { kind: 'forward', hold: true, ...(secret ? { secret } : {}) };
  }

  /** A reply of the wrapper's own to a command it answers (PBSZ, PROT), in its place in the reply order. */
  private answer(reply: Buffer): ClientVerdict {
    if (this.tracker.inject(reply)) return { kind: 'forward', keep: true };
    return { kind: 'forward', keep: true, toClient: reply };
  }

  /** A refusal, its reply queued behind replies still owed (a transfer's final reply). */
  private refuse(code: RefusalCode, reason: string, text: string | Buffer, secret = false): ClientVerdict {
    const reply = typeof text === 'string' ? line(text) : text;
    const queued = this.tracker.inject(reply);
    // Queued replies count: a flood of refused lines behind a long transfer waits for its end.
    const hold = queued && this.tracker.pending >= MAX_QUEUED;
    if (hold) this.holding = true;
    return { kind: 'refuse', code, reason, ...(queued ? {} : { reply }), ...(secret ? { secret } : {}), ...(hold ? { hold } : {}) };
  }
}
