import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The package root: the nearest directory above this module whose
 * package.json is vnetc's. Works from dist/ and, under tests, from src/.
 */
export function packageRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pj = path.join(dir, 'package.json');
    if (existsSync(pj) && (JSON.parse(readFileSync(pj, 'utf8')) as { name?: string }).name === 'vnetc') return dir;
    const up = path.dirname(dir);
    if (up === dir) throw new Error("cannot find vnetc's package.json above " + fileURLToPath(import.meta.url));
    dir = up;
  }
}
