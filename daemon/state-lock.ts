import { closeSync, constants, openSync, unlinkSync } from 'node:fs';
import path from 'node:path';
import { flockNow } from '../src/util/flock.js';
import { namesOpenFile } from '../src/util/same-file.js';

/**
 * One vnetd per state directory, claimed with flock(2) on `vnetd.lock` in it.
 *
 * Why flock: the claim and the test for it are one system call, and the
 * kernel drops the lock when the last descriptor of the open file goes,
 * which a SIGKILL does too; the file itself is never removed, so there is no
 * stale lock to clear and no race in clearing one. A lock held on a socket
 * file would leave the file behind when the daemon is killed, and removing
 * it safely needs a compare-and-delete that no system call offers. An
 * abstract Unix socket is released by the kernel but belongs to a network
 * namespace, not to the directory: two daemons in two namespaces (the netns
 * testbed, containers sharing a volume) would both get one. flock(2) locks
 * belong to the open file description, not the process (unlike fcntl
 * locks), so two daemons in one process (the tests, the benches) exclude
 * each other too.
 *
 * flock(1) takes it for us (src/util/flock.ts). Node opens files
 * close-on-exec, so no other child of the daemon inherits it.
 *
 * The one time the file is removed is by a daemon whose start failed in a
 * state directory that start made (discard, below), so as to leave nothing:
 * it removes the file while it holds the lock. A daemon that opened the file
 * just before may then get the lock of a file no longer in the directory,
 * which would let a third one lock a new file and run beside it; so a lock
 * counts only once the name still leads to the very file locked, and is
 * taken again on the new file otherwise.
 */
export interface StateLock {
  /** Lets the next daemon have the directory; call it last, after the control socket is gone. */
  release(): void;
  /** Removes the lock file, then releases: for a start that failed in a directory it made, and leaves nothing there. */
  discard(): void;
}

export const lockFile = (stateDir: string): string => path.join(stateDir, 'vnetd.lock');

/** A daemon that lost the file it locked to a failed start's discard takes the lock again, on the new file; this bounds how often. */
const RELOCKS = 5;

/** Claims `stateDir` for this daemon; throws, in words, when another vnetd holds it or it cannot be locked. */
export async function lockStateDir(stateDir: string): Promise<StateLock> {
  for (let tries = 1; ; tries++) {
    const lock = await lockOnce(stateDir);
    if (lock) return lock;
    if (tries === RELOCKS) throw new Error(`${lockFile(stateDir)} was removed again and again while vnetd locked it (other vnetds failing to start in ${stateDir}); start again`);
  }
}

/** The lock, or undefined when the file locked was removed meanwhile (see above). */
async function lockOnce(stateDir: string): Promise<StateLock | undefined> {
  const file = lockFile(stateDir);
  let fd: number;
  try {
    fd = openSync(file, constants.O_RDONLY | constants.O_CREAT | constants.O_NOFOLLOW, 0o600);
  } catch (e) {
    throw new Error(`cannot open ${file}, which locks the state directory: ${(e as Error).message}; the state directory must be one this user may write (--state-dir)`);
  }
  let held: boolean;
  try {
    held = await flockNow(fd, file, 'vnetd locks its state directory');
  } catch (e) {
    closeSync(fd);
    throw e;
  }
  if (held) {
    closeSync(fd);
    throw new Error(`another vnetd is running with state directory ${stateDir}`);
  }
  if (!namesOpenFile(fd, file)) {
    closeSync(fd);
    return undefined;
  }
  let open = true;
  const release = () => {
    if (open) closeSync(fd);
    open = false;
  };
  return {
    release,
    discard() {
      if (open) unlinkSync(file);
      release();
    },
  };
}
