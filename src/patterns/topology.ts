/**
 * The application topologies of the patterns workload (000 §4, 004 §9): for
 * a kind and a number of VMs, the true undirected edge set over ranks
 * 0..n-1, and each rank's script for one communication phase.
 *
 * Every kind is built so that each edge carries exactly one message each way
 * per iteration and nothing else is sent: every edge is equally intense, so
 * the topology VTTIF should infer is exactly `edges`, whatever its threshold.
 */

export const KINDS = ['ring', 'all-to-all', 'bus', 'mesh2d', 'mesh3d', 'torus2d', 'torus3d', 'hypercube', 'tree', 'reduction'] as const;
export type Kind = (typeof KINDS)[number];

/** What each kind sends in a communication phase, for help texts and docs. */
export const DESCRIPTIONS: Record<Kind, string> = {
  ring: 'neighbour exchange on a ring: each rank sends to rank±1 (mod n)',
  'all-to-all': 'each rank sends to every other rank',
  bus: 'ranks on a line (a shared bus); a message travels from rank 0 to rank n-1 hop by hop, then back',
  mesh2d: 'neighbour exchange on a 2-D grid (no wrap-around)',
  mesh3d: 'neighbour exchange on a 3-D grid (no wrap-around)',
  torus2d: 'neighbour exchange on a 2-D grid with wrap-around',
  torus3d: 'neighbour exchange on a 3-D grid with wrap-around',
  hypercube: 'exchange with the rank differing in each bit (n a power of two)',
  tree: 'neighbour exchange on a binary tree (parent of r is (r-1)/2): each rank with its parent and children at once',
  reduction: 'binary-tree all-reduce: values flow up to rank 0, then the result flows back down',
};

/** One step of a rank's communication phase: send to these ranks, or wait for a message from each of these. */
export type Step = { send: number[] } | { recv: number[] };

export interface Pattern {
  kind: Kind;
  n: number;
  /** Grid sizes for meshes and tori (product n), else empty. */
  dims: number[];
  /** Sorted [a, b] pairs, a < b. */
  edges: [number, number][];
  /** Per rank, its communication phase in order. */
  script: Step[][];
}

/** A kind that cannot take the asked size or dims; the message says what would work. */
export class TopologyError extends Error {}

export function pattern(kind: Kind, n: number, dims?: readonly number[]): Pattern {
  if (!Number.isInteger(n) || n < 2) throw new TopologyError(`a ${kind} needs at least 2 VMs (got ${n})`);
  if (dims && !isGrid(kind)) throw new TopologyError(`--dims applies to mesh2d, mesh3d, torus2d and torus3d, not ${kind}`);
  switch (kind) {
    case 'ring':
      return exchange(kind, n, [], (r) => [(r + 1) % n, (r + n - 1) % n]);
    case 'all-to-all':
      return exchange(kind, n, [], (r) => range(n).filter((s) => s !== r));
    case 'hypercube': {
      if ((n & (n - 1)) !== 0) {
        const lo = 1 << Math.floor(Math.log2(n));
        throw new TopologyError(`a hypercube needs a power of two VMs; ${n} is not (try ${lo} or ${lo * 2})`);
      }
      const bits = Math.log2(n);
      return exchange(kind, n, [], (r) => range(bits).map((b) => r ^ (1 << b)));
    }
    case 'tree':
      return exchange(kind, n, [], (r) => [...(r > 0 ? [parent(r)] : []), ...children(r, n)]);
    case 'bus':
      return busPattern(n);
    case 'reduction':
      return reductionPattern(n);
    case 'mesh2d':
    case 'mesh3d':
    case 'torus2d':
    case 'torus3d':
      return grid(kind, n, dims);
  }
}

const isGrid = (k: Kind): boolean => k === 'mesh2d' || k === 'mesh3d' || k === 'torus2d' || k === 'torus3d';
const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);
const parent = (r: number): number => (r - 1) >> 1;
const children = (r: number, n: number): number[] => [2 * r + 1, 2 * r + 2].filter((c) => c < n);

/** Every rank sends to each of its partners, then waits for each of them: a symmetric exchange. */
function exchange(kind: Kind, n: number, dims: number[], partners: (r: number) => number[]): Pattern {
  const script = range(n).map((r) => {
    const p = [...new Set(partners(r))].filter((s) => s !== r).sort((a, b) => a - b);
    return [{ send: p }, { recv: p }];
  });
  return { kind, n, dims, edges: edgesOf(script), script };
}

/** The bus as a shared medium: one transmitter at a time, the message passed down the line and back. */
function busPattern(n: number): Pattern {
  const script = range(n).map((r): Step[] => {
    if (r === 0) return [{ send: [1] }, { recv: [1] }];
    if (r === n - 1) return [{ recv: [r - 1] }, { send: [r - 1] }];
    return [{ recv: [r - 1] }, { send: [r + 1] }, { recv: [r + 1] }, { send: [r - 1] }];
  });
  return { kind: 'bus', n, dims: [], edges: edgesOf(script), script };
}

/** Reduce to rank 0 up a binary tree, then broadcast the result down it. */
function reductionPattern(n: number): Pattern {
  const script = range(n).map((r): Step[] => {
    const kids = children(r, n);
    const up: Step[] = r === 0 ? [] : [{ send: [parent(r)] }, { recv: [parent(r)] }];
    return [...(kids.length ? [{ recv: kids }] : []), ...up, ...(kids.length ? [{ send: kids }] : [])];
  });
  return { kind: 'reduction', n, dims: [], edges: edgesOf(script), script };
}

function grid(kind: Kind, n: number, given?: readonly number[]): Pattern {
  const rank = kind.endsWith('3d') ? 3 : 2;
  const wrap = kind.startsWith('torus');
  let dims: number[];
  if (given) {
    if (given.length !== rank || given.some((d) => !Number.isInteger(d) || d < 1)) {
      throw new TopologyError(`a ${kind} takes ${rank} positive sizes in --dims (like ${rank === 2 ? '2x4' : '2x2x4'}), not '${given.join('x')}'`);
    }
    const product = given.reduce((a, b) => a * b, 1);
    if (product !== n) throw new TopologyError(`--dims ${given.join('x')} makes ${product} VMs, not ${n}`);
    dims = [...given];
  } else {
    dims = balancedFactors(n, rank);
  }
  // Rank r's coordinates, first dimension fastest.
  const coords = (r: number): number[] => dims.map((_, i) => Math.floor(r / stride(dims, i)) % dims[i]!);
  const rankOf = (c: number[]): number => c.reduce((acc, x, i) => acc + x * stride(dims, i), 0);
  return exchange(kind, n, dims, (r) => {
    const c = coords(r);
    const out: number[] = [];
    dims.forEach((size, i) => {
      for (const step of [-1, 1]) {
        const x = c[i]! + step;
        if (x >= 0 && x < size) out.push(rankOf(c.map((v, j) => (j === i ? x : v))));
        else if (wrap && size > 1) out.push(rankOf(c.map((v, j) => (j === i ? (x + size) % size : v))));
      }
    });
    return out;
  });
}

const stride = (dims: readonly number[], i: number): number => dims.slice(0, i).reduce((a, b) => a * b, 1);

/**
 * The most nearly equal factorisation of n into k factors, ascending: 16 in
 * two is 4x4, in three 2x2x4; a prime n gives a line (1x7). The one whose
 * largest factor is smallest, ties to the one whose smallest is largest.
 */
export function balancedFactors(n: number, k: number): number[] {
  if (k === 1) return [n];
  let best: number[] | undefined;
  for (let f = 1; f ** k <= n; f++) {
    if (n % f) continue;
    const rest = [f, ...balancedFactors(n / f, k - 1)].sort((a, b) => a - b);
    if (!best || rest[k - 1]! < best[k - 1]! || (rest[k - 1] === best[k - 1] && rest[0]! > best[0]!)) best = rest;
  }
  return best!;
}

function edgesOf(script: Step[][]): [number, number][] {
  const seen = new Map<string, [number, number]>();
  script.forEach((steps, r) => {
    for (const s of steps) {
      if (!('send' in s)) continue;
      for (const to of s.send) {
        const e: [number, number] = r < to ? [r, to] : [to, r];
        seen.set(`${e[0]},${e[1]}`, e);
      }
    }
  });
  return [...seen.values()].sort((x, y) => x[0] - y[0] || x[1] - y[1]);
}

/** Parses `--dims 2x4` (or `2,4`). */
export function parseDims(text: string): number[] {
  const parts = text.split(/[x,×]/i);
  if (parts.some((p) => !/^\d+$/.test(p.trim()))) throw new TopologyError(`--dims takes sizes like 2x4 or 2x2x4, not '${text}'`);
  return parts.map((p) => Number(p));
}
