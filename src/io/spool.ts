import { closeSync, constants, lstatSync, mkdirSync, openSync, readSync, unlinkSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Logger } from '../log/logger.js';
import { nodeCrypto } from './lazy-modules.js';

/**
 * Spool files for held bodies past the process's memory budget: one
 * anonymous file per body, in a private directory.
 *
 * The directory must be ours and closed to everyone else (0700, owned by our
 * uid, a real directory, not a symbolic link): in a shared /tmp another user
 * could otherwise read the mail, or plant a directory (or a link) where we
 * write. One that does not exist is created with mode 0700; one that fails
 * the check is refused (logged), and held bodies past the budget are then
 * answered 452. Each file is created with O_CREAT|O_EXCL|O_NOFOLLOW, mode
 * 0600, and unlinked right after it is opened: nobody can open it by name,
 * and the kernel frees its blocks when we close it, even if we crash.
 */

/** $TMPDIR/protowrap-spool-<uid>: per user, so that two wrappers of different users never share it. */
export function defaultSpoolDir(): string {
  return join(tmpdir(), `protowrap-spool-${process.getuid?.() ?? 'nouid'}`);
}

/** One open, unlinked spool file. Bytes are appended, then read back by position. */
export interface SpoolFile {
  /** Appends the whole buffer; throws on failure (ENOSPC, EIO). */
  write(bytes: Buffer): void;
  /** Reads up to into.length bytes at position; returns how many (0 at the end). Throws on failure. */
  read(into: Buffer, position: number): number;
  /** Closes the file (the kernel frees its blocks). Safe to call more than once. */
  close(): void;
}

export interface Spool {
  /** A new empty file, or null when the spool cannot be used now (the reason is logged). */
  open(): SpoolFile | null;
}

/**
 * Checks (or creates) the directory; throws with the reason.
 * Exported for tests.
 */
export function ensurePrivateDir(dir: string): void {
  try {
    mkdirSync(dir, { mode: 0o700 });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  const st = lstatSync(dir);
  if (!st.isDirectory()) throw new Error(`${dir} is not a directory (a symbolic link is refused too)`);
  const uid = process.getuid?.();
  if (uid !== undefined && st.uid !== uid) throw new Error(`${dir} is owned by uid ${st.uid}, not by us (uid ${uid})`);
  if ((st.mode & 0o077) !== 0) throw new Error(`${dir} is open to group or others (mode ${(st.mode & 0o777).toString(8)}; it must be 700)`);
}

const OPEN_FLAGS = constants.O_CREAT | constants.O_EXCL | constants.O_RDWR | constants.O_NOFOLLOW;

/**
 * Writes and reads are synchronous, in 64 KiB blocks (see hold-store.ts):
 * the protocol core is synchronous and must learn at once whether a body
 * line was kept ('ok') or not (ENOSPC: 'full', answered 452), and the one
 * write buffer of a body can be reused as soon as writeSync returns. A
 * 64 KiB write or a read of what was just written goes to the page cache
 * and takes microseconds; an asynchronous write would need its own queue
 * (and its memory) per session.
 */
class SpoolFd implements SpoolFile {
  private fd: number | null;
  private end = 0;

  constructor(fd: number) {
    this.fd = fd;
  }

  write(bytes: Buffer): void {
    const fd = this.live();
    let off = 0;
    while (off < bytes.length) off += writeSync(fd, bytes, off, bytes.length - off, this.end + off);
    this.end += bytes.length;
  }

  read(into: Buffer, position: number): number {
    return readSync(this.live(), into, 0, into.length, position);
  }

  close(): void {
    const fd = this.fd;
    this.fd = null;
    if (fd === null) return;
    try {
      closeSync(fd);
    } catch {
      // nothing to do: the file is unlinked, its blocks go with the descriptor
    }
  }

  private live(): number {
    if (this.fd === null) throw new Error('spool file used after close');
    return this.fd;
  }
}

/** The spool in one directory, checked on first use (and again after a failure). */
export class FileSpool implements Spool {
  private checked = false;
  private seq = 0;
  /** The last failure logged: the same one is not logged again until the spool worked. */
  private complaint: string | null = null;

  constructor(
    readonly dir: string,
    private readonly log: Logger,
  ) {}

  open(): SpoolFile | null {
    try {
      if (!this.checked) {
        ensurePrivateDir(this.dir);
        this.checked = true;
      }
      const path = join(this.dir, `hold-${process.pid}-${++this.seq}-${nodeCrypto().randomBytes(6).toString('hex')}`);
      const fd = openSync(path, OPEN_FLAGS, 0o600);
      try {
        unlinkSync(path);
      } catch (err) {
        closeSync(fd);
        throw err;
      }
      this.complaint = null;
      return new SpoolFd(fd);
    } catch (err) {
      this.checked = false;
      const why = (err as Error).message;
      if (why !== this.complaint) {
        this.complaint = why;
        this.log.log('err', `spool unusable (held bodies past bodyHoldTotal are refused with 452): ${why}`);
      }
      return null;
    }
  }
}
