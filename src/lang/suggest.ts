/**
 * "Did you mean" for misspelt names: the closest candidate by edit distance,
 * if it is close enough to be a plausible typo. Results are cached per name,
 * because one typo tends to repeat on many lines.
 */
const MAX_NAME = 64;
const cache = new WeakMap<readonly string[], Map<string, string | undefined>>();

export function suggest(name: string, candidates: readonly string[]): string | undefined {
  let memo = cache.get(candidates);
  if (!memo) cache.set(candidates, (memo = new Map()));
  if (memo.has(name)) return memo.get(name);
  const answer = sameButCase(name, candidates) ?? closest(name, candidates);
  memo.set(name, answer);
  return answer;
}

/** The declared spelling of a name written in another case, at any length: the comparison is linear. */
function sameButCase(name: string, candidates: readonly string[]): string | undefined {
  const lower = name.toLowerCase();
  return candidates.find((c) => c.toLowerCase() === lower);
}

function closest(name: string, candidates: readonly string[]): string | undefined {
  // Edit distance is quadratic; nobody mistypes a name longer than this.
  if (name.length > MAX_NAME) return undefined;
  const limit = Math.max(1, Math.floor(name.length / 3));
  let best: string | undefined;
  let bestDistance = limit + 1;
  let tied = false;
  for (const c of candidates) {
    if (c.length > MAX_NAME || Math.abs(c.length - name.length) > limit) continue;
    const d = distance(name, c, bestDistance + 1);
    if (d < bestDistance) {
      bestDistance = d;
      best = c;
      tied = false;
    } else if (d === bestDistance) {
      tied = true;
    }
  }
  // Two equally close names (host3 among host1 and host2) is no hint at all.
  return tied ? undefined : best;
}

/**
 * Edit distance counting a swap of neighbours as one edit (optimal string
 * alignment), giving up once every path exceeds `cap`.
 */
function distance(a: string, b: string, cap: number): number {
  let before: number[] = [];
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    let rowMin = i;
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, before[j - 2]! + 1);
      cur.push(v);
      if (v < rowMin) rowMin = v;
    }
    if (rowMin >= cap) return cap;
    before = prev;
    prev = cur;
  }
  return prev[b.length]!;
}
