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
}

/** True when the fd is a socket: then it is the client's connection, never a place for messages. */
export function fdIsSocket(fd: number): boolean {
  try {
    return fstatSync(fd).isSocket();
  } catch {
    return false;
  }
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
  if (in0.isSocket()) {
    const sock = new Socket({ fd: 0, readable: true, writable: true, allowHalfOpen: true });
    sock.setNoDelay(true);
    const addr = sock.remoteAddress;
    return { channel: new Channel(sock, sock), address: addr ? normaliseAddress(addr) : 'unix', isSocket: true };
  }
  const input: Readable = in0.isFIFO() ? new Socket({ fd: 0, readable: true, writable: false }) : createReadStream('', { fd: 0 });
  const out1 = fstatSync(1);
  const output: Writable = out1.isFIFO() || out1.isSocket()
    ? new Socket({ fd: 1, readable: false, writable: true })
    : createWriteStream('', { fd: 1 });
  return { channel: new Channel(input, output), address: 'stdin', isSocket: false };
}
