import { BlockList, isIP } from 'node:net';
import type { Readable } from 'node:stream';
import type { ProxySettings } from '../config.js';
import { parseProxyHeader, type ProxyHeader } from '../core/proxy-header.js';

/**
 * How long a listed peer may take to send its PROXY header. A proxy sends it
 * at once, with its connect; the deadline stops a listed peer (or a client
 * that reached a port meant for the proxy) from holding a connection open
 * without a header.
 */
export const PROXY_HEADER_DEADLINE_MS = 5000;

export type ProxyIn =
  /** A header came; the bytes after it were put back on the stream. */
  | { readonly kind: 'header'; readonly header: ProxyHeader }
  /** proxyRequired = false and none came (other bytes, put back, or the deadline). */
  | { readonly kind: 'absent'; readonly why: string }
  /** Malformed, truncated, missing while required, or the peer left: close the connection. */
  | { readonly kind: 'refused'; readonly why: string };

/** The proxyFrom list as a BlockList (built once per configuration). */
const lists = new WeakMap<ProxySettings, BlockList>();

function blockList(settings: ProxySettings): BlockList {
  let list = lists.get(settings);
  if (!list) {
    list = new BlockList();
    for (const p of settings.from) list.addSubnet(p.net, p.bits, p.family === 4 ? 'ipv4' : 'ipv6');
    lists.set(settings, list);
  }
  return list;
}

/** True when the peer (address normalised, v4-mapped shown as v4) may send a PROXY header. */
export function proxyPeerListed(settings: ProxySettings, address: string): boolean {
  if (settings.from.length === 0) return false;
  const family = isIP(address);
  if (family === 0) return false;
  return blockList(settings).check(address, family === 4 ? 'ipv4' : 'ipv6');
}

/**
 * Reads a PROXY header (v1 or v2) from the first bytes of a listed peer's
 * connection, before any protocol byte is judged. The stream must be paused
 * (pauseOnConnect, or a fresh socket on fd 0) and is paused again when this
 * resolves, with the bytes that followed the header (or, when no header is
 * needed, all bytes read) put back in front with unshift(): the session reads
 * them first. The header's bytes are never put back, so never forwarded.
 * At most one chunk beyond PROXY_HEADER_MAX is ever held: the parser answers
 * by then.
 */
export function readProxyHeader(input: Readable, settings: ProxySettings, deadlineMs = PROXY_HEADER_DEADLINE_MS): Promise<ProxyIn> {
  return new Promise((resolve) => {
    let got: Buffer = Buffer.alloc(0);
    let settled = false;
    const done = (r: ProxyIn, putBack: Buffer | null): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      input.removeListener('data', onData);
      input.removeListener('end', onGone);
      input.removeListener('close', onGone);
      input.removeListener('error', onError);
      input.pause();
      if (putBack && putBack.length > 0) input.unshift(putBack);
      resolve(r);
    };
    const onData = (chunk: Buffer): void => {
      got = got.length === 0 ? chunk : Buffer.concat([got, chunk]);
      const r = parseProxyHeader(got);
      switch (r.kind) {
        case 'more':
          return;
        case 'header':
          done({ kind: 'header', header: r.header }, got.subarray(r.consumed));
          return;
        case 'error':
          if (r.reason === 'not_proxy' && !settings.required) done({ kind: 'absent', why: 'no PROXY header (protocol bytes first)' }, got);
          else done({ kind: 'refused', why: r.reason === 'not_proxy' ? 'no PROXY header (protocol bytes first)' : `bad PROXY header (${r.reason})` }, null);
          return;
        default: {
          const never: never = r;
          throw new Error(`unknown parse result ${JSON.stringify(never)}`);
        }
      }
    };
    // However the peer leaves before a header is complete, the connection is closed:
    // after an EOF the session could no longer see one.
    const onGone = (): void => done({ kind: 'refused', why: got.length === 0 ? 'closed before a PROXY header' : `closed after ${got.length} bytes of an incomplete PROXY header` }, null);
    const onError = (e: NodeJS.ErrnoException): void => done({ kind: 'refused', why: `error before a PROXY header: ${e.code ?? e.message}` }, null);
    const timer = setTimeout(() => {
      // Without a header, a peer that waits for the server to speak first (SMTP, POP3, IMAP) sends nothing.
      if (!settings.required && got.length === 0) done({ kind: 'absent', why: `no PROXY header within ${deadlineMs} ms` }, null);
      else done({ kind: 'refused', why: got.length === 0 ? `no PROXY header within ${deadlineMs} ms` : `incomplete PROXY header after ${deadlineMs} ms (${got.length} bytes)` }, null);
    }, deadlineMs);
    input.on('data', onData);
    input.once('end', onGone);
    input.once('close', onGone);
    input.on('error', onError);
    if (input.destroyed) queueMicrotask(onGone);
    else input.resume();
  });
}
