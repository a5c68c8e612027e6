import { createReadStream, createWriteStream, fstatSync } from 'node:fs';
import { Socket } from 'node:net';
import type { Readable, Writable } from 'node:stream';
import { normaliseAddress } from './address.js';
import { Channel } from './channel.js';

export interface StdioClient {
  readonly channel: Channel;
  /** The peer's address when fd 0 is a socket; 'stdin' for pipes and files. */
  readonly address: string;
  /** True when fd 0 is a socket (inetd, xinetd, systemd Accept=yes). */
  readonly isSocket: boolean;
  /** The duplex socket on fds 0/1, for what comes before the session (a PROXY header); null for pipes. */
  readonly socket: Socket | null;
}

function sameFile(a: number, b: number): boolean {
  try {
    const x = fstatSync(a);
    const y = fstatSync(b);
    return x.dev === y.dev && x.ino === y.ino;
  } catch {
    return false;
  }
}

/**
 * True when fd is the client's connection: a socket that is also fd 0 or
 * fd 1 (inetd, xinetd and systemd hand the one accepted socket over as fds
 * 0, 1 and 2). Nothing but protocol traffic may be written there. A socket
 * of its own (node's child_process pipes are socketpairs) is not the client.
 */
export function fdIsClient(fd: number): boolean {
  try {
    if (!fstatSync(fd).isSocket()) return false;
  } catch {
    return false;
  }
  // fd is a socket here, so "same file" means the same socket.
  if (fd === 0) return true;
  return sameFile(fd, 0) || (fd !== 1 && sameFile(fd, 1) && fdIsClient(1));
}

/**
 * The client in inetd mode: fd 0 and fd 1. Under inetd, xinetd and systemd
 * (Accept=yes) both are the one accepted socket, used as a single duplex
 * socket so that end() half-closes it (shutdown(SHUT_WR)). By hand they are
 * pipes or files; each gets its own non-blocking stream (process.stdout would
 * block the event loop on a slow reader, and timers with it).
 */
export function stdioClient(): StdioClient {
  const in0 = fstatSync(0);
  if (in0.isSocket() && sameFile(0, 1)) {
    const sock = new Socket({ fd: 0, readable: true, writable: true, allowHalfOpen: true });
    sock.setNoDelay(true);
    const addr = sock.remoteAddress;
    return { channel: new Channel(sock, sock), address: addr ? normaliseAddress(addr) : 'unix', isSocket: true, socket: sock };
  }
  const input: Readable = in0.isFIFO() || in0.isSocket() ? new Socket({ fd: 0, readable: true, writable: false, allowHalfOpen: true }) : createReadStream('', { fd: 0 });
  const out1 = fstatSync(1);
  const output: Writable = out1.isFIFO() || out1.isSocket()
    ? new Socket({ fd: 1, readable: false, writable: true })
    : createWriteStream('', { fd: 1 });
  const channel = new Channel(input, output);
  channel.piped = true;
  return { channel, address: 'stdin', isSocket: false, socket: null };
}
