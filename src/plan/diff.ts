import type { Drift, Live } from '../model/live.js';
import {
  addressKey,
  destinationKey,
  linkKey,
  tableKey,
  type Host,
  type Link,
  type Rule,
  type State,
  type Table,
} from '../model/state.js';
import { Phase, type LinkStep, type Plan, type RuleStep, type Step } from './plan.js';
import { byCodeUnit } from '../util/compare.js';

/**
 * diff(live, desired): the fewest steps that make the daemons a file names
 * hold exactly what the file says, touching nothing that is already right.
 *
 * Scope is the file's HOST lines: rules on other daemons and links with an
 * end on one are drift, shown and left alone, so that a file describing part
 * of a network never tears down the rest.
 *
 * Identity: a host by machine; a link by its two ends (its transport and
 * dialer are its value, so changing either is a replace); a rule by all it
 * says, within its machine's table. A rule whose destination changed is
 * paired with the rule it replaces when both match the same (source,
 * destination address): one replace, not a delete and an unrelated add.
 * Everything is compared by key, so the cost is linear in the two states.
 */
export function diff(live: Live, desired: State, options: { proxy?: string | undefined; overlayAddress?: (machine: string) => string | undefined } = {}): Plan {
  const steps: Step[] = [];
  const drift: Drift[] = [];
  const unchanged = { hosts: 0, links: 0, rules: 0 };
  const from = live.state;
  const inScope = (m: string): boolean => desired.hosts.has(m);

  for (const host of desired.hosts.values()) {
    const was = from.hosts.get(host.machine);
    if (!was) steps.push({ kind: 'host', action: 'create', after: host, daemons: [host.machine], phase: Phase.Hosts });
    else if (!sameHost(was, host)) {
      steps.push({ kind: 'host', action: 'replace', before: was, after: host, daemons: [host.machine], phase: Phase.Hosts });
    } else unchanged.hosts++;
  }

  for (const [key, link] of desired.links) {
    const was = from.links.get(key);
    if (!was) steps.push(linkStep('create', undefined, link));
    else if (!sameLink(was, link)) steps.push(linkStep('replace', was, link));
    else {
      const why = redial(live, key, link, options.overlayAddress);
      if (why) steps.push({ ...linkStep('replace', was, link), why });
      else unchanged.links++;
    }
  }
  for (const [key, link] of from.links) {
    if (desired.links.has(key)) continue;
    const outside = !inScope(link.a) ? link.a : !inScope(link.b) ? link.b : undefined;
    if (outside === undefined) steps.push(linkStep('delete', link, undefined));
    else if (inScope(link.a) || inScope(link.b)) drift.push({ kind: 'unmanaged-link', link, outside });
  }
  // Links the daemons disagree on are not in the live state: a desired one is
  // created above (each end makes its half match); an unwanted one is removed
  // from the ends that hold it.
  for (const d of live.drift) {
    drift.push(d);
    if (d.kind !== 'half-open' && d.kind !== 'link-disagrees') continue;
    const { link } = d;
    if (desired.links.has(linkKey(link.a, link.b))) continue;
    const holders = d.kind === 'half-open' ? [d.heldBy] : [link.a, link.b];
    const daemons = holders.filter(inScope);
    if (daemons.length) {
      steps.push({ kind: 'link', action: 'delete', before: link, daemons, phase: Phase.LinkDeletes, drift: true });
    }
  }

  const none: Table = new Map();
  for (const machine of desired.hosts.keys()) {
    const want = desired.tables.get(machine) ?? none;
    const have = from.tables.get(machine) ?? none;
    diffTable(machine, have, want, steps, unchanged);
  }
  // One pass over the links for all unmanaged daemons: a file naming a few hosts of a large network must stay linear.
  const linksOf = new Map<string, number>();
  for (const l of from.links.values()) {
    for (const end of [l.a, l.b]) if (!inScope(end)) linksOf.set(end, (linksOf.get(end) ?? 0) + 1);
  }
  for (const [machine, table] of from.tables) {
    if (!inScope(machine)) drift.push({ kind: 'unmanaged-daemon', machine, links: linksOf.get(machine) ?? 0, rules: table.size });
  }

  return { steps: order(steps), drift, proxy: findProxy(desired, options.proxy), unchanged };
}

/**
 * Why the dialer of `link` must be told again where its peer is, if it must:
 * it dials an address other than the one the peer's daemon is reached at now
 * (a host replaced with a new port, or its address changed), and would
 * otherwise keep dialling the old one while every end looks configured.
 */
function redial(live: Live, key: string, link: Link, overlayAddress: ((machine: string) => string | undefined) | undefined): string | undefined {
  const acceptor = link.dialer === link.a ? link.b : link.a;
  const have = live.dialed?.get(key);
  const want = overlayAddress?.(acceptor);
  if (have === undefined || want === undefined || have === want) return undefined;
  return `${link.dialer} dials ${acceptor} at ${have}; it is at ${want} now`;
}

function sameHost(x: Host, y: Host): boolean {
  return x.user === y.user && x.port === y.port && x.iface === y.iface;
}

function sameLink(x: Link, y: Link): boolean {
  return x.proto === y.proto && x.dialer === y.dialer;
}

function linkStep(action: LinkStep['action'], before: Link | undefined, after: Link | undefined): LinkStep {
  const l = (after ?? before)!;
  // The dialer first: it is the end that acts.
  const daemons = [l.dialer, l.dialer === l.a ? l.b : l.a];
  const phase = action === 'delete' ? Phase.LinkDeletes : Phase.Links;
  const step: LinkStep = { kind: 'link', action, daemons, phase };
  if (before) step.before = before;
  if (after) step.after = after;
  return step;
}

function diffTable(machine: string, have: Table, want: Table, steps: Step[], unchanged: { rules: number }): void {
  const added: Rule[] = [];
  const removed: Rule[] = [];
  for (const [key, rule] of want) if (!have.has(key)) added.push(rule);
  for (const [key, rule] of have) if (!want.has(key)) removed.push(rule);
  unchanged.rules += want.size - added.length;
  if (added.length === 0 && removed.length === 0) return;

  // Pair what went and what came by the frames they match; the rest are plain adds and deletes.
  const byMatch = new Map<string, { added: Rule[]; removed: Rule[] }>();
  const group = (r: Rule) => {
    const k = matchKey(r);
    let g = byMatch.get(k);
    if (!g) byMatch.set(k, (g = { added: [], removed: [] }));
    return g;
  };
  for (const r of added) group(r).added.push(r);
  for (const r of removed) group(r).removed.push(r);
  const daemons = [machine];
  for (const g of byMatch.values()) {
    g.added.sort(byDestination);
    g.removed.sort(byDestination);
    const pairs = Math.min(g.added.length, g.removed.length);
    for (let i = 0; i < g.added.length; i++) {
      const step: RuleStep = i < pairs
        ? { kind: 'rule', action: 'replace', before: g.removed[i]!, after: g.added[i]!, daemons, phase: Phase.Rules }
        : { kind: 'rule', action: 'create', after: g.added[i]!, daemons, phase: Phase.Rules };
      steps.push(step);
    }
    for (let i = pairs; i < g.removed.length; i++) {
      steps.push({ kind: 'rule', action: 'delete', before: g.removed[i]!, daemons, phase: Phase.RuleDeletes });
    }
  }
}

/** The frames a rule matches, without where it sends them. */
function matchKey(r: Rule): string {
  return `${addressKey(r.src)} ${addressKey(r.dst)}`;
}

function byDestination(x: Rule, y: Rule): number {
  const a = destinationKey(x.dest);
  const b = destinationKey(y.dest);
  return a < b ? -1 : a > b ? 1 : 0;
}

/** The identity a step's object has in its kind, for a stable order. */
export function stepKey(s: Step): string {
  switch (s.kind) {
    case 'host':
      return s.daemons[0]!;
    case 'link': {
      const l = (s.after ?? s.before)!;
      return linkKey(l.a, l.b);
    }
    case 'rule':
      return tableKey((s.after ?? s.before)!);
  }
}

/** By phase, then daemon, then identity: the same plan always reads the same. */
function order(steps: Step[]): Step[] {
  const keyed = steps.map((s) => ({ s, d: s.daemons[0]!, k: stepKey(s) }));
  keyed.sort((x, y) => x.s.phase - y.s.phase || byCodeUnit(x.d, y.d) || byCodeUnit(x.k, y.k));
  return keyed.map((x) => x.s);
}

/**
 * The Proxy, whose links to every host are the resilient backbone (Fig. 1):
 * the machine `--proxy` names, else the machine called `proxy` (in any
 * case), else the first HOST of the file, as in the papers' examples where
 * the user's own machine is declared first.
 */
export function findProxy(desired: State, named?: string): string | undefined {
  if (named !== undefined) return named;
  for (const m of desired.hosts.keys()) if (m.toLowerCase() === 'proxy') return m;
  return desired.hosts.keys().next().value;
}
