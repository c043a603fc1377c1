/**
 * A Linux initramfs archive: the "newc" cpio format (`070701`, every number
 * as 8 hex digits, name and data each padded to 4 bytes), which is all the
 * kernel's unpacker reads. Test guests are booted from one built in memory,
 * so the tests need no cpio program.
 */
export type CpioEntry =
  | { path: string; dir: true }
  | { path: string; file: Uint8Array; mode: number }
  | { path: string; charDevice: [major: number, minor: number] };

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFCHR = 0o020000;

export function cpio(entries: readonly CpioEntry[]): Buffer {
  const parts: Buffer[] = [];
  let inode = 1;
  const record = (name: string, mode: number, data: Uint8Array, rdev: [number, number] = [0, 0]) => {
    const nameBytes = Buffer.from(`${name}\0`);
    // ino, mode, uid, gid, nlink, mtime, filesize, devmajor, devminor, rdevmajor, rdevminor, namesize, check
    const fields = [inode++, mode, 0, 0, 1, 0, data.length, 0, 0, rdev[0], rdev[1], nameBytes.length, 0];
    const head = Buffer.from(`070701${fields.map((f) => f.toString(16).padStart(8, '0')).join('')}`, 'ascii');
    parts.push(head, nameBytes, pad(head.length + nameBytes.length), Buffer.from(data), pad(data.length));
  };
  for (const e of entries) {
    if ('dir' in e) record(e.path, S_IFDIR | 0o755, new Uint8Array());
    else if ('file' in e) record(e.path, S_IFREG | e.mode, e.file);
    else record(e.path, S_IFCHR | 0o600, new Uint8Array(), e.charDevice);
  }
  record('TRAILER!!!', 0, new Uint8Array());
  return Buffer.concat(parts);
}

const pad = (n: number): Buffer => Buffer.alloc((4 - (n % 4)) % 4);
