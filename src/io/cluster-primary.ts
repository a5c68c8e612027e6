import type { Worker } from 'node:cluster';
import type { Logger } from '../log/logger.js';
import { nodeCluster } from './lazy-modules.js';
import { PrimaryStores } from './worker-store.js';

/**
 * workers > 1 in standalone mode: this process (the primary) holds no
 * session. It forks the workers (node:cluster: each runs the whole daemon;
 * the primary owns the listening sockets and hands connections to the
 * workers in turn), holds the memory ban store they share, forwards SIGHUP
 * (after validating the configuration itself, so that a broken file is
 * logged once) and SIGTERM, and replaces a worker that dies, at most
 * `count` times within RESTART_WINDOW_MS, so that a crash loop stops.
 */

/** Replacements are counted over this window; `count` of them within it stop the replacing. */
export const RESTART_WINDOW_MS = 10_000;

/** A worker tells the primary its listeners are open. */
export interface ReadyMessage {
  readonly pw: 'ready';
}

export interface PrimaryOptions {
  readonly count: number;
  readonly log: Logger;
  /** SIGHUP: reads and validates the configuration (and logs a failure); true when the workers may reload. */
  readonly validate: () => Promise<boolean>;
  /** The environment the workers get on top of this one. */
  readonly env: Readonly<Record<string, string>>;
}

/** "code 1" or "signal SIGKILL", as the log says how a worker ended. */
function howEnded(code: number | null, signal: string | null): string {
  return signal ? `signal ${signal}` : `code ${code ?? '?'}`;
}

/** Runs the workers until SIGTERM; resolves with the exit status of the primary. */
export async function runPrimary(o: PrimaryOptions): Promise<number> {
  const cluster = nodeCluster();
  const { log, count } = o;
  const stores = new PrimaryStores();
  const live = new Map<number, Worker>();
  const restarts: number[] = [];
  let stopping = false;
  let starting = true;
  let startFailure: number | null = null;
  let ready = 0;
  let onChange: () => void = () => {};
  /** Workers that have their SIGHUP handler (ready); one that is not would die of the signal. */
  const readyIds = new Set<number>();
  /** Reloads passed on so far: a worker forked before the last one but ready after it is sent it then. */
  let reloads = 0;

  const fork = (): Worker => {
    const w = cluster.fork(o.env);
    const bornAt = reloads;
    live.set(w.id, w);
    w.on('message', (m: unknown) => {
      if (stores.handle(m, (r) => w.isConnected() && w.send(r))) return;
      if ((m as ReadyMessage)?.pw !== 'ready' || readyIds.has(w.id)) return;
      readyIds.add(w.id);
      if (reloads > bornAt && !stopping) w.process.kill('SIGHUP');
      if (starting) {
        ready++;
        onChange();
      }
    });
    // An IPC error (the worker is gone): its exit event follows.
    w.on('error', () => {});
    return w;
  };

  cluster.on('exit', (w, code, signal) => {
    live.delete(w.id);
    readyIds.delete(w.id);
    const pid = w.process.pid;
    const how = howEnded(code, signal);
    if (stopping) {
      log.log('notice', `worker ${pid} exited (${how})`);
    } else if (starting) {
      // A worker that cannot open its listeners (69) or load its certificate (78): the start fails with its status.
      log.log('err', `worker ${pid} exited (${how}) before it was ready`);
      startFailure = code && code > 0 ? code : 70;
    } else {
      const now = Date.now();
      while (restarts.length > 0 && restarts[0]! <= now - RESTART_WINDOW_MS) restarts.shift();
      if (restarts.length >= count) {
        log.log('err', `worker ${pid} exited (${how}), not replaced: ${restarts.length} replacements within ${RESTART_WINDOW_MS / 1000} s; ${live.size} workers left`);
      } else {
        restarts.push(now);
        const next = fork();
        log.log('warning', `worker ${pid} exited (${how}), replaced by ${next.process.pid}`);
      }
    }
    onChange();
  });

  const stopAll = (): void => {
    for (const w of live.values()) w.process.kill('SIGTERM');
  };
  const terminate = (): void => {
    if (stopping) {
      // A second SIGTERM: the workers end their sessions at once.
      stopAll();
      return;
    }
    stopping = true;
    log.event('notice', 'shutdown', {});
    stopAll();
    onChange();
  };
  process.on('SIGTERM', terminate);
  process.on('SIGINT', terminate);

  // One reload at a time, and at most one waiting, as in a single process.
  let reloading = Promise.resolve();
  let waiting = false;
  process.on('SIGHUP', () => {
    if (waiting || stopping) return;
    waiting = true;
    reloading = reloading.then(async () => {
      waiting = false;
      if (stopping || !(await o.validate())) return;
      reloads++;
      const now = [...live.values()].filter((w) => readyIds.has(w.id));
      log.log('notice', `configuration valid: reloading ${now.length} workers (${now.map((w) => w.process.pid).join(' ')})`);
      for (const w of now) w.process.kill('SIGHUP');
    });
  });

  for (let i = 0; i < count; i++) fork();
  await new Promise<void>((resolve) => {
    onChange = () => {
      if (ready >= count || startFailure !== null || stopping) resolve();
    };
    onChange();
  });
  starting = false;
  if (startFailure !== null) {
    stopping = true;
    stopAll();
  } else if (!stopping) {
    log.log('notice', `${count} workers ready: ${[...live.values()].map((w) => w.process.pid).join(' ')}`);
  }

  // Until every worker is gone: after SIGTERM, or when none is left to replace.
  await new Promise<void>((resolve) => {
    onChange = () => {
      if (live.size === 0) resolve();
    };
    onChange();
  });
  if (startFailure !== null) return startFailure;
  if (!stopping) {
    log.log('err', 'no worker left: exiting');
    return 70;
  }
  return 0;
}
