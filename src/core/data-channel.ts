/**
 * Data connections a protocol asks the shell for (FTP, RFC 959 section 3.2):
 * pure data, so that the protocol core stays free of sockets. The shell
 * (src/io/ftp-data.ts) opens the listener, answers with DataOpened through
 * ProtocolSession.dataOpened(), and relays the one connection it accepts.
 */
export type DataRequest =
  | {
      /**
       * The server entered passive mode (227 / 229): open a listener toward
       * the client, accept one connection from the control client's address
       * only, and relay it to the server's data port. serverHost null: the
       * host the control connection reached (the address in the server's
       * reply is not trusted for a TCP server).
       */
      readonly kind: 'passive';
      readonly serverHost: string | null;
      readonly serverPort: number;
      /** PROT P (RFC 4217): the client side of the data connection is TLS, the wrapper its server. */
      readonly tls: boolean;
    }
  | {
      /**
       * The client asked for active mode with a validated PORT / EPRT: open a
       * listener toward the server (its PORT / EPRT names it), accept one
       * connection from the server's address, and connect to the client's
       * address itself.
       */
      readonly kind: 'active';
      readonly clientHost: string;
      readonly clientPort: number;
      readonly tls: boolean;
    }
  | {
      /**
       * A transfer command goes to the server now: the active-mode listener
       * may take the server's connection from here on. A server connects
       * only once it has a transfer command (RFC 959 section 3.2), so a
       * connection before it is someone else's (a local process racing the
       * server to the listener's port); after one such, none is relayed.
       */
      readonly kind: 'transfer';
    }
  | {
      /**
       * The server answered that transfer command with a final reply, no
       * 1xx (550: no such file): it did not connect. The active listener
       * waits for the next transfer command again, taking nothing before it.
       */
      readonly kind: 'transfer-refused';
    };

/** The shell's answer to a DataRequest. */
export type DataOpened =
  | {
      readonly ok: true;
      readonly kind: 'passive' | 'active';
      /** The listener's address: passive: toward the client (to announce); active: toward the server. */
      readonly host: string;
      readonly port: number;
    }
  | { readonly ok: false; readonly kind: 'passive' | 'active' | 'transfer' | 'transfer-refused'; readonly reason: string };

/** What the protocol does once the shell has opened (or failed to open) a data listener. */
export interface DataAnswer {
  readonly toClient?: readonly Buffer[];
  readonly toServer?: readonly Buffer[];
  /** The client line held for this (PORT, EPRT, PASV) may be followed by the next one. */
  readonly release?: boolean;
  /** A note for the log (warning), already escaped. */
  readonly note?: string;
}

/** "50000-50100" → [50000, 50100]; null when the text is no range of ports. */
export function parsePortRange(s: string): [number, number] | null {
  const dash = s.indexOf('-');
  if (dash < 1) return null;
  const a = s.slice(0, dash);
  const b = s.slice(dash + 1);
  if (!/^\d{1,5}$/.test(a) || !/^\d{1,5}$/.test(b)) return null;
  const lo = Number(a);
  const hi = Number(b);
  if (lo < 1 || hi > 65535 || lo > hi) return null;
  return [lo, hi];
}
