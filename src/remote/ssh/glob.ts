import { lstatSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';

/**
 * glob(3) for ssh_config's Include, as OpenSSH calls it: `*`, `?`,
 * `[...]` classes (`!` or `^` negates, `a-z` ranges) and `\` escapes in any
 * component of the path, a leading `.` in a name matched only by a literal
 * `.`, and the matches sorted by byte order of the whole path. A pattern
 * with nothing to expand is returned as it is, whether it exists or not: the
 * reader says what a missing file means.
 */

type Tok = { lit: string } | { any: true } | { star: true } | { set: [string, string][]; negate: boolean };

const MAGIC = /[*?[\\]/;

/** Splits one path component into tokens; a `[` with no closing `]` is a literal, as in glob(3). */
function tokens(pattern: string): Tok[] {
  const out: Tok[] = [];
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '*') out.push({ star: true });
    else if (c === '?') out.push({ any: true });
    else if (c === '\\' && i + 1 < pattern.length) out.push({ lit: pattern[++i]! });
    else if (c === '[') {
      let j = i + 1;
      const negate = pattern[j] === '!' || pattern[j] === '^';
      if (negate) j++;
      const set: [string, string][] = [];
      // A `]` first in the set is a member, not its end.
      let first = true;
      while (j < pattern.length && (first || pattern[j] !== ']')) {
        first = false;
        let lo = pattern[j]!;
        if (lo === '\\' && j + 1 < pattern.length) lo = pattern[++j]!;
        let hi = lo;
        if (pattern[j + 1] === '-' && j + 2 < pattern.length && pattern[j + 2] !== ']') {
          hi = pattern[j + 2]!;
          if (hi === '\\' && j + 3 < pattern.length) hi = pattern[++j + 2]!;
          j += 2;
        }
        set.push([lo, hi]);
        j++;
      }
      if (j >= pattern.length) out.push({ lit: c });
      else {
        out.push({ set, negate });
        i = j;
      }
    } else out.push({ lit: c });
  }
  return out;
}

function one(t: Tok, c: string): boolean {
  if ('lit' in t) return t.lit === c;
  if ('any' in t) return true;
  if ('set' in t) return t.set.some(([lo, hi]) => lo <= c && c <= hi) !== t.negate;
  return false;
}

/** Whether a file name matches one component's tokens. */
function matches(toks: Tok[], name: string): boolean {
  if (name.startsWith('.') && !(toks[0] && 'lit' in toks[0] && toks[0].lit === '.')) return false;
  let ti = 0;
  let ni = 0;
  let star = -1;
  let mark = 0;
  while (ni < name.length) {
    const t = toks[ti];
    if (t && !('star' in t) && one(t, name[ni]!)) {
      ti++;
      ni++;
    } else if (t && 'star' in t) {
      star = ti++;
      mark = ni;
    } else if (star !== -1) {
      ti = star + 1;
      ni = ++mark;
    } else return false;
  }
  while (ti < toks.length && 'star' in toks[ti]!) ti++;
  return ti === toks.length;
}

const unescape = (s: string) => s.replace(/\\(.)/g, '$1');

const exists = (p: string) => {
  try {
    lstatSync(p);
    return true;
  } catch {
    return false;
  }
};

const isDir = (p: string) => {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
};

/** The paths an absolute pattern names, in byte order; [pattern] itself when it has no wildcards. */
export function globPaths(pattern: string): string[] {
  if (!MAGIC.test(pattern)) return [pattern];
  const parts = pattern.split('/').filter((p) => p !== '');
  let found = [path.parse(pattern).root || '/'];
  parts.forEach((part, k) => {
    const last = k === parts.length - 1;
    const toks = MAGIC.test(part) ? tokens(part) : null;
    const next: string[] = [];
    for (const dir of found) {
      if (!toks) {
        const p = path.join(dir, unescape(part));
        if (last ? exists(p) : isDir(p)) next.push(p);
        continue;
      }
      let entries: string[];
      try {
        entries = readdirSync(dir);
      } catch {
        continue;
      }
      for (const e of entries) {
        const p = path.join(dir, e);
        if (matches(toks, e) && (last || isDir(p))) next.push(p);
      }
    }
    found = next;
  });
  return found.sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
}
