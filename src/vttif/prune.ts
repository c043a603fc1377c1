import { linkKey } from '../model/state.js';
import { rateOf, type Topology, type TopologyEdge } from './types.js';
import { byCodeUnit } from '../util/compare.js';

/** A directed pair's sums over the window, with its undirected edge named (src/vttif/window.ts keeps them). */
export interface PairTotal {
  a: string;
  b: string;
  edge: string;
  src: string;
  dst: string;
  bytes: number;
}

/**
 * From the windowed sums to the application topology (000 §2.2): both
 * directions of a VM pair together, normalised by the most intense pair,
 * pairs under `threshold` of it pruned; rates are per second of a window of
 * `seconds`.
 */
export function prune(pairs: Iterable<PairTotal>, threshold: number, seconds: number): Topology {
  const undirected = new Map<string, { a: string; b: string; bytes: number; aToB: number }>();
  for (const p of pairs) {
    if (p.src === p.dst || !(p.bytes > 0)) continue;
    let e = undirected.get(p.edge);
    if (!e) undirected.set(p.edge, (e = { a: p.a, b: p.b, bytes: 0, aToB: 0 }));
    e.bytes += p.bytes;
    if (p.src === p.a) e.aToB += p.bytes;
  }
  let max = 0;
  for (const e of undirected.values()) max = Math.max(max, e.bytes);
  const edges: TopologyEdge[] = [];
  for (const e of undirected.values()) {
    const intensity = e.bytes / max;
    if (intensity >= threshold) edges.push({ a: e.a, b: e.b, intensity, bytesPerS: rateOf(e.bytes, seconds), aToBBytesPerS: rateOf(e.aToB, seconds) });
  }
  edges.sort((x, y) => byCodeUnit(x.a, y.a) || byCodeUnit(x.b, y.b));
  return topologyOf(edges);
}

/** A topology of these edges (already in order): its VMs are their ends. */
export function topologyOf(edges: TopologyEdge[]): Topology {
  const vms = new Set<string>();
  for (const e of edges) vms.add(e.a).add(e.b);
  return { vms: [...vms].sort(), edges };
}

/** An edge's key: the link key of its ends, as the model names a link. */
export const edgeKey = (e: { a: string; b: string }): string => linkKey(e.a, e.b);

/**
 * Adapt routes each edge's traffic once per entry, so an inference names a
 * VM pair once and never a VM with itself. The check returned takes the
 * edges in order and says what is wrong with one: 'self', the index of the
 * earlier edge of the same pair, or nothing; each reader words it.
 */
export function edgeChecker(): (e: { a: string; b: string }, index: number) => 'self' | number | undefined {
  const seen = new Map<string, number>();
  return (e, index) => {
    if (e.a === e.b) return 'self';
    const k = edgeKey(e);
    const first = seen.get(k);
    if (first === undefined) seen.set(k, index);
    return first;
  };
}

export function sameEdges(x: Topology, y: Topology): boolean {
  if (x.edges.length !== y.edges.length) return false;
  for (let i = 0; i < x.edges.length; i++) if (x.edges[i]!.a !== y.edges[i]!.a || x.edges[i]!.b !== y.edges[i]!.b) return false;
  return true;
}

/** True when `big` has every edge of `small` and more. */
export function strictSuperset(big: Topology, small: Topology): boolean {
  if (big.edges.length <= small.edges.length) return false;
  const keys = new Set(big.edges.map(edgeKey));
  return small.edges.every((e) => keys.has(edgeKey(e)));
}

export const EMPTY_TOPOLOGY: Topology = { vms: [], edges: [] };
