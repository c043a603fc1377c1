import { spawn } from 'node:child_process';

/**
 * Takes an exclusive flock(2) lock on `fd` without waiting; resolves whether
 * someone else holds it instead. Node cannot call flock(2), so flock(1)
 * (util-linux, or BusyBox) does it on our descriptor, handed to it as its
 * fd 3: the lock is the open file description's, which the caller goes on
 * holding after flock(1) exits. `why` says who locks what, for the message
 * when flock(1) is missing (`vnetd locks its state directory`).
 */
export function flockNow(fd: number, file: string, why: string): Promise<boolean> {
  return new Promise((resolve, reject) => {
    // Short options only: BusyBox's flock has no long ones.
    const child = spawn('flock', ['-x', '-n', '3'], { stdio: ['ignore', 'ignore', 'pipe', fd] });
    let said = '';
    child.stderr!.on('data', (b: Buffer) => (said += b));
    child.on('error', (e: NodeJS.ErrnoException) =>
      reject(
        new Error(
          e.code === 'ENOENT'
            ? `${why} with flock(1), which is not installed here; install util-linux (or BusyBox)`
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
