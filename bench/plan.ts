/**
 * Benchmark of the diff engine: 1,000 daemons, 100,000 links and 1,000,000
 * rules, 1% of them changed, plus the 10k and 100k rule points in the same
 * run to show how time grows.
 *
 *   npm run bench:plan
 *   node dist/bench/plan.js --rounds 3 --points 10000,100000 --json
 *
 * Each point runs in a fresh child process (this script with `--child N`),
 * so peak RSS is that point's own. The states are built in memory, as the
 * front end or the daemons would hand them over; only diff is timed.
 *
 * Baseline, same child, same states: one pass over every link and rule of
 * both states doing a Map lookup of each key in the other state. No keyed
 * comparison can do less, so diff/baseline is the overhead of the engine
 * itself, and it is what machine noise cannot move much.
 *
 * Exit status: 0 whether or not the targets are met; 1 if a plan is wrong
 * (the step count must equal the changes made) or a child fails.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { liveFromState } from '../src/model/live.js';
import { emptyState, linkKey, tableKey, type Link, type Rule, type State } from '../src/model/state.js';
import { diff } from '../src/plan/diff.js';
import { fingerprint } from '../src/plan/fingerprint.js';
import { summarize } from '../src/plan/plan.js';
import { renderPlan } from '../src/plan/text.js';
import { prng } from '../src/util/prng.js';
import { median } from './stats.js';
import { machine } from './table.js';

const DAEMONS = 1000;
const CHANGED = 0.01;

interface Point {
  rules: number;
  links: number;
  daemons: number;
  steps: number;
  expected: number;
  buildMs: number;
  diffMs: number[];
  baselineMs: number[];
  fingerprintMs: number;
  renderMs: number;
  planHeapMiB: number;
  peakRssMiB: number;
}

// ── the states ──────────────────────────────────────────────────────────


const mac = (n: number): string =>
  [0x02, (n >>> 24) & 255, (n >>> 16) & 255, (n >>> 8) & 255, n & 255, 0x01].map((b) => b.toString(16).padStart(2, '0')).join(':');

/**
 * A Proxy star plus random fast paths, rules spread over daemons: each rule
 * sends an exact destination MAC over one of its machine's links. Then the
 * desired state: 1% of links changed (a third each added, retyped, deleted
 * with their rules) and 1% of rules changed (a third each added, given a new
 * destination, deleted). Returns how many steps the plan must have.
 */
function build(rules: number): { live: State; desired: State; expected: number } {
  const links = rules / 10;
  const rand = prng(rules); // deterministic: every run and every child builds the same states
  const live = emptyState();
  const machines = Array.from({ length: DAEMONS }, (_, i) => (i === 0 ? 'proxy' : `h${i}`));
  for (const m of machines) {
    live.hosts.set(m, { machine: m, user: 'vnet', port: 5000, iface: 'vm0' });
    live.tables.set(m, new Map());
  }
  const peers = new Map<string, string[]>(machines.map((m) => [m, []]));
  const addLink = (state: State, a: string, b: string, proto: Link['proto']): void => {
    state.links.set(linkKey(a, b), { a, b, proto, dialer: a });
  };
  for (let i = 1; i < DAEMONS; i++) {
    addLink(live, machines[i]!, 'proxy', 'tcp');
    peers.get(machines[i]!)!.push('proxy');
    peers.get('proxy')!.push(machines[i]!);
  }
  while (live.links.size < links) {
    const a = machines[1 + Math.floor(rand() * (DAEMONS - 1))]!;
    const b = machines[1 + Math.floor(rand() * (DAEMONS - 1))]!;
    if (a === b || live.links.has(linkKey(a, b))) continue;
    addLink(live, a, b, 'tcp');
    peers.get(a)!.push(b);
    peers.get(b)!.push(a);
  }
  let n = 0;
  while (n < rules) {
    const m = machines[n % DAEMONS]!;
    const ps = peers.get(m)!;
    const rule: Rule = { machine: m, src: { q: 'any' }, dst: { q: 'exact', mac: mac(n) }, dest: { kind: 'link', to: ps[n % ps.length]! } };
    live.tables.get(m)!.set(tableKey(rule), rule);
    n++;
  }

  // The desired state shares live's objects, as states compiled from two versions of a file share nothing but equal values;
  // sharing makes no difference to diff, which compares keys and values.
  const desired = emptyState();
  for (const [m, h] of live.hosts) desired.hosts.set(m, h);
  for (const [k, l] of live.links) desired.links.set(k, l);
  for (const [m, t] of live.tables) desired.tables.set(m, new Map(t));
  let expected = 0;

  const fastPaths = [...live.links.values()].filter((l) => l.a !== 'proxy' && l.b !== 'proxy');
  const linkChanges = Math.round(links * CHANGED);
  for (let i = 0; i < linkChanges; i++) {
    const l = fastPaths[Math.floor(rand() * fastPaths.length)]!;
    const key = linkKey(l.a, l.b);
    if (desired.links.get(key) !== l) continue; // already changed
    if (i % 3 === 0) {
      desired.links.set(key, { ...l, proto: 'udp' });
      expected++;
    } else if (i % 3 === 1) {
      desired.links.delete(key);
      expected++;
      for (const [end, to] of [[l.a, l.b], [l.b, l.a]] as const) {
        for (const [k, r] of desired.tables.get(end)!) {
          if (r.dest.kind === 'link' && r.dest.to === to) {
            desired.tables.get(end)!.delete(k);
            expected++;
          }
        }
      }
    } else {
      let a: string, b: string;
      do {
        a = machines[1 + Math.floor(rand() * (DAEMONS - 1))]!;
        b = machines[1 + Math.floor(rand() * (DAEMONS - 1))]!;
      } while (a === b || live.links.has(linkKey(a, b)) || desired.links.has(linkKey(a, b)));
      addLink(desired, a, b, 'udp');
      expected++;
    }
  }
  const ruleChanges = Math.round(rules * CHANGED);
  for (let i = 0; i < ruleChanges; i++) {
    const m = machines[Math.floor(rand() * DAEMONS)]!;
    const table = desired.tables.get(m)!;
    if (i % 3 === 2) {
      const r: Rule = { machine: m, src: { q: 'any' }, dst: { q: 'exact', mac: mac(rules + i) }, dest: { kind: 'link', to: 'proxy' } };
      if (m === 'proxy') continue;
      table.set(tableKey(r), r);
      expected++;
      continue;
    }
    // An unchanged rule of this machine, if it still has one.
    let pick: [string, Rule] | undefined;
    for (const e of table) if (live.tables.get(m)!.get(e[0]) === e[1]) { pick = e; break; }
    if (!pick) continue;
    table.delete(pick[0]);
    expected++;
    if (i % 3 === 0 && m !== 'proxy') {
      const moved: Rule = { ...pick[1], dest: { kind: 'link', to: 'proxy' } };
      if (table.has(tableKey(moved)) || tableKey(moved) === pick[0]) {
        table.set(pick[0], pick[1]);
        expected--;
        continue;
      }
      table.set(tableKey(moved), moved); // a replace: still one step
    }
  }
  return { live, desired, expected };
}

/** The least any keyed comparison does: look every key of each side up in the other. */
function baseline(live: State, desired: State): number {
  let hits = 0;
  for (const [k] of desired.links) if (live.links.has(k)) hits++;
  for (const [k] of live.links) if (desired.links.has(k)) hits++;
  for (const [m, want] of desired.tables) {
    const have = live.tables.get(m)!;
    for (const [k] of want) if (have.has(k)) hits++;
    for (const [k] of have) if (want.has(k)) hits++;
  }
  return hits;
}

function child(rules: number, reps: number): Point {
  const t0 = performance.now();
  const { live, desired, expected } = build(rules);
  const buildMs = performance.now() - t0;
  const from = liveFromState(live);
  const diffMs: number[] = [];
  const baselineMs: number[] = [];
  let steps = 0;
  let planHeapMiB = 0;
  for (let r = 0; r < reps; r++) {
    // Alternate, so drift in load hits both sides alike.
    let t = performance.now();
    baseline(live, desired);
    baselineMs.push(performance.now() - t);
    global.gc?.();
    const heap0 = process.memoryUsage().heapUsed;
    t = performance.now();
    const plan = diff(from, desired);
    diffMs.push(performance.now() - t);
    planHeapMiB = (process.memoryUsage().heapUsed - heap0) / 2 ** 20;
    steps = plan.steps.length;
  }
  const plan = diff(from, desired);
  let t = performance.now();
  fingerprint(from);
  const fingerprintMs = performance.now() - t;
  t = performance.now();
  renderPlan(plan);
  const renderMs = performance.now() - t;
  void summarize(plan);
  return {
    rules,
    links: live.links.size,
    daemons: live.hosts.size,
    steps,
    expected,
    buildMs,
    diffMs,
    baselineMs,
    fingerprintMs,
    renderMs,
    planHeapMiB,
    peakRssMiB: process.resourceUsage().maxRSS / 1024,
  };
}

// ── the parent ──────────────────────────────────────────────────────────

function runChild(rules: number, reps: number): Promise<Point> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ['--expose-gc', fileURLToPath(import.meta.url), '--child', String(rules), '--reps', String(reps)], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    p.stdout.on('data', (b: Buffer) => (out += b));
    p.on('error', reject);
    p.on('close', (code) => (code === 0 ? resolve(JSON.parse(out) as Point) : reject(new Error(`child for ${rules} rules exited ${code}`))));
  });
}

const fmt = (n: number, digits = 0): string => n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      child: { type: 'string' },
      reps: { type: 'string', default: '5' },
      points: { type: 'string', default: '10000,100000,1000000' },
      json: { type: 'boolean', default: false },
    },
  });
  const reps = Math.max(1, Number(values.reps));
  if (values.child) {
    process.stdout.write(JSON.stringify(child(Number(values.child), reps)));
    return 0;
  }
  const points: Point[] = [];
  for (const n of values.points.split(',').map(Number)) {
    process.stderr.write(`${fmt(n)} rules ... `);
    const p = await runChild(n, reps);
    process.stderr.write(`diff median ${fmt(median(p.diffMs), 1)} ms\n`);
    points.push(p);
  }
  const bad = points.filter((p) => p.steps !== p.expected);
  if (values.json) {
    process.stdout.write(JSON.stringify({ points, reps }, null, 2) + '\n');
    return bad.length ? 1 : 0;
  }
  console.log(`vnetc plan benchmark: ${machine()}`);
  console.log(`states    ${fmt(DAEMONS)} daemons, links = rules/10, ${CHANGED * 100}% of links and of rules changed; ${reps} reps per point, fresh process per point`);
  console.log('baseline  one Map lookup per link and rule of each state in the other (the floor of any keyed compare)\n');
  console.log('     rules     links   steps  diff median  baseline  diff/baseline  ns/rule  plan heap  peak RSS  fingerprint  render');
  for (const p of points) {
    const d = median(p.diffMs);
    const b = median(p.baselineMs);
    console.log(
      `${fmt(p.rules).padStart(10)}${fmt(p.links).padStart(10)}${fmt(p.steps).padStart(8)}${(fmt(d, 1) + ' ms').padStart(13)}` +
        `${(fmt(b, 1) + ' ms').padStart(10)}${(fmt(d / b, 2) + 'x').padStart(15)}${fmt((d * 1e6) / p.rules, 0).padStart(9)}` +
        `${(fmt(p.planHeapMiB, 1) + ' MiB').padStart(11)}${(fmt(p.peakRssMiB, 0) + ' MiB').padStart(10)}` +
        `${(fmt(p.fingerprintMs, 0) + ' ms').padStart(13)}${(fmt(p.renderMs, 0) + ' ms').padStart(8)}`,
    );
  }
  const first = points[0]!;
  const last = points[points.length - 1]!;
  const perRule = (p: Point) => median(p.diffMs) / p.rules;
  const growth = perRule(last) / perRule(first);
  console.log(`\ngrowth    time per rule at ${fmt(last.rules)} vs ${fmt(first.rules)} rules: ${fmt(growth, 2)}x (1.00x is linear)`);
  console.log('targets');
  const big = points.find((p) => p.rules === 1_000_000);
  if (big) console.log(`  ${median(big.diffMs) < 1000 ? 'PASS' : 'FAIL'}  diff of 1M rules, 1% changed, < 1 s: ${fmt(median(big.diffMs), 0)} ms`);
  console.log(`  ${growth < 2 ? 'PASS' : 'FAIL'}  linear growth (per-rule time within 2x across the points): ${fmt(growth, 2)}x`);
  for (const p of bad) console.log(`  WRONG  ${fmt(p.rules)} rules: ${p.steps} steps, expected ${p.expected}`);
  return bad.length ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (e: Error) => {
    console.error(`bench:plan: ${e.message}`);
    process.exit(1);
  },
);
