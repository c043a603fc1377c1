import { numberToMac } from '../model/mac48.js';
import { PAIR_FIELDS, type Report } from '../wire/vttif-report.js';

/**
 * The collector's sliding window (000 §2.2, "smoothing interval"): each
 * daemon's last window/interval report rounds, with running sums per
 * directed pair so that reading the matrix costs the pairs, not the reports.
 *
 * The window is counted in rounds per daemon, not as a span of arrival
 * times: a daemon's new round and the round it pushes out change the sums
 * together. Cut by time, a daemon whose timer fires a little late would
 * hold one round fewer for those milliseconds, a lopsided moment the
 * damper would have to wait out. Time still cuts for a daemon that has
 * fallen silent: its rounds go once they are a window and an interval old.
 * Arrival times are the collector's own, so the daemons' clocks never matter.
 */

interface Round {
  /** Arrival of its first chunk (monotonic ms). */
  at: number;
  round: number;
  /** One per chunk. */
  chunks: Float64Array[];
}

/** Sums per directed pair over the window, with the pair's MACs written out once, when it first appears. */
export interface PairSums {
  src: string;
  dst: string;
  bytes: number;
  frames: number;
}

export class SlidingWindow {
  private readonly daemons = new Map<string, Round[]>();
  private readonly sums = new Map<string, PairSums>();

  constructor(
    public windowMs: number,
    public intervalMs: number,
  ) {}

  /** Rounds kept per daemon. */
  get rounds(): number {
    return Math.max(1, Math.round(this.windowMs / this.intervalMs));
  }

  /** A report (or one chunk of it) from `from`, arriving at `at`. */
  add(from: string, report: Report, round: number, at: number): void {
    let q = this.daemons.get(from);
    if (!q) this.daemons.set(from, (q = []));
    const last = q.at(-1);
    // Chunks of one report arrive together; the same round number an interval later is the counter come round again.
    if (last && last.round === round && at - last.at < this.intervalMs / 2) last.chunks.push(report.pairs);
    else q.push({ at, round, chunks: [report.pairs] });
    this.fold(report.pairs, 1);
    while (q.length > this.rounds) this.drop(q);
  }

  /** Drops the rounds of daemons that stopped reporting: those that arrived a window and an interval before `now`. */
  expire(now: number): void {
    const cutoff = now - this.windowMs - this.intervalMs;
    for (const [from, q] of this.daemons) {
      while (q.length > this.rounds || (q.length && q[0]!.at <= cutoff)) this.drop(q);
      if (q.length === 0) this.daemons.delete(from);
    }
  }

  /** The pairs of each daemon's newest round: what the window has that is not history. */
  *newest(): Iterable<Float64Array> {
    for (const q of this.daemons.values()) if (q.length) yield* q.at(-1)!.chunks;
  }

  get empty(): boolean {
    return this.sums.size === 0;
  }

  pairs(): IterableIterator<PairSums> {
    return this.sums.values();
  }

  clear(): void {
    this.daemons.clear();
    this.sums.clear();
  }

  private drop(q: Round[]): void {
    for (const pairs of q.shift()!.chunks) this.fold(pairs, -1);
  }

  private fold(pairs: Float64Array, sign: 1 | -1): void {
    for (let f = 0; f < pairs.length; f += PAIR_FIELDS) {
      const key = `${pairs[f]},${pairs[f + 1]}`;
      let s = this.sums.get(key);
      if (!s) {
        s = { src: numberToMac(pairs[f]!), dst: numberToMac(pairs[f + 1]!), bytes: 0, frames: 0 };
        this.sums.set(key, s);
      }
      s.bytes += sign * pairs[f + 2]!;
      s.frames += sign * pairs[f + 3]!;
      // Frame counts are whole numbers, so they reach 0 exactly; byte sums may keep a rounding crumb.
      if (s.frames <= 0) this.sums.delete(key);
    }
  }
}
