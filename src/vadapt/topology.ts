import type { Problem } from './problem.js';

/**
 * Topology adaptation (004 §9.3.2, Appendix B.1, AdaptTopology): derive the
 * traffic between daemons from the VM matrix and the VM-to-host mapping,
 * order it by intensity, and establish fast-path links in that order, as
 * many as the limit allows.
 */

/** How many fast paths may be added: a count, every one, or a total cost. */
export type Limit = { kind: 'count'; k: number } | { kind: 'all' } | { kind: 'budget'; budget: number };

/** Traffic between two hosts (a < b), both directions, and the VM pairs it comes from. */
export interface HostPair {
  a: number;
  b: number;
  mbps: number;
  /** Communicating VM pairs across the two hosts: each needs a rule at both ends of a fast path. */
  vmPairs: number;
}

/**
 * What a fast path costs (docs/ADAPT.md, "Cost model"): the pair's link cost
 * from the network file (default 1), plus the network's rule cost for each
 * of the two rules per communicating VM pair that send their frames over it.
 */
export function pathCost(p: Problem, pair: HostPair): number {
  return p.linkCost[pair.a * p.size + pair.b]! + p.ruleCost * 2 * pair.vmPairs;
}

export class TopologyRule {
  private readonly agg: Float64Array;
  private readonly count: Int32Array;
  private readonly touched: Int32Array;

  constructor(readonly p: Problem) {
    this.agg = new Float64Array(p.size * p.size);
    this.count = new Int32Array(p.size * p.size);
    this.touched = new Int32Array(p.pairs.length);
  }

  /** Step 1 and 2: traffic between distinct hosts under `place`, heaviest first (ties: by host order). */
  hostPairs(place: Int32Array): HostPair[] {
    const { size, proxy, pairs } = this.p;
    let t = 0;
    for (const vp of pairs) {
      let a = place[vp.a]!;
      let b = place[vp.b]!;
      if (a === b || a === proxy || b === proxy) continue;
      if (a > b) [a, b] = [b, a];
      const e = a * size + b;
      if (this.count[e] === 0) this.touched[t++] = e;
      this.agg[e]! += vp.mbps;
      this.count[e]!++;
    }
    const out: HostPair[] = new Array(t);
    for (let i = 0; i < t; i++) {
      const e = this.touched[i]!;
      out[i] = { a: Math.floor(e / size), b: e % size, mbps: this.agg[e]!, vmPairs: this.count[e]! };
      this.agg[e] = 0;
      this.count[e] = 0;
    }
    return out.sort((x, y) => y.mbps - x.mbps || x.a - y.a || x.b - y.b);
  }

  /**
   * Step 3: the links, in order, within the limit; pairs the base spec already
   * links are there for free. Under a budget, a link that does not fit is
   * passed over and cheaper ones further down the list may still be taken.
   */
  choose(place: Int32Array, limit: Limit): { linked: Uint8Array; added: HostPair[] } {
    const linked = this.p.baseLinks.slice();
    const added: HostPair[] = [];
    let spent = 0;
    for (const pair of this.hostPairs(place)) {
      const e = pair.a * this.p.size + pair.b;
      if (linked[e]) continue;
      if (limit.kind === 'count' && added.length >= limit.k) break;
      if (limit.kind === 'budget') {
        const c = pathCost(this.p, pair);
        if (spent + c > limit.budget) continue;
        spent += c;
      }
      linked[e] = linked[pair.b * this.p.size + pair.a] = 1;
      added.push(pair);
    }
    return { linked, added };
  }
}

/** A link set: the base links plus `added`. */
export function linkSet(p: Problem, added: readonly { a: number; b: number }[]): Uint8Array {
  const linked = p.baseLinks.slice();
  for (const { a, b } of added) linked[a * p.size + b] = linked[b * p.size + a] = 1;
  return linked;
}

/** Whether a set of added links keeps within the limit. */
export function withinLimit(p: Problem, added: readonly HostPair[], limit: Limit): boolean {
  if (limit.kind === 'count') return added.length <= limit.k;
  if (limit.kind === 'all') return true;
  let spent = 0;
  for (const pair of added) spent += pathCost(p, pair);
  return spent <= limit.budget + 1e-9;
}
