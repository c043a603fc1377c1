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
export type DropReason = 'no-match' | 'ingress';

/** A rule that matches the frame but does not apply to it, and why. */
export interface PassedOver {
  rule: Rule;
  priority: number;
  why: 'ingress';
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
  /** No rule applies: none matches, or every match points back where the frame came from. */
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
  /** A rule sends it over a link the daemon does not have. */
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
 * priority among those that do not point back at the ingress (split
 * horizon comes before the top pick). The rules skipped are kept: a person
 * reading a dead end needs the rule that would have carried the frame on.
 */
export function lookup(rules: Iterable<Rule>, ingress: Ingress, src: string, dst: string): Lookup {
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
    if (p > best) {
      best = p;
      matched = [r];
    } else if (p === best) matched.push(r);
  }
  const drop = matched.length ? undefined : skipped.length ? 'ingress' : 'no-match';
  return { matched, priority: best, passedOver: skipped.filter((x) => x.priority >= best), drop };
}

const portText = (d: Destination): string => (d.kind === 'link' ? `over the link to ${d.to}` : `into interface ${d.iface}`);

/** Why a frame stops at `machine`, naming the rules that would have carried it on. */
function deadEndWhy(machine: string, l: Lookup, src: string, dst: string): string {
  if (l.drop === 'no-match') return `no rule of ${machine} matches ${src} → ${dst}`;
  const rules = l.passedOver.map((x) => printRule(x.rule)).join('; ');
  const back = l.passedOver[0]!.rule.dest;
  return `every rule of ${machine} that matches sends the frame back where it came from (${portText(back)}), which vnetd never does (split horizon): ${rules}`;
}

/**
 * Follows a frame from `from`, entering through `ingress`, across the
 * state's tables. A frame's next hops depend only on the daemon and the
 * port it came in on, so the frame's course is a walk over (machine,
 * ingress) pairs: depth first, a pair already on the current path is a
 * loop, and a pair already followed on another path is a second copy
 * (a duplicate) that goes on as the first did, so it is not followed
 * again. That also bounds the work by the number of ports, however wide
 * the fan-out. `maxHops` bounds one path.
 */
export function trace(state: State, from: string, ingress: Ingress, src: string, dst: string, maxHops = 64): Trace {
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
    const l = lookup(table.values(), ing, src, dst);
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
      if (!state.links.has(linkKey(machine, to))) endings.push({ kind: 'no-link', machine, to });
      else visit(to, { kind: 'link', from: machine }, depth + 1);
    }
    onPath.delete(key);
  };
  visit(from, ingress, 0);
  return { hops, endings };
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
