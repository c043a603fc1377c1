import fc from 'fast-check';
import { Collector } from '../../src/vttif/collector.js';
import { edgeKey } from '../../src/vttif/prune.js';
import { MAX_REMEMBERED, remember } from '../../src/vttif/recent.js';
import type { Inference, VttifParams } from '../../src/vttif/types.js';
import { macToNumber } from '../../src/model/mac48.js';
import { PAIR_FIELDS, type Report } from '../../src/wire/vttif-report.js';

/**
 * The collector driven by a fake clock: daemons' reports are built from a
 * "true" traffic pattern, so every expectation is about what VTTIF should
 * conclude from traffic, not about timing on this machine.
 */

const vm = (i: number): string => `02:50:00:00:00:${i.toString(16).padStart(2, '0')}`;
type Pattern = [number, number, number][]; // src, dst, bytes per second

function report(pattern: Pattern, seconds: number, hosted: number[] = []): Report {
  const pairs = new Float64Array(pattern.length * PAIR_FIELDS);
  pattern.forEach(([s, d, rate], i) => {
    const bytes = Math.round(rate * seconds);
    pairs.set([macToNumber(vm(s)), macToNumber(vm(d)), bytes, Math.ceil(bytes / 1500)], i * PAIR_FIELDS);
  });
  return { hosted: hosted.map((h) => macToNumber(vm(h))), pairs };
}

const ring = (n: number, rate = 1e6): Pattern => Array.from({ length: n }, (_, i) => [i, (i + 1) % n, rate] as [number, number, number]);
const star = (n: number, rate = 1e6): Pattern => Array.from({ length: n - 1 }, (_, i) => [0, i + 1, rate] as [number, number, number]);
const edgesOf = (p: Pattern): string[] => [...new Set(p.map(([s, d]) => edgeKey(s < d ? { a: vm(s), b: vm(d) } : { a: vm(d), b: vm(s) })))].sort();
const settledEdges = (i: Inference): string[] => i.topology.edges.map(edgeKey);

/**
 * Runs `steps` update intervals; `patternAt(t)` is the traffic during the
 * interval ending at t (seconds). Returns every settled topology in order.
 */
function run(c: Collector, p: VttifParams, seconds: number, patternAt: (t: number) => Pattern, startS = 0): string[][] {
  const dt = 1 / p.updateHz;
  const settled: string[][] = [];
  for (let k = 1; k * dt <= seconds + 1e-9; k++) {
    const t = startS + k * dt;
    c.ingest('h1', report(patternAt(t), dt, [0]), t * 1000);
    if (c.evaluate(t * 1000)) settled.push(settledEdges(c.inference(t * 1000)));
  }
  return settled;
}

const P: VttifParams = { updateHz: 20, windowS: 0.5, threshold: 0.2 };

describe('the collector', () => {
  test('a steady pattern settles once, normalised by the most intense pair, with the VM-to-host map', () => {
    const c = new Collector('proxy', P, () => Date.parse('2026-11-24T10:00:00Z'));
    const heavy: Pattern = [...ring(4), [0, 2, 3e6]];
    const settled = run(c, P, 2, () => heavy);
    expect(settled).toEqual([edgesOf(heavy)]);
    const inf = c.inference(2000);
    expect(inf.state).toBe('settled');
    expect(inf.changes).toBe(1);
    expect(inf.params).toEqual(P);
    const top = Object.fromEntries(inf.topology.edges.map((e) => [edgeKey(e), e.intensity]));
    expect(top[edgeKey({ a: vm(0), b: vm(2) })]).toBe(1);
    expect(top[edgeKey({ a: vm(0), b: vm(1) })]).toBeCloseTo(1 / 3, 6);
    expect(inf.hosts).toEqual({ [vm(0)]: 'h1' });
    const m = inf.matrix.find((x) => x.src === vm(0) && x.dst === vm(2))!;
    expect(m.bytesPerS).toBeCloseTo(3e6, -3);
    expect(inf.at).toBe('2026-11-24T10:00:00.000Z');
  });

  test('pairs under the threshold are pruned: noise at 10% of the weakest edge never becomes an edge', () => {
    const c = new Collector('proxy', P);
    const noisy: Pattern = [...ring(8), [0, 4, 1e5], [3, 6, 1e5], [7, 2, 1e5]];
    expect(run(c, P, 3, () => noisy)).toEqual([edgesOf(ring(8))]);
    expect(c.inference(3000).matrix).toHaveLength(ring(8).length + 3);
  });

  test('patterns alternated much slower than the window are each reported in turn, never their union', () => {
    const c = new Collector('proxy', P);
    const A = ring(6);
    const B = star(6);
    const period = 4 * P.windowS;
    const settled = run(c, P, 8 * period, (t) => (Math.floor((t - 1e-9) / period) % 2 === 0 ? A : B));
    expect(settled).toEqual(Array.from({ length: 8 }, (_, i) => edgesOf(i % 2 === 0 ? A : B)));
  });

  test('patterns alternated faster than the window settle to their union and stay there (Fig. 6)', () => {
    const c = new Collector('proxy', P);
    const A = ring(6);
    const B = star(6);
    const period = P.windowS / 5;
    const settled = run(c, P, 10, (t) => (Math.floor((t - 1e-9) / period) % 2 === 0 ? A : B));
    const union = [...new Set([...edgesOf(A), ...edgesOf(B)])].sort();
    expect(settled.at(-1)).toEqual(union);
    // After the first window, nothing else is ever reported: damped, not oscillating.
    expect(settled.length).toBeLessThanOrEqual(2);
  });

  test('silence keeps the settled topology (a compute phase is not a change); growth that outlasts the window settles', () => {
    const c = new Collector('proxy', P);
    run(c, P, 1, () => ring(4));
    run(c, P, 2, () => [], 1);
    let inf = c.inference(3000);
    expect(inf.state).toBe('idle');
    expect(settledEdges(inf)).toEqual(edgesOf(ring(4)));
    const grown: Pattern = [...ring(4), [0, 2, 1e6]];
    const settled = run(c, P, 2, () => grown, 3);
    expect(settled).toEqual([edgesOf(grown)]);
    inf = c.inference(5000);
    expect(inf.changes).toBe(2);
    expect(inf.state).toBe('settled');
  });

  test('before any traffic it says so; changing the window takes effect on the next evaluation', () => {
    const c = new Collector('proxy', P);
    c.evaluate(0);
    expect(c.inference(0)).toMatchObject({ state: 'no-data', changes: 0, settledAt: null, matrix: [] });
    run(c, P, 1, () => ring(4));
    c.setParams({ ...P, windowS: 0.1 });
    c.evaluate(1150);
    expect(c.inference(1150).state).toBe('idle');
  });

  test('made-up source MACs cost bounded memory: the least recently seen are forgotten first', () => {
    const m = new Map<number, string>();
    for (const k of [1, 2, 3, 1, 4, 5]) remember(m, k, `v${k}`, 3);
    expect([...m.keys()]).toEqual([1, 4, 5]);
    const c = new Collector('proxy', P);
    const flood = Array.from({ length: MAX_REMEMBERED + 100 }, (_, i) => i + 1);
    c.ingest('h1', { hosted: flood, pairs: new Float64Array(0) }, 0);
    const hosts = Object.keys(c.inference(0).hosts);
    expect(hosts).toHaveLength(MAX_REMEMBERED);
    expect(hosts).not.toContain('00:00:00:00:00:01');
  });

  test('property: for any traffic, the topology is exactly the pairs at or above the threshold of the most intense', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.integer({ min: 0, max: 7 }), fc.integer({ min: 0, max: 7 }), fc.integer({ min: 1, max: 1e7 })), { minLength: 1, maxLength: 30 }),
        fc.double({ min: 0, max: 0.99, noNaN: true }),
        (raw, threshold) => {
          const p = { ...P, threshold };
          const c = new Collector('proxy', p);
          c.ingest('h1', report(raw, 1), 0);
          c.evaluate(1);
          const inf = c.inference(1);
          const sums = new Map<string, number>();
          for (const [s, d, r] of raw) {
            if (s === d) continue;
            const k = edgeKey(s < d ? { a: vm(s), b: vm(d) } : { a: vm(d), b: vm(s) });
            sums.set(k, (sums.get(k) ?? 0) + Math.round(r));
          }
          const max = Math.max(0, ...sums.values());
          const want = [...sums].filter(([, v]) => v / max >= threshold).map(([k]) => k).sort();
          expect(inf.current.edges.map(edgeKey)).toEqual(want);
          for (const e of inf.current.edges) expect(e.intensity).toBeLessThanOrEqual(1);
        },
      ),
      { numRuns: 200 },
    );
  });
});
