import { connect, type Socket } from 'node:net';
import { waitFor } from './wrapper.js';

/**
 * A raw client for the PROXY tests: dials from a chosen loopback address (so
 * that the address a header carries differs from the proxy's own), writes
 * pieces with pauses between them (a header split across TCP segments), and
 * records what it gets and when the connection closes.
 */
export interface ProxyClient {
  readonly sock: Socket;
  received(): string;
  until(text: string, timeoutMs?: number): Promise<void>;
  /** Writes each piece, waiting pauseMs between them. */
  sendPieces(pieces: readonly (string | Buffer)[], pauseMs?: number): Promise<void>;
  send(data: string | Buffer): void;
  /** Resolves when the wrapper has closed the connection (EOF or close). */
  readonly closed: Promise<void>;
  /** Milliseconds from connect to that close, once closed. */
  closedAfter(): number | null;
}

export function proxyClient(port: number, localAddress = '127.0.0.1'): Promise<ProxyClient> {
  return new Promise((resolve, reject) => {
    const sock = connect({ host: '127.0.0.1', port, localAddress, allowHalfOpen: true });
    let got = '';
    let start = 0;
    let closedAt: number | null = null;
    let closedR: () => void = () => {};
    const closed = new Promise<void>((r) => (closedR = r));
    sock.on('data', (b: Buffer) => (got += b.toString('latin1')));
    // The wrapper closing (EOF) is what counts: this client half-closes on its own.
    const gone = (): void => {
      closedAt ??= Date.now();
      closedR();
    };
    sock.on('end', gone);
    sock.on('close', gone);
    sock.on('error', () => {});
    sock.once('error', reject);
    sock.once('connect', () => {
      start = Date.now();
      resolve({
        sock,
        received: () => got,
        until: (text, timeoutMs) => waitFor(() => got.includes(text), `${JSON.stringify(text)} in ${JSON.stringify(got)}`, timeoutMs),
        send: (d) => void sock.write(typeof d === 'string' ? Buffer.from(d, 'latin1') : d),
        sendPieces: async (pieces, pauseMs = 50) => {
          for (const [i, p] of pieces.entries()) {
            if (i > 0) await new Promise((r) => setTimeout(r, pauseMs));
            sock.write(typeof p === 'string' ? Buffer.from(p, 'latin1') : p);
          }
        },
        closed,
        closedAfter: () => (closedAt === null ? null : closedAt - start),
      });
    });
  });
}

/** A PROXY v2 header (PROXY command, TCP over IPv4, or IPv6 when src has a colon) with optional TLVs. */
export function v2Header(src: string, sport: number, dst: string, dport: number, tlvs: readonly { type: number; value: Buffer }[] = []): Buffer {
  const sig = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
  const v6 = src.includes(':');
  const alen = v6 ? 16 : 4;
  const addr = Buffer.alloc(2 * alen + 4);
  if (v6) {
    v6Bytes(src).copy(addr, 0);
    v6Bytes(dst).copy(addr, 16);
  } else {
    src.split('.').forEach((o, i) => (addr[i] = Number(o)));
    dst.split('.').forEach((o, i) => (addr[4 + i] = Number(o)));
  }
  addr.writeUInt16BE(sport, 2 * alen);
  addr.writeUInt16BE(dport, 2 * alen + 2);
  const tlvBytes = tlvs.map((t) => {
    const h = Buffer.from([t.type, 0, 0]);
    h.writeUInt16BE(t.value.length, 1);
    return Buffer.concat([h, t.value]);
  });
  const body = Buffer.concat([addr, ...tlvBytes]);
  const len = Buffer.alloc(2);
  len.writeUInt16BE(body.length);
  return Buffer.concat([sig, Buffer.from([0x21, v6 ? 0x21 : 0x11]), len, body]);
}

/** The 16 bytes of an IPv6 address written with hex words and at most one `::` (no dotted tail). */
function v6Bytes(a: string): Buffer {
  const [head, tail] = a.includes('::') ? a.split('::') : [a, undefined];
  const words = (s: string | undefined) => (s ? s.split(':').map((w) => parseInt(w, 16)) : []);
  const h = words(head);
  const t = words(tail);
  const all = [...h, ...new Array<number>(8 - h.length - t.length).fill(0), ...t];
  const b = Buffer.alloc(16);
  all.forEach((w, i) => b.writeUInt16BE(w, 2 * i));
  return b;
}
