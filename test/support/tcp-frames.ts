/**
 * Ethernet frames carrying TCP segments, built byte by byte for tests of
 * what vnetd does to them (MSS clamping), and the plain readings to check
 * the result against: a checksum computed from scratch, the MSS option.
 */

export type Option = number[];
export const NOP: Option = [1];
export const SACK_OK: Option = [4, 2];
export const WSCALE: Option = [3, 3, 7];
export const TIMESTAMPS: Option = [8, 10, 0, 0, 0, 1, 0, 0, 0, 0];
export const mssOption = (mss: number): Option => [2, 4, mss >> 8, mss & 0xff];

export interface Spec {
  v6?: boolean;
  vlans?: number;
  flags?: number;
  options?: Option[];
  fragment?: boolean;
}

export const SYN = 0x02;
export const ACK = 0x10;

function sum16(bytes: Uint8Array, start: number, end: number, sum = 0): number {
  for (let i = start; i < end; i += 2) sum += (bytes[i]! << 8) | (i + 1 < end ? bytes[i + 1]! : 0);
  return sum;
}

const fold = (sum: number): number => {
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return sum;
};

/** Where a frame's IP and TCP headers start. */
export function layout(spec: Spec): { l3: number; tcp: number } {
  const l3 = 14 + 4 * (spec.vlans ?? 0);
  return { l3, tcp: l3 + (spec.v6 ? 40 : 20) };
}

/** The one's-complement sum over the pseudo-header and segment: 0xffff when the checksum in it is right. */
export function tcpChecksumSum(frame: Uint8Array, spec: Spec): number {
  const { l3, tcp } = layout(spec);
  const length = frame.length - tcp;
  let sum = spec.v6 ? sum16(frame, l3 + 8, l3 + 40) : sum16(frame, l3 + 12, l3 + 20);
  sum += 6 + length;
  return fold(sum16(frame, tcp, frame.length, sum));
}

/** A frame (02:00:00:00:01:01 to 02:00:00:00:02:02) carrying a TCP segment as `spec` says, its checksum right. */
export function tcpFrame(spec: Spec, payload = 10): Buffer {
  const { l3, tcp } = layout(spec);
  const options = Buffer.from((spec.options ?? []).flat());
  const padded = Buffer.concat([options, Buffer.alloc((4 - (options.length % 4)) % 4)]);
  const segment = 20 + padded.length + payload;
  const f = Buffer.alloc(tcp + segment);
  Buffer.from('020000000202020000000101', 'hex').copy(f, 0);
  let at = 12;
  for (let i = 0; i < (spec.vlans ?? 0); i++, at += 4) f.writeUInt32BE((i === 0 && spec.vlans === 2 ? 0x88a8 : 0x8100) * 0x10000 + 100 + i, at);
  f.writeUInt16BE(spec.v6 ? 0x86dd : 0x0800, at);
  if (spec.v6) {
    f[l3] = 0x60;
    f.writeUInt16BE(segment, l3 + 4);
    f[l3 + 6] = 6;
    f[l3 + 7] = 64;
    Buffer.from('fd000000000000000000000000000001fd000000000000000000000000000002', 'hex').copy(f, l3 + 8);
  } else {
    f[l3] = 0x45;
    f.writeUInt16BE(20 + segment, l3 + 2);
    f.writeUInt16BE(spec.fragment ? 0x2000 : 0x4000, l3 + 6);
    f[l3 + 8] = 64;
    f[l3 + 9] = 6;
    Buffer.from('0ac900010ac90002', 'hex').copy(f, l3 + 12);
  }
  f.writeUInt16BE(40000, tcp);
  f.writeUInt16BE(9000, tcp + 2);
  f.writeUInt32BE(12345, tcp + 4);
  f[tcp + 12] = ((20 + padded.length) / 4) << 4;
  f[tcp + 13] = spec.flags ?? SYN;
  f.writeUInt16BE(64240, tcp + 14);
  padded.copy(f, tcp + 20);
  for (let i = 0; i < payload; i++) f[tcp + 20 + padded.length + i] = (i * 37) & 0xff;
  f.writeUInt16BE(~fold(tcpChecksumSum(f, spec)) & 0xffff, tcp + 16);
  return f;
}

/** The MSS option's value in a built frame, read the plain way. */
export function mssOf(frame: Uint8Array, spec: Spec): number | null {
  const { tcp } = layout(spec);
  const end = tcp + (frame[tcp + 12]! >> 4) * 4;
  for (let o = tcp + 20; o < end; ) {
    if (frame[o] === 0) break;
    if (frame[o] === 1) {
      o++;
      continue;
    }
    if (frame[o] === 2) return (frame[o + 2]! << 8) | frame[o + 3]!;
    o += frame[o + 1]!;
  }
  return null;
}
