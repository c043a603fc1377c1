import { anneal } from './anneal.js';
import { better, Objective } from './objective.js';
import { mapVms } from './placement.js';
import type { Problem } from './problem.js';
import { linkSet, pathCost, TopologyRule, withinLimit, type HostPair, type Limit } from './topology.js';

/**
 * A configuration (a VM-to-host mapping and the fast paths added to the base
 * spec's links) with its score, and the three ways of finding one: the
 * papers' greedy heuristics, an improving search from the greedy answer,
 * and exhaustive search for the optimum on small instances.
 *
 * Two search spaces (docs/ADAPT.md, "What is searched"):
 * - topology only (no --placement): the mapping is fixed; the search picks
 *   which fast paths to add, within the limit;
 * - with --placement: the search picks the mapping, and each mapping gets
 *   the fast paths the topology heuristic picks for it.
 */
export interface Config {
  place: Int32Array;
  added: HostPair[];
  score: number;
}

export type Mode = 'topology' | 'placement';

export class Searcher {
  readonly objective: Objective;
  readonly rule: TopologyRule;
  /** VMs that exchange traffic and may move: the only ones whose place changes a score. */
  readonly active: number[];

  constructor(
    readonly p: Problem,
    readonly limit: Limit,
    readonly mode: Mode,
  ) {
    this.objective = new Objective(p);
    this.rule = new TopologyRule(p);
    const talks = new Uint8Array(p.vms.length);
    for (const { a, b } of p.pairs) talks[a] = talks[b] = 1;
    this.active = p.vms.map((_, v) => v).filter((v) => talks[v] && p.movable[v]);
  }

  /**
   * The papers' greedy heuristics: their mapping (with --placement; the
   * current one otherwise) and its fast paths, tidied, since the mapping
   * heuristic places every VM afresh and would move some for nothing.
   */
  greedy(): Config {
    return this.tidy(this.withRule(this.mode === 'placement' ? mapVms(this.p) : this.p.current));
  }

  /** The configuration the topology heuristic gives a mapping. */
  withRule(place: Int32Array): Config {
    const { linked, added } = this.rule.choose(place, this.limit);
    return { place, added, score: this.objective.score(place, linked) };
  }

  scoreOf(place: Int32Array, added: readonly HostPair[]): number {
    return this.objective.score(place, linkSet(this.p, added));
  }

  /** Simulated annealing from `start`; never returns anything worse. */
  improve(start: Config, random: () => number, iterations = this.defaultIterations()): Config {
    return this.mode === 'placement' ? this.improvePlacement(start, random, iterations) : this.improveLinks(start, random, iterations);
  }

  /**
   * Sized so that a run costs about the same whatever the instance: many
   * moves on small problems, fewer on large ones, where each costs more.
   */
  defaultIterations(): number {
    const work = this.p.demands.count + this.p.pairs.length + 16;
    return Math.max(400, Math.min(30000, Math.round(4e6 / work)));
  }

  /**
   * `c` with every VM sent back to its current host whose move the score
   * does not need (an idle VM swapped along the way, a pair that moved
   * together for nothing): a migration costs a VM its downtime, so none is
   * proposed for no gain. Never scores less than `c`.
   */
  tidy(c: Config): Config {
    const p = this.p;
    const place = c.place.slice();
    const load = new Int32Array(p.proxy);
    for (const h of place) if (h < p.proxy) load[h]!++;
    let out = c;
    // Until nothing more goes home: one VM's return can make room for another's.
    for (let changed = true; changed; ) {
      changed = false;
      for (let v = 0; v < place.length; v++) {
        const from = place[v]!;
        const home = p.current[v]!;
        if (from === home || load[home]! >= p.capacity[home]!) continue;
        place[v] = home;
        const t = this.withRule(place);
        if (better(c.score, t.score)) {
          place[v] = from;
          continue;
        }
        load[from]!--;
        load[home]!++;
        out = { ...t, place: place.slice() };
        changed = true;
      }
    }
    return out;
  }

  private improvePlacement(start: Config, random: () => number, iterations: number): Config {
    const p = this.p;
    const place = start.place.slice();
    const load = new Int32Array(p.proxy);
    for (const h of place) if (h < p.proxy) load[h]!++;
    const movable = p.vms.map((_, v) => v).filter((v) => p.movable[v]);
    let best = start;
    let currentAdded = start.added;
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;
    const result = anneal(
      {
        score: () => {
          const c = this.withRule(place);
          currentAdded = c.added;
          return c.score;
        },
        move: (rng) => {
          if (this.active.length === 0) return undefined;
          const v = pick(this.active);
          const from = place[v]!;
          if (rng() < 0.5) {
            const u = pick(movable);
            const to = place[u]!;
            if (to === from) return undefined;
            place[v] = to;
            place[u] = from;
            return () => {
              place[v] = from;
              place[u] = to;
            };
          }
          const to = Math.floor(rng() * p.proxy);
          if (to === from || load[to]! >= p.capacity[to]!) return undefined;
          place[v] = to;
          load[from]!--;
          load[to]!++;
          return () => {
            place[v] = from;
            load[from]!++;
            load[to]!--;
          };
        },
        save: () => {
          best = { place: place.slice(), added: currentAdded, score: 0 };
        },
      },
      iterations,
      random,
    );
    return this.tidy({ ...best, score: result });
  }

  private improveLinks(start: Config, random: () => number, iterations: number): Config {
    const p = this.p;
    const candidates = this.rule.hostPairs(start.place).filter((c) => !p.baseLinks[c.a * p.size + c.b]);
    if (candidates.length === 0) return start;
    const chosen = new Set(start.added.map((c) => candidates.findIndex((x) => x.a === c.a && x.b === c.b)));
    const linked = linkSet(p, start.added);
    let spent = 0;
    for (const i of chosen) spent += pathCost(p, candidates[i]!);
    let best = start;
    const fits = (extra: number, count: number): boolean =>
      this.limit.kind === 'all' || (this.limit.kind === 'count' ? count <= this.limit.k : spent + extra <= this.limit.budget + 1e-9);
    const set = (i: number, on: boolean): void => {
      const c = candidates[i]!;
      linked[c.a * p.size + c.b] = linked[c.b * p.size + c.a] = on ? 1 : 0;
      if (on) chosen.add(i);
      else chosen.delete(i);
      spent += (on ? 1 : -1) * pathCost(p, c);
    };
    const result = anneal(
      {
        score: () => this.objective.score(start.place, linked),
        move: (rng) => {
          const i = Math.floor(rng() * candidates.length);
          if (chosen.has(i)) {
            // Drop it, or trade it for one not chosen.
            if (rng() < 0.5 || chosen.size === candidates.length) {
              set(i, false);
              return () => set(i, true);
            }
            const j = Math.floor(rng() * candidates.length);
            if (chosen.has(j) || !fits(pathCost(p, candidates[j]!) - pathCost(p, candidates[i]!), chosen.size)) return undefined;
            set(i, false);
            set(j, true);
            return () => {
              set(j, false);
              set(i, true);
            };
          }
          if (!fits(pathCost(p, candidates[i]!), chosen.size + 1)) return undefined;
          set(i, true);
          return () => set(i, false);
        },
        save: () => {
          best = { place: start.place, added: [...chosen].sort((x, y) => x - y).map((i) => candidates[i]!), score: 0 };
        },
      },
      iterations,
      random,
    );
    if (!withinLimit(p, best.added, this.limit)) throw new Error('the link search left its limit');
    return { ...best, score: result };
  }
}
