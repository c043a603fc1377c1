/**
 * Ethernet addresses. The canonical form is six lower-case two-digit octets
 * joined by colons, as `ip link` prints them; every stage compares that form.
 */

const HEX = new Int8Array(128).fill(-1);
for (let i = 0; i < 10; i++) HEX[48 + i] = i;
for (let i = 0; i < 6; i++) {
  HEX[65 + i] = 10 + i;
  HEX[97 + i] = 10 + i;
}

function hexValue(code: number): number {
  return code < 128 ? HEX[code]! : -1;
}

function isLowerHex(c: number): boolean {
  return (c >= 48 && c <= 57) || (c >= 97 && c <= 102);
}

function isCanonical(text: string): boolean {
  for (let i = 0; i < 17; i += 3) {
    if (!isLowerHex(text.charCodeAt(i)) || !isLowerHex(text.charCodeAt(i + 1))) return false;
    if (i < 15 && text.charCodeAt(i + 2) !== 58) return false;
  }
  return true;
}

export type MacResult = { ok: true; mac: string } | { ok: false; reason: string };

/**
 * Accepts `00:50:56:00:21:01` in any case, single-digit octets as BSD tools
 * print them (`0:50:56:0:21:1`), and the dash form `00-50-56-00-21-01`.
 */
export function parseMac(text: string): MacResult {
  // Fast path: the canonical shape, which is nearly every address in practice.
  if (text.length === 17 && isCanonical(text)) return { ok: true, mac: text };
  const dashed = !text.includes(':') && text.includes('-');
  const parts = text.split(dashed ? '-' : ':');
  if (parts.length !== 6) {
    return { ok: false, reason: `it has ${parts.length} octet${parts.length === 1 ? '' : 's'}, not 6` };
  }
  const out: string[] = [];
  for (const part of parts) {
    if (part.length === 0) return { ok: false, reason: 'an octet is empty' };
    if (part.length > 2 || (dashed && part.length !== 2)) {
      return { ok: false, reason: `octet '${part}' is not two hexadecimal digits` };
    }
    for (let i = 0; i < part.length; i++) {
      if (hexValue(part.charCodeAt(i)) < 0) return { ok: false, reason: `'${part[i]}' is not a hexadecimal digit` };
    }
    out.push(part.toLowerCase().padStart(2, '0'));
  }
  return { ok: true, mac: out.join(':') };
}

/** The I/G bit: set on broadcast and multicast addresses, which are never a frame's source. */
export function isGroupMac(mac: string): boolean {
  return (hexValue(mac.charCodeAt(1)) & 1) === 1;
}

export const BROADCAST_MAC = 'ff:ff:ff:ff:ff:ff';
