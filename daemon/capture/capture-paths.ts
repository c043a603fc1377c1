import fs from 'node:fs';
import path from 'node:path';

/**
 * Where a capture file really is, checked on the command line before the
 * daemon starts: the file itself when it exists (symbolic links followed),
 * or its directory's real path and its name when it is yet to be created.
 * A file that exists also has an identity: a hard link is another name for
 * the same file, with another real path but the same identity. Throws, in
 * words naming the file, when it could never be written there.
 */
export function captureTarget(file: string): { path: string; identity: string | undefined } {
  try {
    const real = whereWritten(file);
    return { path: real, identity: identity(real) };
  } catch (e) {
    throw new Error(`cannot write ${file}: ${(e as Error).message}`);
  }
}

/** A file's device and inode as one key, which every name of the file shares; undefined when there is no file. */
export function identity(file: string): string | undefined {
  // bigint: an inode number may be past what a double holds exactly.
  const st = fs.statSync(file, { bigint: true, throwIfNoEntry: false });
  return st && `${st.dev}:${st.ino}`;
}

/** The names of the files in `dir`, by identity; none when it does not exist yet. */
export function namesByIdentity(dir: string): Map<string, string> {
  const names = new Map<string, string>();
  let entries: string[];
  try {
    entries = fs.readdirSync(dir);
  } catch {
    return names;
  }
  for (const name of entries) {
    const id = identity(path.join(dir, name));
    if (id !== undefined) names.set(id, name);
  }
  return names;
}

/**
 * Where writing `file` lands, as captureTarget says, and the same words for
 * why it cannot (the daemon asks again when it opens the file: what was
 * checked on the command line may have changed since).
 */
export function whereWritten(file: string): string {
  let p = path.resolve(file);
  // A dangling symbolic link is followed by hand: opening it creates its target.
  for (let hops = 0; hops < 40; hops++) {
    const st = fs.lstatSync(p, { throwIfNoEntry: false });
    if (st === undefined) return path.join(realDirectory(path.dirname(p)), path.basename(p));
    if (!st.isSymbolicLink()) {
      const real = fs.realpathSync(p);
      const target = fs.statSync(real);
      if (target.isDirectory()) throw new Error('it is a directory; name a file in it');
      if (!target.isFile()) throw new Error(notRegular(target));
      return real;
    }
    p = path.resolve(path.dirname(p), fs.readlinkSync(p));
  }
  throw new Error('too many symbolic links');
}

/**
 * Why a file that exists and is neither a regular file nor a directory is
 * not written: opening a FIFO that has no reader waits for one, for ever,
 * and the daemon with it; a device is not a capture file either.
 */
export function notRegular(st: fs.Stats): string {
  const kind =
    st.isFIFO() ? 'a FIFO'
    : st.isCharacterDevice() ? 'a character device'
    : st.isBlockDevice() ? 'a block device'
    : st.isSocket() ? 'a socket'
    : 'not a regular file';
  return `it is ${kind}, and captures are written to regular files only; name a regular file, or one that does not exist yet`;
}

function realDirectory(dir: string): string {
  let real: string;
  try {
    real = fs.realpathSync(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new Error(`there is no directory ${dir}`);
    throw e;
  }
  if (!fs.statSync(real).isDirectory()) throw new Error(`${dir} is not a directory`);
  return real;
}

/**
 * Where a directory that may not exist yet will really be (the state
 * directory, which vnetd creates): its deepest existing ancestor's real
 * path, then the rest as written.
 */
export function plannedDirectory(dir: string): string {
  const rest: string[] = [];
  for (let at = path.resolve(dir); ; at = path.dirname(at)) {
    try {
      return path.join(fs.realpathSync(at), ...rest.reverse());
    } catch {
      if (at === path.dirname(at)) return path.resolve(dir);
      rest.push(path.basename(at));
    }
  }
}

/** Whether `target` is `dir` or anything below it; both real paths. */
export function isWithin(target: string, dir: string): boolean {
  const rel = path.relative(dir, target);
  return rel === '' || (rel !== '..' && !rel.startsWith(`..${path.sep}`) && !path.isAbsolute(rel));
}
