import { readFileSync } from 'node:fs';

/**
 * vnetc's version, from its package.json. Looked up from this module's
 * location, which is one level deeper in the built tree (dist/src/) than in
 * the sources (src/), hence the walk.
 */
export function version(): string {
  for (const up of ['../package.json', '../../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(up, import.meta.url), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'vnetc' && pkg.version) return pkg.version;
    } catch {
      // not here; try one level up
    }
  }
  return 'unknown';
}
