import { better } from './objective.js';
import type { Problem } from './problem.js';
import { pathCost, type HostPair } from './topology.js';
import type { Config, Searcher } from './search.js';

/**
 * The exact optimum of the same search space as the improving search, by
 * exhaustive enumeration, for instances small enough (docs/ADAPT.md):
 *
 * - placement: every mapping of the VMs that exchange traffic onto hosts
 *   with room, with the topology heuristic's fast paths for each. Hosts
 *   that are interchangeable (the same bandwidths, latencies, costs, base
 *   links and capacity towards everything else) are tried only once while
 *   empty, which keeps clustered networks cheap; VMs without traffic do not
 *   change the score and keep their places.
 * - topology: every set of fast paths within the limit.
 *
 * Gives up (returns why) when the count of configurations exceeds `cap`,
 * rather than run for hours.
 */
export const DEFAULT_EXACT_CAP = 2_000_000;

export type Exact = { ok: true; config: Config; examined: number } | { ok: false; why: string };

export function optimum(s: Searcher, current: Int32Array, cap = DEFAULT_EXACT_CAP): Exact {
  return s.mode === 'placement' ? optimalPlacement(s, current, cap) : optimalLinks(s, current, cap);
}

/** Host classes: hosts i and j are interchangeable when swapping them changes nothing the score can see. */
export function hostClasses(p: Problem): Int32Array {
  const H = p.proxy;
  const cls = new Int32Array(H).fill(-1);
  const same = (i: number, j: number): boolean => {
    if (p.capacity[i] !== p.capacity[j]) return false;
    const at = (m: Float64Array | Uint8Array, x: number, y: number): number => m[x * p.size + y]!;
    if (at(p.bw, i, i) !== at(p.bw, j, j)) return false;
    for (const m of [p.bw, p.lat, p.linkCost, p.baseLinks]) {
      if (at(m, i, j) !== at(m, j, i)) return false;
      for (let k = 0; k < p.size; k++) {
        if (k === i || k === j) continue;
        if (at(m, i, k) !== at(m, j, k) || at(m, k, i) !== at(m, k, j)) return false;
      }
    }
    return true;
  };
  let next = 0;
  for (let i = 0; i < H; i++) {
    if (cls[i]! >= 0) continue;
    cls[i] = next;
    for (let j = i + 1; j < H; j++) if (cls[j]! < 0 && same(i, j)) cls[j] = next;
    next++;
  }
  return cls;
}

function optimalPlacement(s: Searcher, current: Int32Array, cap: number): Exact {
  const p = s.p;
  const H = p.proxy;
  const cls = hostClasses(p);
  const place = current.slice();
  const load = new Int32Array(H);
  const isActive = new Uint8Array(p.vms.length);
  for (const v of s.active) isActive[v] = 1;
  // Idle VMs do not change the score: the search places the active ones in
  // all the room there is, and the idle ones then fill what is left.
  // Place the busiest VMs first: the same leaves, found in a more useful order.
  const weight = new Float64Array(p.vms.length);
  for (const { a, b, mbps } of p.pairs) {
    weight[a]! += mbps;
    weight[b]! += mbps;
  }
  const order = [...s.active].sort((x, y) => weight[y]! - weight[x]! || x - y);
  let best: Config | undefined;
  let examined = 0;
  let aborted = false;
  // Count first (cheap), so that an instance too large is refused at once, not after `cap` evaluations.
  let counting = true;
  const visit = (k: number): void => {
    if (aborted) return;
    if (k === order.length) {
      if (++examined > cap) {
        aborted = true;
        return;
      }
      if (counting) return;
      const c = s.withRule(place);
      if (!best || better(c.score, best.score)) best = { ...c, place: place.slice() };
      return;
    }
    const v = order[k]!;
    const triedEmpty = new Set<number>();
    for (let h = 0; h < H; h++) {
      if (load[h]! >= p.capacity[h]!) continue;
      if (load[h] === 0) {
        if (triedEmpty.has(cls[h]!)) continue;
        triedEmpty.add(cls[h]!);
      }
      place[v] = h;
      load[h]!++;
      visit(k + 1);
      load[h]!--;
    }
  };
  visit(0);
  if (!aborted) {
    counting = false;
    examined = 0;
    visit(0);
  }
  if (aborted || !best) {
    return { ok: false, why: `more than ${cap.toLocaleString('en-US')} mappings to try` };
  }
  return { ok: true, config: s.tidy({ ...best, place: settleIdle(p, best.place, isActive) }), examined };
}

/** Puts VMs without traffic back where they were if there is room, else on the first host with room. */
export function settleIdle(p: Problem, place: Int32Array, isActive: Uint8Array): Int32Array {
  const out = place.slice();
  const load = new Int32Array(p.proxy);
  for (let v = 0; v < out.length; v++) {
    if ((isActive[v] || !p.movable[v]) && out[v]! < p.proxy) load[out[v]!]!++;
  }
  for (let v = 0; v < out.length; v++) {
    if (isActive[v] || !p.movable[v]) continue;
    let h = p.current[v]!;
    if (load[h]! >= p.capacity[h]!) h = load.findIndex((n, x) => n < p.capacity[x]!);
    out[v] = h;
    load[h]!++;
  }
  return out;
}

function optimalLinks(s: Searcher, place: Int32Array, cap: number): Exact {
  const p = s.p;
  const candidates = s.rule.hostPairs(place).filter((c) => !p.baseLinks[c.a * p.size + c.b]);
  const limit = s.limit;
  if (subsets(candidates.length, limit.kind === 'count' ? limit.k : candidates.length) > cap) {
    return { ok: false, why: `more than ${cap.toLocaleString('en-US')} sets of fast paths to try` };
  }
  const chosen: HostPair[] = [];
  let best: Config | undefined;
  let examined = 0;
  let aborted = false;
  const visit = (i: number, spent: number): void => {
    if (aborted) return;
    if (i === candidates.length) {
      if (++examined > cap) {
        aborted = true;
        return;
      }
      const score = s.scoreOf(place, chosen);
      if (!best || better(score, best.score)) best = { place, added: [...chosen], score };
      return;
    }
    const c = candidates[i]!;
    const cost = pathCost(p, c);
    const fits = limit.kind === 'all' || (limit.kind === 'count' ? chosen.length < limit.k : spent + cost <= limit.budget + 1e-9);
    if (fits) {
      chosen.push(c);
      visit(i + 1, spent + cost);
      chosen.pop();
    }
    visit(i + 1, spent);
  };
  visit(0, 0);
  if (aborted || !best) return { ok: false, why: `more than ${cap.toLocaleString('en-US')} sets of fast paths to try` };
  return { ok: true, config: best, examined };
}

/** Σ C(m, i) for i ≤ k: how many sets of at most k out of m (a budget allows at most all of them). */
function subsets(m: number, k: number): number {
  let total = 0;
  let c = 1;
  for (let i = 0; i <= Math.min(k, m); i++) {
    total += c;
    c = (c * (m - i)) / (i + 1);
  }
  return total;
}
