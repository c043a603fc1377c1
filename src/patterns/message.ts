/**
 * The patterns workload's wire format, the same in an Ethernet frame
 * (synthetic VMs) and in a UDP datagram (processes in VM namespaces): a
 * 22-byte header, then padding up to the fragment's share of the message.
 *
 *   u8  kind        1 = a fragment of a message, 2 = background noise
 *   u8  version     1
 *   u32 run         which run of the workload (stragglers of an earlier run are ignored)
 *   u16 src, dst    ranks
 *   u32 iteration
 *   u16 index, count  this fragment, and how many the message has
 *   u32 size        the whole message's bytes (headers not counted)
 *
 * All big-endian. A message of `size` bytes travels as ceil(size / room)
 * fragments (at least one), `room` being what one frame holds after the header.
 */

export const HEADER_BYTES = 22;
export const KIND_FRAGMENT = 1;
export const KIND_NOISE = 2;
const VERSION = 1;
/** A message is at most 65535 fragments: with 1,478 bytes of room each, about 96 MB. */
export const MAX_FRAGMENTS = 0xffff;

export interface Fragment {
  kind: number;
  run: number;
  src: number;
  dst: number;
  iteration: number;
  index: number;
  count: number;
  size: number;
}

export function fragmentCount(size: number, room: number): number {
  return Math.max(1, Math.ceil(size / room));
}

/** The padding bytes fragment `index` carries. */
export function fragmentData(size: number, room: number, index: number): number {
  return Math.max(0, Math.min(room, size - index * room));
}

export function writeHeader(buf: Buffer, at: number, f: Fragment): void {
  buf.writeUInt8(f.kind, at);
  buf.writeUInt8(VERSION, at + 1);
  buf.writeUInt32BE(f.run >>> 0, at + 2);
  buf.writeUInt16BE(f.src, at + 6);
  buf.writeUInt16BE(f.dst, at + 8);
  buf.writeUInt32BE(f.iteration >>> 0, at + 10);
  buf.writeUInt16BE(f.index, at + 14);
  buf.writeUInt16BE(f.count, at + 16);
  buf.writeUInt32BE(f.size >>> 0, at + 18);
}

/** The header at `at`, or null for anything that is not one (short, another version, inconsistent). */
export function readHeader(buf: Buffer, at: number): Fragment | null {
  if (buf.length < at + HEADER_BYTES || buf.readUInt8(at + 1) !== VERSION) return null;
  const f: Fragment = {
    kind: buf.readUInt8(at),
    run: buf.readUInt32BE(at + 2),
    src: buf.readUInt16BE(at + 6),
    dst: buf.readUInt16BE(at + 8),
    iteration: buf.readUInt32BE(at + 10),
    index: buf.readUInt16BE(at + 14),
    count: buf.readUInt16BE(at + 16),
    size: buf.readUInt32BE(at + 18),
  };
  if ((f.kind !== KIND_FRAGMENT && f.kind !== KIND_NOISE) || f.count === 0 || f.index >= f.count) return null;
  return f;
}
