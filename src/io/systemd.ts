import { ConfigError } from '../errors.js';

/** The first passed descriptor (SD_LISTEN_FDS_START). */
export const LISTEN_FDS_START = 3;
/** Most passed sockets taken: each is a listener; a larger LISTEN_FDS is a broken unit. */
export const MAX_LISTEN_FDS = 64;

export interface PassedSocket {
  readonly fd: number;
  /** Its FileDescriptorName= (LISTEN_FDNAMES), or null when none was given. */
  readonly name: string | null;
}

/**
 * The listening sockets systemd passes (Accept=no), as sd_listen_fds(3)
 * reads them: LISTEN_FDS descriptors from fd 3, only when LISTEN_PID is this
 * process (else they were meant for a parent). The variables are removed
 * in every case, so that a server spawned with --exec does not take the
 * sockets for its own. Returns [] when there are none.
 */
export function takePassedSockets(env: NodeJS.ProcessEnv = process.env, pid = process.pid): PassedSocket[] {
  const pidText = env['LISTEN_PID'];
  const fdsText = env['LISTEN_FDS'];
  const namesText = env['LISTEN_FDNAMES'];
  delete env['LISTEN_PID'];
  delete env['LISTEN_FDS'];
  delete env['LISTEN_FDNAMES'];
  if (pidText === undefined || fdsText === undefined) return [];
  if (!/^\d{1,10}$/.test(pidText) || Number(pidText) !== pid) return [];
  if (!/^\d{1,4}$/.test(fdsText)) throw new ConfigError('PW_ERR_CONFIG_VALUE', 'LISTEN_FDS', `expected a count of sockets, got ${JSON.stringify(fdsText)}`);
  const n = Number(fdsText);
  if (n > MAX_LISTEN_FDS) throw new ConfigError('PW_ERR_CONFIG_VALUE', 'LISTEN_FDS', `at most ${MAX_LISTEN_FDS} sockets, got ${n}`);
  const names = namesText === undefined || namesText === '' ? [] : namesText.split(':');
  const out: PassedSocket[] = [];
  for (let i = 0; i < n; i++) out.push({ fd: LISTEN_FDS_START + i, name: names[i] ?? null });
  return out;
}
