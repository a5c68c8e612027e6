/**
 * Argument grammars of the IMAP commands (RFC 9051, RFC 3501 and the
 * extensions in commands.ts), over tokens. Each says where a string, and so
 * a literal, may stand; everything else is atoms and lists. Where Dovecot
 * reads only a fixed number of arguments (CREATE, DELETE, RENAME, COPY,
 * STATUS, the quota and ACL commands: client_read_string_args), anything
 * after them is refused, since the server would leave it unread and run a
 * literal's bytes as commands.
 */
import {
  astring,
  atom,
  atomList,
  atomText,
  fail,
  hasCap,
  listOf,
  noLiterals,
  nstring,
  number,
  peek,
  sequenceSet,
  string,
  take,
  type G,
  type Input,
  type Rule,
} from './grammar-core.js';
import { appendDateError, appendFlagError } from './append.js';
import { searchKeys } from './search.js';

const none: Rule = function* () {};

const mailbox = (inp: Input): G => astring(inp, 'mailbox');

/** list-mailbox: an atom (with the wildcards % and *) or a string. */
const listMailbox = (inp: Input): G => astring(inp, 'mailbox pattern');

function* login(inp: Input): G {
  yield* astring(inp, 'user name');
  yield* astring(inp, 'password');
}

/** AUTHENTICATE mechanism [initial-response]: no literals (Dovecot reads both as raw text). */
function* authenticate(inp: Input): G {
  yield* atom(inp, 'mechanism');
  if ((yield* peek(inp)).kind === 'atom') yield* take(inp);
}

/** ID: NIL or a list of (string nstring) pairs (RFC 2971). */
function* id(inp: Input): G {
  const t = yield* peek(inp);
  if (atomText(t) === 'NIL') {
    yield* take(inp);
    return;
  }
  yield* listOf(
    inp,
    function* (i) {
      yield* string(i, 'ID field');
      yield* nstring(i, 'ID value');
    },
    'ID list',
  );
}

function* atoms(inp: Input): G {
  yield* atom(inp);
  while ((yield* peek(inp)).kind === 'atom') yield* take(inp);
}

/** mailbox [SP "(" parameters ")"] (SELECT/EXAMINE CONDSTORE, QRESYNC). */
function* mailboxWithParams(inp: Input): G {
  yield* mailbox(inp);
  if ((yield* peek(inp)).kind === 'open') yield* atomList(inp);
}

/** CREATE mailbox [(USE (...))]: Dovecot 2.3 never reads the parameters, so they pass only with CREATE-SPECIAL-USE. */
function* create(inp: Input): G {
  yield* mailbox(inp);
  if ((yield* peek(inp)).kind === 'open' && hasCap(inp, 'CREATE-SPECIAL-USE')) yield* atomList(inp);
}

function* twoMailboxes(inp: Input): G {
  yield* mailbox(inp);
  yield* mailbox(inp);
}

/** LIST [(selection options)] reference (pattern | (patterns)) [RETURN (options)] (RFC 5258). */
function* list(inp: Input): G {
  if ((yield* peek(inp)).kind === 'open') yield* atomList(inp);
  yield* mailbox(inp);
  if ((yield* peek(inp)).kind === 'open') yield* listOf(inp, listMailbox, 'pattern list');
  else yield* listMailbox(inp);
  if (atomText(yield* peek(inp)) === 'RETURN') {
    yield* take(inp);
    yield* atomList(inp);
  }
}

function* lsub(inp: Input): G {
  yield* mailbox(inp);
  yield* listMailbox(inp);
}

function* status(inp: Input): G {
  yield* mailbox(inp);
  yield* atomList(inp);
}

/**
 * APPEND mailbox then one message, or several with MULTIAPPEND (RFC 3502):
 * [flag-list] [date-time] (literal | CATENATE (parts)). Dovecot checks the
 * flags and the date before it reads the message literal and skips nothing
 * on an error: a bad one would make it run the literal's bytes as commands,
 * so both are checked here as strictly. literal8 (~{n}) only with BINARY.
 */
function* append(inp: Input): G {
  yield* mailbox(inp);
  for (;;) {
    let t = yield* peek(inp);
    if (t.kind === 'open') {
      yield* appendFlags(inp);
      t = yield* peek(inp);
    }
    if (t.kind === 'quoted') {
      const e = appendDateError(t.text);
      if (e) fail(e);
      yield* take(inp);
    }
    yield* appendMessage(inp);
    const after = yield* peek(inp);
    if (after.kind === 'eol') return;
    if (!hasCap(inp, 'MULTIAPPEND')) fail('more than one message without MULTIAPPEND');
  }
}

function* appendFlags(inp: Input): G {
  yield* listOf(
    inp,
    function* (i) {
      const t = yield* take(i);
      if (t.kind !== 'atom') fail('flag list: expected flags');
      const e = appendFlagError(t.kind === 'atom' ? t.text : '');
      if (e) fail(e);
    },
    'flag list',
  );
}

function* appendMessage(inp: Input): G {
  const t = yield* take(inp);
  if (t.kind === 'literal') {
    if (t.binary && !hasCap(inp, 'BINARY')) fail('literal8 without BINARY');
    inp.streamed = true;
    return;
  }
  if (atomText(t) === 'CATENATE' && hasCap(inp, 'CATENATE')) {
    yield* listOf(inp, catenatePart, 'CATENATE list');
    return;
  }
  fail('APPEND: expected the message literal');
}

/** CATENATE part (RFC 4469): URL astring, or TEXT literal (literal8 with BINARY). */
function* catenatePart(inp: Input): G {
  const kind = yield* atom(inp, 'CATENATE part');
  // The URL is parsed, not streamed: it counts against the server's limit like any argument.
  if (kind === 'URL') return yield* astring(inp, 'CATENATE URL');
  if (kind !== 'TEXT') fail('CATENATE part: expected URL or TEXT');
  const t = yield* take(inp);
  if (t.kind !== 'literal') fail('CATENATE TEXT: expected a literal');
  if (t.kind === 'literal' && t.binary && !hasCap(inp, 'BINARY')) fail('literal8 without BINARY');
  inp.streamed = true;
}

function* setquota(inp: Input): G {
  yield* astring(inp, 'quota root');
  yield* listOf(
    inp,
    function* (i) {
      yield* atom(i, 'resource');
      yield* number(i, 'limit');
    },
    'quota list',
  );
}

/** mailbox then n astrings (ACL commands: identifier, rights). */
const mailboxAnd =
  (n: number): Rule =>
  function* (inp) {
    yield* mailbox(inp);
    for (let k = 0; k < n; k++) yield* astring(inp, 'ACL argument');
  };

/** GETMETADATA [(options)] mailbox (entry | (entries)) (RFC 5464). */
function* getmetadata(inp: Input): G {
  if ((yield* peek(inp)).kind === 'open') yield* atomList(inp);
  yield* mailbox(inp);
  if ((yield* peek(inp)).kind === 'open') yield* listOf(inp, (i) => astring(i, 'entry'), 'entry list');
  else yield* astring(inp, 'entry');
}

/**
 * SETMETADATA mailbox (entry value ...): values are nstrings (literal8
 * refused). An entry name is an atom or a quoted string under /private/ or
 * /shared/, never a literal: Dovecot answers a bad name with BAD but reads
 * on, and a literal in that place would be read with its '+' after the BAD
 * (imap-metadata: the wrapper would take the literal for cancelled).
 */
function* setmetadata(inp: Input): G {
  yield* mailbox(inp);
  yield* listOf(
    inp,
    function* (i) {
      const t = yield* take(i);
      if (t.kind !== 'atom' && t.kind !== 'quoted') fail('entry name: expected an atom or a quoted string');
      const name = t.kind === 'quoted' ? t.text.slice(1, -1) : t.kind === 'atom' ? t.text : '';
      if (!isEntryName(name)) fail('entry name: not under /private/ or /shared/');
      // Dovecot streams a value literal (LITERAL_SIZE) and starts its count over at each entry.
      yield* nstring(i, 'entry value');
      i.streamed = true;
    },
    'entry list',
  );
}

/** RFC 5464 entry: /private/… or /shared/…, no empty component, no wildcards, no trailing '/'. */
function isEntryName(name: string): boolean {
  const lower = name.toLowerCase();
  const rest = lower.startsWith('/private/') ? name.slice(9) : lower.startsWith('/shared/') ? name.slice(8) : null;
  if (!rest || rest.endsWith('/') || rest.includes('//') || rest.includes('*') || rest.includes('%')) return false;
  for (let k = 0; k < rest.length; k++) {
    const c = rest.charCodeAt(k);
    if (c < 0x21 || c > 0x7e || c === 0x5c || c === 0x22) return false;
  }
  return true;
}

/** SEARCH [RETURN (options)] [CHARSET astring] search-key+ (RFC 9051, 4731). */
function* search(inp: Input): G {
  if (atomText(yield* peek(inp)) === 'RETURN') {
    yield* take(inp);
    yield* atomList(inp);
  }
  if (atomText(yield* peek(inp)) === 'CHARSET') {
    yield* take(inp);
    yield* astring(inp, 'charset');
  }
  yield* searchKeys(inp);
}

/** FETCH sequence-set (macro | att | (att...)) [(modifiers)]: atoms, [sections] and lists; no strings. */
function* fetch(inp: Input): G {
  yield* sequenceSet(inp);
  const t = yield* peek(inp);
  if (t.kind === 'open') yield* listOf(inp, fetchAtt, 'fetch attribute list');
  else yield* fetchAtt(inp);
  if ((yield* peek(inp)).kind === 'open') yield* atomList(inp);
}

function* fetchAtt(inp: Input): G {
  const t = yield* peek(inp);
  if (t.kind === 'open') return yield* atomList(inp); // PREVIEW (LAZY)
  yield* take(inp);
  if (t.kind !== 'atom' && t.kind !== 'section') fail('fetch attribute: expected an atom');
}

/** STORE sequence-set [(UNCHANGEDSINCE n)] item (flag-list | flag...). */
function* store(inp: Input): G {
  yield* sequenceSet(inp);
  if ((yield* peek(inp)).kind === 'open') yield* atomList(inp);
  yield* atom(inp, 'store item');
  if ((yield* peek(inp)).kind === 'open') yield* atomList(inp);
  else yield* atoms(inp);
}

function* copy(inp: Input): G {
  yield* sequenceSet(inp);
  yield* mailbox(inp);
}

/** SORT [RETURN (options)] (criteria) charset search-key+ (RFC 5256, 5267). */
function* sort(inp: Input): G {
  if (atomText(yield* peek(inp)) === 'RETURN') {
    yield* take(inp);
    yield* atomList(inp);
  }
  yield* atomList(inp);
  yield* astring(inp, 'charset');
  yield* searchKeys(inp);
}

/** THREAD algorithm charset search-key+ (RFC 5256). */
function* thread(inp: Input): G {
  yield* atom(inp, 'algorithm');
  yield* astring(inp, 'charset');
  yield* searchKeys(inp);
}

/** CANCELUPDATE tag... (RFC 5267): quoted tags. */
function* cancelupdate(inp: Input): G {
  do {
    const t = yield* take(inp);
    if (t.kind !== 'quoted') fail('CANCELUPDATE: expected a quoted tag');
  } while ((yield* peek(inp)).kind === 'quoted');
}

/** The grammar of each command (and UID subcommand) in commands.ts, by name. */
export const GRAMMARS: Readonly<Record<string, Rule>> = {
  CAPABILITY: none,
  NOOP: none,
  LOGOUT: none,
  ID: id,
  STARTTLS: none,
  AUTHENTICATE: authenticate,
  LOGIN: login,
  ENABLE: atoms,
  SELECT: mailboxWithParams,
  EXAMINE: mailboxWithParams,
  CREATE: create,
  DELETE: mailbox,
  RENAME: twoMailboxes,
  SUBSCRIBE: mailbox,
  UNSUBSCRIBE: mailbox,
  LIST: list,
  LSUB: lsub,
  NAMESPACE: none,
  STATUS: status,
  APPEND: append,
  IDLE: none,
  NOTIFY: noLiterals,
  GETQUOTA: (inp) => astring(inp, 'quota root'),
  GETQUOTAROOT: mailbox,
  SETQUOTA: setquota,
  GETACL: mailbox,
  SETACL: mailboxAnd(2),
  DELETEACL: mailboxAnd(1),
  LISTRIGHTS: mailboxAnd(1),
  MYRIGHTS: mailbox,
  GETMETADATA: getmetadata,
  SETMETADATA: setmetadata,
  COMPRESS: atoms,
  CHECK: none,
  CLOSE: none,
  UNSELECT: none,
  EXPUNGE: none,
  SEARCH: search,
  FETCH: fetch,
  STORE: store,
  COPY: copy,
  MOVE: copy,
  SORT: sort,
  THREAD: thread,
  CANCELUPDATE: cancelupdate,
};

/** UID subcommands: the same grammars, but UID EXPUNGE takes a sequence set (UIDPLUS). */
export const UID_GRAMMARS: Readonly<Record<string, Rule>> = {
  FETCH: fetch,
  STORE: store,
  COPY: copy,
  MOVE: copy,
  SEARCH: search,
  EXPUNGE: sequenceSet,
  SORT: sort,
  THREAD: thread,
};
