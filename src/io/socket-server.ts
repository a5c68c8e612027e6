import type { Socket } from 'node:net';
import { Channel } from './channel.js';
import type { ServerConnection } from './server.js';

/**
 * A server reached over a socket (TCP or unix, with or without TLS). A class
 * rather than an object of closures: a standalone daemon keeps one for every
 * open session, and closures made in the connect callback would keep its
 * whole scope (the cleared connect timer, the promise's resolvers) alive
 * with them, some 300 bytes a session (bench/README.md, part 5).
 */
export class SocketServer implements ServerConnection {
  readonly channel: Channel;
  readonly exited = null;

  constructor(
    private readonly socket: Socket,
    readonly describe: string,
  ) {
    this.channel = new Channel(socket, socket);
  }

  hasExited(): boolean {
    return false;
  }

  stop(): void {
    this.socket.destroy();
  }
}
