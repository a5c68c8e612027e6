import { BlockList, isIP, isIPv4 } from 'node:net';
import type { HoldLimits } from '../../core/hold.js';
import type { OptionTable } from '../../core/options.js';
import type { LineMatcher, ProtocolOptions } from '../../core/protocol.js';
import { compileLinear } from '../../core/safe-regex.js';
import { ConfigError } from '../../errors.js';
import type { BareLineFeed } from './body.js';
import { addressForms, type ParsedPath } from './path.js';

/**
 * The SMTP keys. The seed's names (Listing 3) keep the seed's meaning:
 * blockAddrList, blockBodyList, maxMsgSize, maxRcpt, relayIpList,
 * relayDomainList. The rest are ours.
 */
export const SMTP_OPTIONS: OptionTable = {
  blockAddrList: { kind: 'stringList', default: [], doc: 'senders refused at MAIL FROM (550): suffix of the address, case-insensitive' },
  blockBodyList: { kind: 'stringList', default: [], regex: true, doc: 'a message line (or unfolded header) matching one of these is discarded (550)' },
  blockBodyIgnoreCase: { kind: 'boolean', default: true, doc: 'blockBodyList ignores case (false: Perl\'s default, case-sensitive)' },
  maxMsgSize: { kind: 'integer', min: 0, max: 2147483647, default: 0, doc: 'bytes of message data, 0 = no limit (552)' },
  maxRcpt: { kind: 'integer', min: 0, max: 1000000, default: 0, doc: 'recipients in one SMTP session, 0 = no limit (452)' },
  relayIpList: { kind: 'stringList', default: [], doc: 'clients allowed to relay: address prefix (192.168.150.) or CIDR' },
  relayDomainList: { kind: 'stringList', default: [], doc: 'domains we relay for, as sender or recipient domain (seed)' },
  relayStrict: { kind: 'boolean', default: false, doc: 'only recipient domains count for relayDomainList (the seed also counts the sender\'s)' },
  bodyHoldLimit: {
    kind: 'integer', min: 1024, max: 1073741824, default: 10485760,
    doc: 'bytes of one message held while a body policy checks it; larger ones are refused (552)',
  },
  // One accepted RCPT (no login) lets a client make the wrapper hold bodyHoldLimit:
  // these bound all held bodies of the process, in memory and then on disk.
  bodyHoldTotal: {
    kind: 'integer', min: 65536, max: 68719476736, default: 67108864,
    doc: 'bytes of memory all held bodies of the process may take; past it a body goes on in a spool file',
  },
  spoolDir: { kind: 'string', default: null, doc: 'directory for spooled bodies (ours, mode 0700); default $TMPDIR/protowrap-spool-<uid>' },
  spoolMax: {
    kind: 'integer', min: 0, max: 1099511627776, default: 1073741824,
    doc: 'bytes all spooled bodies of the process may take on disk, 0 = no spool; past it 452 4.3.1',
  },
  textLineLength: { kind: 'integer', min: 78, max: 1048576, default: 998, doc: 'bytes per DATA text line, CRLF excluded (RFC 5321: 1000 with CRLF)' },
  maxLoginAttempts: {
    kind: 'integer', min: 1, max: 1000, default: 3,
    doc: 'failed AUTH (the server\'s 535) before the session is closed with 421 (brute force)',
  },
  authLineLength: { kind: 'integer', min: 510, max: 1048576, default: 12288, doc: 'bytes per AUTH response line (RFC 4954: 12288)' },
  // curl's mime API sends an attached file's lines as they are; Postfix 3.9 normalises by default.
  bareLineFeed: {
    kind: 'string', default: 'normalize', oneOf: ['normalize', 'refuse'],
    doc: 'a DATA line ending in a bare LF: normalize (sent with CRLF; only CRLF.CRLF ends the data) or refuse (the message, as smuggling)',
  },
  allowUnqualifiedAddress: {
    kind: 'boolean', default: false,
    doc: 'accept MAIL FROM:<user> and RCPT TO:<user> without a domain (the server adds its own, as Postfix does)',
  },
};

export interface IpRules {
  readonly prefixes: readonly string[];
  readonly cidr: BlockList;
  readonly any: boolean;
}

/** The compiled SMTP policy: built once per configuration. */
export interface SmtpPolicy {
  readonly blockAddr: readonly string[];
  readonly blockBody: readonly LineMatcher[];
  readonly maxMsgSize: number;
  readonly maxRcpt: number;
  readonly relayIp: IpRules;
  readonly relayDomains: readonly string[];
  readonly relayStrict: boolean;
  /** Relay control is on when either relay list is set (empty lists: the server decides). */
  readonly relayControl: boolean;
  /** A body policy needs the whole message before the server may see it. */
  readonly holdBody: boolean;
  /**
   * The message size the client is told about and held to: SIZE in the EHLO
   * reply, SIZE= at MAIL. The hold limit when the body is held, else 0 (the
   * server's own).
   */
  readonly sizeLimit: number;
  /** Most bytes of one held message (the smaller of maxMsgSize and bodyHoldLimit). */
  readonly holdLimit: number;
  /** All held bodies of the process: bodyHoldTotal, spoolMax, spoolDir. */
  readonly hold: HoldLimits;
  readonly commandLineLength: number;
  readonly textLineLength: number;
  readonly authLineLength: number;
  /** Failed AUTH (535) before the session closes. */
  readonly maxLoginAttempts: number;
  readonly bareLineFeed: BareLineFeed;
  readonly allowUnqualified: boolean;
}

/** Shows an IPv4 client reached over IPv6 (::ffff:a.b.c.d) as a.b.c.d; lower-cases. */
export function normaliseIp(a: string): string {
  const lower = a.toLowerCase();
  return lower.startsWith('::ffff:') && lower.indexOf('.') > 0 ? lower.slice(7) : lower;
}

const IP_PREFIX_CHARS = /^[0-9a-f.:]+$/;

function compileIpRules(list: readonly string[]): IpRules {
  const prefixes: string[] = [];
  const cidr = new BlockList();
  let any = false;
  for (const raw of list) {
    const e = normaliseIp(raw.trim());
    const slash = e.indexOf('/');
    if (slash >= 0) {
      const net = normaliseIp(e.slice(0, slash));
      const bitsText = e.slice(slash + 1);
      const fam = isIP(net);
      const bits = /^\d{1,3}$/.test(bitsText) ? Number(bitsText) : -1;
      if (fam === 0 || bits < 0 || bits > (fam === 4 ? 32 : 128)) {
        throw new ConfigError('PW_ERR_CONFIG_VALUE', 'relayIpList', `${JSON.stringify(raw)} is not a valid CIDR block`);
      }
      cidr.addSubnet(net, bits, fam === 4 ? 'ipv4' : 'ipv6');
      any = true;
    } else {
      if (e.length === 0 || !IP_PREFIX_CHARS.test(e)) {
        throw new ConfigError('PW_ERR_CONFIG_VALUE', 'relayIpList', `${JSON.stringify(raw)} is neither an address prefix nor a CIDR block`);
      }
      // A complete IPv4 address is the seed's "specific address": read as a
      // prefix, 192.168.150.1 would also let .10-.19 and .100-.199 relay.
      if (isIPv4(e)) cidr.addAddress(e, 'ipv4');
      else prefixes.push(e);
      any = true;
    }
  }
  return { prefixes, cidr, any };
}

/** relayIpList: a prefix of the client's address (anchored at the start, as the seed), or a CIDR block. */
export function ipAllowed(rules: IpRules, clientAddress: string): boolean {
  const a = normaliseIp(clientAddress);
  if (rules.prefixes.some((p) => a.startsWith(p))) return true;
  const fam = isIP(a);
  return fam !== 0 && rules.cidr.check(a, fam === 4 ? 'ipv4' : 'ipv6');
}

/**
 * relayDomainList, anchored to the end at a label boundary: "mydomain.org"
 * covers mydomain.org and any.sub.mydomain.org, but not evilmydomain.org
 * (the seed's plain suffix would, which makes any lookalike domain a relay).
 */
export function domainListed(list: readonly string[], domain: string): boolean {
  if (domain.length === 0) return false;
  return list.some((d) => domain === d || domain.endsWith(d.startsWith('.') ? d : `.${d}`));
}

/** blockAddrList: the seed's "anchored to end of string", case-insensitive, on every form the server may read. */
export function senderBlocked(p: SmtpPolicy, path: ParsedPath): string | null {
  if (path.isNull || p.blockAddr.length === 0) return null;
  for (const form of addressForms(path)) {
    for (const b of p.blockAddr) if (form.endsWith(b)) return b;
  }
  return null;
}

const cache = new WeakMap<object, SmtpPolicy>();

/** Builds (once per configuration) the policy from the validated options; throws ConfigError. */
export function smtpPolicy(o: ProtocolOptions): SmtpPolicy {
  const hit = cache.get(o.extra);
  if (hit) return hit;
  const x = o.extra;
  const list = (k: string) => ((x[k] as readonly string[] | undefined) ?? []);
  const int = (k: string) => (x[k] as number | undefined) ?? (SMTP_OPTIONS[k] as { default: number }).default;
  const ignoreCase = (x['blockBodyIgnoreCase'] as boolean | undefined) ?? true;
  const blockBody = list('blockBodyList').map((s) => compileLinear('blockBodyList', s, ignoreCase));
  const maxMsgSize = int('maxMsgSize');
  const bodyHoldLimit = int('bodyHoldLimit');
  const holdBody = blockBody.length > 0 || maxMsgSize > 0;
  const holdLimit = maxMsgSize > 0 ? Math.min(maxMsgSize, bodyHoldLimit) : bodyHoldLimit;
  const relayIp = compileIpRules(list('relayIpList'));
  const spoolDir = (x['spoolDir'] as string | null | undefined) ?? null;
  // Files are created in it by name: a relative path would depend on the working directory.
  if (spoolDir !== null && !spoolDir.startsWith('/')) throw new ConfigError('PW_ERR_CONFIG_VALUE', 'spoolDir', `expected an absolute path, got ${JSON.stringify(spoolDir)}`);
  const relayDomains = list('relayDomainList').map((d) => d.trim().toLowerCase()).filter((d) => d.length > 0);
  const policy: SmtpPolicy = {
    blockAddr: list('blockAddrList').map((a) => a.trim().toLowerCase()).filter((a) => a.length > 0),
    blockBody,
    maxMsgSize,
    maxRcpt: int('maxRcpt'),
    relayIp,
    relayDomains,
    relayStrict: (x['relayStrict'] as boolean | undefined) ?? false,
    relayControl: relayIp.any || relayDomains.length > 0,
    holdBody,
    holdLimit,
    hold: { memory: int('bodyHoldTotal'), disk: int('spoolMax'), dir: spoolDir },
    sizeLimit: holdBody ? holdLimit : 0,
    commandLineLength: o.maxLineLength,
    textLineLength: int('textLineLength'),
    authLineLength: Math.max(int('authLineLength'), o.maxLineLength),
    maxLoginAttempts: int('maxLoginAttempts'),
    bareLineFeed: x['bareLineFeed'] === 'refuse' ? 'refuse' : 'normalize',
    allowUnqualified: (x['allowUnqualifiedAddress'] as boolean | undefined) ?? false,
  };
  cache.set(o.extra, policy);
  return policy;
}
