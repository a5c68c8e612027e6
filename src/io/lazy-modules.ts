import { createRequire } from 'node:module';
import type * as Crypto from 'node:crypto';
import type * as Tls from 'node:tls';
import type { Cluster } from 'node:cluster';

/**
 * Node's tls and crypto modules, loaded on first use. Under inetd every
 * connection starts a process, and a plain session needs neither: loading
 * them (26 internal modules) was a measurable part of the time from
 * start to the server's banner and of the process's memory (bench/README.md).
 * A session that uses TLS, the spool or the Redis store loads them then.
 */
const load = createRequire(import.meta.url);

let tls: typeof Tls | undefined;
let crypto: typeof Crypto | undefined;

export function nodeTls(): typeof Tls {
  return (tls ??= load('node:tls') as typeof Tls);
}

export function nodeCrypto(): typeof Crypto {
  return (crypto ??= load('node:crypto') as typeof Crypto);
}

let cluster: Cluster | undefined;

/** node:cluster, for the primary of workers > 1 only (a worker's net loads Node's own copy). */
export function nodeCluster(): Cluster {
  return (cluster ??= load('node:cluster') as Cluster);
}
