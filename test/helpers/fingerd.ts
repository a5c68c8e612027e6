import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * The real in.fingerd, as the wrapper spawns it (--exec), with its finger
 * program (in.fingerd -p) logged: in.fingerd reads the query and runs the
 * program with the query's words as argv; a one-line script records that
 * argv, then runs the real /usr/bin/finger. Each line of the log is one
 * query in.fingerd received and acted on, in its own reading
 * (`/W root` → `2:-l root`). A query the wrapper refused leaves no line.
 */
export interface Fingerd {
  /** One-word command for --exec: in.fingerd with the logging finger program. */
  readonly fingerd: string;
  /** in.fingerd whose finger program prints control bytes and escape sequences after its argv. */
  readonly hostileFingerd: string;
  /** The queries in.fingerd ran finger for, as `argc:argv`. */
  queries(): string[];
}

/** What the hostile finger program prints after its argv ("args:-l|args:root|"). */
export const HOSTILE_TEXT = '\x1b[2Jesc\x07 bell \xc2\x9bcsi \xc3\xa9 ok\tend\n';

export function makeFingerd(dir: string): Fingerd {
  const log = join(dir, 'queries.log');
  // in.fingerd runs its finger program as nobody: the folder must be searchable, the log writable.
  chmodSync(dir, 0o755);
  writeFileSync(log, '');
  chmodSync(log, 0o666);
  const script = (name: string, body: string) => {
    const path = join(dir, name);
    writeFileSync(path, `#!/bin/sh\n${body}\n`);
    chmodSync(path, 0o755);
    return path;
  };
  const prog = script('finger-prog', `printf '%s\\n' "$#:$*" >> ${log}\nexec /usr/bin/finger "$@"`);
  const octal = [...Buffer.from(HOSTILE_TEXT, 'latin1')].map((b) => `\\${b.toString(8).padStart(3, '0')}`).join('');
  const hostile = script('hostile-prog', `printf 'args:%s|' "$@"\nprintf '${octal}'`);
  return {
    fingerd: script('fingerd', `exec /usr/sbin/in.fingerd -p ${prog}`),
    hostileFingerd: script('hostile-fingerd', `exec /usr/sbin/in.fingerd -p ${hostile}`),
    queries: () => readFileSync(log, 'latin1').split('\n').slice(0, -1),
  };
}
