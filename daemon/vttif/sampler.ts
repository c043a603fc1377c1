import { readMac48 } from '../../src/model/mac48.js';
import { MAX_REPORT_PAIRS, PAIR_FIELDS, type Report } from '../../src/wire/vttif-report.js';

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
/** Past this many pairs in one report interval, new pairs are counted as overflow instead of growing the table (the collector takes no more). */
export const MAX_PAIRS = MAX_REPORT_PAIRS;
const TWO_32 = 4294967296;

/*
 * A pair is keyed by three int32s read straight from the frame: the low 32
 * bits of the source, of the destination, and both high 16 bits together.
 * Whole 48-bit addresses would be doubles, and a double passed between
 * functions on the data path is a heap allocation per frame; int32s stay in
 * registers. A slot is free while its frame count is 0 (a counted pair has
 * at least one), so a report empties the table by zeroing the counts of
 * the slots it read.
 */
const KEY = 3;

export class Sampler {
  private slots = INITIAL_SLOTS;
  private keys = new Int32Array(KEY * INITIAL_SLOTS);
  /** bytes, frames per slot. */
  private counts = new Float64Array(2 * INITIAL_SLOTS);
  private used = 0;
  /** The slots in use, in the order their pairs came: a report reads and clears these, not the whole table. */
  private usedSlots = new Int32Array(INITIAL_SLOTS / 2);
  /**
   * The slot of the last frame's pair: a message longer than one frame is a
   * run of frames of one pair, and a run pays the hash once. -1 when unset.
   */
  private last = -1;
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
  sent(f: Uint8Array): void {
    if (--this.skip > 0) return;
    this.skip = this.every === 1 ? 1 : this.nextGap();
    if (f.length < 14 || f[6]! & 1) return; // a group source is not a VM
    if (f[0]! & 1) {
      // Broadcasters are learnt too, but no more of them per interval than pairs: sources can be made up.
      if (this.hosted.size < MAX_PAIRS) this.hosted.add(readMac48(f, 6));
      return;
    }
    const s = (f[8]! << 24) | (f[9]! << 16) | (f[10]! << 8) | f[11]!;
    const d = (f[2]! << 24) | (f[3]! << 16) | (f[4]! << 8) | f[5]!;
    const h = (f[6]! << 24) | (f[7]! << 16) | (f[0]! << 8) | f[1]!;
    let i = this.last;
    const k = this.keys;
    if (i < 0 || k[KEY * i] !== s || k[KEY * i + 1] !== d || k[KEY * i + 2] !== h) {
      i = this.find(s, d, h);
      if (i < 0) {
        i = this.insert(s, d, h);
        if (i < 0) return;
        // The source joins `hosted` when its pair is first counted in an interval, not per frame: a Set insert per frame would double the cost.
        this.hosted.add(readMac48(f, 6));
      }
      this.last = i;
    }
    this.counts[2 * i]! += f.length * this.every;
    this.counts[2 * i + 1]! += this.every;
  }

  /**
   * `frames` frames (`bytes` bytes) from `src` to `dst` (48-bit MACs, a
   * unicast destination) that the fast path carried: counted exactly, not
   * sampled, since they cost nothing to count.
   */
  count(src: number, dst: number, frames: number, bytes: number): void {
    const sHigh = Math.floor(src / TWO_32);
    if (sHigh & 0x100) return; // a group source is not a VM
    const dHigh = Math.floor(dst / TWO_32);
    const s = src % TWO_32 | 0;
    const d = dst % TWO_32 | 0;
    const h = (sHigh << 16) | dHigh;
    let i = this.find(s, d, h);
    if (i < 0) {
      i = this.insert(s, d, h);
      if (i < 0) return;
      this.hosted.add(src);
    }
    this.counts[2 * i]! += bytes;
    this.counts[2 * i + 1]! += frames;
  }

  /** What was counted since the last call, and a fresh start. */
  take(): Report {
    const pairs = new Float64Array(this.used * PAIR_FIELDS);
    const k = this.keys;
    let p = 0;
    for (let u = 0; u < this.used; u++) {
      const i = this.usedSlots[u]!;
      const high = k[KEY * i + 2]!;
      pairs[p] = (high >>> 16) * TWO_32 + (k[KEY * i]! >>> 0);
      pairs[p + 1] = (high & 0xffff) * TWO_32 + (k[KEY * i + 1]! >>> 0);
      pairs[p + 2] = this.counts[2 * i]!;
      pairs[p + 3] = this.counts[2 * i + 1]!;
      p += PAIR_FIELDS;
      this.counts[2 * i] = 0;
      this.counts[2 * i + 1] = 0;
    }
    const report: Report = { hosted: [...this.hosted], pairs };
    this.hosted.clear();
    this.used = 0;
    this.last = -1;
    return report;
  }

  /** A new pair's slot, or -1 when the table is full (the frame is counted as overflow). */
  private insert(s: number, d: number, h: number): number {
    if (this.used >= MAX_PAIRS) {
      this.overflow++;
      return -1;
    }
    if ((this.used + 1) * 2 > this.slots) this.grow();
    const i = ~this.find(s, d, h);
    this.keys[KEY * i] = s;
    this.keys[KEY * i + 1] = d;
    this.keys[KEY * i + 2] = h;
    this.usedSlots[this.used++] = i;
    return i;
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

  /** The slot holding the pair, or ~(the free slot where it would go). */
  private find(s: number, d: number, h: number): number {
    const mask = this.slots - 1;
    let x = Math.imul(s ^ Math.imul(d, 0x9e3779b1) ^ Math.imul(h, 0x27d4eb2f), 0x85ebca6b);
    x ^= x >>> 15;
    const k = this.keys;
    for (let i = x & mask; ; i = (i + 1) & mask) {
      if (this.counts[2 * i + 1] === 0) return ~i;
      if (k[KEY * i] === s && k[KEY * i + 1] === d && k[KEY * i + 2] === h) return i;
    }
  }

  private grow(): void {
    const oldKeys = this.keys;
    const oldCounts = this.counts;
    this.slots *= 2;
    this.keys = new Int32Array(KEY * this.slots);
    this.counts = new Float64Array(2 * this.slots);
    const oldUsed = this.usedSlots;
    this.usedSlots = new Int32Array(this.slots / 2);
    this.last = -1;
    for (let u = 0; u < this.used; u++) {
      const i = oldUsed[u]!;
      const j = ~this.find(oldKeys[KEY * i]!, oldKeys[KEY * i + 1]!, oldKeys[KEY * i + 2]!);
      this.usedSlots[u] = j;
      this.keys.set(oldKeys.subarray(KEY * i, KEY * i + KEY), KEY * j);
      this.counts[2 * j] = oldCounts[2 * i]!;
      this.counts[2 * j + 1] = oldCounts[2 * i + 1]!;
    }
  }
}
