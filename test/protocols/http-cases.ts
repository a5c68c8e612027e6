/**
 * HTTP/1.1 request cases as data: what a client sends, what the wrapper
 * must answer, and exactly which bytes the server may receive. The hostile
 * ones are the published request-smuggling classes (CL.TE, TE.CL, TE.TE
 * obfuscations, CL.CL, chunk-size tricks, "funky chunks", header grammar),
 * each written the way it appears in the literature.
 */

export interface ValidCase {
  readonly name: string;
  readonly input: string;
  /** Requests in the input (each gets a response). */
  readonly requests: number;
  readonly flags?: Record<string, unknown>;
}

export interface HostileCase {
  readonly name: string;
  readonly input: string;
  /** The wrapper's error status. */
  readonly status: number;
  /** What the server received: a prefix of the input (the requests before the bad one). */
  readonly forwarded: string;
  readonly flags?: Record<string, unknown>;
}

const GET = 'GET / HTTP/1.1\r\nHost: a\r\n\r\n';

export const VALID: readonly ValidCase[] = [
  { name: 'GET', input: 'GET /index.html?q=1&x=%20 HTTP/1.1\r\nHost: example.org\r\nUser-Agent: t\r\nAccept: */*\r\n\r\n', requests: 1 },
  { name: 'HEAD, HTTP/1.0 without Host', input: 'HEAD / HTTP/1.0\r\n\r\n', requests: 1 },
  { name: 'POST with Content-Length, body with CRLF and NUL inside', input: 'POST /f HTTP/1.1\r\nHost: a\r\nContent-Length: 13\r\n\r\nab\r\n\0\nGET / x', requests: 1 },
  { name: 'Content-Length: 0', input: 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n', requests: 1 },
  { name: 'leading zeros in Content-Length', input: 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 003\r\n\r\nabc', requests: 1 },
  {
    name: 'chunked with extensions and a trailer',
    input: 'POST /u HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;name=value\r\nhello\r\nA ; q="a \\"b\\"" ; r\r\n0123456789\r\n0\r\nX-Checksum: 1\r\n\r\n',
    requests: 1,
  },
  { name: 'chunked, upper-case coding and HTAB before it', input: 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\tCHUNKED\r\n\r\n3\r\nabc\r\n0\r\n\r\n', requests: 1 },
  { name: 'gzip, chunked', input: 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n1\r\nz\r\n0\r\n\r\n', requests: 1 },
  { name: 'three pipelined requests', input: `${GET}POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\nbody${GET}`, requests: 3 },
  { name: 'one empty line before the request line', input: `\r\n${GET}`, requests: 1 },
  { name: 'absolute-form target, Host in other case, query only', input: 'GET HTTP://WWW.Example:8080?q HTTP/1.1\r\nHost: www.example:8080\r\n\r\n', requests: 1 },
  { name: 'absolute-form target in HTTP/1.0 without Host', input: 'GET http://a/p HTTP/1.0\r\n\r\n', requests: 1 },
  { name: 'allowList matches the normalised target; the bytes go as sent', input: 'GET http://a//pub/./x?q=/../y HTTP/1.1\r\nHost: a\r\n\r\n', requests: 1, flags: { allowList: ['^GET /pub/x\\?q=/\\.\\./y HTTP/1\\.1$'] } },
  { name: 'denyList: a query that only looks like the path is not the path', input: 'GET /pub?next=/admin HTTP/1.1\r\nHost: a\r\n\r\n', requests: 1, flags: { denyList: ['^GET /admin'] } },
  { name: 'absolute-form target', input: 'GET http://a:8080/p?q HTTP/1.1\r\nHost: a:8080\r\n\r\n', requests: 1 },
  { name: 'Expect: 100-continue', input: 'PUT /x HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nabc', requests: 1 },
  { name: 'HTTP/1.0 keep-alive', input: `GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n${GET}`, requests: 2 },
  { name: 'IPv6 Host', input: 'GET / HTTP/1.1\r\nHost: [::1]:80\r\n\r\n', requests: 1 },
  { name: 'empty field value, obs-text in a value', input: 'GET / HTTP/1.1\r\nHost: a\r\nX-Empty:\r\nX-Latin: caf\xe9\r\n\r\n', requests: 1 },
  { name: 'OPTIONS * with allowAsteriskForm', input: 'OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n', requests: 1, flags: { allowAsteriskForm: true } },
];

const post = (fields: string, rest = ''): string => `POST / HTTP/1.1\r\nHost: a\r\n${fields}\r\n${rest}`;
const chunked = (body: string): string => post('Transfer-Encoding: chunked\r\n', body);

export const HOSTILE: readonly HostileCase[] = [
  // CL.TE and TE.CL: both framings in one request.
  { name: 'CL.TE', input: post('Content-Length: 6\r\nTransfer-Encoding: chunked\r\n', '0\r\n\r\nG'), status: 400, forwarded: '' },
  { name: 'TE.CL', input: post('Transfer-Encoding: chunked\r\nContent-Length: 4\r\n', '5c\r\nGPOST / HTTP/1.1\r\n\r\n0\r\n\r\n'), status: 400, forwarded: '' },
  { name: 'TE in HTTP/1.0', input: 'POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', status: 400, forwarded: '' },
  // TE.TE: obfuscated Transfer-Encoding.
  { name: 'TE.TE xchunked', input: post('Transfer-Encoding: xchunked\r\n'), status: 501, forwarded: '' },
  { name: 'TE.TE space before colon', input: post('Transfer-Encoding : chunked\r\n'), status: 400, forwarded: '' },
  { name: 'TE.TE second TE header with junk', input: post('Transfer-Encoding: chunked\r\nTransfer-Encoding: x\r\n'), status: 501, forwarded: '' },
  { name: 'TE.TE identity after chunked', input: post('Transfer-Encoding: chunked, identity\r\n'), status: 501, forwarded: '' },
  { name: 'TE.TE chunked twice', input: post('Transfer-Encoding: chunked, chunked\r\n'), status: 400, forwarded: '' },
  { name: 'TE.TE chunked not last', input: post('Transfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n'), status: 400, forwarded: '' },
  { name: 'TE.TE obs-fold', input: post('X: y\r\n Transfer-Encoding: chunked\r\n'), status: 400, forwarded: '' },
  { name: 'TE.TE folded value', input: post('Transfer-Encoding:\r\n chunked\r\n'), status: 400, forwarded: '' },
  { name: 'TE.TE bare LF before the field', input: post('X: y\nTransfer-Encoding: chunked\r\n'), status: 400, forwarded: '' },
  { name: 'TE.TE bare CR before the field', input: post('X: y\rTransfer-Encoding: chunked\r\n'), status: 400, forwarded: '' },
  { name: 'TE.TE vertical tab', input: post('Transfer-Encoding:\x0bchunked\r\n'), status: 400, forwarded: '' },
  { name: 'TE.TE NUL', input: post('Transfer-Encoding: chunked\0\r\n'), status: 400, forwarded: '' },
  { name: 'TE.TE quoted', input: post('Transfer-Encoding: "chunked"\r\n'), status: 400, forwarded: '' },
  { name: 'TE.TE empty list member', input: post('Transfer-Encoding: ,chunked\r\n'), status: 400, forwarded: '' },
  { name: 'TE.TE with a parameter', input: post('Transfer-Encoding: chunked;q=1\r\n'), status: 501, forwarded: '' },
  { name: 'TE.TE underscore', input: post('Transfer_Encoding: chunked\r\n'), status: 400, forwarded: '' },
  { name: 'TE.TE non-ASCII letter in the name', input: post('Transfer-Encod\xefng: chunked\r\n'), status: 400, forwarded: '' },
  // CL.CL and Content-Length grammar.
  { name: 'CL.CL differing', input: post('Content-Length: 3\r\nContent-Length: 5\r\n', 'abcde'), status: 400, forwarded: '' },
  { name: 'CL.CL identical', input: post('Content-Length: 3\r\nContent-Length: 3\r\n', 'abc'), status: 400, forwarded: '' },
  { name: 'CL list', input: post('Content-Length: 3, 3\r\n', 'abc'), status: 400, forwarded: '' },
  { name: 'CL with a sign', input: post('Content-Length: +3\r\n', 'abc'), status: 400, forwarded: '' },
  { name: 'CL negative', input: post('Content-Length: -1\r\n'), status: 400, forwarded: '' },
  { name: 'CL hex', input: post('Content-Length: 0x3\r\n', 'abc'), status: 400, forwarded: '' },
  { name: 'CL decimal point', input: post('Content-Length: 3.0\r\n', 'abc'), status: 400, forwarded: '' },
  { name: 'CL overflowing', input: post('Content-Length: 18446744073709551619\r\n'), status: 400, forwarded: '' },
  { name: 'CL empty', input: post('Content-Length:\r\n'), status: 400, forwarded: '' },
  { name: 'CL underscore', input: post('Content_Length: 5\r\n', 'abcde'), status: 400, forwarded: '' },
  // Chunk-size tricks: each stops at the bad line; the head and the good chunks before it were forwarded.
  { name: 'chunk size 0x prefix', input: chunked('0x5\r\nhello\r\n0\r\n\r\n'), status: 400, forwarded: chunked('') },
  { name: 'chunk size with a sign', input: chunked('+5\r\nhello\r\n0\r\n\r\n'), status: 400, forwarded: chunked('') },
  { name: 'chunk size negative', input: chunked('-5\r\nhello\r\n0\r\n\r\n'), status: 400, forwarded: chunked('') },
  { name: 'chunk size leading space', input: chunked(' 5\r\nhello\r\n0\r\n\r\n'), status: 400, forwarded: chunked('') },
  { name: 'chunk size trailing space, no extension', input: chunked('5 \r\nhello\r\n0\r\n\r\n'), status: 400, forwarded: chunked('') },
  { name: 'chunk size 17 hex digits', input: chunked('00000000000000005\r\nhello\r\n0\r\n\r\n'), status: 400, forwarded: chunked('') },
  { name: 'chunk size past 2^53', input: chunked('FFFFFFFFFFFFFFFF\r\nhello\r\n0\r\n\r\n'), status: 400, forwarded: chunked('') },
  { name: 'chunk size overflowing to a small number', input: chunked('10000000000000005\r\nhello\r\n0\r\n\r\n'), status: 400, forwarded: chunked('') },
  { name: 'chunk size line with a bare LF', input: chunked('5\nhello\r\n0\r\n\r\n'), status: 400, forwarded: chunked('') },
  { name: 'chunk size line with a bare CR', input: chunked('5\rhello\r\n0\r\n\r\n'), status: 400, forwarded: chunked('') },
  { name: 'chunk data longer than its size', input: chunked('3\r\nhello\r\n0\r\n\r\n'), status: 400, forwarded: chunked('3\r\nhel') },
  { name: 'chunk data shorter than its size', input: chunked('7\r\nhello\r\n0\r\n\r\n'), status: 400, forwarded: chunked('7\r\nhello\r\n') },
  { name: 'chunk data ended by a bare LF', input: chunked('5\r\nhello\n0\r\n\r\n'), status: 400, forwarded: chunked('5\r\nhello') },
  { name: 'funky chunks: LF in an extension', input: chunked('5;a=b\nc\r\nhello\r\n0\r\n\r\n'), status: 400, forwarded: chunked('') },
  { name: 'funky chunks: extension without a name', input: chunked('5;\r\nhello\r\n0\r\n\r\n'), status: 400, forwarded: chunked('') },
  { name: 'funky chunks: unterminated quoted extension', input: chunked('5;a="b\r\nhello\r\n0\r\n\r\n'), status: 400, forwarded: chunked('') },
  { name: 'funky chunks: junk after the size', input: chunked('5x\r\nhello\r\n0\r\n\r\n'), status: 400, forwarded: chunked('') },
  { name: 'last chunk then Content-Length trailer', input: chunked('0\r\nContent-Length: 5\r\n\r\n'), status: 400, forwarded: chunked('0\r\n') },
  { name: 'last chunk then Transfer-Encoding trailer', input: chunked('0\r\nTransfer-Encoding: chunked\r\n\r\n'), status: 400, forwarded: chunked('0\r\n') },
  { name: 'trailer with obs-fold', input: chunked('0\r\nX: a\r\n b\r\n\r\n'), status: 400, forwarded: chunked('0\r\nX: a\r\n') },
  // Header grammar.
  { name: 'two Host', input: 'GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n', status: 400, forwarded: '' },
  { name: 'no Host in HTTP/1.1', input: 'GET / HTTP/1.1\r\nX: y\r\n\r\n', status: 400, forwarded: '' },
  { name: 'Host with a space', input: 'GET / HTTP/1.1\r\nHost: a b\r\n\r\n', status: 400, forwarded: '' },
  { name: 'Host with a slash', input: 'GET / HTTP/1.1\r\nHost: a/b\r\n\r\n', status: 400, forwarded: '' },
  { name: 'field without a colon', input: 'GET / HTTP/1.1\r\nHost: a\r\nnocolon\r\n\r\n', status: 400, forwarded: '' },
  { name: 'field with an empty name', input: 'GET / HTTP/1.1\r\nHost: a\r\n: v\r\n\r\n', status: 400, forwarded: '' },
  { name: 'field name with @', input: 'GET / HTTP/1.1\r\nHost: a\r\nX@: v\r\n\r\n', status: 400, forwarded: '' },
  { name: 'DEL in a value', input: 'GET / HTTP/1.1\r\nHost: a\r\nX: a\x7fb\r\n\r\n', status: 400, forwarded: '' },
  { name: 'head ended by LF LF', input: 'GET / HTTP/1.1\nHost: a\n\n', status: 400, forwarded: '' },
  { name: 'head ended by a bare LF after CRLF', input: 'GET / HTTP/1.1\r\nHost: a\r\n\n', status: 400, forwarded: '' },
  // Request line.
  { name: 'two SP after the method', input: 'GET  / HTTP/1.1\r\nHost: a\r\n\r\n', status: 400, forwarded: '' },
  { name: 'HTAB as separator', input: 'GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n', status: 400, forwarded: '' },
  { name: 'trailing SP', input: 'GET / HTTP/1.1 \r\nHost: a\r\n\r\n', status: 400, forwarded: '' },
  { name: 'HTTP/0.9', input: 'GET /\r\n', status: 400, forwarded: '' },
  { name: 'lower-case version', input: 'GET / http/1.1\r\nHost: a\r\n\r\n', status: 400, forwarded: '' },
  { name: 'HTTP/1.2', input: 'GET / HTTP/1.2\r\nHost: a\r\n\r\n', status: 505, forwarded: '' },
  { name: 'HTTP/2.0', input: 'GET / HTTP/2.0\r\nHost: a\r\n\r\n', status: 505, forwarded: '' },
  { name: 'HTTP/2 preface', input: 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', status: 505, forwarded: '' },
  { name: 'space in the target', input: 'GET /a b HTTP/1.1\r\nHost: a\r\n\r\n', status: 400, forwarded: '' },
  { name: 'non-ASCII target', input: 'GET /caf\xe9 HTTP/1.1\r\nHost: a\r\n\r\n', status: 400, forwarded: '' },
  { name: 'bad %-escape', input: 'GET /%zz HTTP/1.1\r\nHost: a\r\n\r\n', status: 400, forwarded: '' },
  { name: 'fragment in the target', input: 'GET /a#b HTTP/1.1\r\nHost: a\r\n\r\n', status: 400, forwarded: '' },
  { name: 'lower-case method (not in httpMethods)', input: 'get / HTTP/1.1\r\nHost: a\r\n\r\n', status: 501, forwarded: '' },
  { name: 'TRACE (not in httpMethods)', input: 'TRACE / HTTP/1.1\r\nHost: a\r\n\r\n', status: 501, forwarded: '' },
  { name: 'CONNECT', input: 'CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n', status: 501, forwarded: '' },
  { name: 'CONNECT in httpMethods, allowConnect off', input: 'CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n', status: 501, forwarded: '', flags: { httpMethods: ['GET', 'CONNECT'] } },
  { name: 'authority-form outside CONNECT', input: 'GET a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n', status: 400, forwarded: '' },
  { name: 'asterisk-form', input: 'OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n', status: 400, forwarded: '' },
  { name: 'asterisk-form with GET', input: 'GET * HTTP/1.1\r\nHost: a\r\n\r\n', status: 400, forwarded: '', flags: { allowAsteriskForm: true } },
  { name: 'absolute-form whose host is not the Host (nginx routes by the target)', input: 'GET http://admin.example/ HTTP/1.1\r\nHost: www.example\r\n\r\n', status: 400, forwarded: '' },
  { name: 'absolute-form whose port is not the Host\'s', input: 'GET http://a:8080/ HTTP/1.1\r\nHost: a\r\n\r\n', status: 400, forwarded: '' },
  { name: 'absolute-form with userinfo', input: 'GET http://u@a/ HTTP/1.1\r\nHost: a\r\n\r\n', status: 400, forwarded: '' },
  { name: 'absolute-form in HTTP/1.0 with another Host', input: 'GET http://admin.example/ HTTP/1.0\r\nHost: www.example\r\n\r\n', status: 400, forwarded: '' },
  { name: 'absolute-form without a host', input: 'GET http:///x HTTP/1.1\r\nHost: a\r\n\r\n', status: 400, forwarded: '' },
  { name: 'two empty lines before a request', input: `\r\n\r\n${GET}`, status: 400, forwarded: '' },
  { name: 'Upgrade: websocket', input: 'GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n', status: 501, forwarded: '' },
  { name: 'Upgrade: h2c', input: 'GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n', status: 501, forwarded: '' },
  // The bad request after good ones: the good ones are forwarded, nothing after.
  { name: 'smuggling after a good request', input: `${GET}${post('Content-Length: 6\r\nTransfer-Encoding: chunked\r\n', '0\r\n\r\nG')}`, status: 400, forwarded: GET },
  // Rules.
  { name: 'denyList: a merged slash reaches the same path at nginx', input: 'GET //admin/x HTTP/1.1\r\nHost: a\r\n\r\n', status: 403, forwarded: '', flags: { denyList: ['^GET /admin'] } },
  { name: 'denyList: a %-escaped letter', input: 'GET /%61dmin/x HTTP/1.1\r\nHost: a\r\n\r\n', status: 403, forwarded: '', flags: { denyList: ['^GET /admin'] } },
  { name: 'denyList: dot segments', input: 'GET /x/../admin/./x HTTP/1.1\r\nHost: a\r\n\r\n', status: 403, forwarded: '', flags: { denyList: ['^GET /admin/x'] } },
  { name: 'denyList: %2e%2e segments', input: 'GET /pub/%2e%2e/admin HTTP/1.1\r\nHost: a\r\n\r\n', status: 403, forwarded: '', flags: { denyList: ['^GET /admin'] } },
  { name: 'denyList: an absolute-form target', input: 'GET http://a/admin HTTP/1.1\r\nHost: a\r\n\r\n', status: 403, forwarded: '', flags: { denyList: ['^GET /admin'] } },
  { name: 'denyList: ..;/ (Tomcat and Jetty take the path parameter out, then the dot segment)', input: 'GET /pub/..;/admin HTTP/1.1\r\nHost: a\r\n\r\n', status: 403, forwarded: '', flags: { denyList: ['^GET /admin'] } },
  { name: 'denyList: a path parameter in a segment', input: 'GET /admin;jsessionid=1/x HTTP/1.1\r\nHost: a\r\n\r\n', status: 403, forwarded: '', flags: { denyList: ['^GET /admin/x'] } },
  { name: 'allowList: ..;/ out of the allowed folder', input: 'GET /pub/..;/admin HTTP/1.1\r\nHost: a\r\n\r\n', status: 403, forwarded: '', flags: { allowList: ['^GET /pub/'] } },
  { name: 'allowList: the path the server serves must be allowed', input: 'GET /pub/../admin HTTP/1.1\r\nHost: a\r\n\r\n', status: 403, forwarded: '', flags: { allowList: ['^GET /pub/'] } },
  { name: 'denyList on the request line', input: 'GET /admin/x HTTP/1.1\r\nHost: a\r\n\r\n', status: 403, forwarded: '', flags: { denyList: ['^GET /admin'] } },
  { name: 'denyHeaders', input: 'GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 1.2.3.4\r\n\r\n', status: 403, forwarded: '', flags: { denyHeaders: ['(?i)^x-forwarded-for:'] } },
];
