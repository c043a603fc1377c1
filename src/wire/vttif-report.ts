/**
 * The VTTIF report a daemon sends its collector over the overlay link (a
 * REPORT record, PROTOCOL.md "VTTIF reports"): the VMs it saw sending since
 * its last report, and per directed VM pair the bytes and frames it took in
 * from a local VM in that time. Counts are deltas, so a report can be split
 * into chunks, each a report of its own, and the collector adds them up in
 * any order. Every chunk of one report carries the same round number (the
 * sender's report count, mod 256): the collector's window holds a number of
 * rounds per daemon, not a span of arrival times.
 *
 *   u8 version · u8 round · u16 hosted count · u32 pair count
 *   hosted × 6-byte MAC
 *   pairs × (src MAC 6 · dst MAC 6 · bytes f64 · frames u32)
 *
 * All big-endian. MACs are 48-bit numbers here, as on the data path.
 */
import { MAX_FRAME } from '../model/frame.js';
import { readMac48, writeMac48 } from '../model/mac48.js';

export const REPORT_VERSION = 2;
const HEAD = 8;
const MAC = 6;
export const PAIR_BYTES = 2 * MAC + 8 + 4;
/** Fields per pair in `Report.pairs`. */
export const PAIR_FIELDS = 4;
/** The most pairs (and hosted VMs) one round of a daemon's report carries: its sampler counts no more in an interval. */
export const MAX_REPORT_PAIRS = 1 << 16;

export interface Report {
  hosted: number[];
  /** PAIR_FIELDS numbers per pair: src, dst, bytes, frames. */
  pairs: Float64Array;
}

/** A report as it arrived: which round of its sender's it belongs to. */
export interface ReceivedReport extends Report {
  round: number;
}

/** Chunks of at most `maxBytes` each (at least one, even for an empty report: it says the sender is alive and has a round). */
export function encodeReport(r: Report, maxBytes: number, round: number): Buffer[] {
  const pairCount = r.pairs.length / PAIR_FIELDS;
  const out: Buffer[] = [];
  let h = 0;
  let p = 0;
  do {
    const room = maxBytes - HEAD;
    const hosted = Math.min(r.hosted.length - h, Math.floor(room / MAC));
    const pairs = Math.min(pairCount - p, Math.floor((room - hosted * MAC) / PAIR_BYTES));
    if (hosted + pairs === 0 && h + p < r.hosted.length + pairCount) throw new RangeError(`a report chunk of ${maxBytes} bytes holds nothing`);
    const buf = Buffer.alloc(HEAD + hosted * MAC + pairs * PAIR_BYTES);
    buf[0] = REPORT_VERSION;
    buf[1] = round & 0xff;
    buf.writeUInt16BE(hosted, 2);
    buf.writeUInt32BE(pairs, 4);
    let o = HEAD;
    for (let i = 0; i < hosted; i++, o += MAC) writeMac48(buf, o, r.hosted[h + i]!);
    for (let i = 0; i < pairs; i++) {
      const f = (p + i) * PAIR_FIELDS;
      writeMac48(buf, o, r.pairs[f]!);
      writeMac48(buf, o + 6, r.pairs[f + 1]!);
      buf.writeDoubleBE(r.pairs[f + 2]!, o + 12);
      buf.writeUInt32BE(r.pairs[f + 3]!, o + 20);
      o += PAIR_BYTES;
    }
    out.push(buf);
    h += hosted;
    p += pairs;
  } while (h < r.hosted.length || p < pairCount);
  return out;
}

/** Throws RangeError saying what is wrong; the bytes came from an authenticated peer, but a buggy or hostile one must not corrupt the matrix. */
export function decodeReport(buf: Uint8Array): ReceivedReport {
  if (buf.length < HEAD) throw new RangeError(`report of ${buf.length} bytes is shorter than its ${HEAD}-byte header`);
  if (buf[0] !== REPORT_VERSION) throw new RangeError(`report version ${buf[0]} (this daemon reads ${REPORT_VERSION})`);
  const b = Buffer.from(buf.buffer, buf.byteOffset, buf.length);
  const hosted = b.readUInt16BE(2);
  const pairs = b.readUInt32BE(4);
  const want = HEAD + hosted * MAC + pairs * PAIR_BYTES;
  if (b.length !== want) throw new RangeError(`report of ${b.length} bytes, but its header announces ${want} (${hosted} hosts, ${pairs} pairs)`);
  const r: ReceivedReport = { round: b[1]!, hosted: new Array<number>(hosted), pairs: new Float64Array(pairs * PAIR_FIELDS) };
  let o = HEAD;
  for (let i = 0; i < hosted; i++, o += MAC) r.hosted[i] = readMac48(b, o);
  for (let i = 0; i < pairs; i++, o += PAIR_BYTES) {
    const f = i * PAIR_FIELDS;
    r.pairs[f] = readMac48(b, o);
    r.pairs[f + 1] = readMac48(b, o + 6);
    const bytes = b.readDoubleBE(o + 12);
    if (!(bytes >= 0 && bytes < 2 ** 53)) throw new RangeError(`report pair ${i}: the byte count must be a non-negative number`);
    const frames = b.readUInt32BE(o + 20);
    // A pair is in a report because a frame was counted: the collector's window keeps a pair exactly while its frames sum above 0.
    if (frames === 0) throw new RangeError(`report pair ${i}: a pair with no frames`);
    // No frame is larger: a count beyond that is a broken or lying reporter, not traffic.
    if (bytes > frames * MAX_FRAME) throw new RangeError(`report pair ${i}: ${bytes} bytes in ${frames} frames, more than ${MAX_FRAME} bytes a frame`);
    r.pairs[f + 2] = bytes;
    r.pairs[f + 3] = frames;
  }
  return r;
}
