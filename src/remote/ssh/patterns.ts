/**
 * The pattern language shared by ssh_config `Host` lines and known_hosts
 * host fields: `*` is any run of characters, `?` one character, and a
 * leading `!` negates. Host names compare case-insensitively, as OpenSSH
 * lower-cases the name it matches.
 */

/** Whether `text` matches one wildcard pattern (no negation). */
export function wildcardMatch(pattern: string, text: string): boolean {
  const p = pattern.toLowerCase();
  const t = text.toLowerCase();
  // Iterative matcher with one backtrack point: linear in practice, no regex built from input.
  let pi = 0;
  let ti = 0;
  let star = -1;
  let mark = 0;
  while (ti < t.length) {
    if (pi < p.length && (p[pi] === '?' || p[pi] === t[ti])) {
      pi++;
      ti++;
    } else if (pi < p.length && p[pi] === '*') {
      star = pi++;
      mark = ti;
    } else if (star !== -1) {
      pi = star + 1;
      ti = ++mark;
    } else {
      return false;
    }
  }
  while (pi < p.length && p[pi] === '*') pi++;
  return pi === p.length;
}

/**
 * Whether `text` matches a pattern list: some positive pattern matches and
 * no negated one does (a negated match vetoes the whole list).
 */
export function patternListMatch(patterns: readonly string[], text: string): boolean {
  let matched = false;
  for (const p of patterns) {
    if (p.startsWith('!')) {
      if (wildcardMatch(p.slice(1), text)) return false;
    } else if (wildcardMatch(p, text)) {
      matched = true;
    }
  }
  return matched;
}
