import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/**
 * Giving held-body memory back once the bodies are gone. Freed blocks are
 * garbage until V8 collects them, and once the sessions are over nothing
 * allocates, so V8 never does: after 40 sessions of 10 MB
 * (bench/hold-memory.mjs) 105 MB of dead ArrayBuffers were still there 40 s
 * later. reclaimSoon() runs one full collection a moment after the store's
 * last body is over (debounced: one per RECLAIM_DELAY_MS at most, a few
 * milliseconds for the wrapper's small heap). What glibc then keeps of its
 * heap is its business (see bench/README.md: MALLOC_MMAP_THRESHOLD_).
 */

const RECLAIM_DELAY_MS = 1000;

let gc: (() => void) | null | undefined;
let timer: NodeJS.Timeout | null = null;

/**
 * Node has no API for a collection without --expose-gc on its command line
 * (the wrapper is started by inetd through its #! line): the flag is set at
 * run time and `gc` taken from a new context, once. Should that ever fail,
 * V8 collects on its own schedule, as before.
 */
function collector(): (() => void) | null {
  if (gc !== undefined) return gc;
  try {
    setFlagsFromString('--expose-gc');
    const f: unknown = runInNewContext('gc');
    gc = typeof f === 'function' ? (f as () => void) : null;
  } catch {
    gc = null;
  }
  return gc;
}

/** One full collection soon (not now: a burst of sessions ending costs one, not one each). */
export function reclaimSoon(): void {
  if (timer) return;
  timer = setTimeout(() => {
    timer = null;
    collector()?.();
  }, RECLAIM_DELAY_MS);
  timer.unref();
}
