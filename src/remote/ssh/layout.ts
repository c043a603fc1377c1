import path from 'node:path';
import type { Chain } from './scripts.js';

/**
 * Where things live on a remote machine. By default, in the SSH user's home:
 * each machine's daemon keeps its state, control socket, pid file and log in
 * ~/.local/state/vnetd/<machine>/ (several daemons can share a machine under
 * different names), and an uploaded daemon lives in
 * ~/.cache/vnetd/<version>-<digest>/ (immutable; a rebuilt daemon gets a new
 * directory). A remote root, when given, holds both: <root>/state/<machine>
 * and <root>/cache/<id>.
 */
export interface RemoteLayout {
  stateDir: string;
  socket: string;
  pidFile: string;
  logFile: string;
  /** Where uploads go; this build's is `<cacheRoot>/<bundle id>` (installDirOf). */
  cacheRoot: string;
  /** The directories the state dir's safety rests on, parents first, ending with it (see scripts.ts, GUARD). */
  stateChain: Chain;
  /** Likewise for cacheRoot. */
  cacheChain: Chain;
}

/** Whether paths there can be known without asking the machine for its home. */
export const needsHome = (root: string | undefined): boolean => !(root && path.posix.isAbsolute(root));

export const installDirOf = (layout: RemoteLayout, bundleId: string): string => path.posix.join(layout.cacheRoot, bundleId);

/** Paths relative to the remote home until `home` is known; absolute once it is. */
export function remoteLayout(home: string, machine: string, root?: string): RemoteLayout {
  const p = path.posix;
  const base = (rel: string) => (p.isAbsolute(rel) ? rel : p.join(home, rel));
  const stateRoot = base(root ? p.join(root, 'state') : '.local/state/vnetd');
  const cacheRoot = base(root ? p.join(root, 'cache') : '.cache/vnetd');
  const stateDir = p.join(stateRoot, machine);
  // Without its trailing slash, a root that is a symlink is seen as one (and checked as one).
  const top = root ? [base(root).replace(/(.)\/+$/, '$1')] : [];
  return {
    stateDir,
    // vnetd's controlSocketPath: the socket is in the state directory.
    socket: p.join(stateDir, 'vnetd.sock'),
    pidFile: p.join(stateDir, 'vnetd.pid'),
    logFile: p.join(stateDir, 'vnetd.log'),
    cacheRoot,
    stateChain: { dirs: [...top, stateRoot, stateDir], root: top[0] },
    cacheChain: { dirs: [...top, cacheRoot], root: top[0] },
  };
}
