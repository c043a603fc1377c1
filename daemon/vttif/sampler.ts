import { readMac48 } from '../../src/model/mac48.js';
import { PAIR_FIELDS, type Report } from '../../src/wire/vttif-report.js';

/**
 * The local traffic matrix (000 §2.2): bytes and frames per directed VM
 * pair of frames this daemon took in from a local interface, since the last
 * report. Every frame between VMs enters the overlay at exactly one daemon's
 * local interface, so counting there sees each once; counting deliveries
 * too (the paper's "receives from or delivers to") would see most twice and
 * double the cost on the data path, for nothing the matrix needs. A frame
 * costs one probe in an open-addressed table of typed arrays and allocates
 * nothing; taking a report empties it.
 *
 * Only unicast destinations count: a broadcast or multicast frame says
 * nothing about which VMs talk to which (ARP to everyone is not an edge).
 */

const INITIAL_SLOTS = 256;
/** Past this many pairs in one report interval, new pairs are counted as overflow instead of growing the table. */
export const MAX_PAIRS = 1 << 16;
const EMPTY = -1;

export class Sampler {
  private slots = INITIAL_SLOTS;
  /** src, dst per slot; EMPTY marks a free slot. */
  private keys = new Float64Array(2 * INITIAL_SLOTS).fill(EMPTY);
  /** bytes, frames per slot. */
  private counts = new Float64Array(2 * INITIAL_SLOTS);
  private used = 0;
  /** Sources seen on a local interface since the last report. */
  private readonly hosted = new Set<number>();
  /** Frames not counted because the table was full, over the daemon's life. */
  overflow = 0;
  /** Frames until the next one counted; each counted frame stands for `every` on average. */
  private skip = 1;
  private rng = 0x9e3779b9;

  /** `every` > 1: count one frame in `every` on average, at random (so no traffic pattern can hide in the gaps), and scale. */
  constructor(private readonly every = 1) {
    if (!Number.isInteger(every) || every < 1) throw new RangeError(`sample-every must be a whole number of at least 1, not ${every}`);
  }

  /** A frame that came in from a local interface. */
  sent(frame: Uint8Array): void {
    if (--this.skip > 0) return;
    this.skip = this.every === 1 ? 1 : this.nextGap();
    if (frame.length < 14 || frame[6]! & 1) return; // a group source is not a VM
    const src = readMac48(frame, 6);
    // The source joins `hosted` when its pair is first counted in an interval, not per frame: a Set insert per frame would double the cost.
    if (frame[0]! & 1) {
      // Broadcasters are learnt too, but no more of them per interval than pairs: sources can be made up.
      if (this.hosted.size < MAX_PAIRS) this.hosted.add(src);
    }
    else if (this.count(src, readMac48(frame, 0), frame.length)) this.hosted.add(src);
  }

  /** What was counted since the last call, and a fresh start. */
  take(): Report {
    const pairs = new Float64Array(this.used * PAIR_FIELDS);
    let p = 0;
    for (let i = 0; i < this.slots; i++) {
      if (this.keys[2 * i] === EMPTY) continue;
      pairs[p] = this.keys[2 * i]!;
      pairs[p + 1] = this.keys[2 * i + 1]!;
      pairs[p + 2] = this.counts[2 * i]!;
      pairs[p + 3] = this.counts[2 * i + 1]!;
      p += PAIR_FIELDS;
    }
    const report: Report = { hosted: [...this.hosted], pairs };
    this.hosted.clear();
    if (this.used) {
      this.keys.fill(EMPTY);
      this.counts.fill(0);
      this.used = 0;
    }
    return report;
  }

  /** True when this is the pair's first frame since the last report. */
  private count(src: number, dst: number, bytes: number): boolean {
    let i = this.find(src, dst);
    const fresh = i < 0;
    if (fresh) {
      if (this.used >= MAX_PAIRS) {
        this.overflow++;
        return false;
      }
      if ((this.used + 1) * 2 > this.slots) this.grow();
      i = this.find(src, dst);
      i = -i - 1;
      this.keys[2 * i] = src;
      this.keys[2 * i + 1] = dst;
      this.used++;
    }
    this.counts[2 * i]! += bytes * this.every;
    this.counts[2 * i + 1]! += this.every;
    return fresh;
  }

  /** Uniform on 1 … 2·every − 1 (mean `every`), from xorshift32: cheap, and no period a frame stream could fall into step with. */
  private nextGap(): number {
    let x = this.rng;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.rng = x >>> 0;
    return 1 + (this.rng % (2 * this.every - 1));
  }

  /** The slot holding the pair, or -(free slot) - 1 where it would go. */
  private find(src: number, dst: number): number {
    const mask = this.slots - 1;
    // Mix both addresses' low 32 bits; the high 16 are nearly always the same OUI.
    let h = Math.imul((src >>> 0) ^ Math.imul(dst >>> 0, 0x9e3779b1), 0x85ebca6b);
    h ^= h >>> 15;
    for (let i = h & mask; ; i = (i + 1) & mask) {
      const k = this.keys[2 * i]!;
      if (k === EMPTY) return -i - 1;
      if (k === src && this.keys[2 * i + 1] === dst) return i;
    }
  }

  private grow(): void {
    const oldKeys = this.keys;
    const oldCounts = this.counts;
    const oldSlots = this.slots;
    this.slots *= 2;
    this.keys = new Float64Array(2 * this.slots).fill(EMPTY);
    this.counts = new Float64Array(2 * this.slots);
    for (let i = 0; i < oldSlots; i++) {
      if (oldKeys[2 * i] === EMPTY) continue;
      const j = -this.find(oldKeys[2 * i]!, oldKeys[2 * i + 1]!) - 1;
      this.keys[2 * j] = oldKeys[2 * i]!;
      this.keys[2 * j + 1] = oldKeys[2 * i + 1]!;
      this.counts[2 * j] = oldCounts[2 * i]!;
      this.counts[2 * j + 1] = oldCounts[2 * i + 1]!;
    }
  }
}
