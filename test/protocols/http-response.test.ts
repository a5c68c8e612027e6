import { describe, expect, it } from 'vitest';
import { MAX_RESPONSE_HEAD, ResponseFramer, type Asked } from '../../src/protocols/http/response.js';

const GET: Asked = { head: false, connect: false, upgrade: false };
const HEAD: Asked = { head: true, connect: false, upgrade: false };

interface Case {
  readonly name: string;
  readonly asked: readonly Asked[];
  readonly bytes: string;
  /** Final responses completed. */
  readonly completed: number;
  /** null: framed; else the offset of the first byte not forwarded. */
  readonly faultAt: number | null;
  /** The body runs to the close. */
  readonly endsAtClose?: boolean;
}

const ok = 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok';
const CASES: readonly Case[] = [
  { name: 'Content-Length', asked: [GET], bytes: ok, completed: 1, faultAt: null },
  { name: 'two pipelined', asked: [GET, GET], bytes: ok + ok, completed: 2, faultAt: null },
  { name: 'chunked with extension and trailer', asked: [GET], bytes: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2;x=y\r\nok\r\n0\r\nT: 1\r\n\r\n', completed: 1, faultAt: null },
  { name: 'HEAD: no body despite Content-Length', asked: [HEAD, GET], bytes: `HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n${ok}`, completed: 2, faultAt: null },
  { name: '204 and 304 have no body', asked: [GET, GET, GET], bytes: `HTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n${ok}`, completed: 3, faultAt: null },
  { name: '100 and 103 are interim', asked: [GET], bytes: `HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\n${ok}`, completed: 1, faultAt: null },
  { name: 'close-delimited', asked: [GET, GET], bytes: 'HTTP/1.0 200 OK\r\n\r\nanything HTTP/1.1 200 OK\r\n', completed: 1, faultAt: null, endsAtClose: true },
  { name: 'status line without reason', asked: [GET], bytes: 'HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n', completed: 1, faultAt: null },
  { name: 'response to no request', asked: [], bytes: ok, completed: 0, faultAt: 0 },
  { name: 'extra bytes after the body', asked: [GET], bytes: `${ok}junk\r\n`, completed: 1, faultAt: ok.length },
  { name: 'bad status line', asked: [GET], bytes: 'HTTP/1.1 2000 OK\r\n\r\n', completed: 0, faultAt: 0 },
  { name: 'HTTP/2 status line', asked: [GET], bytes: 'HTTP/2 200 OK\r\n\r\n', completed: 0, faultAt: 0 },
  { name: 'bare LF line', asked: [GET], bytes: 'HTTP/1.1 200 OK\nContent-Length: 0\n\n', completed: 0, faultAt: 0 },
  { name: 'two different Content-Length', asked: [GET], bytes: 'HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab', completed: 0, faultAt: 36 },
  { name: 'bad chunk size', asked: [GET], bytes: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n', completed: 0, faultAt: 47 },
  { name: 'both Content-Length and chunked (RFC 9112 6.3: an intermediary must not pass both)', asked: [GET], bytes: 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n', completed: 0, faultAt: 64 },
  { name: 'both, chunked first', asked: [GET], bytes: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 2\r\n\r\n2\r\nok\r\n0\r\n\r\n', completed: 0, faultAt: 64 },
  { name: 'both in a HEAD response: no body to frame', asked: [HEAD, GET], bytes: `HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n${ok}`, completed: 2, faultAt: null },
  { name: '101 without an upgrade asked for', asked: [GET], bytes: 'HTTP/1.1 101 Switching Protocols\r\n\r\n', completed: 0, faultAt: 34 },
];

describe('http response framer: cases at every split point', () => {
  for (const c of CASES) {
    it(c.name, () => {
      for (let cut = 0; cut <= c.bytes.length; cut++) {
        const f = new ResponseFramer();
        for (const a of c.asked) f.expect(a);
        let completed = 0;
        let fault: number | null = null;
        let base = 0;
        for (const part of [c.bytes.slice(0, cut), c.bytes.slice(cut)]) {
          if (part.length === 0 || fault !== null) {
            base += part.length;
            continue;
          }
          const p = f.feed(Buffer.from(part, 'latin1'));
          completed += p.completed;
          if (p.fault) fault = base + p.fault.at;
          base += part.length;
        }
        expect(completed, `cut ${cut}`).toBe(c.completed);
        // When the bad line spans the cut, its first part was forwarded with the first chunk: the fault is at the cut.
        if (c.faultAt === null) expect(fault, `cut ${cut}`).toBe(null);
        else expect(fault !== null && fault >= c.faultAt && fault <= Math.max(c.faultAt, cut), `cut ${cut}: ${fault}`).toBe(true);
        if (c.endsAtClose) expect(f.endsAtClose).toBe(true);
      }
    });
  }

  it('a response head past its bound is a fault, whatever the chunking', () => {
    const f = new ResponseFramer();
    f.expect(GET);
    const big = `HTTP/1.1 200 OK\r\nX: ${'a'.repeat(MAX_RESPONSE_HEAD)}\r\n\r\n`;
    let fault = false;
    for (let i = 0; i < big.length && !fault; i += 1000) fault = f.feed(Buffer.from(big.slice(i, i + 1000))).fault !== null;
    expect(fault).toBe(true);
  });
});
