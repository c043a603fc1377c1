import fc from 'fast-check';
import { assemble, liveFromState, type DaemonView } from '../../src/model/live.js';
import { allRules, linkKey, tableKey, type Link, type Rule, type State } from '../../src/model/state.js';
import { SourceFile } from '../../src/diag/source.js';
import { compileSource, compileText } from '../../src/lang/compile.js';
import { backboneDeletes } from '../../src/plan/backbone.js';
import { diff, findProxy } from '../../src/plan/diff.js';
import { fingerprint } from '../../src/plan/fingerprint.js';
import { Phase, summarize, type Step } from '../../src/plan/plan.js';
import { applyStep, simulate } from '../../src/plan/simulate.js';
import { planToVnet } from '../../src/plan/vnet.js';
import { stateOf } from '../support/compile.js';
import { canonical, stateArb } from './gen.js';

const RUNS = 2000;

const STAR = `
BEGIN
  HOST vnet AT proxy 5000 eth0
  HOST vnet AT h1 5000 vm0
  HOST vnet AT h2 5000 vm0
  ADD
    LINK h1 proxy
    LINK h2 proxy
    FORWARD h1 00:50:56:00:00:01 NONE h1 proxy
    FORWARD h1 ANY 00:50:56:00:00:01 vm0
    FORWARD proxy ANY ff:ff:ff:ff:ff:ff proxy h1
    FORWARD proxy ANY ff:ff:ff:ff:ff:ff proxy h2
END`;

const withBlock = (extra: string, base = STAR): string => base.replace(/END$/, `${extra}\nEND`);
const planOf = (live: string, desired: string) => diff(liveFromState(stateOf(live)), stateOf(desired));
const brief = (s: Step): string => `${s.action} ${s.kind} ${s.daemons.join(',')}`;

describe('diff on examples', () => {
  test('the same state gives no steps', () => {
    const plan = planOf(STAR, STAR);
    expect(plan.steps).toEqual([]);
    expect(plan.unchanged).toEqual({ hosts: 3, links: 2, rules: 4 });
    expect(summarize(plan)).toEqual({ add: 0, replace: 0, delete: 0 });
  });

  test('a link written the other way round is the same link', () => {
    const flipped = STAR.replace('LINK h1 proxy', 'LINK TCP proxy h1 h1');
    expect(planOf(STAR, flipped).steps).toEqual([]);
  });

  test('a changed destination is one replace, not a delete and an add', () => {
    const desired = withBlock('  ADD\n    LINK h1 h2\n  DELETE\n    FORWARD h1 00:50:56:00:00:01 NONE h1 proxy\n  ADD\n    FORWARD h1 00:50:56:00:00:01 NONE h1 h2');
    const plan = planOf(STAR, desired);
    expect(plan.steps.map(brief)).toEqual(['create link h1,h2', 'replace rule h1']);
    const replace = plan.steps[1]!;
    expect(replace.before).toMatchObject({ dest: { kind: 'link', to: 'proxy' } });
    expect(replace.after).toMatchObject({ dest: { kind: 'link', to: 'h2' } });
    expect(summarize(plan)).toEqual({ add: 1, replace: 1, delete: 0 });
  });

  test('a link whose type or dialer changes is a replace', () => {
    expect(planOf(STAR, STAR.replace('LINK h1 proxy', 'LINK UDP h1 proxy')).steps.map(brief)).toEqual(['replace link h1,proxy']);
    expect(planOf(STAR, STAR.replace('LINK h1 proxy', 'LINK TCP h1 proxy proxy')).steps.map(brief)).toEqual(['replace link proxy,h1']);
  });

  test('a host whose port changes is a replace; a new host is a create', () => {
    const desired = STAR.replace('HOST vnet AT h2 5000 vm0', 'HOST vnet AT h2 6000 vm0\n  HOST vnet AT h3 5000 vm0');
    expect(planOf(STAR, desired).steps.map(brief)).toEqual(['replace host h2', 'create host h3']);
  });

  test('steps go links, rules, rule deletions, link deletions', () => {
    const live = withBlock('  ADD\n    LINK h1 h2\n    FORWARD h1 ANY 00:50:56:00:00:02 h1 h2');
    const desired = withBlock('  ADD\n    LINK UDP h1 h2\n    FORWARD h2 ANY 00:50:56:00:00:01 h2 h1\n  DELETE\n    LINK h2 proxy\n    FORWARD proxy ANY ff:ff:ff:ff:ff:ff proxy h2');
    const plan = planOf(live, desired);
    expect(plan.steps.map((s) => `${s.phase} ${brief(s)}`)).toEqual([
      `${Phase.Links} replace link h1,h2`,
      `${Phase.Rules} create rule h2`,
      `${Phase.RuleDeletes} delete rule h1`,
      `${Phase.RuleDeletes} delete rule proxy`,
      `${Phase.LinkDeletes} delete link h2,proxy`,
    ]);
  });

  test('daemons the file does not name are drift, never changed', () => {
    const live = STAR.replace('HOST vnet AT h2 5000 vm0', 'HOST vnet AT h2 5000 vm0\n  HOST vnet AT h9 5000 vm0')
      .replace('LINK h2 proxy', 'LINK h2 proxy\n    LINK h9 proxy\n    FORWARD h9 ANY ANY h9 proxy');
    const plan = planOf(live, STAR);
    expect(plan.steps).toEqual([]);
    expect(plan.drift).toEqual([
      { kind: 'unmanaged-link', link: expect.objectContaining({ a: 'h9', b: 'proxy' }), outside: 'h9' },
      { kind: 'unmanaged-daemon', machine: 'h9', links: 1, rules: 1 },
    ]);
  });
});

describe('the backbone', () => {
  test('the Proxy is the machine named proxy, else the first HOST, unless named', () => {
    expect(findProxy(stateOf(STAR))).toBe('proxy');
    expect(findProxy(stateOf(STAR.replace(/proxy/g, 'gateway')))).toBe('gateway');
    expect(findProxy(stateOf(STAR), 'h1')).toBe('h1');
  });

  test('deleting a Proxy link is found; other deletions are not', () => {
    const desired = STAR.replace('    LINK h2 proxy\n', '').replace('    FORWARD proxy ANY ff:ff:ff:ff:ff:ff proxy h2\n', '');
    const cut = backboneDeletes(planOf(STAR, desired));
    expect(cut.map((s) => linkKey(s.before!.a, s.before!.b))).toEqual(['h2 proxy']);
    const fast = withBlock('  ADD\n    LINK h1 h2');
    expect(backboneDeletes(planOf(fast, STAR))).toEqual([]);
  });
});

describe('live state assembled from daemon reports', () => {
  const star = stateOf(STAR);
  const viewOf = (m: string, state: State = star): DaemonView => ({
    host: state.hosts.get(m)!,
    links: [...state.links.values()].filter((l) => l.a === m || l.b === m),
    rules: [...state.tables.get(m)!.values()],
  });

  test('agreeing reports give back the state', () => {
    const live = assemble(['proxy', 'h1', 'h2'].map((m) => viewOf(m)));
    expect(canonical(live.state)).toEqual(canonical(star));
    expect(live.drift).toEqual([]);
  });

  test('a link one end lost is half-open drift, and the plan re-creates it', () => {
    const proxy = viewOf('proxy');
    const live = assemble([{ ...proxy, links: proxy.links.filter((l) => l.a !== 'h2') }, viewOf('h1'), viewOf('h2')]);
    expect(live.drift).toEqual([{ kind: 'half-open', link: expect.objectContaining({ a: 'h2' }), heldBy: 'h2', missingAt: 'proxy' }]);
    expect(live.state.links.has('h2 proxy')).toBe(false);
    expect(diff(live, star).steps.map(brief)).toEqual(['create link h2,proxy']);
  });

  test('a half-open link the file does not want is removed from the end that holds it', () => {
    const h1 = viewOf('h1');
    const extra: Link = { a: 'h1', b: 'h2', proto: 'udp', dialer: 'h1' };
    const live = assemble([viewOf('proxy'), { ...h1, links: [...h1.links, extra] }, viewOf('h2')]);
    const plan = diff(live, star);
    expect(plan.steps).toEqual([{ kind: 'link', action: 'delete', before: extra, daemons: ['h1'], phase: Phase.LinkDeletes, drift: true }]);
  });

  test('ends that disagree are drift, and the plan sets both right', () => {
    const h1 = viewOf('h1');
    const udp: Link = { ...h1.links[0]!, proto: 'udp' };
    const live = assemble([viewOf('proxy'), { ...h1, links: [udp] }, viewOf('h2')]);
    expect(live.drift.map((d) => d.kind)).toEqual(['link-disagrees']);
    expect(diff(live, star).steps.map(brief)).toEqual(['create link h1,proxy']);
  });

  test('a link whose other end did not answer is taken on its word', () => {
    const live = assemble([viewOf('proxy'), viewOf('h1')]);
    expect(live.state.links.size).toBe(2);
    expect(live.drift).toEqual([]);
  });
});

describe('plans as .vnet programs', () => {
  test('a saved plan evaluated on its live state gives the desired state and the same plan', () => {
    const live = withBlock('  ADD\n    LINK h1 h2\n    FORWARD h1 ANY 00:50:56:00:00:02 h1 h2');
    const desired = withBlock('  ADD\n    LINK UDP h1 h2\n    FORWARD h1 ANY 00:50:56:00:00:02 h1 proxy\n  DELETE\n    FORWARD proxy ANY ff:ff:ff:ff:ff:ff proxy h2');
    const from = liveFromState(stateOf(live));
    const plan = diff(from, stateOf(desired));
    const text = planToVnet(plan, stateOf(desired), fingerprint(from), ['test']);
    expect(text).toMatchSnapshot();
    // On its own, what it deletes cannot be checked, so a plan file validates.
    expect(compileText('plan.vnet', text).diagnostics).toEqual([]);
    const replayed = replayPlan(from.state, text);
    expect(canonical(replayed)).toEqual(canonical(stateOf(desired)));
    expect(diff(from, replayed).steps).toEqual(plan.steps);
  });

  test('a plan whose deletions are gone from live state does not evaluate on it', () => {
    const from = liveFromState(stateOf(STAR));
    const desired = stateOf(STAR.replace('    FORWARD h1 ANY 00:50:56:00:00:01 vm0\n', ''));
    const text = planToVnet(diff(from, desired), desired, fingerprint(from), []);
    const moved = stateOf(STAR.replace('    FORWARD h1 ANY 00:50:56:00:00:01 vm0\n', ''));
    const r = compileSource(new SourceFile('plan.vnet', text), { base: moved });
    expect(r.diagnostics.map((d) => d.code)).toEqual(['VN3012']);
  });
});

// ── properties over generated pairs ──────────────────────────────────────

/** Evaluates a saved plan on `live`: the desired state it stands for. */
function replayPlan(live: State, text: string): State {
  const r = compileSource(new SourceFile('plan.vnet', text), { base: live });
  const errors = r.diagnostics.filter((d) => d.severity === 'error');
  if (errors.length) throw new Error(`the plan does not evaluate on its live state:\n${errors.map((d) => d.message).join('\n')}\n${text}`);
  return r.state!;
}

describe('properties of diff over generated pairs of states', () => {
  const pair = fc.tuple(stateArb, stateArb);
  const scopeOf = (desired: State) => (m: string) => desired.hosts.has(m);

  test('applying the plan to live gives exactly desired (and leaves unmanaged daemons as they were)', () => {
    fc.assert(
      fc.property(pair, ([live, desired]) => {
        const after = simulate(live, diff(liveFromState(live), desired).steps);
        const scope = scopeOf(desired);
        expect(canonical(after, scope)).toEqual(canonical(desired));
        const outside = (m: string) => !scope(m);
        expect(canonical(after, outside)).toEqual(canonical(live, outside));
      }),
      { numRuns: RUNS },
    );
  });

  test('the generated pairs exercise every kind of step and drift', () => {
    const seen = new Set<string>();
    for (const [live, desired] of fc.sample(pair, { numRuns: 500, seed: 42 })) {
      const plan = diff(liveFromState(live), desired);
      for (const s of plan.steps) seen.add(`${s.action} ${s.kind}`);
      for (const d of plan.drift) seen.add(d.kind);
    }
    expect([...seen].sort()).toEqual(
      ['create host', 'create link', 'create rule', 'delete link', 'delete rule', 'replace host', 'replace link', 'replace rule', 'unmanaged-daemon', 'unmanaged-link'].sort(),
    );
  });

  test('diff(x, x) is empty', () => {
    fc.assert(
      fc.property(stateArb, (x) => {
        const plan = diff(liveFromState(x), x);
        expect(plan.steps).toEqual([]);
        expect(plan.drift).toEqual([]);
      }),
      { numRuns: RUNS },
    );
  });

  test('minimal: one step per element of the symmetric difference, a replace standing for the pair it joins', () => {
    fc.assert(
      fc.property(pair, ([live, desired]) => {
        const steps = diff(liveFromState(live), desired).steps;
        const scope = scopeOf(desired);
        // The symmetric difference, counted by identity, independently of diff.
        let hosts = 0;
        for (const [m, h] of desired.hosts) if (JSON.stringify(live.hosts.get(m)) !== JSON.stringify(h)) hosts++;
        let links = 0;
        for (const [k, l] of desired.links) {
          const was = live.links.get(k);
          if (was?.proto !== l.proto || was.dialer !== l.dialer) links++;
        }
        for (const [k, l] of live.links) if (!desired.links.has(k) && scope(l.a) && scope(l.b)) links++;
        const ruleSet = (s: State) => new Set([...allRules(s)].filter((r) => scope(r.machine)).map((r) => `${r.machine} ${tableKey(r)}`));
        const want = ruleSet(desired);
        const have = ruleSet(live);
        const onlyWant = [...want].filter((k) => !have.has(k));
        const onlyHave = [...have].filter((k) => !want.has(k));
        // Pairs a replace may join: same machine, same (source, destination address).
        const groupOf = (k: string) => k.split(' ').slice(0, 3).join(' ');
        const tally = new Map<string, [number, number]>();
        for (const k of onlyWant) (tally.get(groupOf(k)) ?? tally.set(groupOf(k), [0, 0]).get(groupOf(k))!)[0]++;
        for (const k of onlyHave) (tally.get(groupOf(k)) ?? tally.set(groupOf(k), [0, 0]).get(groupOf(k))!)[1]++;
        let joined = 0;
        for (const [a, b] of tally.values()) joined += Math.min(a, b);
        expect(steps.length).toBe(hosts + links + onlyWant.length + onlyHave.length - joined);
        expect(steps.filter((s) => s.kind === 'rule' && s.action === 'replace').length).toBe(joined);
      }),
      { numRuns: RUNS },
    );
  });

  test('the order never sends over a link that is not there, nor deletes one a rule still uses', () => {
    fc.assert(
      fc.property(pair, ([live, desired]) => {
        const state = simulate(live, []);
        const uses = (l: Link) => (r: Rule) =>
          r.dest.kind === 'link' && linkKey(r.machine, r.dest.to) === linkKey(l.a, l.b);
        for (const step of diff(liveFromState(live), desired).steps) {
          if (step.kind === 'rule' && step.after?.dest.kind === 'link') {
            expect(state.links.has(linkKey(step.after.machine, step.after.dest.to))).toBe(true);
          }
          applyStep(state, step);
          if (step.kind === 'link' && step.action === 'delete') {
            expect([...allRules(state)].filter(uses(step.before!))).toEqual([]);
          }
        }
      }),
      { numRuns: RUNS },
    );
  });

  test('a saved plan, evaluated on its live state, gives the same plan again', () => {
    fc.assert(
      fc.property(pair, ([live, desired]) => {
        const from = liveFromState(live);
        const plan = diff(from, desired);
        const replayed = replayPlan(live, planToVnet(plan, desired, fingerprint(from), []));
        expect(diff(from, replayed).steps).toEqual(plan.steps);
      }),
      { numRuns: RUNS },
    );
  });

  test('the fingerprint does not depend on the order daemons report things in', () => {
    fc.assert(
      fc.property(stateArb, fc.integer(), (x, seed) => {
        const views: DaemonView[] = [...x.hosts.values()].map((h) => ({
          host: h,
          links: [...x.links.values()].filter((l) => l.a === h.machine || l.b === h.machine),
          rules: [...x.tables.get(h.machine)!.values()],
        }));
        const shuffled = views.map((v) => ({ ...v, links: shuffle(v.links, seed), rules: shuffle(v.rules, seed) }));
        expect(fingerprint(assemble(shuffle(shuffled, seed + 1)))).toBe(fingerprint(assemble(views)));
      }),
      { numRuns: 500 },
    );
  });
});

function shuffle<T>(xs: readonly T[], seed: number): T[] {
  const out = [...xs];
  let s = seed | 0;
  for (let i = out.length - 1; i > 0; i--) {
    s = (Math.imul(s, 1103515245) + 12345) | 0;
    const j = Math.abs(s) % (i + 1);
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}
