import { numberToMac } from '../model/mac48.js';
import { PAIR_FIELDS, type Report } from '../wire/vttif-report.js';

/**
 * The collector's sliding window (000 §2.2, "smoothing interval"): every
 * report that arrived in the last `windowMs`, with running sums per directed
 * pair so that reading the matrix costs the pairs, not the reports. Reports
 * are stamped with their arrival time on the collector, so the daemons'
 * clocks never matter.
 */

interface Entry {
  at: number;
  pairs: Float64Array;
}

/** Sums per directed pair over the window, with the pair's MACs written out once, when it first appears. */
export interface PairSums {
  src: string;
  dst: string;
  bytes: number;
  frames: number;
}

export class SlidingWindow {
  private readonly entries: Entry[] = [];
  private head = 0;
  private readonly sums = new Map<string, PairSums>();

  constructor(public windowMs: number) {}

  add(report: Report, at: number): void {
    if (report.pairs.length === 0) return;
    this.entries.push({ at, pairs: report.pairs });
    this.fold(report.pairs, 1);
  }

  /** Drops what arrived at or before `now - windowMs`. */
  expire(now: number): void {
    const cutoff = now - this.windowMs;
    while (this.head < this.entries.length && this.entries[this.head]!.at <= cutoff) {
      this.fold(this.entries[this.head]!.pairs, -1);
      this.head++;
    }
    // Compact now and then rather than shift() per report.
    if (this.head > 64 && this.head * 2 > this.entries.length) {
      this.entries.splice(0, this.head);
      this.head = 0;
    }
  }

  get empty(): boolean {
    return this.sums.size === 0;
  }

  pairs(): IterableIterator<PairSums> {
    return this.sums.values();
  }

  clear(): void {
    this.entries.length = 0;
    this.head = 0;
    this.sums.clear();
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
