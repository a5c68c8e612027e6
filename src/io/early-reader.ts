import type { Channel } from './channel.js';

/**
 * Most client bytes read while the server is still being reached. The client
 * is read from the start so that an EOF or a reset is seen at once (a paused
 * socket reports neither): a port scan or a health check that connects and
 * closes must not keep a wrapper and a server connection alive until the
 * idle timeout. Past this many bytes the client waits, as it would anyway.
 */
export const PREWIRE_BUFFER_MAX = 65536;

/**
 * Reads the client while the server is being reached, keeping its bytes
 * (bounded) for the session to judge once the server is up. An EOF is a
 * half-close: the session passes it on right after those bytes, so the
 * server sees it at once; a stream closed without an EOF (a reset) calls
 * onGone at once, and the session ends without keeping the server.
 */
export class EarlyReader {
  private chunks: Buffer[] | null = [];
  private bytes = 0;
  /** The client ended its side before the server was reached. */
  eof = false;

  constructor(
    private readonly client: Channel,
    private readonly onGone: () => void,
  ) {
    const c = client.input;
    c.on('data', this.onData);
    c.once('end', this.onEnd);
    c.once('close', this.onClose);
    if (c.destroyed) queueMicrotask(this.onClose);
    else client.resume();
  }

  private readonly onData = (chunk: Buffer): void => {
    if (!this.chunks) return;
    this.chunks.push(chunk);
    this.bytes += chunk.length;
    if (this.bytes >= PREWIRE_BUFFER_MAX) this.client.pause();
  };

  private readonly onEnd = (): void => {
    if (this.chunks) this.eof = true;
  };

  private readonly onClose = (): void => {
    if (this.chunks && !this.eof) this.onGone();
  };

  /** Stops reading (the client is paused); returns what was read, as one buffer, or null. */
  stop(): Buffer | null {
    const c = this.client.input;
    c.removeListener('data', this.onData);
    c.removeListener('end', this.onEnd);
    c.removeListener('close', this.onClose);
    this.client.pause();
    const chunks = this.chunks;
    this.chunks = null;
    if (!chunks || chunks.length === 0) return null;
    return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
  }
}
