import type { Inference, InferenceState, MatrixEntry, Topology, TopologyEdge } from '../../src/vttif/types.js';

/**
 * Inferences as the collector would compute them from a traffic pattern:
 * the matrix, then edges normalised by the most intense pair and pruned
 * under the threshold, as 000 §2.2 and src/vttif/types.ts describe.
 */

export const mac = (i: number): string => `00:50:56:00:${(i >> 8).toString(16).padStart(2, '0')}:${(i & 0xff).toString(16).padStart(2, '0')}`;

/** A directed flow between VM indices, bytes/s. */
export type Flow = [src: number, dst: number, bytesPerS: number];

export function topologyOf(matrix: MatrixEntry[], threshold: number): Topology {
  const pairs = new Map<string, TopologyEdge>();
  for (const m of matrix) {
    const [a, b] = m.src < m.dst ? [m.src, m.dst] : [m.dst, m.src];
    const e = pairs.get(`${a} ${b}`) ?? { a, b, intensity: 0, bytesPerS: 0, aToBBytesPerS: 0 };
    e.bytesPerS += m.bytesPerS;
    if (m.src === a) e.aToBBytesPerS += m.bytesPerS;
    pairs.set(`${a} ${b}`, e);
  }
  const max = Math.max(0, ...[...pairs.values()].map((e) => e.bytesPerS));
  const edges = [...pairs.values()]
    .map((e) => ({ ...e, intensity: e.bytesPerS / max }))
    .filter((e) => e.intensity > threshold)
    .sort((x, y) => (x.a < y.a ? -1 : x.a > y.a ? 1 : x.b < y.b ? -1 : x.b > y.b ? 1 : 0));
  const vms = [...new Set(edges.flatMap((e) => [e.a, e.b]))].sort();
  return { vms, edges };
}

export function matrixOf(flows: Flow[]): MatrixEntry[] {
  return flows
    .map(([s, d, b]) => ({ src: mac(s), dst: mac(d), bytesPerS: b, framesPerS: b / 1000 }))
    .sort((x, y) => (x.src < y.src ? -1 : x.src > y.src ? 1 : x.dst < y.dst ? -1 : x.dst > y.dst ? 1 : 0));
}

export interface Options {
  state?: InferenceState;
  /** VMs per host: VM i sits on host `host${1 + floor(i / perHost)}`. */
  perHost?: number;
  /** What the window shows now, when it differs from the settled flows. */
  currentFlows?: Flow[];
  collector?: string;
  hostName?: (i: number) => string;
}

export function inference(n: number, flows: Flow[], o: Options = {}): Inference {
  const params = { updateHz: 20, windowS: 0.25, threshold: 0.1 };
  const settledMatrix = matrixOf(flows);
  const topology = topologyOf(settledMatrix, params.threshold);
  const matrix = o.currentFlows ? matrixOf(o.currentFlows) : settledMatrix;
  const perHost = o.perHost ?? 2;
  const hostName = o.hostName ?? ((i: number) => `host${1 + Math.floor(i / perHost)}`);
  const hosts: Record<string, string> = {};
  for (let i = 0; i < n; i++) hosts[mac(i)] = hostName(i);
  const reporters: Record<string, number> = {};
  for (const h of new Set(Object.values(hosts))) reporters[h] = 0.05;
  return {
    collector: o.collector ?? 'proxy',
    at: '2026-11-24T21:00:06.250Z',
    params,
    state: o.state ?? 'settled',
    topology,
    changes: 3,
    settledAt: '2026-11-24T21:00:05.000Z',
    current: o.currentFlows ? topologyOf(matrix, params.threshold) : topology,
    matrix,
    hosts,
    reporters,
  };
}

/** Neighbour exchange on a ring: each VM sends to both neighbours; one link twice as busy. */
export function ring(n: number, o: Options = {}): Inference {
  const flows: Flow[] = [];
  for (let i = 0; i < n; i++) {
    const busy = i === 0 ? 2 : 1;
    flows.push([i, (i + 1) % n, 500_000 * busy], [(i + 1) % n, i, 500_000 * busy]);
  }
  return inference(n, flows, o);
}

/** All-to-all with intensities spread over an order of magnitude, so widths and colours differ. */
export function allToAll(n: number, o: Options = {}): Inference {
  const flows: Flow[] = [];
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) if (i !== j) flows.push([i, j, 20_000 * (1 + ((i + 2 * j) % 8))]);
  return inference(n, flows, o);
}

/** A ring that is turning into a star around VM 0: some edges appearing, most disappearing. */
export function settling(n: number): Inference {
  const star: Flow[] = [];
  for (let i = 1; i < n; i++) star.push([0, i, 300_000], [i, 0, 300_000]);
  return ring(n, { state: 'settling', currentFlows: star });
}

export function noData(): Inference {
  return {
    collector: 'proxy',
    at: '2026-11-24T21:00:06.250Z',
    params: { updateHz: 5, windowS: 1, threshold: 0.05 },
    state: 'no-data',
    topology: { vms: [], edges: [] },
    changes: 0,
    settledAt: null,
    current: { vms: [], edges: [] },
    matrix: [],
    hosts: {},
    reporters: {},
  };
}
