/**
 * What VTTIF infers, as every consumer sees it: the collector's answer to
 * INFER? (src/wire/vttif.ts carries it), `vnetc infer --json`, and the input
 * of `vnetc adapt --matrix`. MAC addresses are lower-case `aa:bb:cc:dd:ee:ff`.
 */

/**
 * The most a pair may send, in bytes (or frames) per second: 1e15 B/s is
 * 8 Pbit/s, far beyond any link, yet low enough that sums over every pair
 * stay finite, so no figure adapt prints becomes Infinity or NaN. Both
 * readers of an inference (a file, an INFER? reply) hold to it.
 */
export const MAX_RATE = 1e15;

/**
 * `count` over `seconds` as a rate an inference may state: held to MAX_RATE
 * where rates are made, since daemons' reports summed over a window (and an
 * edge's two directions) can exceed it, and INFER? would then answer
 * something its readers refuse.
 */
export const rateOf = (count: number, seconds: number): number => Math.min(MAX_RATE, count / seconds);

/** The three parameters of 000 §2.2, reported with every result. */
export interface VttifParams {
  /** How often each daemon sends its local matrix to the collector (0 < rate ≤ 20). */
  updateHz: number;
  /** The smoothing interval: the sliding window the collector aggregates over. */
  windowS: number;
  /** Detection threshold: the fraction of the most intense pair a pair must reach to be an edge. */
  threshold: number;
}

/** One directed pair of the traffic load matrix, averaged over the window. */
export interface MatrixEntry {
  src: string;
  dst: string;
  bytesPerS: number;
  framesPerS: number;
}

/**
 * One edge of the application topology: an unordered VM pair (a < b), both
 * directions together, with its intensity relative to the most intense pair.
 */
export interface TopologyEdge {
  a: string;
  b: string;
  /** In (threshold, 1]; the most intense edge is 1. */
  intensity: number;
  /** Both directions together. */
  bytesPerS: number;
  /** What `a` sends to `b`, of `bytesPerS` (`b` sends the rest): adaptation routes each direction on its own. */
  aToBBytesPerS: number;
}

export interface Topology {
  /** Every VM that is an end of an edge, sorted. */
  vms: string[];
  /** Sorted by (a, b). */
  edges: TopologyEdge[];
}

/**
 * - `settled`: the reported topology is what the window shows now.
 * - `settling`: the window shows a different topology that has not yet held long enough to be reported.
 * - `idle`: no traffic in the window; the last settled topology is kept (a BSP compute phase is not a change).
 * - `no-data`: nothing has been seen since the collector started.
 */
export type InferenceState = 'settled' | 'settling' | 'idle' | 'no-data';
export const INFERENCE_STATES: readonly InferenceState[] = ['settled', 'settling', 'idle', 'no-data'];

export interface Inference {
  /** The machine whose daemon aggregated this (the Proxy). */
  collector: string;
  /** When the collector computed it (ISO 8601). */
  at: string;
  params: VttifParams;
  state: InferenceState;
  /** The last settled topology: what adaptation should act on. */
  topology: Topology;
  /** Settled topologies reported so far, and when the current one settled (ISO 8601, or null). */
  changes: number;
  settledAt: string | null;
  /** What the window shows now, before damping (equal to `topology` when settled). */
  current: Topology;
  /** The whole matrix over the window, unpruned, sorted by (src, dst). */
  matrix: MatrixEntry[];
  /** VM MAC → the machine whose daemon last saw it send from a local interface. */
  hosts: Record<string, string>;
  /** Every machine that has reported to this collector, with the age of its last report in seconds. */
  reporters: Record<string, number>;
}
