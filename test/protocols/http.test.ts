import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { HOSTILE, VALID } from './http-cases.js';
import { MiniShell } from './http-harness.js';
import { normalisedRequestLine } from '../../src/protocols/http/target.js';

/** Every way to cut the input in two, plus one byte at a time. */
function splits(input: string): number[][] {
  const out: number[][] = [[]];
  for (let i = 1; i < input.length; i++) out.push([i]);
  out.push(Array.from({ length: input.length }, (_, i) => i));
  return out;
}

describe('http: legal requests are forwarded byte for byte, at every split point', () => {
  for (const c of VALID) {
    it(c.name, () => {
      for (const cuts of splits(c.input)) {
        const s = new MiniShell(c.flags).pushSplit(c.input, cuts);
        expect(s.refusals, `cuts ${cuts.join(',')}`).toEqual([]);
        expect(s.server, `cuts ${cuts.join(',')}`).toBe(c.input);
        expect(s.client).toBe('');
      }
    });
  }
});

describe('http: hostile requests are refused, the server gets only what came before', () => {
  for (const c of HOSTILE) {
    it(`${c.name} → ${c.status}`, () => {
      for (const cuts of splits(c.input)) {
        const s = new MiniShell(c.flags).pushSplit(c.input, cuts);
        s.end();
        expect(s.status, `cuts ${cuts.join(',')}: ${JSON.stringify(s.refusals)}`).toBe(c.status);
        expect(s.server, `cuts ${cuts.join(',')}`).toBe(c.forwarded);
        expect(s.closed).toBe(true);
        expect(s.client).toMatch(/\r\nConnection: close\r\n\r\n/);
      }
    });
  }
});

describe('http: limits', () => {
  it('maxRequestLine: 414, nothing forwarded', () => {
    const line = `GET /${'a'.repeat(7991)} HTTP/1.1\r\n`;
    expect(line.length - 2).toBe(8005);
    const s = new MiniShell().push(`${line}Host: a\r\n\r\n`);
    expect(s.status).toBe(414);
    expect(s.server).toBe('');
    const ok = `GET /${'a'.repeat(7985)} HTTP/1.1\r\nHost: a\r\n\r\n`;
    expect(new MiniShell().push(ok).server).toBe(ok);
    expect(new MiniShell({ maxRequestLine: 100 }).push(ok).status).toBe(414);
  });

  it('maxHeaderBytes: 431 for one long field and for many short ones', () => {
    const one = `GET / HTTP/1.1\r\nHost: a\r\nX: ${'v'.repeat(70000)}\r\n\r\n`;
    const s = new MiniShell().push(one);
    expect(s.status).toBe(431);
    expect(s.server).toBe('');
    const many = `GET / HTTP/1.1\r\nHost: a\r\n${'X-Field: 0123456789012345678901234567890123456789\r\n'.repeat(90)}\r\n`;
    const m = new MiniShell({ maxHeaderBytes: 4096 }).push(many);
    expect(m.status).toBe(431);
    expect(m.server).toBe('');
    expect(new MiniShell().push(many).server).toBe(many);
  });

  it('maxHeaders: 431 past the count', () => {
    const head = (n: number) => `GET / HTTP/1.1\r\nHost: a\r\n${'X: y\r\n'.repeat(n)}\r\n`;
    expect(new MiniShell().push(head(99)).server).toBe(head(99));
    const s = new MiniShell().push(head(100));
    expect(s.status).toBe(431);
    expect(s.server).toBe('');
  });

  it('maxBodySize: 413 for a Content-Length over it, and for chunks adding up past it', () => {
    const cl = 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\nhello world';
    expect(new MiniShell({ maxBodySize: 11 }).push(cl).server).toBe(cl);
    const s = new MiniShell({ maxBodySize: 10 }).push(cl);
    expect(s.status).toBe(413);
    expect(s.server).toBe('');
    const head = 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n';
    const c = new MiniShell({ maxBodySize: 10 }).push(`${head}6\r\nhello \r\n5\r\nworld\r\n0\r\n\r\n`);
    expect(c.status).toBe(413);
    expect(c.server).toBe(`${head}6\r\nhello \r\n`);
  });

  it('a chunk line past its bound is refused', () => {
    const head = 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n';
    const s = new MiniShell().push(`${head}5;${'a'.repeat(5000)}\r\nhello\r\n0\r\n\r\n`);
    expect(s.status).toBe(400);
    expect(s.server).toBe(head);
  });

  it('an unfinished head at EOF is never forwarded', () => {
    const s = new MiniShell().push('GET / HTTP/1.1\r\nHost: a\r\n');
    s.end();
    expect(s.server).toBe('');
    expect(s.status).toBe(null);
  });
});

describe('http: responses', () => {
  const GET = 'GET / HTTP/1.1\r\nHost: a\r\n\r\n';
  it('pipelined requests past 32 unanswered wait for responses', () => {
    const s = new MiniShell().push(GET.repeat(40));
    expect(s.server).toBe(GET.repeat(32));
    expect(s.held).toBe(true);
    s.fromServer('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
    expect(s.server).toBe(GET.repeat(33));
    s.fromServer('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n'.repeat(7));
    expect(s.server).toBe(GET.repeat(40));
    expect(s.client).toBe(`HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok${'HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n'.repeat(7)}`);
  });

  it('a response to a HEAD has no body, whatever its Content-Length says', () => {
    const s = new MiniShell().push('HEAD / HTTP/1.1\r\nHost: a\r\n\r\n').push(GET);
    s.fromServer('HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx');
    expect(s.closed).toBe(false);
  });

  it('a response the wrapper cannot frame closes the connection, its bad bytes withheld', () => {
    const s = new MiniShell().push(GET);
    s.fromServer('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\n');
    expect(s.closed).toBe(true);
    expect(s.client).toBe('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
  });

  it('Connection: close keeps the client from being read again', () => {
    const s = new MiniShell().push(`GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n${GET}`);
    expect(s.server).toBe('GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n');
    s.fromServer('HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
    expect(s.server).toBe('GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n');
    expect(s.held).toBe(true);
  });

  it('HTTP/1.0 without keep-alive is one request', () => {
    const s = new MiniShell().push('GET / HTTP/1.0\r\n\r\nGET / HTTP/1.0\r\n\r\n');
    expect(s.server).toBe('GET / HTTP/1.0\r\n\r\n');
    expect(s.held).toBe(true);
  });

  it('Expect: 100-continue: the body phase starts after the 100', () => {
    const s = new MiniShell().push('PUT /x HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n');
    expect(s.proto.clientPhase!()).toBe('busy');
    s.fromServer('HTTP/1.1 100 Continue\r\n\r\n');
    expect(s.proto.clientPhase!()).toBe('body');
    s.push('abc');
    expect(s.proto.clientPhase!()).toBe('busy');
    s.fromServer('HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n');
    expect(s.proto.clientPhase!()).toBe('idle');
    expect(s.closed).toBe(false);
  });

  it('phases: head from the start, idle between requests, head again at the first byte', () => {
    const s = new MiniShell();
    expect(s.proto.clientPhase!()).toBe('head');
    s.push(GET);
    expect(s.proto.clientPhase!()).toBe('busy');
    s.fromServer('HTTP/1.1 204 No Content\r\n\r\n');
    expect(s.proto.clientPhase!()).toBe('idle');
    s.push('G');
    expect(s.proto.clientPhase!()).toBe('head');
  });

  it('allowUpgrade: the request waits for its answer; after the 101 the client bytes are a raw tunnel', () => {
    const ws = 'GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n';
    const frame = '\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58\n\r\0';
    const s = new MiniShell({ allowUpgrade: true }).push(ws + frame);
    expect(s.server).toBe(ws);
    s.fromServer('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n\x81\x05hello');
    expect(s.server).toBe(ws + frame);
    s.push('GET / HTTP/1.1 nonsense\n');
    expect(s.server).toBe(`${ws}${frame}GET / HTTP/1.1 nonsense\n`);
    expect(s.refusals).toEqual([]);
  });

  it('allowUpgrade: a server that declines (200) keeps the connection HTTP', () => {
    const ws = 'GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n';
    const s = new MiniShell({ allowUpgrade: true }).push(ws + GET);
    expect(s.server).toBe(ws);
    s.fromServer('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n');
    expect(s.server).toBe(ws + GET);
    expect(s.refusals).toEqual([]);
  });

  it('a 101 to a request that asked for no upgrade closes', () => {
    const s = new MiniShell().push(GET);
    s.fromServer('HTTP/1.1 101 Switching Protocols\r\n\r\n');
    expect(s.closed).toBe(true);
  });

  it('allowConnect: CONNECT, then a tunnel after the 200', () => {
    const c = 'CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n';
    const s = new MiniShell({ allowConnect: true, httpMethods: ['CONNECT'] }).push(`${c}\x16\x03\x01`);
    expect(s.server).toBe(c);
    s.fromServer('HTTP/1.1 200 Connection Established\r\n\r\n');
    expect(s.server).toBe(`${c}\x16\x03\x01`);
  });
});

describe('http: secrets and properties', () => {
  it('Authorization and Cookie values are credentials for the log', () => {
    const s = new MiniShell().push('GET / HTTP/1.1\r\n');
    const line = Buffer.from('Authorization: Basic YWxhZGRpbjpvcGVuc2VzYW1l\r\n');
    expect(s.proto.lineSecrecy!(line, line.length - 2)).toBe(true);
    const c = Buffer.from('cookie: a=b\r\n');
    expect(s.proto.lineSecrecy!(c, c.length - 2)).toBe(true);
    const h = Buffer.from('Host: a\r\n');
    expect(s.proto.lineSecrecy!(h, h.length - 2)).toBe(false);
  });

  it('any chunking of a valid pipelined stream forwards the same bytes', () => {
    const input = VALID.filter((c) => !c.flags && !c.input.startsWith('\r\n') && !c.input.includes('HTTP/1.0\r\n\r\n')).map((c) => c.input).join('');
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: input.length }), { maxLength: 30 }), (cuts) => {
        const s = new MiniShell().pushSplit(input, [...cuts].sort((a, b) => a - b));
        return s.refusals.length === 0 && s.server === input;
      }),
    );
  });

  it('random bytes never throw, and what reaches the server is a prefix of the input', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 400 }), fc.array(fc.integer({ min: 0, max: 400 }), { maxLength: 8 }), (bytes, cuts) => {
        const input = `POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n${Buffer.from(bytes).toString('latin1')}`;
        const s = new MiniShell().pushSplit(input, [...cuts].sort((a, b) => a - b));
        s.end();
        return input.startsWith(s.server);
      }),
    );
  });
});

describe('http: trailer and response bounds', () => {
  const head = 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n';
  it('trailers: maxHeaders and maxHeaderBytes count them on their own', () => {
    const ok = `${head}${'T: 1\r\n'.repeat(100)}\r\n`;
    expect(new MiniShell().push(ok).server).toBe(ok);
    const many = new MiniShell().push(`${head}${'T: 1\r\n'.repeat(101)}\r\n`);
    expect(many.status).toBe(431);
    const long = new MiniShell({ maxHeaderBytes: 1024 }).push(`${head}T: ${'v'.repeat(2000)}\r\n\r\n`);
    expect(long.status).toBe(431);
    expect(long.server).toBe(head);
  });

  it('a response chunk-size line past 4 KiB closes the connection', () => {
    const s = new MiniShell().push('GET / HTTP/1.1\r\nHost: a\r\n\r\n');
    s.fromServer(`HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1;${'e'.repeat(5000)}\r\nx\r\n0\r\n\r\n`);
    expect(s.closed).toBe(true);
    expect(s.client).toBe('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n');
  });
});

describe('http: review findings', () => {
  it('Expect: 100-continue answered with a final status: the body that may still come is held to minBodyRate', () => {
    // RFC 9110 section 10.1.1: after a final response the client may still send the body. Until
    // now the session stayed 'busy' (no body deadline), so a client could sit on the
    // connection for the whole idleTimeout instead of one minBodyRate window.
    const s = new MiniShell().push('POST /x HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n');
    expect(s.proto.clientPhase!()).toBe('busy');
    s.fromServer('HTTP/1.1 405 Not Allowed\r\nContent-Length: 0\r\n\r\n');
    expect(s.proto.clientPhase!()).toBe('body');
    // The body still comes, framed as its Content-Length says; the next request is read after it.
    s.push(`hello${'GET /n HTTP/1.1\r\nHost: a\r\n\r\n'}`);
    expect(s.refusals).toEqual([]);
    expect(s.heads).toEqual(['POST /x HTTP/1.1', 'GET /n HTTP/1.1']);
  });

  it('a body deadline after the request was answered closes without a 408: the client would take it for the next response', () => {
    const s = new MiniShell().push('POST /x HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n');
    expect(s.proto.reply('timeout')?.toString('latin1')).toMatch(/^HTTP\/1\.1 408 /);
    s.fromServer('HTTP/1.1 405 Not Allowed\r\nContent-Length: 0\r\n\r\n');
    s.push('he');
    expect(s.proto.clientPhase!()).toBe('body');
    expect(s.proto.reply('timeout')).toBe(undefined);
    expect(s.proto.reply('shutdown')).toBe(undefined);
  });

  it('a bad chunk line of a request the server answered early: closed, without a second response for it', () => {
    const s = new MiniShell().push('POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n');
    s.fromServer('HTTP/1.1 413 Content Too Large\r\nContent-Length: 0\r\n\r\n');
    s.push('zz\r\n');
    expect(s.refusals.map((r) => r.code)).toEqual(['smuggling']);
    expect(s.closed).toBe(true);
    expect(s.client).toBe('HTTP/1.1 413 Content Too Large\r\nContent-Length: 0\r\n\r\n');
    // Not answered yet: the wrapper's 400 is the answer.
    const t = new MiniShell().push('POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n');
    expect(t.status).toBe(400);
  });

  it('Expect: 100-continue: a final response to an earlier pipelined request does not end the wait', () => {
    const s = new MiniShell().push('GET / HTTP/1.1\r\nHost: a\r\n\r\nPUT /x HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n');
    s.fromServer('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n');
    expect(s.proto.clientPhase!()).toBe('busy');
  });
});

describe('http: the target the rules see (normalisedRequestLine)', () => {
  it('is the served path: no empty, "." or ".." segment and no %XX left in it; the query as sent', () => {
    const seg = fc.constantFrom('a', 'b', '.', '..', '', '%2e', '%2E%2e', '%2F', '%61', 'x%2fy');
    fc.assert(
      fc.property(fc.array(seg, { maxLength: 8 }), fc.constantFrom('', '?q=/../a', '?'), fc.boolean(), (parts, query, absolute) => {
        const target = `${absolute ? 'http://h' : ''}/${parts.join('/')}${query}`;
        const line = Buffer.from(`GET ${target} HTTP/1.1`);
        const got = normalisedRequestLine(line, line.length) ?? line.toString('latin1');
        expect(got.startsWith('GET /')).toBe(true);
        expect(got.endsWith(`${query} HTTP/1.1`)).toBe(true);
        const path = got.slice(4, got.length - query.length - 9);
        const segments = path.split('/').slice(1, -1);
        expect(segments.every((s) => s !== '' && s !== '.' && s !== '..')).toBe(true);
        expect(path).not.toMatch(/%[0-9a-fA-F]{2}/);
      }),
    );
  });
});
