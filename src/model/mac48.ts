/**
 * MAC addresses as plain numbers for the data path: 48 bits fit exactly in a
 * double, so a frame's addresses compare with `===` and key typed arrays
 * without allocating a string per frame. The model keeps the canonical
 * string form (src/model/mac.ts); these helpers cross between the two.
 */
import { parseMac } from './mac.js';

const TWO_32 = 4294967296;

export const BROADCAST48 = 0xffff_ffff_ffff;

/** Accepts whatever parseMac accepts; throws RangeError otherwise. */
export function macToNumber(text: string): number {
  const parsed = parseMac(text);
  if (!parsed.ok) throw new RangeError(`not a MAC address: '${text}': ${parsed.reason}`);
  const m = parsed.mac;
  let hi = 0;
  let lo = 0;
  for (let i = 0; i < 2; i++) hi = hi * 256 + parseInt(m.slice(i * 3, i * 3 + 2), 16);
  for (let i = 2; i < 6; i++) lo = lo * 256 + parseInt(m.slice(i * 3, i * 3 + 2), 16);
  return hi * TWO_32 + lo;
}

/** The canonical string form of a 48-bit number. */
export function numberToMac(n: number): string {
  if (!Number.isInteger(n) || n < 0 || n > BROADCAST48) throw new RangeError(`not a 48-bit MAC: ${n}`);
  return n.toString(16).padStart(12, '0').replace(/(..)(?!$)/g, '$1:');
}

/** The six bytes at `offset` (a frame's destination at 0, its source at 6). */
export function readMac48(bytes: Uint8Array, offset: number): number {
  const hi = (bytes[offset]! << 8) | bytes[offset + 1]!;
  const lo = ((bytes[offset + 2]! << 24) | (bytes[offset + 3]! << 16) | (bytes[offset + 4]! << 8) | bytes[offset + 5]!) >>> 0;
  return hi * TWO_32 + lo;
}

/** Writes `mac` as six bytes at `offset`; the inverse of readMac48. */
export function writeMac48(bytes: Uint8Array, offset: number, mac: number): void {
  const lo = mac >>> 0;
  const hi = (mac - lo) / TWO_32;
  bytes[offset] = hi >>> 8;
  bytes[offset + 1] = hi & 0xff;
  bytes[offset + 2] = lo >>> 24;
  bytes[offset + 3] = (lo >>> 16) & 0xff;
  bytes[offset + 4] = (lo >>> 8) & 0xff;
  bytes[offset + 5] = lo & 0xff;
}
