import { closeSync, openSync, readSync } from 'node:fs';
import { nodeCrypto } from './lazy-modules.js';

/** Ids per read of the random source: a daemon reads it once per this many sessions. */
const IDS_PER_READ = 128;
const ID_BYTES = 6;

let pool: Buffer | null = null;
let used = 0;

/**
 * Random bytes from /dev/urandom, a pool at a time. Read directly rather
 * than through node:crypto, which an inetd session (one process per
 * connection) would otherwise load for this alone (see lazy-modules.ts);
 * crypto is the fallback where /dev/urandom cannot be read (a chroot).
 */
function refill(): Buffer {
  const b = Buffer.allocUnsafe(ID_BYTES * IDS_PER_READ);
  try {
    const fd = openSync('/dev/urandom', 'r');
    try {
      let n = 0;
      while (n < b.length) {
        const r = readSync(fd, b, n, b.length - n, null);
        if (r <= 0) throw new Error('short read');
        n += r;
      }
    } finally {
      closeSync(fd);
    }
  } catch {
    nodeCrypto().randomFillSync(b);
  }
  return b;
}

/**
 * An id for one session, in every log line of it (text and JSON): 12 hex
 * digits from the system's random source, so that sessions of many wrapper
 * processes (inetd starts one per connection) and of one daemon never share
 * one, and a client cannot guess or steer it.
 */
export function newSessionId(): string {
  if (pool === null || used + ID_BYTES > pool.length) {
    pool = refill();
    used = 0;
  }
  const id = pool.toString('hex', used, used + ID_BYTES);
  used += ID_BYTES;
  return id;
}
