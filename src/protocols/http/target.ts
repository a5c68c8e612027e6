/**
 * The request line as the server's router reads it, for denyList and
 * allowList: a rule `^GET /admin` must also see `GET //admin`,
 * `GET /%61dmin`, `GET /x/../admin` and `GET http://host/admin`, which
 * nginx and lighttpd serve as /admin. Only the rules see this form; the
 * bytes forwarded are the client's, unchanged.
 */

const SLASH = 0x2f;
const QUESTION = 0x3f;
const PERCENT = 0x25;

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  const l = c | 0x20;
  return l >= 0x61 && l <= 0x66 ? l - 0x57 : -1;
}

/**
 * The path with every %XX decoded (nginx decodes them all, %2F included,
 * before it picks a location), runs of "/" merged (nginx's merge_slashes),
 * and "." and ".." segments removed (RFC 3986 section 5.2.4).
 */
function normalisePath(b: Buffer, s: number, e: number): string {
  let decoded = '';
  for (let i = s; i < e; i++) {
    const c = b[i]!;
    if (c === PERCENT && i + 2 < e && hexValue(b[i + 1]!) >= 0 && hexValue(b[i + 2]!) >= 0) {
      decoded += String.fromCharCode(hexValue(b[i + 1]!) * 16 + hexValue(b[i + 2]!));
      i += 2;
    } else decoded += String.fromCharCode(c);
  }
  const out: string[] = [];
  const segments = decoded.split('/');
  // segments[0] is "" (the path starts with "/"); empty segments are merged slashes.
  for (let k = 1; k < segments.length; k++) {
    const seg = segments[k]!;
    const last = k === segments.length - 1;
    if (seg === '.' || seg === '') {
      if (last) out.push('');
      continue;
    }
    if (seg === '..') {
      out.pop();
      if (last) out.push('');
      continue;
    }
    out.push(seg);
  }
  return `/${out.join('/')}`;
}

/**
 * The request line [0, end) with its target normalised: an absolute form
 * cut to its path, the path decoded and cleaned (normalisePath), the query
 * as sent. Null when the line is no `method SP target SP version` or the
 * result is the line itself (nothing to test twice). Called for a line the
 * grammar has not judged yet: it only reads, and every index is bounded.
 */
export function normalisedRequestLine(b: Buffer, end: number): string | null {
  const sp1 = b.indexOf(0x20);
  if (sp1 <= 0 || sp1 >= end) return null;
  let sp2 = end - 1;
  while (sp2 > sp1 && b[sp2] !== 0x20) sp2--;
  if (sp2 <= sp1 + 1) return null;
  let s = sp1 + 1;
  if (b[s] !== SLASH) {
    // scheme "://" authority: the path starts at the first "/" (or "?") after the authority.
    const sep = b.indexOf('://', s, 'latin1');
    if (sep < 0 || sep >= sp2) return null;
    s = sep + 3;
    while (s < sp2 && b[s] !== SLASH && b[s] !== QUESTION) s++;
  }
  let q = s;
  while (q < sp2 && b[q] !== QUESTION) q++;
  const path = s < q ? normalisePath(b, s, q) : '/';
  const line = `${b.toString('latin1', 0, sp1 + 1)}${path}${b.toString('latin1', q, end)}`;
  return line === b.toString('latin1', 0, end) ? null : line;
}
