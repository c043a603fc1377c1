import { linkKey } from '../../model/state.js';
import type { Inference, Topology, TopologyEdge } from '../types.js';
import { byCodeUnit } from '../../util/compare.js';

/**
 * Which VMs an inference knows, where they sit, and how two topologies
 * differ: the questions every renderer asks. Orders are by code unit, never
 * by locale, so the same input renders to the same bytes everywhere.
 */

/**
 * Machine names with their numbers in numeric order (host2 before host10),
 * as a person numbering racks expects; otherwise by code unit, never by locale.
 */
export function byName(a: string, b: string): number {
  const x = a.match(/\d+|\D+/g) ?? [];
  const y = b.match(/\d+|\D+/g) ?? [];
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    const [p, q] = [x[i]!, y[i]!];
    if (p === q) continue;
    const digits = /^\d/.test(p) && /^\d/.test(q);
    // Numbers by value (BigInt: a name may hold more digits than a double keeps), then shorter first (2 before 02).
    if (digits) return BigInt(p) < BigInt(q) ? -1 : BigInt(p) > BigInt(q) ? 1 : p.length - q.length || byCodeUnit(p, q);
    return byCodeUnit(p, q);
  }
  return x.length - y.length || byCodeUnit(a, b);
}

/**
 * Every VM the collector knows: ends of the settled and the current
 * topology, of the matrix, and of the VM-to-host map (a VM whose traffic is
 * all under the threshold still exists, and a person looking for it should
 * find it). Sorted.
 */
export function knownVms(inf: Inference): string[] {
  const all = new Set<string>(Object.keys(inf.hosts));
  for (const t of [inf.topology, inf.current]) {
    for (const v of t.vms) all.add(v);
    for (const e of t.edges) all.add(e.a).add(e.b);
  }
  for (const m of inf.matrix) all.add(m.src).add(m.dst);
  return [...all].sort(byCodeUnit);
}

export interface HostGroup {
  /** undefined: VMs no daemon has reported as local. */
  host: string | undefined;
  vms: string[];
}

/** The known VMs grouped by host, hosts in name order, VMs of no known host last. */
export function vmsByHost(inf: Inference): HostGroup[] {
  const groups = new Map<string | undefined, string[]>();
  for (const vm of knownVms(inf)) {
    const host = Object.hasOwn(inf.hosts, vm) ? inf.hosts[vm] : undefined;
    let g = groups.get(host);
    if (!g) groups.set(host, (g = []));
    g.push(vm);
  }
  return [...groups.entries()]
    .sort(([a], [b]) => (a === undefined ? 1 : b === undefined ? -1 : byName(a, b)))
    .map(([host, vms]) => ({ host, vms }));
}

export function hostOf(inf: Inference, vm: string): string | undefined {
  return Object.hasOwn(inf.hosts, vm) ? inf.hosts[vm] : undefined;
}

/** Edges with a < b, sorted by (a, b): the contract of types.ts, enforced rather than trusted. */
export function sortedEdges(edges: readonly TopologyEdge[]): TopologyEdge[] {
  return edges
    .map((e) => (e.a <= e.b ? e : { ...e, a: e.b, b: e.a }))
    .sort((x, y) => byCodeUnit(x.a, y.a) || byCodeUnit(x.b, y.b));
}

export interface TopologyDiff {
  /** In `to`, not in `from`; sorted. */
  added: TopologyEdge[];
  /** In `from`, not in `to`; sorted. */
  removed: TopologyEdge[];
}

/** Edges that appear and disappear going from one topology to another (null: from nothing). */
export function topologyDiff(from: Topology | null, to: Topology): TopologyDiff {
  const before = new Set((from?.edges ?? []).map((e) => linkKey(e.a, e.b)));
  const after = new Set(to.edges.map((e) => linkKey(e.a, e.b)));
  return {
    added: sortedEdges(to.edges.filter((e) => !before.has(linkKey(e.a, e.b)))),
    removed: sortedEdges((from?.edges ?? []).filter((e) => !after.has(linkKey(e.a, e.b)))),
  };
}

/** What is pending: only a settling inference has a current view that differs for a reason worth showing. */
export function pending(inf: Inference): TopologyDiff | undefined {
  if (inf.state !== 'settling') return undefined;
  const d = topologyDiff(inf.topology, inf.current);
  return d.added.length || d.removed.length ? d : undefined;
}
