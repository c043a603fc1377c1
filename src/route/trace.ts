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

export interface Hop {
  machine: string;
  ingress: Ingress;
  /** The rules that won (all at the top priority); empty when none matched. */
  matched: Rule[];
  priority: number;
}

export type Ending =
  /** Delivered into a local interface of `machine`. */
  | { kind: 'delivered'; machine: string; iface: string }
  /** No rule matched, or every winner points back where the frame came from. */
  | { kind: 'dead-end'; machine: string; why: string }
  /** The frame would come back to a daemon it already crossed from the same ingress. */
  | { kind: 'loop'; machine: string }
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

/**
 * The winners of one lookup: every rule matching (src, dst) at the highest
 * priority among those that do not point back at the ingress (split
 * horizon comes before the top pick).
 */
export function lookup(rules: Iterable<Rule>, ingress: Ingress, src: string, dst: string): { matched: Rule[]; priority: number } {
  let best = 0;
  let matched: Rule[] = [];
  for (const r of rules) {
    if (!matches(r.src, src) || !matches(r.dst, dst) || sameDestination(r.dest, ingress)) continue;
    const p = priorityOf(r.src.q as SourceQualifier, r.dst.q);
    if (p > best) {
      best = p;
      matched = [r];
    } else if (p === best) matched.push(r);
  }
  return { matched, priority: best };
}

/** Follows a frame from `from`, entering through `ingress`, across the state's tables. */
export function trace(state: State, from: string, ingress: Ingress, src: string, dst: string, maxHops = 64): Trace {
  const hops: Hop[] = [];
  const endings: Ending[] = [];
  const seen = new Set<string>();
  const visit = (machine: string, ing: Ingress, depth: number): void => {
    const table = state.tables.get(machine);
    if (!table) return void endings.push({ kind: 'unknown', machine });
    const key = `${machine} ${ing.kind === 'link' ? `<${ing.from}` : `@${ing.iface}`}`;
    if (seen.has(key) || depth > maxHops) return void endings.push({ kind: 'loop', machine });
    seen.add(key);
    const { matched, priority } = lookup(table.values(), ing, src, dst);
    hops.push({ machine, ingress: ing, matched, priority });
    if (matched.length === 0) {
      return void endings.push({ kind: 'dead-end', machine, why: `no rule of ${machine} matches ${src} → ${dst}` });
    }
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
