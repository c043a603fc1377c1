import fc from 'fast-check';
import { expand } from '../../src/gen/expand.js';
import { parseRequirements } from '../../src/gen/requirements.js';
import { anneal } from '../../src/vadapt/anneal.js';
import { optimum } from '../../src/vadapt/exact.js';
import { readNetwork } from '../../src/vadapt/network.js';
import { buildProblem } from '../../src/vadapt/problem.js';
import { Searcher, type Config } from '../../src/vadapt/search.js';
import type { Limit } from '../../src/vadapt/topology.js';
import { prng } from '../../src/util/prng.js';
import { both, inference, mac, oneEach, run, sample, spec } from './support.js';

/**
 * On random small instances (hosts on two sites, random traffic, random
 * limits): the improving search never scores below the greedy heuristics it
 * starts from, and the exhaustive optimum never scores below either.
 */

const instance = fc.record({
  hosts: fc.integer({ min: 2, max: 6 }),
  vms: fc.integer({ min: 2, max: 6 }),
  sites: fc.array(fc.integer({ min: 0, max: 1 }), { minLength: 6, maxLength: 6 }),
  traffic: fc.array(fc.tuple(fc.nat(5), fc.nat(5), fc.integer({ min: 1, max: 200 })), { minLength: 1, maxLength: 12 }),
  where: fc.array(fc.nat(5), { minLength: 6, maxLength: 6 }),
  limit: fc.oneof(fc.constant<Limit>({ kind: 'all' }), fc.integer({ min: 0, max: 3 }).map((k): Limit => ({ kind: 'count', k })), fc.integer({ min: 0, max: 4 }).map((b): Limit => ({ kind: 'budget', budget: b }))),
  seed: fc.integer(),
});

/** The VMs `c` moves that could go back to a host with room at no loss: a migration proposed for nothing. */
function needless(s: Searcher, c: Config): number[] {
  const p = s.p;
  const load = new Int32Array(p.proxy);
  for (const h of c.place) if (h < p.proxy) load[h]!++;
  return [...c.place.keys()].filter((v) => {
    const home = p.current[v]!;
    if (c.place[v] === home || load[home]! >= p.capacity[home]!) return false;
    const back = c.place.slice();
    back[v] = home;
    return s.withRule(back).score >= c.score - 1e-9 * Math.max(1, Math.abs(c.score));
  });
}

test('optimum ≥ improved ≥ greedy, in both search spaces; neither moves a VM it need not', () => {
  fc.assert(
    fc.property(instance, ({ hosts, vms, sites, traffic, where, limit, seed }) => {
      const names = Array.from({ length: hosts }, (_, k) => `h${k}`);
      // Capacity: enough hosts for every VM.
      const cap = Math.ceil(vms / hosts);
      const at = (v: number): string => names[where[v]! % hosts]!;
      const req = ['proxy proxy', ...names.map((h) => `host ${h}`), ...Array.from({ length: vms }, (_, v) => `vm v${v} ${mac(v + 1)} on ${at(v)}`)].join('\n');
      const base = spec('b.vnet', expand(parseRequirements('r', req), 'r'));
      const pairs = [];
      for (let i = 0; i < hosts; i++) for (let j = i + 1; j < hosts; j++) pairs.push({ between: [names[i], names[j]], mbps: sites[i] === sites[j] ? 100 : 5 });
      const net = readNetwork('n', JSON.stringify({ default: { mbps: 20 }, hosts: Object.fromEntries(names.map((h) => [h, { capacity: Math.max(cap, base.state.tables.size) }])), pairs }));
      const t = traffic.map(([s, d, r]) => [(s % vms) + 1, (d % vms) + 1, r * 1e5] as [number, number, number]).filter(([s, d]) => s !== d);
      const inf = inference(t, Object.fromEntries(Array.from({ length: vms }, (_, v) => [v + 1, at(v)])));
      const p = buildProblem(inf, base.state, 'proxy', net, { inference: 'm', spec: 'b', network: 'n' });
      for (const mode of ['topology', 'placement'] as const) {
        const s = new Searcher(p, limit, mode);
        const greedy = s.greedy();
        const improved = s.improve(greedy, prng(seed), 2000);
        const best = optimum(s, p.current);
        expect(improved.score).toBeGreaterThanOrEqual(greedy.score - 1e-6);
        // The reported score is the configuration's score.
        expect(s.scoreOf(improved.place, improved.added)).toBeCloseTo(improved.score, 6);
        expect(best.ok).toBe(true);
        if (best.ok) expect(best.config.score).toBeGreaterThanOrEqual(improved.score - 1e-6);
        if (mode === 'placement') for (const c of [greedy, improved, ...(best.ok ? [best.config] : [])]) expect(needless(s, c)).toEqual([]);
      }
    }),
    { numRuns: 60 },
  );
});

test('annealing takes an improving move even when no probe move made the score worse', () => {
  // Four links, all chosen; dropping the first gains 1998, dropping any other changes nothing.
  const on = [true, true, true, true];
  let saved: boolean[] = [];
  const score = anneal(
    {
      score: () => (on[0] ? -1998 : 0),
      move: (rng) => {
        const i = Math.floor(rng() * on.length);
        if (!on[i]) return undefined;
        on[i] = false;
        return () => void (on[i] = true);
      },
      save: () => void (saved = on.slice()),
    },
    200,
    prng(1),
  );
  expect(score).toBe(0);
  expect(saved[0]).toBe(false);
});

test('improved drops the fast path greedy adds over a 1 Mbit/s pair, and the summary signs its cost once', () => {
  const star4 = sample('star4.vnet');
  const ring4 = inference(both([[1, 2], [2, 3], [3, 4], [4, 1]]), oneEach(4));
  const net = readNetwork('net.json', JSON.stringify({ pairs: [{ between: ['host1', 'host2'], mbps: 1 }] }));
  const improved = run(star4, ring4, { algorithm: 'improved' }, net);
  expect(improved.report.improved!.score).toBeGreaterThan(improved.report.greedy.score + 1990);
  expect(improved.report.links.map((l) => `${l.a} ${l.b}`)).not.toContain('host1 host2');
  const greedy = run(star4, ring4, { algorithm: 'greedy' }, net);
  expect(greedy.text).toMatch(/LINK host1 host2: .*score -1998\./);
  expect(greedy.text).not.toContain('+-');
});
