import type { MatrixEntry, Topology, TopologyEdge } from './types.js';

/**
 * From the windowed matrix to the application topology (000 §2.2): both
 * directions of a VM pair together, normalised by the most intense pair,
 * pairs under `threshold` of it pruned.
 */
export function prune(matrix: readonly MatrixEntry[], threshold: number): Topology {
  const undirected = new Map<string, { a: string; b: string; bytesPerS: number }>();
  for (const m of matrix) {
    if (m.src === m.dst || !(m.bytesPerS > 0)) continue;
    const [a, b] = m.src < m.dst ? [m.src, m.dst] : [m.dst, m.src];
    const key = `${a} ${b}`;
    const e = undirected.get(key);
    if (e) e.bytesPerS += m.bytesPerS;
    else undirected.set(key, { a, b, bytesPerS: m.bytesPerS });
  }
  let max = 0;
  for (const e of undirected.values()) max = Math.max(max, e.bytesPerS);
  const edges: TopologyEdge[] = [];
  for (const e of undirected.values()) {
    const intensity = e.bytesPerS / max;
    if (intensity >= threshold) edges.push({ a: e.a, b: e.b, intensity, bytesPerS: e.bytesPerS });
  }
  edges.sort((x, y) => (x.a < y.a ? -1 : x.a > y.a ? 1 : x.b < y.b ? -1 : x.b > y.b ? 1 : 0));
  return topologyOf(edges);
}

/** A topology of these edges (already in order): its VMs are their ends. */
export function topologyOf(edges: TopologyEdge[]): Topology {
  return { vms: [...new Set(edges.flatMap((e) => [e.a, e.b]))].sort(), edges };
}

export const edgeKey = (e: { a: string; b: string }): string => `${e.a} ${e.b}`;

export function sameEdges(x: Topology, y: Topology): boolean {
  if (x.edges.length !== y.edges.length) return false;
  for (let i = 0; i < x.edges.length; i++) if (edgeKey(x.edges[i]!) !== edgeKey(y.edges[i]!)) return false;
  return true;
}

/** True when `big` has every edge of `small` and more. */
export function strictSuperset(big: Topology, small: Topology): boolean {
  if (big.edges.length <= small.edges.length) return false;
  const keys = new Set(big.edges.map(edgeKey));
  return small.edges.every((e) => keys.has(edgeKey(e)));
}

export const EMPTY_TOPOLOGY: Topology = { vms: [], edges: [] };
