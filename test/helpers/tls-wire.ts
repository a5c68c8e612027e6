import { readFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { waitFor } from './wrapper.js';

/** A raw client that can switch to TLS on the same TCP connection, as a STARTTLS client does. */
export class Wire {
  private got = '';
  private tls: TLSSocket | null = null;
  private constructor(private readonly sock: Socket) {
    sock.on('data', (b: Buffer) => (this.got += b.toString('latin1')));
    sock.on('error', () => {});
  }
  static open(port: number): Promise<Wire> {
    return new Promise((res, rej) => {
      const s = connect({ port, host: '127.0.0.1' });
      s.once('connect', () => res(new Wire(s)));
      s.once('error', rej);
    });
  }
  send(s: string): void {
    (this.tls ?? this.sock).write(Buffer.from(s, 'latin1'));
  }
  text(): string {
    return this.got;
  }
  until(t: string): Promise<void> {
    return waitFor(() => this.got.includes(t), `${JSON.stringify(t)} in ${JSON.stringify(this.got)}`);
  }
  /** TLS over the same connection; what the server sends from then on is appended after a marker. */
  startTls(ca: string): Promise<void> {
    return new Promise((res, rej) => {
      this.sock.removeAllListeners('data');
      const t = tlsConnect({ socket: this.sock, ca: readFileSync(ca), servername: 'mail.test' });
      t.once('secureConnect', () => {
        this.got += '<TLS>';
        this.tls = t;
        res();
      });
      t.on('data', (b: Buffer) => (this.got += b.toString('latin1')));
      t.once('error', rej);
    });
  }
  close(): void {
    (this.tls ?? this.sock).destroy();
  }
}
