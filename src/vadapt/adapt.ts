import type { SourceFile } from '../diag/source.js';
import { compileText, parseSource } from '../lang/compile.js';
import { deltaBase } from '../lang/delta.js';
import { liveFromState } from '../model/live.js';
import type { State } from '../model/state.js';
import { diff, findProxy } from '../plan/diff.js';
import { fingerprint } from '../plan/fingerprint.js';
import { planToVnet } from '../plan/vnet.js';
import { InputError } from '../util/input-error.js';
import { prng } from '../util/prng.js';
import type { Inference, InferenceState } from '../vttif/types.js';
import { additions, compose, formatGain, formatMbps, type LinkNote } from './emit.js';
import { optimum, DEFAULT_EXACT_CAP } from './exact.js';
import type { Network } from './network.js';
import { better } from './objective.js';
import { buildProblem, type Problem } from './problem.js';
import { Searcher, type Config } from './search.js';
import { linkSet, type Limit } from './topology.js';

/**
 * VADAPT end to end: an inference, the spec it was made on and the network
 * in; the adapted spec (complete, and as a saved plan against the base), and
 * a report of what was chosen and why, out. It never talks to daemons: the
 * CLI feeds it a file today, and `--live`/`--watch` will feed it the
 * collector's answers (docs/ADAPT.md, "Live input").
 */

export type Algorithm = 'best' | 'greedy' | 'improved' | 'optimal';

export interface AdaptOptions {
  limit: Limit;
  placement: boolean;
  algorithm: Algorithm;
  seed: number;
  /** Configurations the exhaustive search may try before giving up. */
  exactCap?: number;
  /** Moves for the improving search (default: sized to the instance). */
  iterations?: number;
}

export interface AdaptInput {
  inference: Inference;
  inferenceName: string;
  base: { file: SourceFile; state: State };
  network: Network;
  networkName: string;
}

export interface Scored {
  score: number;
  links: number;
  migrations: number;
}

export interface AdaptReport {
  /** The topology acted on (VTTIF's settled one, `null` before any settled), and what the window showed when read. */
  acted: { change: number; settledAt: string | null; pairs: number } | null;
  window: InferenceState;
  mode: 'topology' | 'placement';
  limit: Limit;
  unit: 'Mbit/s';
  before: number;
  greedy: Scored;
  improved: Scored | null;
  optimal: Scored | { skipped: string } | null;
  written: 'greedy' | 'improved' | 'optimal';
  score: number;
  /** Oversubscribed edges in the written configuration (the thesis's rc_e ≥ 0 broken). */
  oversubscribed: { from: string; to: string; load: number; mbps: number }[];
  links: { a: string; b: string; mbps: number; intensity: number; gain: number }[];
  migrations: { vm: string; from: string; to: string }[];
  placement: Record<string, string>;
  ignored: Problem['ignored'];
  rulesAdded: number;
  rulesDeleted: number;
}

export interface Adapted {
  /** The complete desired state: the base, and blocks that make the changes. */
  text: string;
  /** The same change as a saved plan against the base (`vnetc apply` refuses it if the daemons hold anything else). */
  delta: string;
  report: AdaptReport;
}

function describe(limit: Limit): string {
  return limit.kind === 'all' ? 'every pair that exchanges traffic' : limit.kind === 'count' ? `at most ${limit.k}` : `within a budget of ${limit.budget}`;
}

export function adapt(input: AdaptInput, options: AdaptOptions): Adapted {
  const { base } = input;
  const specName = base.file.name;
  if (deltaBase(base.file.text) !== undefined) throw new InputError(`${specName}: this is a saved plan, not a spec; give the .vnet file the daemons were set up from`);
  const proxy = findProxy(base.state);
  if (proxy === undefined) throw new InputError(`${specName}: no HOST lines; adapt needs the spec the inference was made on`);
  const p = buildProblem(input.inference, base.state, proxy, input.network, { inference: input.inferenceName, spec: specName, network: input.networkName });
  const mode = options.placement ? 'placement' : 'topology';
  if (mode === 'placement') {
    const room = p.capacity.reduce((s, c) => s + c, 0);
    const need = p.movable.reduce((s, m) => s + m, 0);
    if (room < need) throw new InputError(`${input.networkName}: the hosts have room for ${room} VMs, but ${need} must be placed; raise hosts' capacity`);
  }
  const s = new Searcher(p, options.limit, mode);
  const before = s.objective.score(p.current, p.baseLinks);
  const greedy = s.greedy();
  const wantImproved = options.algorithm === 'best' || options.algorithm === 'improved';
  const wantOptimal = options.algorithm === 'best' || options.algorithm === 'optimal';
  const improved = wantImproved ? s.improve(greedy, prng(options.seed), options.iterations) : undefined;
  const exact = wantOptimal ? optimum(s, p.current, options.exactCap ?? DEFAULT_EXACT_CAP) : undefined;
  if (options.algorithm === 'optimal' && exact && !exact.ok) {
    throw new InputError(`the exact optimum is out of reach here (${exact.why}); use --algorithm best or improved`);
  }
  const candidates: [AdaptReport['written'], Config][] = [['greedy', greedy]];
  if (improved) candidates.push(['improved', improved]);
  if (exact?.ok) candidates.push(['optimal', exact.config]);
  // The best score wins; on a tie the simpler method's answer, which the papers' heuristics explain.
  let [written, chosen] = candidates[0]!;
  for (const [n, c] of candidates.slice(1)) if (better(c.score, chosen.score)) [written, chosen] = [n, c];
  if (options.algorithm !== 'best') [written, chosen] = candidates[candidates.length - 1]!;

  const maxMbps = Math.max(0, ...s.rule.hostPairs(chosen.place).map((h) => h.mbps));
  const notes: LinkNote[] = chosen.added.map((pair) => ({
    pair,
    intensity: maxMbps > 0 ? pair.mbps / maxMbps : 0,
    gain: chosen.score - s.scoreOf(chosen.place, chosen.added.filter((x) => x !== pair)),
  }));
  const a = additions(p, base.state, proxy, chosen.place, notes);
  const migrations = [];
  for (let v = 0; v < p.vms.length; v++) {
    if (chosen.place[v] !== p.current[v]) migrations.push({ vm: p.vms[v]!, from: p.machines[p.current[v]!]!, to: p.machines[chosen.place[v]!]! });
  }
  const scored = (c: Config): Scored => ({ score: c.score, links: c.added.length, migrations: countMoves(p, c.place) });
  const inf = input.inference;
  const report: AdaptReport = {
    acted: inf.topology.edges.length ? { change: inf.changes, settledAt: inf.settledAt, pairs: inf.topology.edges.length } : null,
    window: inf.state,
    mode,
    limit: options.limit,
    unit: 'Mbit/s',
    before,
    greedy: scored(greedy),
    improved: improved ? scored(improved) : null,
    optimal: exact ? (exact.ok ? scored(exact.config) : { skipped: exact.why }) : null,
    written,
    score: chosen.score,
    oversubscribed: s.objective.explain(chosen.place, linkSet(p, chosen.added)).oversubscribed,
    links: notes.map((n) => ({ a: p.machines[n.pair.a]!, b: p.machines[n.pair.b]!, mbps: n.pair.mbps, intensity: n.intensity, gain: n.gain })),
    migrations,
    placement: Object.fromEntries(p.vms.map((m, v) => [m, p.machines[chosen.place[v]!]!])),
    ignored: p.ignored,
    rulesAdded: a.rules,
    rulesDeleted: a.deletes.length,
  };

  const header = headerLines(input, report);
  const program = parseSource(base.file).program;
  if (!program) throw new InputError(`${specName}: does not parse; run vnetc validate ${specName}`);
  const text = compose(base.file.text, program.end.start, header, a);
  const desired = desiredState(text, specName);
  const live = liveFromState(base.state);
  const plan = diff(live, desired, { proxy });
  const delta = planToVnet(plan, desired, fingerprint(live), header);
  return { text, delta, report };
}

function countMoves(p: Problem, place: Int32Array): number {
  let n = 0;
  for (let v = 0; v < place.length; v++) if (place[v] !== p.current[v]) n++;
  return n;
}

/** The adapted text compiled; an error here is vnetc's own bug, said so plainly. */
function desiredState(text: string, specName: string): State {
  const r = compileText(`${specName} (adapted)`, text);
  const errors = r.diagnostics.filter((d) => d.severity === 'error');
  if (errors.length || !r.state) throw new Error(`vnetc adapt produced a file that does not validate (a bug in vnetc): ${errors.map((d) => `${d.code} ${d.message}`).join('; ')}`);
  return r.state;
}

/** What adapt acted on, for the header and the summary: VTTIF's settled topology stands while the window is idle or settling. */
export function actedOn(r: AdaptReport): string {
  if (!r.acted) return `no application topology: VTTIF has settled on none yet (the window: ${r.window}), so there is nothing to adapt to`;
  const { change, settledAt, pairs } = r.acted;
  const now = r.window === 'idle' ? '; the window is idle now (no traffic), which keeps it' : r.window === 'settling' ? '; the window is settling on another, not yet held long enough to act on' : '';
  return `the application topology VTTIF settled on (change ${change}${settledAt ? `, at ${settledAt}` : ''}: ${pairs} VM pair${pairs === 1 ? '' : 's'}${now})`;
}

function headerLines(input: AdaptInput, r: AdaptReport): string[] {
  const inf = input.inference;
  const opt = r.optimal === null ? 'not computed' : 'skipped' in r.optimal ? `not computed (${r.optimal.skipped})` : formatMbps(r.optimal.score);
  const lines = [
    `vnetc adapt: ${input.base.file.name} adapted to ${actedOn(r)}; from ${input.inferenceName} (collector ${inf.collector}, read at ${inf.at}); network: ${input.networkName}.`,
    `Objective (004 §8: sum over VM-to-VM demands of the residual bottleneck bandwidth of their paths, Mbit/s): before ${formatMbps(r.before)}; greedy ${formatMbps(r.greedy.score)}, improved ${r.improved ? formatMbps(r.improved.score) : 'not computed'}, optimal ${opt}; written: ${r.written} (${formatMbps(r.score)}).`,
    `Fast paths (${r.mode === 'placement' ? 'with VM placement' : 'topology only'}, ${describe(r.limit)}): ${r.links.length} added; each with its host pair's traffic (Mbit/s), intensity (of the busiest pair) and what the score loses without it:`,
  ];
  for (const l of r.links) {
    lines.push(`LINK ${l.a} ${l.b}: ${formatMbps(l.mbps)} Mbit/s, intensity ${l.intensity.toFixed(2)}, score ${formatGain(l.gain)}.`);
  }
  for (const m of r.migrations) lines.push(`Migrate VM ${m.vm} from ${m.from} to ${m.to}.`);
  if (r.oversubscribed.length) lines.push(`Oversubscribed: ${r.oversubscribed.map((o) => `${o.from}->${o.to} carries ${formatMbps(o.load)} of ${formatMbps(o.mbps)} Mbit/s`).join('; ')}.`);
  if (r.ignored.entries) lines.push(`Left out: ${r.ignored.entries} directed VM pairs (${formatMbps(r.ignored.mbps)} Mbit/s): ${r.ignored.reasons.join('; ')}.`);
  return lines;
}
