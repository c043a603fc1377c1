import { readFileSync } from 'node:fs';
import path from 'node:path';
import { globPaths } from './glob.js';
import type { Tilde } from './passwd.js';

/**
 * Reading ssh_config files (ssh_config(5)) into directives: one keyword,
 * its arguments, and where it was written. Include is kept as a directive
 * and followed at evaluation time, because an Include inside a Host block
 * only applies when that block does.
 */

export interface Directive {
  /** Lower case: keywords are case-insensitive. */
  keyword: string;
  args: string[];
  file: string;
  line: number;
}

/** A problem in an ssh_config file, with its location. */
export class SshConfigError extends Error {}

/**
 * Splits one line into words: whitespace separates, double quotes group,
 * and an unquoted word starting with `#` begins a comment. The first word
 * may end in `=` or be joined to its value by one (`Port=22`).
 */
export function splitLine(text: string, where: string): string[] {
  const words: string[] = [];
  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    if (c === ' ' || c === '\t' || c === '\r') {
      i++;
      continue;
    }
    if (c === '#') break;
    if (c === '"') {
      const end = text.indexOf('"', i + 1);
      if (end === -1) throw new SshConfigError(`${where}: unterminated quote`);
      words.push(text.slice(i + 1, end));
      i = end + 1;
      continue;
    }
    let j = i;
    while (j < text.length && !' \t\r"'.includes(text[j]!)) j++;
    words.push(text.slice(i, j));
    i = j;
  }
  // `Keyword=value`, `Keyword= value`, `Keyword =value`, `Keyword = value`.
  const first = words[0];
  if (first !== undefined) {
    const eq = first.indexOf('=');
    if (eq !== -1) {
      words.splice(0, 1, first.slice(0, eq), ...(eq + 1 < first.length ? [first.slice(eq + 1)] : []));
    } else if (words[1]?.startsWith('=')) {
      const rest = words[1].slice(1);
      words.splice(1, 1, ...(rest ? [rest] : []));
    }
  }
  return words;
}

export function parseConfigText(text: string, file: string): Directive[] {
  const out: Directive[] = [];
  const lines = text.split('\n');
  for (let n = 0; n < lines.length; n++) {
    const where = `${file}:${n + 1}`;
    const words = splitLine(lines[n]!, where);
    const keyword = words.shift();
    if (keyword === undefined) continue;
    if (words.length === 0) throw new SshConfigError(`${where}: '${keyword}' needs a value`);
    out.push({ keyword: keyword.toLowerCase(), args: words, file, line: n + 1 });
  }
  return out;
}

/** Files are read once per transport: every host's lookup walks the same directives. */
export class ConfigFiles {
  private readonly cache = new Map<string, Directive[] | null>();

  /** The file's directives, or null when it does not exist. */
  read(file: string): Directive[] | null {
    let d = this.cache.get(file);
    if (d === undefined) {
      try {
        d = parseConfigText(readFileSync(file, 'utf8'), file);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === 'ENOENT') d = null;
        // ssh reads a directory an Include names (a glob's match, say) as an empty file.
        else if (code === 'EISDIR') d = [];
        else if (e instanceof SshConfigError) throw e;
        else throw new SshConfigError(`${file}: cannot read: ${(e as Error).message}`);
      }
      this.cache.set(file, d);
    }
    return d;
  }

  /**
   * The files an Include argument names, in byte order: `~` and `~user`
   * are homes, a relative path is relative to `base` (~/.ssh for the
   * user's files, /etc/ssh for the system's), and any component may hold
   * glob(3) wildcards. As with OpenSSH 9.2, no `%` tokens.
   */
  includeTargets(arg: string, base: string, tilde: Tilde, at: string): string[] {
    let p = tilde.expand(arg, at);
    if (!path.isAbsolute(p)) p = path.join(base, p);
    return globPaths(p);
  }
}
