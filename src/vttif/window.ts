import { numberToMac } from '../model/mac48.js';
import { MAX_REPORT_PAIRS, PAIR_FIELDS, type Report } from '../wire/vttif-report.js';
import { linkKey } from '../model/state.js';

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
  /** One per chunk with pairs (and the first, which may have none). */
  chunks: Float64Array[];
  pairs: number;
}

/**
 * What the window holds at most, all daemons and rounds together, so that
 * no peer (a buggy one, or one whose key was stolen) can grow the
 * collector without bound: 2^22 pair counts (128 MiB of them), and 2^20
 * distinct directed pairs (every pair of 1,024 VMs; each costs about
 * 190 bytes of sums and map entries, names shared). A chunk past either is refused whole.
 */
export const MAX_WINDOW_PAIRS = 1 << 22;
export const MAX_DISTINCT_PAIRS = 1 << 20;

/**
 * Sums per directed pair over the window. The MACs, and the key of the
 * undirected edge the pair belongs to, are strings made ahead of any read
 * and shared (each MAC held once per VM, each key once for both directions;
 * see SlidingWindow.named): the window is read on every round, and strings
 * made per read would be most of its cost.
 */
export interface PairSums {
  src: string;
  dst: string;
  /** The edge's ends in order (a < b), and its key (linkKey). */
  a: string;
  b: string;
  edge: string;
  bytes: number;
  frames: number;
}

export class SlidingWindow {
  private readonly daemons = new Map<string, Round[]>();
  /** Source → destination → sums, keyed by the 48-bit numbers the reports carry. */
  private readonly sums = new Map<number, Map<number, PairSums>>();
  /** Each VM's MAC as text, and how many pairs in `sums` name it. */
  private readonly macs = new Map<number, { mac: string; pairs: number }>();
  /** Pair counts in the rounds held, and entries in `sums`: what MAX_WINDOW_PAIRS and MAX_DISTINCT_PAIRS bound. */
  private held = 0;
  private distinct = 0;

  constructor(
    public windowMs: number,
    public intervalMs: number,
    /** The bounds (tests lower them, rather than fill 128 MiB). */
    private readonly limits = { pairs: MAX_WINDOW_PAIRS, distinct: MAX_DISTINCT_PAIRS },
  ) {}

  /** Rounds kept per daemon. */
  get rounds(): number {
    return Math.max(1, Math.round(this.windowMs / this.intervalMs));
  }

  /** A report (or one chunk of it) from `from`, arriving at `at`. Throws RangeError, having kept nothing of it, past the bounds. */
  add(from: string, report: Report, round: number, at: number): void {
    const n = report.pairs.length / PAIR_FIELDS;
    let q = this.daemons.get(from);
    const last = q?.at(-1);
    // Chunks of one report arrive together; the same number from a later tick (a restarted daemon, a counter come round) is a new round.
    const joins = last !== undefined && last.round === round && at - last.at < this.intervalMs / 2;
    if (joins && last.pairs + n > MAX_REPORT_PAIRS) throw new RangeError(`round ${round} carries more than ${MAX_REPORT_PAIRS} pairs, more than a daemon's sampler counts`);
    const { pairs: maxPairs, distinct: maxDistinct } = this.limits;
    if (this.held + n > maxPairs) throw new RangeError(`the window holds ${this.held} pair counts and takes at most ${maxPairs}; shorten the window or lower the rate (vnetc infer --window, --rate)`);
    if (this.distinct + n > maxDistinct && this.distinct + this.unseen(report.pairs) > maxDistinct) {
      throw new RangeError(`the window holds ${this.distinct} distinct VM pairs and takes at most ${maxDistinct}`);
    }
    if (!q) this.daemons.set(from, (q = []));
    if (!joins) q.push({ at, round, chunks: [report.pairs], pairs: n });
    else if (n > 0) {
      // An empty chunk adds nothing to a round it joins: kept, a peer could pile them up without bound.
      last.chunks.push(report.pairs);
      last.pairs += n;
    }
    this.held += n;
    this.fold(report.pairs, 1);
    while (q.length > this.rounds) this.drop(q);
  }

  /** How many of these pairs the window has no sums for yet (asked only near the bound). */
  private unseen(pairs: Float64Array): number {
    const fresh = new Set<string>();
    for (let f = 0; f < pairs.length; f += PAIR_FIELDS) if (!this.sums.get(pairs[f]!)?.has(pairs[f + 1]!)) fresh.add(`${pairs[f]} ${pairs[f + 1]}`);
    return fresh.size;
  }

  /** Drops the rounds of daemons that stopped reporting: those that arrived a window and an interval before `now`. True when any went. */
  expire(now: number): boolean {
    const cutoff = now - this.windowMs - this.intervalMs;
    let dropped = false;
    for (const [from, q] of this.daemons) {
      while (q.length > this.rounds || (q.length && q[0]!.at <= cutoff)) {
        this.drop(q);
        dropped = true;
      }
      if (q.length === 0) this.daemons.delete(from);
    }
    return dropped;
  }

  /**
   * The edges (their keys) that each daemon's newest round carries: what the
   * window has that is not history. Named from the sums, which hold every
   * pair of a round still in the window, so no key is written out again.
   */
  newestEdges(): Set<string> {
    const edges = new Set<string>();
    for (const q of this.daemons.values()) {
      if (!q.length) continue;
      for (const pairs of q.at(-1)!.chunks) {
        for (let f = 0; f < pairs.length; f += PAIR_FIELDS) edges.add(this.sums.get(pairs[f]!)!.get(pairs[f + 1]!)!.edge);
      }
    }
    return edges;
  }

  *pairs(): Iterable<PairSums> {
    for (const row of this.sums.values()) yield* row.values();
  }

  private drop(q: Round[]): void {
    const gone = q.shift()!;
    this.held -= gone.pairs;
    for (const pairs of gone.chunks) this.fold(pairs, -1);
  }

  private fold(pairs: Float64Array, sign: 1 | -1): void {
    for (let f = 0; f < pairs.length; f += PAIR_FIELDS) {
      const src = pairs[f]!;
      const dst = pairs[f + 1]!;
      let row = this.sums.get(src);
      if (!row) this.sums.set(src, (row = new Map()));
      let s = row.get(dst);
      if (!s) {
        s = this.named(src, dst);
        row.set(dst, s);
        this.distinct++;
      }
      s.bytes += sign * pairs[f + 2]!;
      s.frames += sign * pairs[f + 3]!;
      // Frame counts are whole numbers, so they reach 0 exactly; byte sums may keep a rounding crumb.
      if (s.frames <= 0) {
        row.delete(dst);
        this.distinct--;
        if (row.size === 0) this.sums.delete(src);
        this.unname(src);
        this.unname(dst);
      }
    }
  }

  /**
   * A new pair's sums, its names shared: each MAC is written out once per
   * VM and each edge key once for its two directions, rather than per pair:
   * at the distinct-pair bound that took a pair from about 300 bytes to 190.
   */
  private named(src: number, dst: number): PairSums {
    const [srcMac, dstMac] = [this.mac(src), this.mac(dst)];
    const [a, b] = srcMac < dstMac ? [srcMac, dstMac] : [dstMac, srcMac];
    const edge = this.sums.get(dst)?.get(src)?.edge ?? linkKey(a, b);
    return { src: srcMac, dst: dstMac, a, b, edge, bytes: 0, frames: 0 };
  }

  private mac(n: number): string {
    let m = this.macs.get(n);
    if (!m) this.macs.set(n, (m = { mac: numberToMac(n), pairs: 0 }));
    m.pairs++;
    return m.mac;
  }

  private unname(n: number): void {
    const m = this.macs.get(n)!;
    if (--m.pairs === 0) this.macs.delete(n);
  }
}
