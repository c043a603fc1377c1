import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { packageRoot } from '../../util/package-root.js';

/**
 * The daemon as uploaded to a machine that has no vnetd: dist/daemon/vnetd.js
 * and every module it imports (following the built files' relative
 * imports), plus a package.json that makes them ES modules. vnetd has no npm
 * runtime dependencies; an import of one is an error here, not a broken
 * daemon there.
 */

export interface DaemonBundle {
  version: string;
  /** Version and a digest of the files: a rebuilt daemon goes to a new directory. */
  id: string;
  /** Paths relative to the bundle root, '/'-separated, with contents. */
  files: Map<string, Buffer>;
  /** The entry point, relative to the bundle root. */
  entry: string;
}

const IMPORT = /(?:^|[;\s])(?:import|export)\s(?:[^'";]*?\sfrom\s*)?['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g;

export function daemonBundle(root = packageRoot()): DaemonBundle {
  const dist = path.join(root, 'dist');
  const entry = 'daemon/vnetd.js';
  if (!existsSync(path.join(dist, entry))) throw new Error(`${path.join(dist, entry)} does not exist: build vnetc first (npm run build)`);
  const files = new Map<string, Buffer>();
  const todo = [entry];
  while (todo.length) {
    const rel = todo.pop()!;
    if (files.has(rel)) continue;
    const text = readFileSync(path.join(dist, rel));
    files.set(rel, text);
    for (const m of text.toString('utf8').matchAll(IMPORT)) {
      const spec = m[1] ?? m[2]!;
      if (spec.startsWith('node:')) continue;
      if (!spec.startsWith('.')) throw new Error(`${rel} imports '${spec}', which is not part of vnetd's upload (vnetd must need nothing but Node)`);
      const target = path.posix.normalize(path.posix.join(path.posix.dirname(rel), spec));
      if (target.startsWith('..')) throw new Error(`${rel} imports '${spec}', outside dist/`);
      todo.push(target);
    }
  }
  const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { name: string; version: string };
  // packageRoot() (and so version()) recognises the package by this name.
  files.set('package.json', Buffer.from(JSON.stringify({ name: pkg.name, version: pkg.version, private: true, type: 'module' }, null, 2) + '\n'));
  const digest = createHash('sha256');
  for (const name of [...files.keys()].sort()) digest.update(name).update('\0').update(files.get(name)!).update('\0');
  return { version: pkg.version, id: `${pkg.version}-${digest.digest('hex').slice(0, 12)}`, files, entry };
}
