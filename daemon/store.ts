import { mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { formatLinkConfig, formatRule, parseCommand, type LinkConfig, type WireRule } from '../src/wire/control.js';

/**
 * What survives a restart: links (with their keys) and rules, in one file
 * under the state directory. Written to a temporary file, synced, renamed
 * over the old one and the directory synced, so a crash at any moment
 * leaves either the old state or the new, whole.
 */

export interface SavedState {
  machine: string;
  links: LinkConfig[];
  rules: WireRule[];
  configTimeMs: number | null;
}

const FORMAT = 'vnetd-state';
const VERSION = 1;

export class StateError extends Error {}

export class StateStore {
  readonly file: string;

  constructor(readonly dir: string) {
    this.file = path.join(dir, 'state.json');
  }

  /** The saved state, or undefined on first start. A damaged file is an error, never an empty start. */
  async load(): Promise<SavedState | undefined> {
    let text: string;
    try {
      text = await readFile(this.file, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw new StateError(`cannot read ${this.file}: ${(e as Error).message}`);
    }
    try {
      const j = JSON.parse(text) as Record<string, unknown>;
      if (j.format !== FORMAT || j.version !== VERSION) throw new Error(`not a version ${VERSION} ${FORMAT} file`);
      const links = (j.links as string[]).map((l) => {
        const c = parseCommand(`LINK ADD ${l}`);
        if (c.op !== 'link-add') throw new Error('bad link');
        return c.link;
      });
      const rules = (j.rules as string[]).map((r) => {
        const c = parseCommand(`RULE ADD ${r}`);
        if (c.op !== 'rule-add') throw new Error('bad rule');
        return c.rule;
      });
      return { machine: String(j.machine), links, rules, configTimeMs: typeof j.configTimeMs === 'number' ? j.configTimeMs : null };
    } catch (e) {
      throw new StateError(
        `${this.file} is damaged (${(e as Error).message}); vnetd will not start over it and lose the configuration. ` +
          'Move it aside to start empty, or restore it from a backup.',
      );
    }
  }

  async save(s: SavedState): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    const body = JSON.stringify({
      format: FORMAT,
      version: VERSION,
      machine: s.machine,
      configTimeMs: s.configTimeMs,
      // The same words as the control protocol's LINK ADD and RULE ADD: one codec, readable by a person.
      links: s.links.map(formatLinkConfig),
      rules: s.rules.map(formatRule),
    });
    const tmp = `${this.file}.tmp-${process.pid}`;
    // Link keys are secrets: owner only.
    const fh = await open(tmp, 'w', 0o600);
    try {
      await fh.writeFile(body + '\n');
      await fh.sync();
    } catch (e) {
      await fh.close();
      await rm(tmp, { force: true });
      throw e;
    }
    await fh.close();
    await rename(tmp, this.file);
    const dirHandle = await open(this.dir, 'r');
    try {
      await dirHandle.sync();
    } finally {
      await dirHandle.close();
    }
  }
}
