import { printRule } from '../lang/print.js';
import { priorityOf, type SourceQualifier } from '../model/priority.js';
import { destinationKey, linkKey, type Address, type Destination, type Rule, type State } from '../model/state.js';

/**
 * Where a frame goes: the path from one daemon to wherever the tables send
 * it, hop by hop, with the rules that matched at each. This is the
 * forwarding semantics of PROTOCOL.md computed over whole tables (vnetd
 * does the same per frame with an index and a cache; a property test holds
 * the two to the same answers).
 */

/** Where a frame entered a daemon: from a local interface, or over the link from a peer. */
export type Ingress = { kind: 'interface'; iface: string } | { kind: 'link'; from: string };

/** Why vnetd drops a frame no rule applies to (PROTOCOL.md, "Drops"). */
export type DropReason = 'no-match' | 'ingress' | 'link-down';

/**
 * A daemon's port as the daemon reports it: a link `up`, `connecting` or
 * `down` (LINKS?); an interface `up`, or `down` while its device is missing
 * (DEVICES?, `device=missing`); `absent` when the daemon has no such link,
 * or no such interface open. vnetd forwards only to ports that are up.
 */
export type PortState = 'up' | 'connecting' | 'down' | 'absent';

/** The state of `machine`'s port `dest`. */
export type PortStates = (machine: string, dest: Destination) => PortState;

/** A rule that matches the frame but does not apply to it, and why: it points at the ingress, or its port is not up. */
export interface PassedOver {
  rule: Rule;
  priority: number;
  why: 'ingress' | Exclude<PortState, 'up'>;
}

/** Why a rule was passed over, for a person. */
export function passedOverText(x: PassedOver): string {
  const d = x.rule.dest;
  switch (x.why) {
    case 'ingress':
      return 'it sends the frame back where it came from';
    case 'connecting':
    case 'down':
      return d.kind === 'link' ? `the link to ${d.to} is ${x.why}` : `the device of interface ${d.iface} on ${x.rule.machine} is missing`;
    case 'absent':
      return d.kind === 'link' ? `${x.rule.machine} has no link to ${d.to}` : `${x.rule.machine} has no interface ${d.iface} open`;
  }
}

export interface Hop {
  machine: string;
  ingress: Ingress;
  /** The rules that won (all at the top priority); empty when none applied. */
  matched: Rule[];
  priority: number;
  /** Matching rules that did not apply and would otherwise have won or tied. */
  passedOver: PassedOver[];
  /** Set when no rule applied: the frame stops here. */
  drop: DropReason | undefined;
}

export type Ending =
  /** Delivered into a local interface of `machine`. */
  | { kind: 'delivered'; machine: string; iface: string }
  /** No rule applies: none matches, or every match points back where the frame came from or at a port that is not up. */
  | { kind: 'dead-end'; machine: string; drop: DropReason; why: string }
  /** The frame would come back to a daemon it already crossed from the same ingress, on the same path. */
  | { kind: 'loop'; machine: string }
  /**
   * A second copy reaches a daemon through a port an earlier copy came in
   * on, by another path (a fan-out that joins again); it goes on as the
   * first did. Not a failure: the receivers get the frame twice.
   */
  | { kind: 'duplicate'; machine: string; ingress: Ingress }
  /** The path is longer than the tracer follows; no loop was found on it up to there. */
  | { kind: 'too-long'; machine: string; hops: number }
  /** A rule sends it over a link the daemon does not have (only without live port states). */
  | { kind: 'no-link'; machine: string; to: string }
  /** The next daemon did not report its table. */
  | { kind: 'unknown'; machine: string };

export interface Trace {
  hops: Hop[];
  /** Each path the frame takes ends somewhere (a broadcast fans out: several endings). */
  endings: Ending[];
}

function matches(a: Address, mac: string): boolean {
  switch (a.q) {
    case 'exact':
      return a.mac === mac;
    case 'not':
      return a.mac !== mac;
    case 'any':
    case 'none':
      return true;
  }
}

const sameDestination = (d: Destination, i: Ingress): boolean =>
  d.kind === 'link' ? i.kind === 'link' && i.from === d.to : i.kind === 'interface' && i.iface === d.iface;

export interface Lookup {
  /** Every applicable rule at the highest priority among them. */
  matched: Rule[];
  /** The winners' priority; 0 when there are none. */
  priority: number;
  /** Matching rules that are not applicable, at or above the winners' priority: those that explain the outcome. */
  passedOver: PassedOver[];
  /** Set when nothing applies, as vnetd counts the drop. */
  drop: DropReason | undefined;
}

/**
 * The winners of one lookup: every rule matching (src, dst) at the highest
 * priority among those that are applicable, neither pointing back at the
 * ingress (split horizon) nor at a port that is not up: both come before
 * the top pick, so they never hide a lower rule. Without `portState` every
 * port counts as up. The rules skipped are kept: a person reading a dead
 * end, or a path that took a fallback, needs the rule that did not apply.
 */
export function lookup(rules: Iterable<Rule>, ingress: Ingress, src: string, dst: string, portState?: (dest: Destination) => PortState): Lookup {
  let best = 0;
  let matched: Rule[] = [];
  const skipped: PassedOver[] = [];
  for (const r of rules) {
    if (!matches(r.src, src) || !matches(r.dst, dst)) continue;
    const p = priorityOf(r.src.q as SourceQualifier, r.dst.q);
    if (sameDestination(r.dest, ingress)) {
      skipped.push({ rule: r, priority: p, why: 'ingress' });
      continue;
    }
    const state = portState?.(r.dest) ?? 'up';
    if (state !== 'up') {
      skipped.push({ rule: r, priority: p, why: state });
      continue;
    }
    if (p > best) {
      best = p;
      matched = [r];
    } else if (p === best) matched.push(r);
  }
  // vnetd's order of reasons: a port that is down outweighs the ingress.
  const drop = matched.length ? undefined : skipped.some((x) => x.why !== 'ingress') ? 'link-down' : skipped.length ? 'ingress' : 'no-match';
  return { matched, priority: best, passedOver: skipped.filter((x) => x.priority >= best), drop };
}

const portText = (d: Destination): string => (d.kind === 'link' ? `over the link to ${d.to}` : `into interface ${d.iface}`);

/** Why a frame stops at `machine`, naming the rules that would have carried it on. */
function deadEndWhy(machine: string, l: Lookup, src: string, dst: string): string {
  if (l.drop === 'no-match') return `no rule of ${machine} matches ${src} → ${dst}`;
  if (l.drop === 'link-down') {
    const down = l.passedOver.filter((x) => x.why !== 'ingress').map((x) => `${printRule(x.rule)} (${passedOverText(x)})`);
    const back = l.passedOver.some((x) => x.why === 'ingress') ? '; the others send it back where it came from' : '';
    return `the rules of ${machine} that match send the frame to ports that are not up, so vnetd drops it until one comes up: ${down.join('; ')}${back}`;
  }
  const rules = l.passedOver.map((x) => printRule(x.rule)).join('; ');
  const back = l.passedOver[0]!.rule.dest;
  return `every rule of ${machine} that matches sends the frame back where it came from (${portText(back)}), which vnetd never does (split horizon): ${rules}`;
}

export interface TraceOptions {
  /**
   * The ports' live state. Given, a rule whose port is not up does not
   * apply, as in vnetd; absent (a state from a file, a plan), every port
   * counts as up and a rule over a link the state does not hold ends the
   * path as `no-link`.
   */
  ports?: PortStates;
  /** The most hops one path is followed. */
  maxHops?: number;
}

/**
 * Follows a frame from `from`, entering through `ingress`, across the
 * state's tables. A frame's next hops depend only on the daemon and the
 * port it came in on, so the frame's course is a walk over (machine,
 * ingress) pairs: depth first, a pair already on the current path is a
 * loop, and a pair already followed on another path is a second copy
 * (a duplicate) that goes on as the first did, so it is not followed
 * again. That also bounds the work by the number of ports, however wide
 * the fan-out.
 */
export function trace(state: State, from: string, ingress: Ingress, src: string, dst: string, opts: TraceOptions = {}): Trace {
  const { ports: live, maxHops = 64 } = opts;
  const hops: Hop[] = [];
  const endings: Ending[] = [];
  const onPath = new Set<string>();
  const followed = new Set<string>();
  const visit = (machine: string, ing: Ingress, depth: number): void => {
    const key = `${machine} ${ing.kind === 'link' ? `<${ing.from}` : `@${ing.iface}`}`;
    if (onPath.has(key)) return void endings.push({ kind: 'loop', machine });
    if (followed.has(key)) return void endings.push({ kind: 'duplicate', machine, ingress: ing });
    if (depth >= maxHops) return void endings.push({ kind: 'too-long', machine, hops: maxHops });
    followed.add(key);
    const table = state.tables.get(machine);
    if (!table) return void endings.push({ kind: 'unknown', machine });
    const l = lookup(table.values(), ing, src, dst, live && ((dest) => live(machine, dest)));
    const { matched, priority, passedOver, drop } = l;
    hops.push({ machine, ingress: ing, matched, priority, passedOver, drop });
    if (l.drop) return void endings.push({ kind: 'dead-end', machine, drop: l.drop, why: deadEndWhy(machine, l, src, dst) });
    onPath.add(key);
    // Tied rules may name one destination twice; the frame leaves each port once (PROTOCOL.md), so each is followed once.
    const ports = new Set<string>();
    for (const r of matched) {
      const port = destinationKey(r.dest);
      if (ports.has(port)) continue;
      ports.add(port);
      if (r.dest.kind === 'interface') {
        endings.push({ kind: 'delivered', machine, iface: r.dest.iface });
        continue;
      }
      const to = r.dest.to;
      // With live ports the lookup already passed over links the daemon does not have, as vnetd does.
      if (!live && !state.links.has(linkKey(machine, to))) endings.push({ kind: 'no-link', machine, to });
      else visit(to, { kind: 'link', from: machine }, depth + 1);
    }
    onPath.delete(key);
  };
  visit(from, ingress, 0);
  return { hops, endings };
}

/** Whether every path ends in an interface; a duplicate does not count against it, as the copy it joins is already counted. */
export function allDelivered(t: Trace): boolean {
  return t.endings.every((e) => e.kind === 'delivered' || e.kind === 'duplicate');
}

/** The machine that hosts a VM: the one whose table delivers frames for its MAC into a local interface. */
export function homeOf(state: State, mac: string): { machine: string; iface: string } | undefined {
  for (const [machine, table] of state.tables) {
    for (const r of table.values()) {
      if (r.dst.q === 'exact' && r.dst.mac === mac && r.dest.kind === 'interface') return { machine, iface: r.dest.iface };
    }
  }
  return undefined;
}
