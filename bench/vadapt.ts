/**
 * VADAPT's heuristics and searches (docs/ADAPT.md): on random instances of
 * 4 to 10 VMs, the greedy heuristics' and the improving search's scores as
 * a fraction of the exact optimum; then run times at 8, 64, 256 and 1,024
 * VMs, each next to a same-run baseline (one pass over the traffic matrix
 * aggregating it by host pair, which any adaptation must at least do).
 *
 *   npm run bench:vadapt [-- --instances 200] [-- --json]
 */
import { performance } from 'node:perf_hooks';
import { DEFAULT_EXACT_CAP, optimum } from '../src/vadapt/exact.js';
import type { Problem } from '../src/vadapt/problem.js';
import { Searcher } from '../src/vadapt/search.js';
import type { Limit } from '../src/vadapt/topology.js';
import { prng } from '../src/util/prng.js';

const args = process.argv.slice(2);
const flag = (name: string, dflt: number): number => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : dflt;
};
const INSTANCES = flag('instances', 200);
const JSON_OUT = args.includes('--json');

/**
 * A random instance: `hosts` hosts on `sites` sites (fast inside a site,
 * slower and uneven between sites, the Proxy on a modest uplink), `vms`
 * VMs placed at random, each talking to about `degree` others at random
 * rates. Capacity: one VM per host, as in the papers' experiments.
 */
function randomProblem(random: () => number, vms: number, hosts: number, sites: number, degree: number): Problem {
  const size = hosts + 1;
  const site = Array.from({ length: hosts }, (_, h) => h % sites);
  const between = Array.from({ length: sites * sites }, () => 50 + Math.floor(random() * 200));
  const bw = new Float64Array(size * size);
  const lat = new Float64Array(size * size);
  for (let i = 0; i < size; i++) {
    for (let j = 0; j < size; j++) {
      const e = i * size + j;
      if (i === j) bw[e] = 10000;
      else if (i === hosts || j === hosts) bw[e] = 400;
      else if (site[i] === site[j]) bw[e] = 1000;
      else bw[e] = between[Math.min(site[i]!, site[j]!) * sites + Math.max(site[i]!, site[j]!)]!;
      lat[e] = i === j ? 0 : site[i] === site[j] ? 0.1 : 10;
    }
  }
  const current = new Int32Array(vms);
  const order = Array.from({ length: hosts }, (_, h) => h).sort(() => random() - 0.5);
  for (let v = 0; v < vms; v++) current[v] = order[v % hosts]!;
  const src: number[] = [];
  const dst: number[] = [];
  const mbps: number[] = [];
  const undirected = new Map<string, { a: number; b: number; mbps: number }>();
  for (let v = 0; v < vms; v++) {
    for (let d = 0; d < degree / 2; d++) {
      const u = Math.floor(random() * vms);
      if (u === v) continue;
      for (const [s, t] of [[v, u], [u, v]] as const) {
        const r = 1 + random() * 40;
        src.push(s);
        dst.push(t);
        mbps.push(r);
        const key = `${Math.min(s, t)} ${Math.max(s, t)}`;
        const p = undirected.get(key);
        if (p) p.mbps += r;
        else undirected.set(key, { a: Math.min(s, t), b: Math.max(s, t), mbps: r });
      }
    }
  }
  return {
    machines: [...Array.from({ length: hosts }, (_, h) => `host${h}`), 'proxy'],
    proxy: hosts,
    size,
    vms: Array.from({ length: vms }, (_, v) => `vm${v}`),
    movable: new Uint8Array(vms).fill(1),
    current,
    capacity: new Int32Array(hosts).fill(Math.ceil(vms / hosts)),
    demands: { count: src.length, src: Int32Array.from(src), dst: Int32Array.from(dst), mbps: Float64Array.from(mbps) },
    pairs: [...undirected.values()].sort((x, y) => y.mbps - x.mbps || x.a - y.a || x.b - y.b),
    bw,
    lat,
    linkCost: new Float64Array(size * size).fill(1),
    ruleCost: 0,
    baseLinks: new Uint8Array(size * size),
    ignored: { entries: 0, mbps: 0, reasons: [] },
  };
}

const mean = (xs: number[]): number => xs.reduce((s, x) => s + x, 0) / Math.max(1, xs.length);
const time = <T>(f: () => T): [T, number] => {
  const t0 = performance.now();
  const r = f();
  return [r, performance.now() - t0];
};

function quality(limit: Limit, label: string) {
  const random = prng(42);
  const g: number[] = [];
  const im: number[] = [];
  let skipped = 0;
  for (let i = 0; i < INSTANCES; i++) {
    const vms = 4 + (i % 7);
    const p = randomProblem(random, vms, vms + 2, 3, 2 + Math.floor(random() * 3));
    if (p.pairs.length === 0) continue;
    const s = new Searcher(p, limit, 'placement');
    const greedy = s.greedy();
    const improved = s.improve(greedy, prng(i));
    const best = optimum(s, p.current, DEFAULT_EXACT_CAP);
    if (!best.ok) {
      skipped++;
      continue;
    }
    g.push(greedy.score / best.config.score);
    im.push(improved.score / best.config.score);
  }
  return { label, instances: g.length, skipped, greedy: { mean: mean(g), worst: Math.min(...g) }, improved: { mean: mean(im), worst: Math.min(...im) } };
}

function scaling(n: number) {
  const p = randomProblem(prng(n), n, n, 4, 4);
  const s = new Searcher(p, { kind: 'all' }, 'placement');
  const reps = n <= 64 ? 20 : 3;
  const run = <T>(f: () => T): [T, number] => {
    let best = Infinity;
    let out: T | undefined;
    for (let r = 0; r < reps; r++) {
      const [v, t] = time(f);
      best = Math.min(best, t);
      out = v;
    }
    return [out!, best];
  };
  const [, baseline] = run(() => s.rule.hostPairs(p.current).length);
  const [greedy, greedyMs] = run(() => s.greedy());
  const [improved, improvedMs] = run(() => s.improve(greedy, prng(1)));
  return { vms: n, demands: p.demands.count, baselineMs: baseline, greedyMs, improvedMs, iterations: s.defaultIterations(), gain: improved.score / greedy.score };
}

const results = {
  quality: [quality({ kind: 'all' }, 'placement, every fast path'), quality({ kind: 'count', k: 2 }, 'placement, k = 2')],
  scaling: [8, 64, 256, 1024].map(scaling),
};
if (JSON_OUT) console.log(JSON.stringify(results, null, 2));
else {
  const pct = (x: number): string => `${(x * 100).toFixed(2)}%`;
  console.log(`Score as a fraction of the exact optimum (${INSTANCES} random instances of 4 to 10 VMs, hosts on 3 sites; mean, worst):`);
  for (const q of results.quality) {
    console.log(`  ${q.label.padEnd(28)} greedy ${pct(q.greedy.mean)} (worst ${pct(q.greedy.worst)})   improved ${pct(q.improved.mean)} (worst ${pct(q.improved.worst)})   [${q.instances} solved, ${q.skipped} too large]`);
  }
  console.log('\nRun time (best of several), next to the baseline: one pass over the matrix aggregating it by host pair:');
  for (const r of results.scaling) {
    const ms = (x: number): string => (x < 10 ? x.toFixed(3) : x.toFixed(1)).padStart(8);
    console.log(
      `  ${String(r.vms).padStart(5)} VMs (${String(r.demands).padStart(5)} demands): baseline ${ms(r.baselineMs)} ms   greedy ${ms(r.greedyMs)} ms (${(r.greedyMs / r.baselineMs).toFixed(1)}x)   improved ${ms(r.improvedMs)} ms (${(r.improvedMs / r.baselineMs).toFixed(0)}x baseline, ${(r.improvedMs / r.greedyMs).toFixed(1)}x greedy; ${r.iterations} moves; score ×${r.gain.toFixed(3)} of greedy)`,
    );
  }
}
