import { readFileSync } from 'node:fs';

/**
 * Whether a process with this pid exists (signal 0 probes without
 * signalling). A pid that is not a positive integer never does: kill(0) and
 * kill(-n) would address process groups instead.
 */
export function isAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    // EPERM: it exists, and belongs to someone else.
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** A process's argv, from Linux's /proc; undefined when it is gone or cannot be read (elsewhere, always): whoever asks then cannot tell it is theirs. */
export function argvOf(pid: number): string[] | undefined {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
  } catch {
    return undefined;
  }
}
