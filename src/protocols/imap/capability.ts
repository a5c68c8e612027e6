/**
 * Capability lists from the server: `* CAPABILITY ...` and the
 * `[CAPABILITY ...]` response code (greeting, tagged OK after login). The
 * wrapper removes what it cannot follow and remembers what changes its own
 * rules (LITERAL+, LITERAL-, LOGINDISABLED).
 */

const SP = 0x20;
const SPACE = Buffer.from(' ');
const RBRACKET = 0x5d;
const CR = 0x0d;
const LF = 0x0a;

/** What the wrapper needs to know of the server's capabilities. */
export interface CapabilityFlags {
  /** LITERAL+ (RFC 7888): non-synchronizing literals of any size. */
  readonly literalPlus: boolean;
  /** LITERAL- (RFC 7888) or IMAP4rev2 (which includes it): non-synchronizing literals up to 4096 octets. */
  readonly literalMinus: boolean;
  /** LOGINDISABLED: the server refuses LOGIN; so does the wrapper. */
  readonly loginDisabled: boolean;
  /**
   * Every capability kept in the list, upper-cased: an extension's commands
   * are forwarded only when the server named it (bounded by CAP_LINE_MAX).
   */
  readonly names: ReadonlySet<string>;
}

export const NO_CAPABILITIES: CapabilityFlags = Object.freeze({ literalPlus: false, literalMinus: false, loginDisabled: false, names: new Set<string>() });

/**
 * Capabilities removed from every list the client sees. STARTTLS would turn
 * the stream into TLS and COMPRESS into deflate: the wrapper could no longer
 * read either direction. The matching commands are refused as well.
 */
export function isHiddenCapability(upper: string): boolean {
  return upper === 'STARTTLS' || upper.startsWith('COMPRESS=');
}

function upperAscii(bytes: Uint8Array, start: number, end: number): string {
  let s = '';
  for (let i = start; i < end; i++) {
    const b = bytes[i]!;
    s += String.fromCharCode(b >= 0x61 && b <= 0x7a ? b - 0x20 : b);
  }
  return s;
}

export interface FilteredCapabilities {
  /** The line to send to the client (the original buffer when nothing was removed). */
  readonly line: Buffer;
  readonly flags: CapabilityFlags;
}

/**
 * Filters one complete capability line, and adds the wrapper's own names (add). `listStart` is where the first
 * capability starts; the list ends at ']' (response code) or at the line's
 * end (CAPABILITY data). The kept bytes are copied unchanged, in order.
 */
export function filterCapabilities(line: Buffer, listStart: number, inCode: boolean, add: readonly string[] = []): FilteredCapabilities {
  let contentEnd = line.length;
  if (contentEnd > 0 && line[contentEnd - 1] === LF) contentEnd--;
  if (contentEnd > 0 && line[contentEnd - 1] === CR) contentEnd--;
  let listEnd = contentEnd;
  if (inCode) {
    const close = line.indexOf(RBRACKET, listStart);
    if (close >= 0 && close < contentEnd) listEnd = close;
  }
  let literalPlus = false;
  let literalMinus = false;
  let loginDisabled = false;
  const names = new Set<string>();
  const kept: Buffer[] = [line.subarray(0, listStart)];
  let removed = false;
  let i = listStart;
  let first = true;
  while (i < listEnd) {
    let j = line.indexOf(SP, i);
    if (j < 0 || j > listEnd) j = listEnd;
    if (j > i) {
      const cap = upperAscii(line, i, j);
      if (cap === 'LITERAL+') literalPlus = true;
      else if (cap === 'LITERAL-' || cap === 'IMAP4REV2') literalMinus = true;
      else if (cap === 'LOGINDISABLED') loginDisabled = true;
      if (isHiddenCapability(cap)) {
        removed = true;
      } else {
        names.add(cap);
        // The first kept capability takes the place of the first one, with no space before it.
        if (!first) kept.push(line.subarray(i - 1, i));
        kept.push(line.subarray(i, j));
        first = false;
      }
    }
    i = j + 1;
  }
  const flags: CapabilityFlags = { literalPlus, literalMinus, loginDisabled, names };
  // The wrapper's own capabilities (STARTTLS it offers, LOGINDISABLED before TLS) go last; flags stay the server's.
  for (const a of add) {
    if (names.has(a)) continue;
    if (!first) kept.push(SPACE);
    kept.push(Buffer.from(a, 'latin1'));
    first = false;
    removed = true;
  }
  if (!removed) return { line, flags };
  const tail = line.subarray(listEnd);
  if (first && listStart > 0 && line[listStart - 1] === SP) {
    // Every capability was removed: drop the space that introduced the list.
    kept[0] = line.subarray(0, listStart - 1);
  }
  kept.push(tail);
  return { line: Buffer.concat(kept), flags };
}
