import type { Protocol } from '../core/protocol.js';
import { generic } from './generic.js';

/** The registry: one entry per protocol module. */
const protocols: ReadonlyMap<string, Protocol> = new Map<string, Protocol>([[generic.name, generic]]);

export function protocolNames(): string[] {
  return [...protocols.keys()];
}

export function findProtocol(name: string): Protocol | undefined {
  return protocols.get(name);
}
