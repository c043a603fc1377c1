import { emptyState, linkKey, tableKey, type Host, type Link, type Rule, type State } from './state.js';

/**
 * Live state: what the daemons report, assembled into one State, plus
 * whatever in their reports does not add up. Daemons are configured one at a
 * time and can fail or restart between two commands, so their reports may
 * disagree; that is shown to the user as drift, never thrown.
 */

/** What one daemon reports about itself: its host, its ends of links, its table. */
export interface DaemonView {
  host: Host;
  links: readonly Link[];
  rules: readonly Rule[];
  /** The address it dials each peer it dials at (by peer), where it says. */
  dials?: ReadonlyMap<string, string>;
}

export type Drift =
  /** One end holds the link, the other end (which answered) does not. */
  | { kind: 'half-open'; link: Link; heldBy: string; missingAt: string }
  /** Both ends hold the link but disagree on its transport or dialer. */
  | { kind: 'link-disagrees'; link: Link; other: Link }
  /** A daemon the file does not name: shown, never changed. */
  | { kind: 'unmanaged-daemon'; machine: string; links: number; rules: number }
  /** A link with an end on a daemon the file does not name: shown, never changed. */
  | { kind: 'unmanaged-link'; link: Link; outside: string };

export interface Live {
  state: State;
  drift: Drift[];
  /** The address each link's dialer dials (by linkKey), where the daemons said; a state read from a file has none. */
  dialed?: Map<string, string>;
}

const sameLink = (x: Link, y: Link): boolean => x.proto === y.proto && x.dialer === y.dialer;

/**
 * Joins daemons' reports into one State. A link is in the state when every
 * end that answered holds it, identically; a link held by one end while the
 * other end answered without it, or held differently at its two ends, is
 * left out of the state (it does not carry traffic as it should) and
 * reported as drift, which the plan then repairs or removes. A link whose
 * other end did not answer is taken on its one end's word.
 */
export function assemble(views: readonly DaemonView[]): Live {
  const state = emptyState();
  const drift: Drift[] = [];
  for (const v of views) {
    state.hosts.set(v.host.machine, v.host);
    const table = new Map<string, Rule>();
    for (const r of v.rules) table.set(tableKey(r), r);
    state.tables.set(v.host.machine, table);
  }
  const ends = new Map<string, Map<string, Link>>();
  const dialed = new Map<string, string>();
  for (const v of views) {
    for (const [peer, address] of v.dials ?? []) dialed.set(linkKey(v.host.machine, peer), address);
    for (const l of v.links) {
      const key = linkKey(l.a, l.b);
      let held = ends.get(key);
      if (!held) ends.set(key, (held = new Map()));
      held.set(v.host.machine, l);
    }
  }
  for (const [key, held] of ends) {
    const [first, ...rest] = [...held.values()];
    const link = first!;
    const other = rest[0];
    if (other) {
      if (sameLink(link, other)) state.links.set(key, link);
      else drift.push({ kind: 'link-disagrees', link, other });
      continue;
    }
    const heldBy = [...held.keys()][0]!;
    const missingAt = link.a === heldBy ? link.b : link.a;
    if (state.hosts.has(missingAt)) drift.push({ kind: 'half-open', link, heldBy, missingAt });
    else state.links.set(key, link);
  }
  return { state, drift, dialed };
}

/** A state read from a file has nothing to disagree about. */
export function liveFromState(state: State): Live {
  return { state, drift: [] };
}
