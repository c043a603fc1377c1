import type { Problem } from './problem.js';

/** Whether score `a` beats `b`: by more than rounding, since the same configuration summed in another order differs in its last bits. */
export const better = (a: number, b: number): boolean => a > b + 1e-9 * Math.max(1, Math.abs(b));

/**
 * The objective of 004 §8: every VM-to-VM demand is routed over the overlay
 * (its mapped path), each directed edge keeps a residual capacity
 * rc_e = bw_e − Σ demands crossing it, a path's bottleneck is the least
 * residual along it, and a configuration scores the sum of its demands'
 * bottlenecks. Higher is better; a negative residual means an oversubscribed
 * edge (the configuration is infeasible in the thesis's terms) and counts
 * against the score as it is, so searches are steered away from it.
 *
 * Paths are what vnetd's tables make of a configuration: a demand between
 * VMs on one host stays inside it (the host's own bandwidth); between hosts
 * joined by a fast path it takes that link; otherwise it crosses the star,
 * source host → Proxy → destination host. Endpoints on the Proxy's LAN are
 * one star edge away.
 */
export class Objective {
  private readonly load: Float64Array;
  private readonly touched: Int32Array;
  private readonly edgeA: Int32Array;
  private readonly edgeB: Int32Array;

  constructor(readonly p: Problem) {
    this.load = new Float64Array(p.size * p.size);
    this.touched = new Int32Array(2 * p.demands.count);
    this.edgeA = new Int32Array(p.demands.count);
    this.edgeB = new Int32Array(p.demands.count);
  }

  /** The edges of one demand's path: (first, second or -1). */
  private route(a: number, b: number, linked: Uint8Array, k: number): void {
    const { size, proxy } = this.p;
    if (a === b || a === proxy || b === proxy || linked[a * size + b]) {
      this.edgeA[k] = a * size + b;
      this.edgeB[k] = -1;
    } else {
      this.edgeA[k] = a * size + proxy;
      this.edgeB[k] = proxy * size + b;
    }
  }

  /** Routes every demand and loads the edges; returns how many edges it touched (to clear). */
  private loadEdges(place: Int32Array, linked: Uint8Array): number {
    const { src, dst, mbps, count } = this.p.demands;
    const load = this.load;
    let t = 0;
    for (let k = 0; k < count; k++) {
      this.route(place[src[k]!]!, place[dst[k]!]!, linked, k);
      const e1 = this.edgeA[k]!;
      if (load[e1] === 0) this.touched[t++] = e1;
      load[e1]! += mbps[k]!;
      const e2 = this.edgeB[k]!;
      if (e2 >= 0) {
        if (load[e2] === 0) this.touched[t++] = e2;
        load[e2]! += mbps[k]!;
      }
    }
    return t;
  }

  private clear(t: number): void {
    for (let i = 0; i < t; i++) this.load[this.touched[i]!] = 0;
  }

  /** Σ over demands of the bottleneck residual bandwidth of its path, in Mbit/s. */
  score(place: Int32Array, linked: Uint8Array): number {
    const t = this.loadEdges(place, linked);
    const { bw, load } = { bw: this.p.bw, load: this.load };
    let total = 0;
    for (let k = 0; k < this.p.demands.count; k++) {
      const e1 = this.edgeA[k]!;
      let rc = bw[e1]! - load[e1]!;
      const e2 = this.edgeB[k]!;
      if (e2 >= 0) rc = Math.min(rc, bw[e2]! - load[e2]!);
      total += rc;
    }
    this.clear(t);
    return total;
  }

  /** The score with what makes it: each demand's bottleneck and the edges that are oversubscribed. */
  explain(place: Int32Array, linked: Uint8Array): { score: number; bottleneck: Float64Array; oversubscribed: { from: string; to: string; load: number; mbps: number }[] } {
    const t = this.loadEdges(place, linked);
    const { bw, size, machines, demands } = this.p;
    const bottleneck = new Float64Array(demands.count);
    let score = 0;
    for (let k = 0; k < demands.count; k++) {
      const e1 = this.edgeA[k]!;
      const e2 = this.edgeB[k]!;
      let rc = bw[e1]! - this.load[e1]!;
      if (e2 >= 0) rc = Math.min(rc, bw[e2]! - this.load[e2]!);
      bottleneck[k] = rc;
      score += rc;
    }
    const oversubscribed = [];
    for (let i = 0; i < t; i++) {
      const e = this.touched[i]!;
      if (this.load[e]! > bw[e]!) oversubscribed.push({ from: machines[Math.floor(e / size)]!, to: machines[e % size]!, load: this.load[e]!, mbps: bw[e]! });
    }
    this.clear(t);
    return { score, bottleneck, oversubscribed };
  }
}
