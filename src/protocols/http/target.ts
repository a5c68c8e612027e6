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
const SEMI = 0x3b;

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
function normalisePath(b: Buffer, s: number, e: number, stripParams: boolean): string {
  let decoded = '';
  for (let i = s; i < e; i++) {
    const c = b[i]!;
    if (stripParams && c === SEMI) {
      // A path parameter (Tomcat, Jetty: /admin;jsessionid=x/ is /admin/): up to the next raw "/".
      while (i + 1 < e && b[i + 1] !== SLASH) i++;
      continue;
    }
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
 * as sent; once as nginx and lighttpd read it, once with path parameters
 * taken out as Tomcat and Jetty read it (`/pub/..;/admin` is their /admin).
 * Forms equal to the line itself, or to each other, are left out (nothing
 * to test twice); none when the line is no `method SP target SP version`.
 * Called for a line the grammar has not judged yet: it only reads, and
 * every index is bounded.
 */
export function normalisedRequestLines(b: Buffer, end: number): string[] {
  const raw = b.toString('latin1', 0, end);
  const out: string[] = [];
  for (const strip of [false, true]) {
    const line = normalisedRequestLine(b, end, strip);
    if (line !== null && line !== raw && !out.includes(line)) out.push(line);
  }
  return out;
}

/** One normalised form of the request line (see normalisedRequestLines); null when the line is no request line. */
export function normalisedRequestLine(b: Buffer, end: number, stripParams = false): string | null {
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
  const path = s < q ? normalisePath(b, s, q, stripParams) : '/';
  return `${b.toString('latin1', 0, sp1 + 1)}${path}${b.toString('latin1', q, end)}`;
}
