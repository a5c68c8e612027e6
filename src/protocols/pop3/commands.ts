import { ALNUM, DIGIT, SP, VCHAR } from '../../core/bytes.js';

/**
 * POP3 session phases (RFC 1939 section 3), as the wrapper tracks them from
 * the server's replies. 'sasl' is AUTHORIZATION while an AUTH exchange waits
 * for the client's next base64 line (RFC 5034); 'update' follows QUIT: the
 * server is closing and nothing more is forwarded.
 */
export type Pop3State = 'authorization' | 'sasl' | 'transaction' | 'update';

/** What a command means to the tracker of the session (the rest are plain requests). */
export type CommandKind = 'plain' | 'user' | 'pass' | 'apop' | 'auth' | 'capa' | 'quit' | 'stls';

/** Checks the arguments in line[start, end) (start is just past the verb); returns why they are bad, or null. */
export type ArgCheck = (line: Uint8Array, start: number, end: number) => string | null;

export interface CommandSpec {
  readonly verb: string;
  readonly kind: CommandKind;
  /** Phases where the command is legal; empty: never forwarded (STLS). */
  readonly states: ReadonlySet<Pop3State>;
  readonly args: ArgCheck;
  /** Whether a +OK reply is multi-line (ends with a '.' line), given whether arguments were sent. */
  readonly multiline: (hasArgs: boolean) => boolean;
  /** The session state after the command depends on the reply: read no more client lines until it came. */
  readonly hold: boolean;
  /** The arguments are credentials: logs show the verb only. */
  readonly secret: boolean;
}

/** Message numbers and line counts: ten digits hold any mailbox a server numbers (and no overflow tricks). */
const MAX_NUMBER_DIGITS = 10;
/** SASL mechanism names are 20 characters at most (RFC 4422 section 3.1). */
const MAX_MECHANISM = 20;

/** Hex digits (APOP digest). */
const HEX = (() => {
  const t = new Uint8Array(256);
  for (const c of '0123456789abcdefABCDEF') t[c.charCodeAt(0)] = 1;
  return t;
})();

/** The base64 alphabet without padding (RFC 4648 section 4). */
const B64 = (() => {
  const t = new Uint8Array(256);
  for (const c of 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/') t[c.charCodeAt(0)] = 1;
  return t;
})();

/** SASL mechanism name characters (RFC 4422 section 3.1), lower case accepted as clients send it. */
const MECH = (() => {
  const t = new Uint8Array(256);
  for (let b = 0; b < 256; b++) if (ALNUM[b] === 1 || b === 0x2d || b === 0x5f) t[b] = 1;
  return t;
})();

/**
 * Splits line[start, end) into space-separated arguments: each exactly one SP
 * before it, non-empty, visible ASCII only. Returns [from, to) pairs, or null
 * when the grammar is broken (double or trailing space, control or 8-bit byte).
 */
export function splitArgs(line: Uint8Array, start: number, end: number): Array<[number, number]> | null {
  const out: Array<[number, number]> = [];
  let i = start;
  while (i < end) {
    if (line[i] !== SP) return null;
    const from = ++i;
    while (i < end && line[i] !== SP) {
      if (VCHAR[line[i]!] !== 1) return null;
      i++;
    }
    if (i === from) return null;
    out.push([from, i]);
  }
  return out;
}

function isNumber(line: Uint8Array, from: number, to: number, allowZero: boolean): boolean {
  const n = to - from;
  if (n < 1 || n > MAX_NUMBER_DIGITS) return false;
  for (let i = from; i < to; i++) if (DIGIT[line[i]!] !== 1) return false;
  // No leading zeros: "01" is not a message number a server numbered.
  if (line[from] === 0x30) return allowZero && n === 1;
  return true;
}

/** Base64 as RFC 4648 writes it: whole quads, '=' padding only at the end. */
export function isBase64(line: Uint8Array, from: number, to: number): boolean {
  const n = to - from;
  if (n === 0 || n % 4 !== 0) return false;
  let pad = 0;
  if (line[to - 1] === 0x3d) pad = line[to - 2] === 0x3d ? 2 : 1;
  for (let i = from; i < to - pad; i++) if (B64[line[i]!] !== 1) return false;
  return true;
}

const none: ArgCheck = (l, s, e) => (s === e ? null : 'takes no arguments');

function counted(min: number, max: number, each: (line: Uint8Array, args: Array<[number, number]>) => string | null): ArgCheck {
  return (l, s, e) => {
    const args = splitArgs(l, s, e);
    if (!args) return 'malformed arguments';
    if (args.length < min || args.length > max) return min === max ? `takes ${min} argument(s)` : `takes ${min} to ${max} arguments`;
    return each(l, args);
  };
}

const msgOpt = counted(0, 1, (l, a) => (a.length === 0 || isNumber(l, a[0]![0], a[0]![1], false) ? null : 'message number expected'));
const msg = counted(1, 1, (l, a) => (isNumber(l, a[0]![0], a[0]![1], false) ? null : 'message number expected'));
const msgLines = counted(2, 2, (l, a) =>
  !isNumber(l, a[0]![0], a[0]![1], false) ? 'message number expected' : !isNumber(l, a[1]![0], a[1]![1], true) ? 'line count expected' : null,
);
const user = counted(1, 1, () => null);
const apop = counted(2, 2, (l, a) => {
  const [from, to] = a[1]!;
  if (to - from !== 32) return 'digest must be 32 hex digits';
  for (let i = from; i < to; i++) if (HEX[l[i]!] !== 1) return 'digest must be 32 hex digits';
  return null;
});

/** AUTH [mechanism [initial-response]] (RFC 5034; bare AUTH lists mechanisms on some servers). */
const auth = counted(0, 2, (l, a) => {
  if (a.length === 0) return null;
  const [from, to] = a[0]!;
  if (to - from > MAX_MECHANISM) return 'mechanism name too long';
  for (let i = from; i < to; i++) if (MECH[l[i]!] !== 1) return 'bad mechanism name';
  if (a.length === 2) {
    const [rf, rt] = a[1]!;
    // "=" is the empty initial response (RFC 5034 section 4).
    if (!(rt - rf === 1 && l[rf] === 0x3d) && !isBase64(l, rf, rt)) return 'initial response is not base64';
  }
  return null;
});

/**
 * PASS takes the rest of the line (RFC 1939 section 7 lets a password hold
 * spaces): at least one byte, no control bytes. 8-bit bytes pass (UTF-8).
 */
const pass: ArgCheck = (l, s, e) => {
  if (s === e || l[s] !== SP || e - s < 2) return 'password expected';
  for (let i = s + 1; i < e; i++) {
    const b = l[i]!;
    if (b < 0x20 || b === 0x7f) return 'control byte in password';
  }
  return null;
};

const AUTHZ: ReadonlySet<Pop3State> = new Set(['authorization']);
const TRANS: ReadonlySet<Pop3State> = new Set(['transaction']);
const BOTH: ReadonlySet<Pop3State> = new Set(['authorization', 'transaction']);
const NEVER: ReadonlySet<Pop3State> = new Set();
const single = (): boolean => false;
const always = (): boolean => true;
const withoutArgs = (hasArgs: boolean): boolean => !hasArgs;

function spec(
  verb: string,
  kind: CommandKind,
  states: ReadonlySet<Pop3State>,
  args: ArgCheck,
  multiline: (hasArgs: boolean) => boolean = single,
  hold = false,
  secret = false,
): CommandSpec {
  return Object.freeze({ verb, kind, states, args, multiline, hold, secret });
}

/** The command table: verb → kind, legal phases, argument grammar, reply shape. Deny by default. */
export const COMMANDS: ReadonlyMap<string, CommandSpec> = new Map(
  [
    spec('USER', 'user', AUTHZ, user, single, true),
    spec('PASS', 'pass', AUTHZ, pass, single, true, true),
    spec('APOP', 'apop', AUTHZ, apop, single, true, true),
    spec('AUTH', 'auth', AUTHZ, auth, withoutArgs, true, true),
    spec('STAT', 'plain', TRANS, none),
    spec('LIST', 'plain', TRANS, msgOpt, withoutArgs),
    spec('RETR', 'plain', TRANS, msg, always),
    spec('DELE', 'plain', TRANS, msg),
    spec('NOOP', 'plain', TRANS, none),
    spec('RSET', 'plain', TRANS, none),
    spec('TOP', 'plain', TRANS, msgLines, always),
    spec('UIDL', 'plain', TRANS, msgOpt, withoutArgs),
    spec('CAPA', 'capa', BOTH, none, always),
    spec('QUIT', 'quit', BOTH, none),
    // STLS would turn the session into TLS the wrapper cannot read (RFC 2595): refused until TLS is ours.
    spec('STLS', 'stls', NEVER, none),
  ].map((s) => [s.verb, s]),
);

/** The longest verb in the table; longer first words are unknown without a lookup. */
export const MAX_VERB = 4;
