import { GRAMMARS, UID_GRAMMARS } from './grammar.js';
import type { Rule } from './grammar-core.js';

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
  /** The argument grammar (grammar.ts): where strings, and so literals, may stand. */
  readonly grammar: Rule;
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
   * Only synchronizing literals: Dovecot's pre-login ID parses its list as it
   * reads it and answers BAD ("(a {n+}", deep nesting) with the {n+} literal
   * unread; SETMETADATA streams its values likewise.
   */
  readonly syncLiteralsOnly?: boolean;
  /**
   * The server may send the tagged answer before it has read the whole
   * command, and reads on (APPEND to a mailbox that fails to open; SETMETADATA
   * after a bad entry): the command's bytes still follow as the wrapper reads
   * them. For any other command such an early answer closes the session.
   * These stream their literals: the server's command size limit does not apply.
   */
  readonly answersEarly?: boolean;
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
const SELECTED: readonly ImapState[] = ['selected'];
/** RFC 9051 appendix E: IMAP4rev2 includes these extensions. */
const REV2 = 'IMAP4REV2';

function def(name: string, states: readonly ImapState[], rest: Partial<CommandDef> = {}, grammars: Readonly<Record<string, Rule>> = GRAMMARS): CommandDef {
  const grammar = grammars[name];
  if (!grammar) throw new Error(`no grammar for IMAP command ${name}`);
  return Object.freeze({ name, states, grammar, ...rest });
}

const QUOTA = ['QUOTA', 'QUOTA='];
const ACL = ['ACL'];
const METADATA = ['METADATA', 'METADATA-SERVER'];
const MOVE = ['MOVE', REV2];

/** UID's own entry never parses arguments: the session looks the subcommand up first. */
function* UID_PLACEHOLDER(): Generator<void, void, never> {
  throw new Error('UID has no grammar of its own');
}

const TABLE: readonly CommandDef[] = [
  // Any state (RFC 9051 6.1; ID: RFC 2971).
  def('CAPABILITY', ANY),
  def('NOOP', ANY),
  def('LOGOUT', ANY, { effect: 'logout' }),
  def('ID', ANY, { requires: ['ID'], syncLiteralsOnly: true }),
  // Not authenticated (6.2). STARTTLS would turn the stream into TLS the wrapper cannot read.
  def('STARTTLS', NOT_AUTH, { unsupported: 'STARTTLS is not available through this gateway' }),
  def('AUTHENTICATE', NOT_AUTH, { effect: 'authenticate', secret: true }),
  def('LOGIN', NOT_AUTH, { effect: 'login', secret: true }),
  // Authenticated (6.3), also legal when a mailbox is selected.
  // RFC 5161 says authenticated state only; Dovecot takes it when a mailbox is selected too (QRESYNC clients rely on it).
  def('ENABLE', AUTH, { requires: ['ENABLE', REV2] }),
  def('SELECT', AUTH, { effect: 'select' }),
  def('EXAMINE', AUTH, { effect: 'select' }),
  def('CREATE', AUTH),
  def('DELETE', AUTH),
  def('RENAME', AUTH),
  def('SUBSCRIBE', AUTH),
  def('UNSUBSCRIBE', AUTH),
  def('LIST', AUTH),
  def('LSUB', AUTH),
  def('NAMESPACE', AUTH, { requires: ['NAMESPACE', REV2] }),
  def('STATUS', AUTH),
  def('APPEND', AUTH, { answersEarly: true }),
  def('IDLE', AUTH, { effect: 'idle', requires: ['IDLE', REV2] }),
  def('NOTIFY', AUTH, { requires: ['NOTIFY'] }),
  def('GETQUOTA', AUTH, { requires: QUOTA }),
  def('GETQUOTAROOT', AUTH, { requires: QUOTA }),
  def('SETQUOTA', AUTH, { requires: QUOTA }),
  // ACL (RFC 4314) and METADATA (RFC 5464), offered by Dovecot's acl/imap_metadata setups.
  def('GETACL', AUTH, { requires: ACL }),
  def('SETACL', AUTH, { requires: ACL }),
  def('DELETEACL', AUTH, { requires: ACL }),
  def('LISTRIGHTS', AUTH, { requires: ACL }),
  def('MYRIGHTS', AUTH, { requires: ACL }),
  def('GETMETADATA', AUTH, { requires: METADATA }),
  def('SETMETADATA', AUTH, { requires: METADATA, syncLiteralsOnly: true, answersEarly: true }),
  // COMPRESS=DEFLATE would compress the stream: the wrapper would be blind.
  def('COMPRESS', AUTH, { unsupported: 'COMPRESS is not available through this gateway' }),
  // Selected (6.4).
  def('CHECK', SELECTED),
  def('CLOSE', SELECTED, { effect: 'close' }),
  def('UNSELECT', SELECTED, { effect: 'close', requires: ['UNSELECT', REV2] }),
  def('EXPUNGE', SELECTED),
  def('SEARCH', SELECTED),
  def('FETCH', SELECTED),
  def('STORE', SELECTED),
  def('COPY', SELECTED),
  def('MOVE', SELECTED, { requires: MOVE }),
  def('SORT', SELECTED, { requires: ['SORT'] }),
  def('THREAD', SELECTED, { requires: ['THREAD='] }),
  // CONTEXT=SEARCH (RFC 5267).
  def('CANCELUPDATE', SELECTED, { requires: ['CONTEXT=SEARCH', 'CONTEXT=SORT'] }),
  // UID: its subcommand is looked up in UID_TABLE, with that subcommand's grammar.
  def('UID', SELECTED, {}, { UID: UID_PLACEHOLDER }),
];

/** UID subcommands (RFC 9051 6.4.9; UID EXPUNGE: UIDPLUS; UID MOVE: RFC 6851). */
const UID_TABLE: readonly CommandDef[] = [
  def('FETCH', SELECTED, {}, UID_GRAMMARS),
  def('STORE', SELECTED, {}, UID_GRAMMARS),
  def('COPY', SELECTED, {}, UID_GRAMMARS),
  def('MOVE', SELECTED, { requires: MOVE }, UID_GRAMMARS),
  def('SEARCH', SELECTED, {}, UID_GRAMMARS),
  def('EXPUNGE', SELECTED, { requires: ['UIDPLUS', REV2] }, UID_GRAMMARS),
  def('SORT', SELECTED, { requires: ['SORT'] }, UID_GRAMMARS),
  def('THREAD', SELECTED, { requires: ['THREAD='] }, UID_GRAMMARS),
];

export const COMMANDS: ReadonlyMap<string, CommandDef> = new Map(TABLE.map((d) => [d.name, d]));
export const UID_COMMANDS: ReadonlyMap<string, CommandDef> = new Map(UID_TABLE.map((d) => [d.name, d]));

/** Longest verb in the tables: a longer first word cannot be a command. */
export const MAX_VERB_LENGTH = 16;
