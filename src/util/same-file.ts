import fs from 'node:fs';

/**
 * Whether `file` (itself, not where a symbolic link leads) is the file open
 * as `fd`: the same device and inode, read as bigints, since an inode number
 * may be past what a double holds exactly. False when there is no such file.
 */
export function namesOpenFile(fd: number, file: string): boolean {
  const open = fs.fstatSync(fd, { bigint: true });
  const named = fs.lstatSync(file, { bigint: true, throwIfNoEntry: false });
  return named !== undefined && named.dev === open.dev && named.ino === open.ino;
}
