import { numberToMac } from '../model/mac48.js';
import type { Report } from '../wire/vttif-report.js';
import { Damper } from './damping.js';
import { edgeKey, prune } from './prune.js';
import { remember } from './recent.js';
import { rateOf, type Inference, type MatrixEntry, type Topology, type VttifParams } from './types.js';
import { byCodeUnit } from '../util/compare.js';
import { SlidingWindow } from './window.js';

/**
 * The collector on the Proxy (000 §2.2): takes every daemon's reports, keeps
 * the window, and answers with the inferred topology. Pure: time comes in
 * as arguments (`now`, monotonic ms), so tests drive it with a fake clock
 * and the daemon with performance.now().
 */
export class Collector {
  private readonly window: SlidingWindow;
  private readonly damper = new Damper();
  /** VM → machine that last saw it send, and when (monotonic ms). */
  private readonly hosts = new Map<number, { machine: string; at: number }>();
  private readonly reporters = new Map<string, number>();
  private firstReport: number | null = null;
  private params: VttifParams;
  private current: Topology | null = null;
  /** The window changed since it was last pruned. */
  private dirty = false;
  reportsIn = 0;

  constructor(
    readonly machine: string,
    params: VttifParams,
    /** Wall-clock ms for the timestamps people read. */
    private readonly wallClock: () => number = Date.now,
  ) {
    this.params = params;
    this.window = new SlidingWindow(params.windowS * 1000, 1000 / params.updateHz);
  }

  setParams(p: VttifParams): void {
    this.params = p;
    this.window.windowMs = p.windowS * 1000;
    this.window.intervalMs = 1000 / p.updateHz;
    this.dirty = true;
  }

  /** Throws RangeError, having kept nothing of the report, when the window refuses it (SlidingWindow.add). */
  ingest(from: string, report: Report, round: number, now: number): void {
    this.window.add(from, report, round, now);
    this.reportsIn++;
    this.reporters.set(from, now);
    this.firstReport ??= now;
    for (const mac of report.hosted) remember(this.hosts, mac, { machine: from, at: now });
    this.dirty = true;
  }

  /**
   * Re-reads the window at `now` and feeds the damper; true when a new
   * topology settled. The window is pruned again only when it changed: the
   * damper is fed on every call, since holding is a matter of time.
   */
  evaluate(now: number): boolean {
    if (this.window.expire(now)) this.dirty = true;
    if (this.dirty) {
      this.dirty = false;
      const top = prune(this.window.pairs(), this.params.threshold, this.params.windowS);
      this.current = top.edges.length ? top : null;
    }
    const interval = 1000 / this.params.updateHz;
    const changed = this.damper.observe(this.current, now, {
      growMs: this.params.windowS * 1000,
      dropMs: interval,
      roundMs: this.roundMs(now),
      newestCarries: (top) => this.carriedByNewestRound(top),
    });
    this.damper.refresh(this.current);
    return changed;
  }

  /**
   * How long a round of reports takes to arrive: the spread of the latest
   * reports of the daemons heard from in the last two intervals, plus a
   * tenth of an interval for timers and the event loop; at most one
   * interval. One interval, too, in the collector's first two: until then
   * it cannot know who reports.
   */
  private roundMs(now: number): number {
    const interval = 1000 / this.params.updateHz;
    const live = now - 2 * interval;
    if (this.firstReport === null || this.firstReport > live) return interval;
    let first = Infinity;
    let last = -Infinity;
    for (const at of this.reporters.values()) {
      if (at < live) continue;
      first = Math.min(first, at);
      last = Math.max(last, at);
    }
    return Math.min(interval, last - first + interval / 10);
  }

  /** True when the newest round of reports carried traffic on every edge of `top`, or on none. */
  private carriedByNewestRound(top: Topology): boolean {
    const carried = this.window.newestEdges();
    let some = false;
    let all = true;
    for (const e of top.edges) {
      const has = carried.has(edgeKey(e));
      some ||= has;
      all &&= has;
    }
    return all || !some;
  }

  /** When evaluating again could settle the topology the window shows, if nothing else arrives first (monotonic ms), or null. */
  get due(): number | null {
    return this.damper.due;
  }

  /** The window as rates, sorted by (src, dst): built when read, not on every round. */
  private matrix(): MatrixEntry[] {
    const seconds = this.params.windowS;
    const m: MatrixEntry[] = [];
    for (const p of this.window.pairs()) m.push({ src: p.src, dst: p.dst, bytesPerS: rateOf(Math.max(0, p.bytes), seconds), framesPerS: rateOf(p.frames, seconds) });
    return m.sort((x, y) => byCodeUnit(x.src, y.src) || byCodeUnit(x.dst, y.dst));
  }

  inference(now: number): Inference {
    const wallNow = this.wallClock();
    const wall = (mono: number): string => new Date(wallNow - (now - mono)).toISOString();
    const hosts: Record<string, string> = {};
    for (const [mac, h] of [...this.hosts].sort((x, y) => x[0] - y[0])) hosts[numberToMac(mac)] = h.machine;
    const reporters: Record<string, number> = {};
    for (const [m, at] of [...this.reporters].sort((x, y) => (x[0] < y[0] ? -1 : 1))) reporters[m] = Math.round(now - at) / 1000;
    return {
      collector: this.machine,
      at: new Date(wallNow).toISOString(),
      params: { ...this.params },
      state: this.damper.state(this.current),
      topology: this.damper.settled,
      changes: this.damper.changes,
      settledAt: this.damper.settledAt === null ? null : wall(this.damper.settledAt),
      current: this.current ?? { vms: [], edges: [] },
      matrix: this.matrix(),
      hosts,
      reporters,
    };
  }
}
