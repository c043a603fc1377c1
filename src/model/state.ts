/**
 * The one description of a VNET network: what a file wants, what daemons
 * report, and both sides of a plan. Everything is keyed by a canonical
 * identity so two states compare in O(n).
 */

export type Proto = 'tcp' | 'udp';

export interface Host {
  machine: string;
  /** SSH user on the machine. */
  user: string;
  /** Port the machine's daemon listens on, for overlay links and control. */
  port: number;
  /** The interface the daemon captures on and injects into. */
  iface: string;
}

/** An overlay link; a–b and b–a are the same link. */
export interface Link {
  a: string;
  b: string;
  proto: Proto;
  /** The end that opens the connection (the one behind NAT, if any). */
  dialer: string;
}

/**
 * A forwarding-table address slot (Fig. 2): an exact MAC, any MAC but one,
 * any MAC, or (destination only) NONE, which makes the rule the default.
 */
export type Address =
  | { q: 'exact'; mac: string }
  | { q: 'not'; mac: string }
  | { q: 'any' }
  | { q: 'none' };

/** Where a matching frame goes: over the rule machine's link to `to`, or into a local interface. */
export type Destination = { kind: 'link'; to: string } | { kind: 'interface'; iface: string };

export interface Rule {
  /** The daemon whose table holds the rule. */
  machine: string;
  src: Address;
  dst: Address;
  dest: Destination;
}

/** A daemon's forwarding table: its rules by `tableKey`. */
export type Table = Map<string, Rule>;

export interface State {
  hosts: Map<string, Host>;
  /** By `linkKey`. */
  links: Map<string, Link>;
  /**
   * Forwarding tables by machine, one per host (possibly empty), as each
   * daemon holds and reports its own.
   * Grouping by daemon is also what apply needs, and it keeps each hash
   * table small: on a million rules, twice as fast as one flat table.
   */
  tables: Map<string, Table>;
}

export function emptyState(): State {
  return { hosts: new Map(), links: new Map(), tables: new Map() };
}

/** A state that can be changed without changing this one; hosts, links and rules are shared. */
export function copyState(state: State): State {
  const out = emptyState();
  for (const [m, h] of state.hosts) out.hosts.set(m, h);
  for (const [k, l] of state.links) out.links.set(k, l);
  for (const [m, t] of state.tables) out.tables.set(m, new Map(t));
  return out;
}

export function ruleCount(state: State): number {
  let n = 0;
  for (const t of state.tables.values()) n += t.size;
  return n;
}

export function* allRules(state: State): IterableIterator<Rule> {
  for (const t of state.tables.values()) yield* t.values();
}

export function linkKey(a: string, b: string): string {
  return a < b ? `${a} ${b}` : `${b} ${a}`;
}

export function addressKey(a: Address): string {
  switch (a.q) {
    case 'exact':
      return a.mac;
    case 'not':
      return `!${a.mac}`;
    case 'any':
      return '*';
    case 'none':
      return '-';
  }
}

export function destinationKey(d: Destination): string {
  return d.kind === 'link' ? `>${d.to}` : `@${d.iface}`;
}

/**
 * A rule's identity within its machine's table is all of it: two rules that
 * differ only in destination coexist (a broadcast fanned out to every link
 * of the star is such a set).
 *
 * Built with join, not `+`: V8 keeps a `+`-built key as a tree of string
 * pieces for as long as the key lives, about 160 bytes and five objects per
 * rule in a Map; join makes one flat string.
 */
export function tableKey(r: Rule): string {
  return [addressKey(r.src), addressKey(r.dst), destinationKey(r.dest)].join(' ');
}
