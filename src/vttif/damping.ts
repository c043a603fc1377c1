import { EMPTY_TOPOLOGY, sameEdges, strictSuperset } from './prune.js';
import type { InferenceState, Topology } from './types.js';

/** How long a candidate must hold (ms). */
export interface Hold {
  /** One that only adds edges to the settled topology: a window. */
  growMs: number;
  /** One that drops edges: one update interval, or `roundMs` when `newestCarries(top)`. */
  dropMs: number;
  /** How long a round of reports takes to arrive. */
  roundMs: number;
  /** Whether the newest round carried every edge of `top`, or none: not a window still emptying of an old pattern. */
  newestCarries(top: Topology): boolean;
}

/**
 * Change detection with damping (000 §2.2, Fig. 6). The window shows a
 * topology now ("current"); a different one is reported ("settles") only
 * after it has held:
 *
 * - one round of reports, when it drops edges of the settled topology (or
 *   nothing has settled yet) and the newest round carried every one of its
 *   edges (or none: a compute phase). While a round's reports are arriving,
 *   the window mixes daemons that have reported it with daemons that have
 *   not, and a topology seen then can be that mix's accident; one that
 *   outlasts the round is not. How long a round takes to arrive is measured,
 *   as the spread of the daemons' latest reports (daemons tick on the same
 *   wall-clock beat, so a round arrives within milliseconds);
 * - one update interval, when it drops edges but keeps some the newest
 *   round did not carry while it carried others: a window still emptying of
 *   an old pattern, whose edges fall under the threshold a round or two
 *   apart (a partial union of the old and the new). The interval is also
 *   the most a round is waited for, so a silent daemon cannot hold one up;
 * - a whole window, when it only adds edges to the settled topology. That
 *   is what the middle of a switch from one pattern to another looks like
 *   (the window holds both for less than its length), so only a union that
 *   outlasts the window settles: topologies alternating faster than the
 *   window can follow, or traffic that really grew.
 *
 * An empty window (no traffic at all, as in a BSP compute phase longer than
 * the window) keeps the settled topology: silence is not a new application.
 */
export class Damper {
  settled: Topology = EMPTY_TOPOLOGY;
  changes = 0;
  /** Monotonic time (ms) when `settled` settled, or null before the first. */
  settledAt: number | null = null;
  private candidate: { top: Topology; since: number; due: number } | null = null;

  /** Feeds what the window shows at `now` (null: no traffic); true when this settled a new topology. */
  observe(current: Topology | null, now: number, hold: Hold): boolean {
    if (current === null || current.edges.length === 0 || sameEdges(current, this.settled)) {
      this.candidate = null;
      return false;
    }
    if (!this.candidate || !sameEdges(this.candidate.top, current)) this.candidate = { top: current, since: now, due: now };
    else this.candidate.top = current;
    const growOnly = this.settled.edges.length > 0 && strictSuperset(current, this.settled);
    this.candidate.due = this.candidate.since + (growOnly ? hold.growMs : hold.newestCarries(current) ? hold.roundMs : hold.dropMs);
    if (now < this.candidate.due) return false;
    this.settled = current;
    this.settledAt = now;
    this.changes++;
    this.candidate = null;
    return true;
  }

  /** When the candidate settles if the window keeps showing it (monotonic ms), or null with none. */
  get due(): number | null {
    return this.candidate?.due ?? null;
  }

  /** Keeps the settled edge set's intensities up to date while it holds. */
  refresh(current: Topology | null): void {
    if (current && sameEdges(current, this.settled)) this.settled = current;
  }

  state(current: Topology | null): InferenceState {
    if (current === null || current.edges.length === 0) return this.changes === 0 ? 'no-data' : 'idle';
    return sameEdges(current, this.settled) ? 'settled' : 'settling';
  }
}
