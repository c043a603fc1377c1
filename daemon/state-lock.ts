import { spawn } from 'node:child_process';
import { closeSync, constants, openSync } from 'node:fs';
import path from 'node:path';

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
 * Node cannot call flock(2), so flock(1) (util-linux, or BusyBox) does it on
 * our descriptor, handed to it as its fd 3: the lock is the open file
 * description's, which we go on holding after flock(1) exits. Node opens
 * files close-on-exec, so no other child of the daemon inherits it.
 */
export interface StateLock {
  /** Lets the next daemon have the directory; call it last, after the control socket is gone. */
  release(): void;
}

export const lockFile = (stateDir: string): string => path.join(stateDir, 'vnetd.lock');

/** Claims `stateDir` for this daemon; throws, in words, when another vnetd holds it or it cannot be locked. */
export async function lockStateDir(stateDir: string): Promise<StateLock> {
  const file = lockFile(stateDir);
  let fd: number;
  try {
    fd = openSync(file, constants.O_RDONLY | constants.O_CREAT | constants.O_NOFOLLOW, 0o600);
  } catch (e) {
    throw new Error(`cannot open ${file}, which locks the state directory: ${(e as Error).message}; the state directory must be one this user may write (--state-dir)`);
  }
  let held: boolean;
  try {
    held = await flockNow(fd, file);
  } catch (e) {
    closeSync(fd);
    throw e;
  }
  if (held) {
    closeSync(fd);
    throw new Error(`another vnetd is running with state directory ${stateDir}`);
  }
  let open = true;
  return {
    release() {
      if (open) closeSync(fd);
      open = false;
    },
  };
}

/** Takes an exclusive lock on `fd` without waiting; resolves whether someone else holds it instead. */
function flockNow(fd: number, file: string): Promise<boolean> {
  return new Promise((resolve, reject) => {
    // Short options only: BusyBox's flock has no long ones.
    const child = spawn('flock', ['-x', '-n', '3'], { stdio: ['ignore', 'ignore', 'pipe', fd] });
    let said = '';
    child.stderr!.on('data', (b: Buffer) => (said += b));
    child.on('error', (e: NodeJS.ErrnoException) =>
      reject(
        new Error(
          e.code === 'ENOENT'
            ? `vnetd locks its state directory with flock(1), which is not installed here; install util-linux (or BusyBox)`
            : `cannot run flock(1) to lock ${file}: ${e.message}`,
        ),
      ),
    );
    // flock(1) exits 1 when the lock is held elsewhere (util-linux's default conflict status, and BusyBox's).
    child.on('close', (code, signal) => {
      if (code === 0 || code === 1) resolve(code === 1);
      else reject(new Error(`cannot lock ${file}: flock(1) ${said.trim() || (signal ? `was killed by ${signal}` : `exited ${code}`)}`));
    });
  });
}
