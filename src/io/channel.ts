import type { Readable, Writable } from 'node:stream';
import type { ProxyEndpoints } from '../core/proxy-header.js';

/**
 * One side of a session (client or server) as the session sees it: a byte
 * source and a byte sink with backpressure and half-close. A socket is both;
 * stdin/stdout and a child's stdout/stdin are two streams behind one channel.
 * A later TLS layer (STARTTLS) wraps the client's socket and becomes a new
 * channel of the same shape.
 */
export class Channel {
  private ended = false;
  /**
   * The connection's two ends, for a PROXY header toward the server: the
   * incoming PROXY header's when one came in, else the socket's own. Absent
   * for pipes and unix sockets.
   */
  endpoints?: ProxyEndpoints;
  /**
   * The client is a pipe or a file (a session piped in by hand): its bytes
   * have no timing, everything may be there before the server's greeting.
   */
  piped = false;
  constructor(
    readonly input: Readable,
    readonly output: Writable,
    private readonly destroyer: () => void = () => {
      input.destroy();
      if ((output as unknown) !== input) output.destroy();
    },
  ) {}

  /** Queue bytes; false means "stop sending until 'drain'". */
  write(bytes: Buffer): boolean {
    return this.output.write(bytes);
  }

  /** Half-close: no more bytes from us, after the queued ones. */
  end(): void {
    if (this.ended) return;
    this.ended = true;
    this.output.end();
  }

  get writeEnded(): boolean {
    return this.ended;
  }

  /** True when everything we wrote has been handed to the OS. */
  get writeFinished(): boolean {
    return this.output.writableFinished;
  }

  /** Runs fn once everything written has been handed to the OS (or the output failed). */
  onWritten(fn: () => void): void {
    const out = this.output;
    if (out.writableFinished || out.destroyed) {
      fn();
      return;
    }
    out.once('finish', fn);
    out.once('close', fn);
  }

  pause(): void {
    this.input.pause();
  }

  resume(): void {
    this.input.resume();
  }

  destroy(): void {
    this.destroyer();
  }
}
