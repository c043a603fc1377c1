/**
 * What went wrong with a file, in words: Node's own messages name the system
 * call and every path involved, including vnetc's temporary files.
 */
export function ioErrorText(e: unknown): string {
  const code = (e as NodeJS.ErrnoException)?.code;
  switch (code) {
    case 'ENOENT':
      return 'no such file';
    case 'EACCES':
      return 'permission denied';
    case 'EPERM':
      return 'not permitted';
    case 'EISDIR':
      return 'it is a directory';
    case 'ENOTDIR':
      return 'a part of the path is not a directory';
    case 'ELOOP':
      return 'too many symbolic links (a link that leads back to itself?)';
    case 'ENAMETOOLONG':
      return 'the name is too long';
    case 'EROFS':
      return 'the file system is read-only';
    case 'ENOSPC':
      return 'no space left on the device';
    case 'EDQUOT':
      return 'the disk quota is used up';
    case 'EBUSY':
    case 'ETXTBSY':
      return 'the file is busy';
    case 'EMFILE':
    case 'ENFILE':
      return 'too many files are open';
    case 'EIO':
      return 'an input/output error (the device or disk failed)';
    case 'ENXIO':
    case 'ENODEV':
      return 'no such device';
    default: {
      // Node says 'CODE: what, syscall 'path'': the part before the comma is the problem.
      const message = (e as Error)?.message ?? String(e);
      return code ? message.split(', ')[0]! : message;
    }
  }
}
