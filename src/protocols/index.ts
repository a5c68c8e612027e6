import type { Protocol } from '../core/protocol.js';
import { finger } from './finger/index.js';
import { ftp } from './ftp/index.js';
import { generic } from './generic.js';
import { ident } from './ident/index.js';
import { http } from './http/index.js';
import { imap } from './imap/index.js';
import { pop3 } from './pop3/index.js';
import { smtp } from './smtp/index.js';

/** The registry: one entry per protocol module. */
const protocols: ReadonlyMap<string, Protocol> = new Map<string, Protocol>([[generic.name, generic], [pop3.name, pop3], [smtp.name, smtp], [imap.name, imap], [ftp.name, ftp], [finger.name, finger], [ident.name, ident], [http.name, http]]);

export function protocolNames(): string[] {
  return [...protocols.keys()];
}

export function findProtocol(name: string): Protocol | undefined {
  return protocols.get(name);
}
