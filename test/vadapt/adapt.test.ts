import { expand } from '../../src/gen/expand.js';
import { parseRequirements } from '../../src/gen/requirements.js';
import { linkKey } from '../../src/model/state.js';
import { trace } from '../../src/route/trace.js';
import { MAX_COST, MAX_LATENCY_MS, readNetwork } from '../../src/vadapt/network.js';
import { both, inference, linksOf, mac, oneEach, planOf, run, sample, spec, stateOf } from './support.js';

/**
 * The papers' scenarios through VADAPT: the fast paths it adds for a ring,
 * an all-to-all and a bus over eight VMs and an all-to-all over 28, each
 * checked against the paper's own file in samples/, and every file it
 * writes checked for validity and for a plan that only adds.
 */

const ring = (n: number): [number, number][] => Array.from({ length: n }, (_, k) => [k + 1, ((k + 1) % n) + 1]);
const allPairs = (n: number): [number, number][] => Array.from({ length: n }, (_, i) => Array.from({ length: n - i - 1 }, (_, d): [number, number] => [i + 1, i + 2 + d])).flat();
const line = (n: number): [number, number][] => Array.from({ length: n - 1 }, (_, k) => [k + 1, k + 2]);

/** Every emitted file is valid, its plan against the base only adds, and its delta says the same change. */
function checkEmitted(base: ReturnType<typeof sample>, out: ReturnType<typeof run>): ReturnType<typeof stateOf> {
  const desired = stateOf('adapted.vnet', out.text);
  const plan = planOf(base.state, desired);
  expect(plan.steps.length).toBeGreaterThan(0);
  expect(plan.steps.filter((s) => s.action !== 'create')).toEqual([]);
  // The delta alone validates (as a saved plan), and on the base gives the same state.
  stateOf('delta.vnet', out.delta);
  expect(planOf(stateOf('delta.vnet', out.delta, base.state), desired).steps).toEqual([]);
  return desired;
}

const star8 = sample('star8.vnet');

test.each([
  ['ring', ring(8), 'ring8.vnet'],
  ['all-to-all', allPairs(8), 'all2all8.vnet'],
])('%s over 8 VMs gives exactly the paper file', (_, pairs, paperFile) => {
  const out = run(star8, inference(both(pairs), oneEach(8)));
  const desired = checkEmitted(star8, out);
  expect(out.report.links).toHaveLength(pairs.length);
  // The same links and rules as the hand-written sample (which end dials may differ).
  expect(planOf(sample(paperFile).state, desired).steps.filter((s) => s.kind !== 'link' || s.action !== 'replace')).toEqual([]);
  expect(linksOf(desired)).toEqual(linksOf(sample(paperFile).state));
});

test('bus over 8 VMs: the seven links of the line, and each pair of neighbours goes direct', () => {
  const out = run(star8, inference(both(line(8)), oneEach(8)));
  const desired = checkEmitted(star8, out);
  const paper = sample('bus8.vnet').state;
  const fast = (s: typeof desired) => linksOf(s).filter((k) => !k.includes('proxy'));
  expect(fast(desired)).toEqual(fast(paper));
  for (const [a, b] of line(8)) {
    const t = trace(desired, `host${a}`, { kind: 'interface', iface: 'vmnet1' }, mac(a), mac(b));
    expect(t.hops.map((h) => h.machine)).toEqual([`host${a}`, `host${b}`]);
  }
  // Pairs that do not talk keep the star.
  expect(trace(desired, 'host1', { kind: 'interface', iface: 'vmnet1' }, mac(1), mac(3)).hops.map((h) => h.machine)).toEqual(['host1', 'proxy', 'host3']);
});

test('all-to-all over 28 VMs (thesis §9.4) on a generated star28 gives the 378 links of all2all28.vnet', () => {
  const req = ['proxy proxy iface eth0', ...Array.from({ length: 28 }, (_, k) => `host host${k + 1}\nvm v${k + 1} ${mac(k + 1)} on host${k + 1}`)].join('\n');
  const base = spec('star28.vnet', expand(parseRequirements('star28.vgen', req), 'star28.vgen'));
  const out = run(base, inference(both(allPairs(28)), oneEach(28)), { algorithm: 'greedy' });
  const desired = checkEmitted(base, out);
  expect(out.report.links).toHaveLength(378);
  expect(planOf(sample('all2all28.vnet').state, desired).steps.filter((s) => s.kind !== 'link' || s.action !== 'replace')).toEqual([]);
  expect(linksOf(desired)).toEqual(linksOf(sample('all2all28.vnet').state));
});

test('--k takes the busiest host pairs first; --budget spends the network file’s costs', () => {
  const traffic = both([[1, 2]], 9e6).concat(both([[3, 4]], 5e6), both([[5, 6]], 1e6), both([[7, 8]], 3e6));
  const top2 = run(star8, inference(traffic, oneEach(8)), { limit: { kind: 'count', k: 2 }, algorithm: 'greedy' });
  expect(top2.report.links.map((l) => `${l.a}-${l.b}`)).toEqual(['host1-host2', 'host3-host4']);
  expect(top2.report.links[0]!.intensity).toBe(1);
  expect(top2.report.links[1]!.intensity).toBeCloseTo(5 / 9);
  checkEmitted(star8, top2);
  // host1-host2 costs 10: a budget of 4 passes over it and takes the next ones that fit.
  const net = readNetwork('net.json', JSON.stringify({ default: { cost: 2 }, pairs: [{ between: ['host1', 'host2'], cost: 10 }] }));
  const budget = run(star8, inference(traffic, oneEach(8)), { limit: { kind: 'budget', budget: 4 }, algorithm: 'greedy' }, net);
  expect(budget.report.links.map((l) => `${l.a}-${l.b}`)).toEqual(['host3-host4', 'host7-host8']);
  expect(budget.text).toMatch(/^# LINK host3 host4: 80\.0 Mbit\/s, intensity 0\.56/m);
});

test('at the network file’s largest latency and costs, a nearer pair still wins its tie and a budget is kept exactly', () => {
  const traffic = inference(both([[1, 2]], 1e6), oneEach(8));
  // Equal bandwidth everywhere: the round trip alone sends the talking VMs to host5 and host6.
  const far = readNetwork('net.json', JSON.stringify({ default: { latencyMs: MAX_LATENCY_MS }, pairs: [{ between: ['host5', 'host6'], latencyMs: MAX_LATENCY_MS / 2 }] }));
  const placed = run(star8, traffic, { placement: true, algorithm: 'greedy' }, far).report.placement;
  expect([placed[mac(1)], placed[mac(2)]]).toEqual(['host5', 'host6']);
  // A fast path here costs its link and two rules, 3 × MAX_COST: two fit in 6 × MAX_COST, and one unit less leaves room for one.
  const dear = readNetwork('net.json', JSON.stringify({ default: { cost: MAX_COST }, ruleCost: MAX_COST }));
  const within = (budget: number): number =>
    run(star8, inference(both([[1, 2], [3, 4]], 1e6), oneEach(8)), { limit: { kind: 'budget', budget }, algorithm: 'improved' }, dear).report.links.length;
  expect(within(6 * MAX_COST)).toBe(2);
  expect(within(6 * MAX_COST - 1)).toBe(1);
});

test('an adapted spec adapted again adds only what is new, and nothing when nothing is', () => {
  const once = run(star8, inference(both(ring(8)), oneEach(8)));
  const ring8 = spec('adapted.vnet', once.text);
  const again = run(ring8, inference(both(ring(8)), oneEach(8)));
  expect(again.report.links).toEqual([]);
  expect(planOf(ring8.state, stateOf('again.vnet', again.text)).steps).toEqual([]);
});

/** The header comment as one line, as it reads before wrapping. */
const unwrapped = (text: string): string => text.replace(/\n# /g, ' ');

test('adapt acts on the topology VTTIF settled on: it stands while the window is idle or settling on something else', () => {
  const settled = inference(both(ring(8)), oneEach(8));
  const ringLinks = linksOf(checkEmitted(star8, run(star8, settled)));
  expect(ringLinks).toEqual(linksOf(sample('ring8.vnet').state));
  // A compute phase: nothing in the window, the ring still settled.
  const idle = run(star8, { ...settled, state: 'idle', matrix: [], current: { vms: [], edges: [] } });
  expect(linksOf(stateOf('idle.vnet', idle.text))).toEqual(ringLinks);
  expect(unwrapped(idle.text)).toMatch(/adapted to the application topology VTTIF settled on \(change 1, at 2025-01-01T00:00:00Z: 8 VM pairs; the window is idle now \(no traffic\), which keeps it\); from m\.json/);
  expect(idle.report.acted).toEqual({ change: 1, settledAt: '2025-01-01T00:00:00Z', pairs: 8 });
  // A new pattern in the window that has not held yet is not acted on.
  const other = inference(both([[1, 5]], 9e6), oneEach(8));
  const settling = run(star8, { ...settled, state: 'settling', matrix: other.matrix, current: other.topology });
  expect(linksOf(stateOf('settling.vnet', settling.text))).toEqual(ringLinks);
  // Nothing settled yet: nothing to adapt to, and the header says so.
  const none = run(star8, { ...settled, state: 'no-data', changes: 0, settledAt: null, topology: { vms: [], edges: [] }, current: { vms: [], edges: [] }, matrix: [] });
  expect(none.report.links).toEqual([]);
  expect(unwrapped(none.text)).toMatch(/adapted to no application topology: VTTIF has settled on none yet \(the window: no-data\), so there is nothing to adapt to; from m\.json/);
  expect(none.report.acted).toBeNull();
});

test('each direction of a VM pair is routed on its own', () => {
  // host1's uplink to the Proxy is slow one way only: 40 Mbit/s from host1 overloads it, the same towards host1 does not.
  const net = readNetwork('net.json', JSON.stringify({ pairs: [{ from: 'host1', to: 'proxy', mbps: 10 }] }));
  const out = run(star8, inference([[1, 2, 5e6]], oneEach(8)), { limit: { kind: 'count', k: 0 } }, net);
  const back = run(star8, inference([[2, 1, 5e6]], oneEach(8)), { limit: { kind: 'count', k: 0 } }, net);
  expect(out.report.before).toBeCloseTo(10 - 40);
  expect(back.report.before).toBeCloseTo(1000 - 40);
});

test('placement: MapVM moves talking VMs onto the fast site, the file moves their rules, and frames follow', () => {
  // Six hosts on two sites: 1-3 fast among themselves, 4-6 slow to everything.
  const hosts = Array.from({ length: 6 }, (_, k) => `host${k + 1}`);
  const pairs = [];
  for (const a of hosts) for (const b of hosts) if (a < b) pairs.push({ between: [a, b], mbps: ['host1', 'host2', 'host3'].includes(a) && ['host1', 'host2', 'host3'].includes(b) ? 1000 : 10 });
  const net = readNetwork('net.json', JSON.stringify({ default: { mbps: 100 }, pairs }));
  const req = ['proxy proxy', ...hosts.map((h) => `host ${h}`), `vm a ${mac(1)} on host4`, `vm b ${mac(2)} on host5`, `vm c ${mac(3)} on host6`].join('\n');
  const base = spec('base.vnet', expand(parseRequirements('r.vgen', req), 'r.vgen'));
  const inf = inference(both([[1, 2]], 50e6), { 1: 'host4', 2: 'host5', 3: 'host6' });
  const out = run(base, inf, { placement: true }, net);
  const where = out.report.placement;
  expect(['host1', 'host2', 'host3']).toContain(where[mac(1)]);
  expect(['host1', 'host2', 'host3']).toContain(where[mac(2)]);
  expect(where[mac(3)]).toBe('host6'); // an idle VM stays where it is
  expect(out.report.migrations.map((m) => m.vm).sort()).toEqual([mac(1), mac(2)]);
  expect(out.report.score).toBeGreaterThan(out.report.before);
  const desired = stateOf('adapted.vnet', out.text);
  // Links only added; rules of the moved VMs replaced or deleted, nothing else touched.
  const plan = planOf(base.state, desired);
  expect(plan.steps.filter((s) => s.kind === 'link' && s.action !== 'create')).toEqual([]);
  for (const s of plan.steps.filter((s) => s.kind === 'rule' && s.action !== 'create')) {
    expect(JSON.stringify(s.before)).toMatch(new RegExp(`${mac(1)}|${mac(2)}`));
  }
  // Every VM reaches every other at its new place, and a and b take their fast path.
  const vms = [1, 2, 3];
  for (const s of vms) {
    for (const d of vms) {
      if (s === d || where[mac(s)] === where[mac(d)]) continue;
      const t = trace(desired, where[mac(s)]!, { kind: 'interface', iface: 'vmnet1' }, mac(s), mac(d));
      expect(t.endings).toEqual([{ kind: 'delivered', machine: where[mac(d)], iface: 'vmnet1' }]);
    }
  }
  expect(desired.links.has(linkKey(where[mac(1)]!, where[mac(2)]!))).toBe(true);
  expect(planOf(stateOf('delta.vnet', out.delta, base.state), desired).steps).toEqual([]);
});
