import { DIGIT, SP } from '../../core/bytes.js';
import { parseEprtArg, parsePortArg } from './address.js';

/**
 * FTP session states, as the wrapper tracks them from the server's replies
 * (RFC 959 section 5.4): before USER; after USER's 331 (only PASS); after
 * PASS's 332 (only ACCT); logged in; after RNFR's 350 (only RNTO); after
 * REST's 350 (a transfer, or the commands that set one up); after QUIT.
 */
export type FtpState = 'login' | 'password' | 'account' | 'ready' | 'rename' | 'restart' | 'closing';

/** What a command means to the session (the rest are plain requests). */
export type CommandKind =
  | 'plain'
  | 'user'
  | 'pass'
  | 'acct'
  | 'quit'
  | 'port'
  | 'eprt'
  | 'pasv'
  | 'epsv'
  | 'feat'
  | 'auth'
  | 'pbsz'
  | 'prot'
  | 'site'
  | 'rnfr'
  | 'rnto'
  | 'rest'
  | 'transfer'
  | 'never';

/** Checks the arguments in line[start, end) (start is just past the verb); returns why they are bad, or null. */
export type ArgCheck = (line: Uint8Array, start: number, end: number) => string | null;

export interface CommandSpec {
  readonly verb: string;
  readonly kind: CommandKind;
  /** States where the command is legal. */
  readonly states: ReadonlySet<FtpState>;
  readonly args: ArgCheck;
  /** The arguments are credentials: logs show the verb only. */
  readonly secret: boolean;
}

/** Bytes that may not appear in an argument: C0 controls and DEL (NUL, CR and IAC are refused before). */
function controlIn(line: Uint8Array, from: number, to: number): boolean {
  for (let i = from; i < to; i++) {
    const b = line[i]!;
    if (b < 0x20 || b === 0x7f) return true;
  }
  return false;
}

/** The text after "VERB ": one SP, then the rest of the line (paths may hold spaces). */
function rest(line: Uint8Array, start: number, end: number, optional: boolean): string | null {
  if (start === end) return optional ? null : 'argument expected';
  if (line[start] !== SP || end - start < 2) return 'argument expected';
  if (controlIn(line, start + 1, end)) return 'control byte in argument';
  return null;
}

const none: ArgCheck = (_l, s, e) => (s === e ? null : 'takes no arguments');
const required: ArgCheck = (l, s, e) => rest(l, s, e, false);
const optional: ArgCheck = (l, s, e) => rest(l, s, e, true);

/** PASS may be empty (anonymous logins without a password); its text is never shown. */
const pass: ArgCheck = (l, s, e) => {
  if (s === e) return null;
  if (l[s] !== SP) return 'argument expected';
  return controlIn(l, s + 1, e) ? 'control byte in argument' : null;
};

/** One word of letters after the verb, upper-cased; null when the argument is not such a word. */
function word(l: Uint8Array, s: number, e: number, max: number): string | null {
  if (l[s] !== SP || e - s < 2 || e - s - 1 > max) return null;
  let w = '';
  for (let i = s + 1; i < e; i++) {
    const b = l[i]!;
    const up = b >= 0x61 && b <= 0x7a ? b - 0x20 : b;
    if (!((up >= 0x41 && up <= 0x5a) || up === 0x2d || DIGIT[b] === 1)) return null;
    w += String.fromCharCode(up);
  }
  return w;
}

const oneOf = (words: readonly string[], what: string): ArgCheck => (l, s, e) => {
  const w = word(l, s, e, 8);
  return w !== null && words.includes(w) ? null : `${what} expected`;
};

function digitsOnly(l: Uint8Array, from: number, to: number, max: number): boolean {
  if (to - from < 1 || to - from > max) return false;
  for (let i = from; i < to; i++) if (DIGIT[l[i]!] !== 1) return false;
  return true;
}

/** A decimal number argument of at most `max` digits (REST STREAM's marker, RFC 3659 section 5.3; PBSZ). */
const number = (max: number): ArgCheck => (l, s, e) => (l[s] === SP && digitsOnly(l, s + 1, e, max) ? null : 'number expected');

/** TYPE A|E [N|T|C], I, L n (RFC 959 section 4.1.2). */
const type: ArgCheck = (l, s, e) => {
  if (l[s] !== SP || e - s < 2) return 'type expected';
  const t = l[s + 1]! & 0xdf;
  if (e - s === 2) return t === 0x41 || t === 0x45 || t === 0x49 ? null : 'type expected';
  if (l[s + 2] !== SP) return 'type expected';
  if (t === 0x4c) return digitsOnly(l, s + 3, e, 3) ? null : 'byte size expected';
  if ((t === 0x41 || t === 0x45) && e - s === 4) {
    const f = l[s + 3]! & 0xdf;
    return f === 0x4e || f === 0x54 || f === 0x43 ? null : 'format expected';
  }
  return 'type expected';
};

/** ALLO n [R m] (RFC 959). */
const allo: ArgCheck = (l, s, e) => {
  if (l[s] !== SP) return 'number expected';
  let i = s + 1;
  while (i < e && l[i] !== SP) i++;
  if (!digitsOnly(l, s + 1, i, 20)) return 'number expected';
  if (i === e) return null;
  if (e - i < 4 || (l[i + 1]! & 0xdf) !== 0x52 || l[i + 2] !== SP || !digitsOnly(l, i + 3, e, 20)) return 'ALLO n [R m] expected';
  return null;
};

const port: ArgCheck = (l, s, e) => {
  if (l[s] !== SP) return 'address expected';
  const hp = parsePortArg(l, s + 1, e);
  return typeof hp === 'string' ? hp : null;
};

const eprt: ArgCheck = (l, s, e) => {
  if (l[s] !== SP) return 'address expected';
  const hp = parseEprtArg(l, s + 1, e);
  // 'af' (a family other than 1 and 2) is answered with 522 by the session.
  return typeof hp === 'string' && hp !== 'af' ? hp : null;
};

/** EPSV [1|2|ALL] (RFC 2428 section 3). */
const epsv: ArgCheck = (l, s, e) => {
  if (s === e) return null;
  const w = word(l, s, e, 3);
  return w === '1' || w === '2' || w === 'ALL' ? null : 'EPSV [1|2|ALL] expected';
};

/** OPTS UTF8 [ON|OFF] (RFC 2640), OPTS MLST facts (RFC 3659 section 7.9): the options FEAT may list. */
const opts: ArgCheck = (l, s, e) => {
  if (l[s] !== SP || e - s < 2) return 'option expected';
  let i = s + 1;
  while (i < e && l[i] !== SP) i++;
  const name = word(l, s, i, 4);
  if (name === 'UTF8') return i === e || oneOf(['ON', 'OFF'], 'ON or OFF')(l, i, e) === null ? null : 'OPTS UTF8 [ON|OFF] expected';
  if (name === 'MLST') return rest(l, i, e, true);
  return 'OPTS UTF8 or OPTS MLST expected';
};

/** PRET <transfer command> [args]: the verb must be one of the transfers. */
const pret: ArgCheck = (l, s, e) => {
  if (l[s] !== SP || e - s < 2) return 'transfer command expected';
  let i = s + 1;
  while (i < e && l[i] !== SP) i++;
  const verb = word(l, s, i, 4);
  if (verb === null || !['RETR', 'STOR', 'APPE', 'STOU', 'LIST', 'NLST', 'MLSD'].includes(verb)) return 'transfer command expected';
  return rest(l, i, e, true);
};

/** Every state but closing: QUIT is always legal. */
const ALWAYS: ReadonlySet<FtpState> = new Set(['login', 'password', 'account', 'ready', 'rename', 'restart']);
const LOGIN: ReadonlySet<FtpState> = new Set(['login']);
const READY: ReadonlySet<FtpState> = new Set(['ready']);
/** Legal logged in, and between REST and its transfer (setting up the data connection, RFC 3659 section 5.5). */
const READY_OR_RESTART: ReadonlySet<FtpState> = new Set(['ready', 'restart']);
/** Legal before login too (server information; what vsftpd answers before login). */
const INFO: ReadonlySet<FtpState> = new Set(['login', 'ready']);
const NEVER: ReadonlySet<FtpState> = new Set();

function spec(verb: string, kind: CommandKind, states: ReadonlySet<FtpState>, args: ArgCheck, secret = false): CommandSpec {
  return Object.freeze({ verb, kind, states, args, secret });
}

/**
 * The command table: verb → kind, legal states, argument grammar (RFC 959,
 * 775 X-verbs, 2228, 2389, 2428, 3659, 4217). Deny by default: a verb that
 * is not here gets 500 and never reaches the server.
 */
export const COMMANDS: ReadonlyMap<string, CommandSpec> = new Map(
  [
    spec('USER', 'user', LOGIN, required),
    spec('PASS', 'pass', new Set(['password']), pass, true),
    spec('ACCT', 'acct', new Set(['account']), required, true),
    spec('QUIT', 'quit', ALWAYS, none),
    spec('NOOP', 'plain', new Set(['login', 'ready', 'restart']), none),
    spec('FEAT', 'feat', INFO, none),
    spec('HELP', 'plain', INFO, optional),
    spec('SYST', 'plain', INFO, none),
    spec('STAT', 'plain', INFO, optional),
    spec('OPTS', 'plain', INFO, opts),
    spec('AUTH', 'auth', LOGIN, oneOf(['TLS', 'SSL', 'TLS-C', 'TLS-P'], 'TLS or SSL')),
    spec('PBSZ', 'pbsz', INFO, number(10)),
    spec('PROT', 'prot', INFO, oneOf(['C', 'S', 'E', 'P'], 'C, S, E or P')),
    spec('CWD', 'plain', READY, required),
    spec('XCWD', 'plain', READY, required),
    spec('CDUP', 'plain', READY, none),
    spec('XCUP', 'plain', READY, none),
    spec('PWD', 'plain', READY, none),
    spec('XPWD', 'plain', READY, none),
    spec('MKD', 'plain', READY, required),
    spec('XMKD', 'plain', READY, required),
    spec('RMD', 'plain', READY, required),
    spec('XRMD', 'plain', READY, required),
    spec('DELE', 'plain', READY, required),
    spec('SIZE', 'plain', READY, required),
    spec('MDTM', 'plain', READY, required),
    spec('MLST', 'plain', READY, optional),
    spec('SMNT', 'plain', READY, required),
    spec('ALLO', 'plain', READY, allo),
    spec('SITE', 'site', READY, required),
    spec('RNFR', 'rnfr', READY, required),
    spec('RNTO', 'rnto', new Set(['rename']), required),
    spec('REST', 'rest', READY_OR_RESTART, number(20)),
    spec('TYPE', 'plain', READY_OR_RESTART, type),
    spec('STRU', 'plain', READY, oneOf(['F', 'R', 'P'], 'F, R or P')),
    spec('MODE', 'plain', READY, oneOf(['S', 'B', 'C'], 'S, B or C')),
    spec('PORT', 'port', READY_OR_RESTART, port),
    spec('EPRT', 'eprt', READY_OR_RESTART, eprt),
    spec('PASV', 'pasv', READY_OR_RESTART, none),
    spec('EPSV', 'epsv', READY_OR_RESTART, epsv),
    spec('ABOR', 'plain', READY_OR_RESTART, none),
    spec('RETR', 'transfer', READY_OR_RESTART, required),
    spec('STOR', 'transfer', READY_OR_RESTART, required),
    spec('APPE', 'transfer', READY_OR_RESTART, required),
    spec('STOU', 'transfer', READY_OR_RESTART, optional),
    spec('LIST', 'transfer', READY_OR_RESTART, optional),
    spec('NLST', 'transfer', READY_OR_RESTART, optional),
    spec('MLSD', 'transfer', READY_OR_RESTART, optional),
    // PRET (drftpd; curl --ftp-pret): the transfer command to come, announced before PASV.
    spec('PRET', 'plain', READY_OR_RESTART, pret),
    // Would change the session under the wrapper: REIN (back to before login, and out of TLS,
    // RFC 4217 section 13), CCC (the control channel back to plaintext), and the RFC 2228
    // security exchanges the wrapper cannot read (ADAT, MIC, CONF, ENC).
    spec('REIN', 'never', NEVER, none),
    spec('CCC', 'never', NEVER, none),
    spec('ADAT', 'never', NEVER, optional),
    spec('MIC', 'never', NEVER, optional),
    spec('CONF', 'never', NEVER, optional),
    spec('ENC', 'never', NEVER, optional),
  ].map((s) => [s.verb, s]),
);

/** The longest verb in the table. */
export const MAX_VERB = 4;

/** The states after a successful login. */
export const LOGGED_IN_STATES: ReadonlySet<FtpState> = new Set(['ready', 'rename', 'restart']);
