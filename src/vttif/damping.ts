import { EMPTY_TOPOLOGY, sameEdges, strictSuperset } from './prune.js';
import type { InferenceState, Topology, VttifParams } from './types.js';

/**
 * Change detection with damping (000 §2.2, Fig. 6). The window shows a
 * topology now ("current"); a different one is reported ("settles") only
 * after it has held:
 *
 * - one update interval, when it drops edges of the settled topology (or
 *   nothing has settled yet): by then every daemon has reported since it
 *   appeared, so it is no single report's accident;
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
  private candidate: { top: Topology; since: number } | null = null;

  /** Feeds what the window shows at `now` (null: no traffic); true when this settled a new topology. */
  observe(current: Topology | null, now: number, p: VttifParams): boolean {
    if (current === null || current.edges.length === 0 || sameEdges(current, this.settled)) {
      this.candidate = null;
      return false;
    }
    if (!this.candidate || !sameEdges(this.candidate.top, current)) this.candidate = { top: current, since: now };
    else this.candidate.top = current;
    const growOnly = this.settled.edges.length > 0 && strictSuperset(current, this.settled);
    const holdMs = 1000 * (growOnly ? p.windowS : 1 / p.updateHz);
    if (now - this.candidate.since < holdMs) return false;
    this.settled = current;
    this.settledAt = now;
    this.changes++;
    this.candidate = null;
    return true;
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
