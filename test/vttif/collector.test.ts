import fc from 'fast-check';
import { Collector } from '../../src/vttif/collector.js';
import { edgeKey } from '../../src/vttif/prune.js';
import { MAX_REMEMBERED, remember } from '../../src/vttif/recent.js';
import { MAX_RATE, type Inference, type VttifParams } from '../../src/vttif/types.js';
import { formatInference, parseInference } from '../../src/wire/vttif.js';
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
    c.ingest('h1', report(patternAt(t), dt, [0]), k, t * 1000);
    if (c.evaluate(t * 1000)) settled.push(settledEdges(c.inference(t * 1000)));
  }
  return settled;
}

const P: VttifParams = { updateHz: 20, windowS: 0.5, threshold: 0.2 };

describe('the collector', () => {
  test('a steady pattern settles once, normalised by the most intense pair, with the VM-to-host map', () => {
    const c = new Collector('proxy', P, () => Date.parse('2026-11-24T10:00:00Z'));
    const heavy: Pattern = [...ring(4), [0, 2, 2e6], [2, 0, 1e6]];
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
    expect(m.bytesPerS).toBeCloseTo(2e6, -3);
    // Each edge keeps what its first end sends, so adaptation can route each direction on its own.
    const e02 = inf.topology.edges.find((e) => edgeKey(e) === edgeKey({ a: vm(0), b: vm(2) }))!;
    expect(e02.bytesPerS).toBeCloseTo(3e6, -3);
    expect(e02.aToBBytesPerS).toBeCloseTo(2e6, -3);
    const e30 = inf.topology.edges.find((e) => edgeKey(e) === edgeKey({ a: vm(0), b: vm(3) }))!;
    expect([e30.a, e30.aToBBytesPerS]).toEqual([vm(0), 0]); // the ring sends 3 → 0 only
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

  describe('rounds of reports from several daemons', () => {
    const dt = 1 / P.updateHz;
    /** Each of three daemons hosts two VMs of a ring of 6. */
    const share = (k: number): Pattern => ring(6).filter(([s]) => s === 2 * k || s === 2 * k + 1);
    /** Feeds reports `[daemon, ms, pattern]` in order, evaluating after each and at `also`; returns when topologies settled. */
    function feed(c: Collector, events: [number, number, Pattern][], also: number[] = []): number[] {
      const settled: number[] = [];
      const rounds = new Map<number, number>();
      const times = [...events.map((e) => e[1]), ...also].sort((x, y) => x - y);
      for (const t of [...new Set(times)]) {
        for (const [k, ms, pattern] of events.filter((e) => e[1] === t)) {
          const round = rounds.get(k) ?? 0;
          rounds.set(k, round + 1);
          c.ingest(`h${k}`, report(pattern, dt, pattern.length ? [2 * k, 2 * k + 1] : []), round, ms);
        }
        if (c.evaluate(t)) settled.push(t);
      }
      return settled;
    }
    /** Quiet rounds first, so the collector knows who reports: daemons at these offsets in each 50 ms interval. */
    const quiet = (offsets: number[], until: number): [number, number, Pattern][] =>
      Array.from({ length: until / 50 }, (_, r) => offsets.map((o, k) => [k, r * 50 + o, []] as [number, number, Pattern])).flat();

    test('daemons in step: a change settles once its round is in, a tenth of an interval after its spread, not a whole interval', () => {
      const c = new Collector('proxy', P);
      const events = [...quiet([0, 1, 2], 250), [0, 250, share(0)], [1, 251, share(1)], [2, 252, share(2)]] as [number, number, Pattern][];
      // The round's spread is 2 ms; the hold is that plus 5 ms: due at 259.
      expect(feed(c, events, [258])).toEqual([]);
      expect(c.evaluate(259)).toBe(true);
      expect(settledEdges(c.inference(259))).toEqual(edgesOf(ring(6)));
    });

    test('a daemon behind the others: what the window shows before its report of the round is never settled', () => {
      const c = new Collector('proxy', P);
      const events = [...quiet([0, 20, 1], 250), [0, 250, share(0)], [2, 251, share(2)], [1, 270, share(1)]] as [number, number, Pattern][];
      // At 251 the window shows two thirds of the ring; h1's report of the round is 19 ms away, and the hold (spread 31 + 5) outlasts it.
      const settled = feed(c, events, [260, 269, 287, 294]);
      expect(settled).toEqual([]);
      expect(c.evaluate(295)).toBe(true); // the whole ring, held from 270 for its round's spread of 20 ms + 5
      expect(settledEdges(c.inference(295))).toEqual(edgesOf(ring(6)));
    });

    test('a window still emptying of an old pattern: a partial union waits an interval, the new pattern only its round', () => {
      const c = new Collector('proxy', P);
      const steady: Pattern = [[0, 1, 1e6], [2, 3, 1e6], [4, 5, 1e6]];
      // The old pattern adds three edges that fade at different speeds once it stops: (1,2) at the steady edges' rate, (3,4) and (5,0) at 0.3 of it.
      const old: Pattern = [...steady, [1, 2, 1e6], [3, 4, 3e5], [5, 0, 3e5]];
      const byDaemon = (p: Pattern, k: number): Pattern => p.filter(([src]) => Math.floor(src / 2) === k);
      const rounds = (from: number, to: number, p: Pattern) =>
        Array.from({ length: to - from }, (_, i) => [0, 1, 2].map((k) => [k, 50 * (from + i) + k, byDaemon(p, k)] as [number, number, Pattern])).flat();
      expect(feed(c, rounds(0, 20, old))).toHaveLength(1);
      // The old pattern stops at round 20. At round 23 (the 4th new one) (3,4) and (5,0) fall under the threshold, (1,2) not yet:
      // the window shows the steady edges and (1,2), which the newest round did not carry.
      const settled = feed(c, rounds(20, 30, steady), [1159, 1180, 1201, 1202, 1407]);
      expect(settled).toEqual([1202, 1407]);
    });

    test('a daemon that falls silent holds a change up for one interval at most', () => {
      const c = new Collector('proxy', P);
      const events = [...quiet([0, 15, 10], 250), [0, 250, share(0)], [1, 265, share(1)]] as [number, number, Pattern][];
      // h2 last reported at 210 and should again at 260, but is silent: the spread is 55 ms, more than the interval, so the hold is the interval.
      expect(feed(c, events, [300, 310])).toEqual([]);
      expect(c.evaluate(315)).toBe(true);
    });

    test('the window holds rounds, not a span of time: a late report leaves no moment with one round fewer', () => {
      const c = new Collector('proxy', P);
      const rate = (ms: number) => (c.evaluate(ms), c.inference(ms).matrix.find((m) => m.src === vm(0))!.bytesPerS);
      const steady = Array.from({ length: 12 }, (_, r) => [0, r * 50, share(0)] as [number, number, Pattern]);
      feed(c, steady);
      const full = rate(550);
      expect(full).toBeCloseTo(1e6, -3);
      // The window is 10 rounds (0.5 s). The next report is 20 ms late: cut by arrival time, the round of 50 would leave at 550; as a round it stays until the next one comes.
      expect(rate(569)).toBe(full);
      c.ingest('h0', report(share(0), dt), 12, 570);
      expect(rate(570)).toBe(full);
      // Silent for good: its rounds go once a window and an interval old.
      expect(rate(600)).toBe(full);
      c.evaluate(1121);
      expect(c.inference(1121).matrix).toEqual([]);
    });
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
    c.ingest('h1', { hosted: flood, pairs: new Float64Array(0) }, 0, 0);
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
          c.ingest('h1', report(raw, 1), 0, 0);
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

// The decoder bounds each pair, but the window sums rounds and daemons, and an edge adds both directions.
test('rates past what an inference may state are held to MAX_RATE where they are made, so INFER? still reads back', () => {
  const c = new Collector('proxy', P);
  const flat = (s: number, d: number) => [macToNumber(vm(s)), macToNumber(vm(d)), 65535 * (2 ** 32 - 1), 2 ** 32 - 1];
  for (let round = 0; round < 10; round++) {
    for (const h of ['h1', 'h2']) c.ingest(h, { hosted: [], pairs: Float64Array.from([...flat(0, 1), ...flat(1, 0)]) }, round, round * 50);
  }
  c.evaluate(500);
  const inf = c.inference(500);
  expect(inf.matrix.map((m) => m.bytesPerS)).toEqual([MAX_RATE, MAX_RATE]);
  expect(inf.current.edges.map((e) => [e.bytesPerS, e.aToBBytesPerS])).toEqual([[MAX_RATE, MAX_RATE]]);
  expect(parseInference(formatInference(inf))).toEqual(inf);
});
