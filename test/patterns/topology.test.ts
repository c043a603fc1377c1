import fc from 'fast-check';
import { balancedFactors, KINDS, parseDims, pattern, TopologyError, type Kind, type Pattern, type Step } from '../../src/patterns/topology.js';

const degrees = (p: Pattern): number[] => {
  const d = new Array<number>(p.n).fill(0);
  for (const [a, b] of p.edges) {
    d[a]!++;
    d[b]!++;
  }
  return d;
};
const histogram = (xs: number[]): Record<number, number> => xs.reduce<Record<number, number>>((h, x) => ((h[x] = (h[x] ?? 0) + 1), h), {});

function connected(p: Pattern): boolean {
  const adj = Array.from({ length: p.n }, () => [] as number[]);
  for (const [a, b] of p.edges) adj[a]!.push(b), adj[b]!.push(a);
  const seen = new Set([0]);
  const todo = [0];
  while (todo.length) for (const x of adj[todo.pop()!]!) if (!seen.has(x)) seen.add(x), todo.push(x);
  return seen.size === p.n;
}

/**
 * Plays one communication phase with every message delivered: each rank runs
 * its script as far as the messages it has allow. Returns the directed
 * messages sent, or throws if the scripts deadlock.
 */
function play(p: Pattern): Map<string, number> {
  const sent = new Map<string, number>();
  const inbox = Array.from({ length: p.n }, () => new Map<number, number>());
  const pc = new Array<number>(p.n).fill(0);
  for (let progress = true; progress; ) {
    progress = false;
    p.script.forEach((steps, r) => {
      while (pc[r]! < steps.length) {
        const s: Step = steps[pc[r]!]!;
        if ('send' in s) {
          for (const to of s.send) {
            sent.set(`${r}>${to}`, (sent.get(`${r}>${to}`) ?? 0) + 1);
            inbox[to]!.set(r, (inbox[to]!.get(r) ?? 0) + 1);
          }
        } else {
          if (!s.recv.every((from) => (inbox[r]!.get(from) ?? 0) > 0)) break;
          for (const from of s.recv) inbox[r]!.set(from, inbox[r]!.get(from)! - 1);
        }
        pc[r]!++;
        progress = true;
      }
    });
  }
  const stuck = pc.flatMap((x, r) => (x < p.script[r]!.length ? [r] : []));
  if (stuck.length) throw new Error(`${p.kind} of ${p.n} deadlocks at ranks ${stuck.join(', ')}`);
  if (inbox.some((m) => [...m.values()].some((c) => c !== 0))) throw new Error(`${p.kind} of ${p.n} leaves messages nobody waits for`);
  return sent;
}

describe('edge sets at 4, 8 and 16 VMs', () => {
  const cases: [Kind, number, number, Record<number, number>][] = [
    ['ring', 4, 4, { 2: 4 }],
    ['ring', 8, 8, { 2: 8 }],
    ['ring', 16, 16, { 2: 16 }],
    ['all-to-all', 4, 6, { 3: 4 }],
    ['all-to-all', 8, 28, { 7: 8 }],
    ['all-to-all', 16, 120, { 15: 16 }],
    ['bus', 4, 3, { 1: 2, 2: 2 }],
    ['bus', 16, 15, { 1: 2, 2: 14 }],
    ['mesh2d', 4, 4, { 2: 4 }], // 2x2
    ['mesh2d', 8, 10, { 2: 4, 3: 4 }], // 2x4
    ['mesh2d', 16, 24, { 2: 4, 3: 8, 4: 4 }], // 4x4
    ['mesh3d', 4, 4, { 2: 4 }], // 1x2x2
    ['mesh3d', 8, 12, { 3: 8 }], // 2x2x2
    ['mesh3d', 16, 28, { 3: 8, 4: 8 }], // 2x2x4
    ['torus2d', 4, 4, { 2: 4 }],
    ['torus2d', 8, 12, { 3: 8 }], // 2x4: one edge across the 2, a ring of 4
    ['torus2d', 16, 32, { 4: 16 }],
    ['torus3d', 8, 12, { 3: 8 }],
    ['torus3d', 16, 32, { 4: 16 }],
    ['hypercube', 4, 4, { 2: 4 }],
    ['hypercube', 8, 12, { 3: 8 }],
    ['hypercube', 16, 32, { 4: 16 }],
    // Binary heap order: the root and the last inner rank (one child) have degree 2.
    ['tree', 4, 3, { 1: 2, 2: 2 }],
    ['tree', 8, 7, { 1: 4, 2: 2, 3: 2 }],
    ['tree', 16, 15, { 1: 8, 2: 2, 3: 6 }],
    ['reduction', 8, 7, { 1: 4, 2: 2, 3: 2 }],
    ['reduction', 16, 15, { 1: 8, 2: 2, 3: 6 }],
  ];
  test.each(cases)('%s of %i: %i edges, degrees %j', (kind, n, edges, degreeCounts) => {
    const p = pattern(kind, n);
    expect(p.edges).toHaveLength(edges);
    expect(histogram(degrees(p))).toEqual(degreeCounts);
  });

  test('exact edges where they are easy to see', () => {
    expect(pattern('ring', 4).edges).toEqual([[0, 1], [0, 3], [1, 2], [2, 3]]);
    expect(pattern('bus', 4).edges).toEqual([[0, 1], [1, 2], [2, 3]]);
    expect(pattern('tree', 5).edges).toEqual([[0, 1], [0, 2], [1, 3], [1, 4]]);
    expect(pattern('hypercube', 4).edges).toEqual([[0, 1], [0, 2], [1, 3], [2, 3]]);
    expect(pattern('mesh2d', 6).edges).toEqual([[0, 1], [0, 2], [1, 3], [2, 3], [2, 4], [3, 5], [4, 5]]); // 2x3
    expect(pattern('mesh2d', 6).dims).toEqual([2, 3]);
  });

  test('every kind exchanges one message each way per edge per iteration (all edges equally intense)', () => {
    for (const kind of KINDS) {
      for (const n of [4, 8, 16]) {
        const p = pattern(kind, n);
        const sent = play(p);
        expect(sent.size).toBe(2 * p.edges.length);
        expect([...sent.values()].every((c) => c === 1)).toBe(true);
        for (const [a, b] of p.edges) expect([sent.get(`${a}>${b}`), sent.get(`${b}>${a}`)]).toEqual([1, 1]);
      }
    }
  });
});

describe('properties', () => {
  const kindAndSize = fc.oneof(
    fc.tuple(fc.constantFrom(...KINDS.filter((k) => k !== 'hypercube')), fc.integer({ min: 2, max: 64 })),
    fc.tuple(fc.constant<Kind>('hypercube'), fc.integer({ min: 1, max: 7 }).map((b) => 1 << b)),
  );
  test('edge sets are sorted, loop-free, symmetric, connected; scripts never deadlock and match the edges', () => {
    fc.assert(
      fc.property(kindAndSize, ([kind, n]) => {
        const p = pattern(kind, n);
        for (const [a, b] of p.edges) {
          expect(a).toBeLessThan(b);
          expect(b).toBeLessThan(n);
        }
        const keys = p.edges.map(([a, b]) => `${a},${b}`);
        expect(new Set(keys).size).toBe(keys.length);
        expect([...keys].sort((x, y) => x.localeCompare(y, 'en', { numeric: true }))).toEqual(keys);
        expect(connected(p)).toBe(true);
        // Symmetric: whoever sends to a rank is waited for by it, and sends happen on edges only.
        const sent = play(p);
        for (const k of sent.keys()) {
          const [a, b] = k.split('>').map(Number) as [number, number];
          expect(sent.has(`${b}>${a}`)).toBe(true);
        }
        expect(sent.size).toBe(2 * p.edges.length);
      }),
      { numRuns: 300 },
    );
  });
});

describe('sizes a kind cannot take', () => {
  test.each([
    [() => pattern('hypercube', 12), 'a hypercube needs a power of two VMs; 12 is not (try 8 or 16)'],
    [() => pattern('ring', 1), 'a ring needs at least 2 VMs (got 1)'],
    [() => pattern('mesh2d', 8, [3, 3]), '--dims 3x3 makes 9 VMs, not 8'],
    [() => pattern('torus3d', 8, [2, 4]), 'a torus3d takes 3 positive sizes in --dims (like 2x2x4), not \'2x4\''],
    [() => pattern('ring', 8, [2, 4]), '--dims applies to mesh2d, mesh3d, torus2d and torus3d, not ring'],
    [() => parseDims('2xfour'), "--dims takes sizes like 2x4 or 2x2x4, not '2xfour'"],
  ])('%#', (f, message) => {
    expect(f).toThrow(TopologyError);
    expect(f).toThrow(message);
  });

  test('given dims are used; the default is the most balanced factorisation', () => {
    expect(pattern('torus2d', 8, parseDims('8x1')).edges).toHaveLength(8); // a ring of 8
    expect(balancedFactors(16, 3)).toEqual([2, 2, 4]);
    expect(balancedFactors(12, 2)).toEqual([3, 4]);
    expect(balancedFactors(7, 2)).toEqual([1, 7]);
    expect(balancedFactors(64, 3)).toEqual([4, 4, 4]);
  });
});
