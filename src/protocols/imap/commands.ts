/**
 * The IMAP command table: verb → states where it is legal, argument count,
 * whether literals may appear, and what the server's tagged answer does to
 * the state. RFC 9051 (IMAP4rev2) and RFC 3501 (IMAP4rev1) commands and the
 * common extensions; anything not listed is refused (deny by default).
 */

/** RFC 9051 section 3. 'logout' also covers a server that said BYE. */
export type ImapState = 'not_authenticated' | 'authenticated' | 'selected' | 'logout';

/**
 * What the command's tagged answer changes; the client is held until that
 * answer so that the next command is judged in the right state.
 *   login/authenticate: OK → authenticated, NO → one failed login
 *   select: OK → selected, NO or BAD → authenticated (a failed SELECT deselects)
 *   close: OK → authenticated
 *   logout: OK → logout
 *   idle: the server's '+' starts IDLE; the client may then send only DONE
 */
export type Effect = 'login' | 'authenticate' | 'select' | 'close' | 'logout' | 'idle';

export interface CommandDef {
  readonly name: string;
  readonly states: readonly ImapState[];
  readonly minArgs: number;
  readonly maxArgs: number;
  /** May the arguments hold literals? */
  readonly literals: boolean;
  readonly effect?: Effect;
  /** The arguments are credentials: logs never show them. */
  readonly secret?: boolean;
  /** Refused whatever the state: the wrapper cannot follow what it would start. */
  readonly unsupported?: string;
  /**
   * An extension command: forwarded only when the server advertised one of
   * these capabilities (a name ending in '=' matches any value). A server
   * that does not know a command answers BAD without reading its {n+}
   * literal (Dovecot does), and would run the literal's bytes as commands.
   */
  readonly requires?: readonly string[];
  /**
   * Arguments past minArgs only when the server advertised one of these
   * (Dovecot 2.3 reads only CREATE's mailbox and leaves a {n+} literal in
   * the parameters unread: its bytes would run as commands).
   */
  readonly moreArgsRequire?: readonly string[];
  /**
   * Only synchronizing literals: Dovecot's pre-login ID parses its list as it
   * reads it and answers BAD ("(a {n+}", deep nesting) with the {n+} literal
   * unread; SETMETADATA streams its values likewise.
   */
  readonly syncLiteralsOnly?: boolean;
}

/** The most arguments a command may have with the capabilities advertised. */
export function maxArgsOf(cmd: CommandDef, names: ReadonlySet<string>): number {
  return cmd.moreArgsRequire && !advertised(cmd.moreArgsRequire, names) ? cmd.minArgs : cmd.maxArgs;
}

/** True when the advertised capabilities satisfy a command's requires list. */
export function advertised(requires: readonly string[], names: ReadonlySet<string>): boolean {
  for (const r of requires) {
    if (!r.endsWith('=')) {
      if (names.has(r)) return true;
      continue;
    }
    for (const n of names) if (n.startsWith(r)) return true;
  }
  return false;
}

const ANY: readonly ImapState[] = ['not_authenticated', 'authenticated', 'selected'];
const NOT_AUTH: readonly ImapState[] = ['not_authenticated'];
const AUTH: readonly ImapState[] = ['authenticated', 'selected'];
const AUTH_ONLY: readonly ImapState[] = ['authenticated'];
const SELECTED: readonly ImapState[] = ['selected'];
const MANY = Number.MAX_SAFE_INTEGER;
/** RFC 9051 appendix E: IMAP4rev2 includes these extensions. */
const REV2 = 'IMAP4REV2';

function def(name: string, states: readonly ImapState[], minArgs: number, maxArgs: number, rest: Partial<CommandDef> = {}): CommandDef {
  return Object.freeze({ name, states, minArgs, maxArgs, literals: maxArgs > 0, ...rest });
}

const QUOTA = ['QUOTA', 'QUOTA='];
const ACL = ['ACL'];
const METADATA = ['METADATA', 'METADATA-SERVER'];
const MOVE = ['MOVE', REV2];

const TABLE: readonly CommandDef[] = [
  // Any state (RFC 9051 6.1; ID: RFC 2971).
  def('CAPABILITY', ANY, 0, 0),
  def('NOOP', ANY, 0, 0),
  def('LOGOUT', ANY, 0, 0, { effect: 'logout' }),
  def('ID', ANY, 1, 1, { requires: ['ID'], syncLiteralsOnly: true }),
  // Not authenticated (6.2). STARTTLS would turn the stream into TLS the wrapper cannot read.
  def('STARTTLS', NOT_AUTH, 0, 0, { unsupported: 'STARTTLS is not available through this gateway' }),
  def('AUTHENTICATE', NOT_AUTH, 1, 2, { literals: false, effect: 'authenticate', secret: true }),
  def('LOGIN', NOT_AUTH, 2, 2, { effect: 'login', secret: true }),
  // Authenticated (6.3), also legal when a mailbox is selected.
  def('ENABLE', AUTH_ONLY, 1, MANY, { literals: false, requires: ['ENABLE', REV2] }),
  def('SELECT', AUTH, 1, 2, { effect: 'select' }),
  def('EXAMINE', AUTH, 1, 2, { effect: 'select' }),
  def('CREATE', AUTH, 1, 2, { moreArgsRequire: ['CREATE-SPECIAL-USE'] }),
  def('DELETE', AUTH, 1, 1),
  def('RENAME', AUTH, 2, 2),
  def('SUBSCRIBE', AUTH, 1, 1),
  def('UNSUBSCRIBE', AUTH, 1, 1),
  def('LIST', AUTH, 2, MANY),
  def('LSUB', AUTH, 2, 2),
  def('NAMESPACE', AUTH, 0, 0, { requires: ['NAMESPACE', REV2] }),
  def('STATUS', AUTH, 2, 2),
  def('APPEND', AUTH, 2, MANY),
  def('IDLE', AUTH, 0, 0, { effect: 'idle', requires: ['IDLE', REV2] }),
  def('NOTIFY', AUTH, 1, MANY, { requires: ['NOTIFY'] }),
  def('GETQUOTA', AUTH, 1, 1, { requires: QUOTA }),
  def('GETQUOTAROOT', AUTH, 1, 1, { requires: QUOTA }),
  def('SETQUOTA', AUTH, 2, 2, { requires: QUOTA }),
  // ACL (RFC 4314) and METADATA (RFC 5464), offered by Dovecot's acl/imap_metadata setups.
  def('GETACL', AUTH, 1, 1, { requires: ACL }),
  def('SETACL', AUTH, 3, 3, { requires: ACL }),
  def('DELETEACL', AUTH, 2, 2, { requires: ACL }),
  def('LISTRIGHTS', AUTH, 2, 2, { requires: ACL }),
  def('MYRIGHTS', AUTH, 1, 1, { requires: ACL }),
  def('GETMETADATA', AUTH, 2, MANY, { requires: METADATA }),
  def('SETMETADATA', AUTH, 2, 2, { requires: METADATA, syncLiteralsOnly: true }),
  // COMPRESS=DEFLATE would compress the stream: the wrapper would be blind.
  def('COMPRESS', AUTH, 1, 1, { unsupported: 'COMPRESS is not available through this gateway' }),
  // Selected (6.4).
  def('CHECK', SELECTED, 0, 0),
  def('CLOSE', SELECTED, 0, 0, { effect: 'close' }),
  def('UNSELECT', SELECTED, 0, 0, { effect: 'close', requires: ['UNSELECT', REV2] }),
  def('EXPUNGE', SELECTED, 0, 0),
  def('SEARCH', SELECTED, 1, MANY),
  def('FETCH', SELECTED, 2, 3),
  def('STORE', SELECTED, 3, MANY),
  def('COPY', SELECTED, 2, 2),
  def('MOVE', SELECTED, 2, 2, { requires: MOVE }),
  def('SORT', SELECTED, 3, MANY, { requires: ['SORT'] }),
  def('THREAD', SELECTED, 3, MANY, { requires: ['THREAD='] }),
  // CONTEXT=SEARCH (RFC 5267).
  def('CANCELUPDATE', SELECTED, 1, MANY, { literals: false, requires: ['CONTEXT=SEARCH', 'CONTEXT=SORT'] }),
  def('UID', SELECTED, 1, MANY),
];

/** UID subcommands (RFC 9051 6.4.9; UID EXPUNGE: UIDPLUS; UID MOVE: RFC 6851). Counts exclude the subcommand. */
const UID_TABLE: readonly CommandDef[] = [
  def('FETCH', SELECTED, 2, 3),
  def('STORE', SELECTED, 3, MANY),
  def('COPY', SELECTED, 2, 2),
  def('MOVE', SELECTED, 2, 2, { requires: MOVE }),
  def('SEARCH', SELECTED, 1, MANY),
  def('EXPUNGE', SELECTED, 1, 1, { requires: ['UIDPLUS', REV2] }),
  def('SORT', SELECTED, 3, MANY, { requires: ['SORT'] }),
  def('THREAD', SELECTED, 3, MANY, { requires: ['THREAD='] }),
];

export const COMMANDS: ReadonlyMap<string, CommandDef> = new Map(TABLE.map((d) => [d.name, d]));
export const UID_COMMANDS: ReadonlyMap<string, CommandDef> = new Map(UID_TABLE.map((d) => [d.name, d]));

/** Longest verb in the tables: a longer first word cannot be a command. */
export const MAX_VERB_LENGTH = 16;
