import type { ProtocolOptions } from '../../src/core/protocol.js';
import { Pop3Session } from '../../src/protocols/pop3/session.js';
import { Driver } from '../helpers/pop3-driver.js';

/** The options config.ts builds for --protocol pop3 with no flags. */
export function pop3Options(extra: { maxLoginAttempts?: number; maxAuthLineLength?: number; maxLineLength?: number } = {}): ProtocolOptions {
  return {
    maxLineLength: extra.maxLineLength ?? 253,
    lineEnding: 'crlf',
    allowNul: false,
    allowBareCr: false,
    allow: [],
    deny: [],
    forwardUnterminated: false,
    extra: { maxLoginAttempts: extra.maxLoginAttempts ?? 3, maxAuthLineLength: extra.maxAuthLineLength ?? 8192 },
  };
}

export function newDriver(extra: Parameters<typeof pop3Options>[0] = {}, tls: 'none' | 'implicit' | 'starttls' | 'require' = 'none'): Driver {
  const o = pop3Options(extra);
  return new Driver(
    new Pop3Session(o, { tls, maxLoginAttempts: o.extra['maxLoginAttempts'] as number, maxAuthLineLength: o.extra['maxAuthLineLength'] as number }),
    o.maxLineLength,
  );
}

/** One side's bytes, in the order they happen. */
export type Step = readonly ['c' | 's', string];

export interface Scenario {
  readonly name: string;
  readonly steps: readonly Step[];
  /** Expected results, for the unit test; the property tests only compare chunkings. */
  readonly verdicts: readonly string[];
  readonly server: string;
  readonly client: string;
  readonly state: string;
  readonly closed?: boolean;
}

const GREET = '+OK Dovecot ready.\r\n';
const LOGIN: Step[] = [
  ['s', GREET],
  ['c', 'USER alice\r\n'],
  ['s', '+OK\r\n'],
  ['c', 'PASS secret\r\n'],
  ['s', '+OK Logged in.\r\n'],
];
const LOGIN_SERVER = 'USER alice\r\nPASS secret\r\n';
const LOGIN_CLIENT = GREET + '+OK\r\n+OK Logged in.\r\n';

export const SCENARIOS: readonly Scenario[] = [
  {
    name: 'plain login, STAT, RETR whose body looks like status lines, QUIT',
    steps: [...LOGIN, ['c', 'STAT\r\nRETR 1\r\n'], ['s', '+OK 1 40\r\n+OK 40 octets\r\n-ERR not a status\r\n+OK neither\r\n..dot\r\n.\r\n'], ['c', 'QUIT\r\n'], ['s', '+OK Logging out.\r\n']],
    verdicts: ['forward+hold', 'forward+hold', 'forward', 'forward', 'forward'],
    server: LOGIN_SERVER + 'STAT\r\nRETR 1\r\nQUIT\r\n',
    client: LOGIN_CLIENT + '+OK 1 40\r\n+OK 40 octets\r\n-ERR not a status\r\n+OK neither\r\n..dot\r\n.\r\n+OK Logging out.\r\n',
    state: 'update',
  },
  {
    name: 'pipelined USER PASS STAT in one chunk: PASS and STAT wait for the replies',
    steps: [['s', GREET], ['c', 'USER alice\r\nPASS secret\r\nSTAT\r\n'], ['s', '+OK\r\n'], ['s', '+OK Logged in.\r\n'], ['s', '+OK 0 0\r\n']],
    verdicts: ['forward+hold', 'forward+hold', 'forward'],
    server: 'USER alice\r\nPASS secret\r\nSTAT\r\n',
    client: GREET + '+OK\r\n+OK Logged in.\r\n+OK 0 0\r\n',
    state: 'transaction',
  },
  {
    name: 'a refused pipelined line is answered in its place, the next one still runs',
    steps: [...LOGIN, ['c', 'STAT\r\nXYZZY\r\nNOOP\r\nRETR x\r\nLIST\r\n'], ['s', '+OK 2 20\r\n+OK\r\n+OK 2 messages\r\n1 10\r\n2 10\r\n.\r\n']],
    verdicts: ['forward+hold', 'forward+hold', 'forward', 'unknown_command', 'forward', 'bad_argument', 'forward'],
    server: LOGIN_SERVER + 'STAT\r\nNOOP\r\nLIST\r\n',
    client: LOGIN_CLIENT + '+OK 2 20\r\n-ERR unknown command\r\n+OK\r\n-ERR invalid arguments\r\n+OK 2 messages\r\n1 10\r\n2 10\r\n.\r\n',
    state: 'transaction',
  },
  {
    name: 'CAPA: the STLS line is dropped, STLS refused, the rest untouched',
    steps: [['s', GREET], ['c', 'CAPA\r\n'], ['s', '+OK\r\nCAPA\r\nTOP\r\nstls\r\nSTLSX\r\nSASL PLAIN LOGIN\r\nSTLS\r\n.\r\n'], ['c', 'STLS\r\n']],
    verdicts: ['forward', 'not_supported'],
    server: 'CAPA\r\n',
    client: GREET + '+OK\r\nCAPA\r\nTOP\r\nSTLSX\r\nSASL PLAIN LOGIN\r\n.\r\n-ERR STLS not available\r\n',
    state: 'authorization',
  },
  {
    name: 'commands in the wrong state and PASS without USER',
    steps: [['s', GREET], ['c', 'STAT\r\nPASS guess\r\nRETR 1\r\n'], ...LOGIN.slice(1), ['c', 'USER bob\r\nAPOP bob 0123456789abcdef0123456789abcdef\r\n']],
    verdicts: ['bad_state', 'bad_state', 'bad_state', 'forward+hold', 'forward+hold', 'bad_state', 'bad_state'],
    server: LOGIN_SERVER,
    client: GREET + '-ERR command not valid in this state\r\n-ERR USER first\r\n-ERR command not valid in this state\r\n+OK\r\n+OK Logged in.\r\n' + '-ERR command not valid in this state\r\n'.repeat(2),
    state: 'transaction',
  },
  {
    name: 'brute force: the third failed PASS closes the session, the answers are alike',
    steps: [
      ['s', GREET],
      ['c', 'USER alice\r\nPASS a\r\n'],
      ['s', '+OK\r\n'],
      ['s', '-ERR [AUTH] Authentication failed.\r\n'],
      ['c', 'USER nosuch\r\nPASS b\r\n'],
      ['s', '-ERR no such user\r\n'],
      ['c', 'USER alice\r\n'],
      ['s', '+OK\r\n'],
      ['c', 'PASS c\r\nUSER alice\r\nPASS d\r\n'],
      ['s', '-ERR wrong password for alice\r\n'],
    ],
    verdicts: ['forward+hold', 'forward+hold', 'forward+hold', 'policy', 'forward+hold', 'forward+hold'],
    server: 'USER alice\r\nPASS a\r\nUSER nosuch\r\nUSER alice\r\nPASS c\r\n',
    client: GREET + '+OK\r\n-ERR [AUTH] Authentication failed.\r\n+OK\r\n-ERR [AUTH] Authentication failed.\r\n+OK\r\n-ERR [AUTH] Authentication failed.\r\n',
    state: 'authorization',
    closed: true,
  },
  {
    name: 'AUTH PLAIN with a challenge, a SASL line, then TRANSACTION',
    steps: [['s', GREET], ['c', 'AUTH PLAIN\r\n'], ['s', '+ \r\n'], ['c', 'AGFsaWNlAHNlY3JldA==\r\nSTAT\r\n'], ['s', '+OK Logged in.\r\n'], ['s', '+OK 0 0\r\n']],
    verdicts: ['forward+hold', 'forward+hold', 'forward'],
    server: 'AUTH PLAIN\r\nAGFsaWNlAHNlY3JldA==\r\nSTAT\r\n',
    client: GREET + '+ \r\n+OK Logged in.\r\n+OK 0 0\r\n',
    state: 'transaction',
  },
  {
    name: 'a bad SASL line cancels the exchange; the server -ERR answers it, alike',
    steps: [['s', GREET], ['c', 'AUTH PLAIN\r\n'], ['s', '+ \r\n'], ['c', 'not base64!\r\n'], ['s', '-ERR Authentication aborted by client.\r\n'], ['c', 'CAPA\r\n'], ['s', '+OK\r\nUSER\r\n.\r\n']],
    verdicts: ['forward+hold', 'bad_argument+hold', 'forward'],
    server: 'AUTH PLAIN\r\n*\r\nCAPA\r\n',
    client: GREET + '+ \r\n-ERR [AUTH] Authentication failed.\r\n+OK\r\nUSER\r\n.\r\n',
    state: 'authorization',
  },
  {
    name: 'kept response codes: [IN-USE] and [SYS/TEMP] reach the client unchanged',
    steps: [['s', GREET], ['c', 'USER alice\r\n'], ['s', '+OK\r\n'], ['c', 'PASS secret\r\n'], ['s', '-ERR [IN-USE] Mailbox locked\r\n'], ['c', 'USER alice\r\n'], ['s', '-ERR [SYS/TEMP] try later\r\n']],
    verdicts: ['forward+hold', 'forward+hold', 'forward+hold'],
    server: 'USER alice\r\nPASS secret\r\nUSER alice\r\n',
    client: GREET + '+OK\r\n-ERR [IN-USE] Mailbox locked\r\n-ERR [SYS/TEMP] try later\r\n',
    state: 'authorization',
  },
  {
    name: 'bare LF, bare CR, NUL and an unknown verb are refused; a long server line streams through',
    steps: [...LOGIN, ['c', 'STAT\n'], ['c', 'NO\rOP\r\nNO\0OP\r\nretr 1\r\n'], ['s', `+OK\r\n${'x'.repeat(5000)}\r\n.\r\n`]],
    verdicts: ['forward+hold', 'forward+hold', 'bare_lf', 'bare_cr', 'nul_byte', 'forward'],
    server: LOGIN_SERVER + 'retr 1\r\n',
    client: LOGIN_CLIENT + '-ERR invalid line\r\n'.repeat(3) + `+OK\r\n${'x'.repeat(5000)}\r\n.\r\n`,
    state: 'transaction',
  },
];

/** Runs steps on a fresh driver, each step's bytes cut into the given pieces. */
export function run(steps: readonly Step[], cut: (stepIndex: number, bytes: string) => string[] = (_i, b) => [b], extra: Parameters<typeof pop3Options>[0] = {}): Driver {
  const d = newDriver(extra);
  steps.forEach(([side, bytes], i) => {
    for (const piece of cut(i, bytes)) {
      if (side === 'c') d.fromClient(piece);
      else d.fromServer(piece);
    }
  });
  return d;
}
