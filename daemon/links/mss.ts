/**
 * TCP MSS clamping, as tinc and most VPNs do it. A UDP link carries one frame
 * per datagram, so a full-size frame from a VM with a 1500-byte MTU becomes a
 * datagram larger than a 1500-byte path, which the sending host fragments and
 * the receiving one reassembles: twice the packets, and a lost fragment loses
 * the frame. Lowering the MSS option of every SYN that crosses the link makes
 * both ends of the VMs' TCP connections send segments whose frames fit; other
 * traffic still crosses, fragmented. A link clamps the SYNs it sends and
 * those it receives: the two ends' paths may differ.
 *
 * fastpath.c's `is_tcp_syn` finds the same frames (it hands them here).
 */

const ETHERTYPE_IPV4 = 0x0800;
const ETHERTYPE_IPV6 = 0x86dd;
const VLAN_TAGS = new Set([0x8100, 0x88a8]);
const TCP = 6;
const SYN = 0x02;
const MSS_OPTION = 2;
/** The fixed IP and TCP headers a segment's MSS leaves out (RFC 879, RFC 6691). */
const IPV4_HEADERS = 20 + 20;
const IPV6_HEADERS = 40 + 20;

/**
 * What the frame is going over: the largest frame it carries unfragmented
 * now, 0 when unknown; none at all on a path that cuts its stream to fit
 * (a TCP link's channel).
 */
export interface Path {
  fitFrame?(): number;
}

/**
 * `frame` with the MSS of a TCP SYN lowered so that a full segment's frame
 * fits `path`, its checksum updated; the frame itself when it is not a SYN
 * carrying a larger MSS. The path is asked only for such a SYN. The frame is
 * never changed in place: it may also be going elsewhere.
 */
export function clampMss<T extends Uint8Array>(frame: T, path: Path): T | Buffer {
  const at = mssOption(frame);
  if (!at) return frame;
  const room = (path.fitFrame?.() ?? 0) - at.l3 - (at.v6 ? IPV6_HEADERS : IPV4_HEADERS);
  const mss = (frame[at.value]! << 8) | frame[at.value + 1]!;
  if (room <= 0 || mss <= room) return frame;
  const out = Buffer.from(frame);
  out[at.value] = room >> 8;
  out[at.value + 1] = room & 0xff;
  // RFC 1624: the one's-complement sum moves by what the word changed by. A
  // value at an odd offset from the TCP header straddles two words, which
  // comes to the same change with its bytes swapped.
  const odd = (at.value - at.tcp) & 1;
  const swap = (v: number): number => (odd ? ((v & 0xff) << 8) | (v >> 8) : v);
  const checksum = (out[at.tcp + 16]! << 8) | out[at.tcp + 17]!;
  let sum = (~checksum & 0xffff) + (~swap(mss) & 0xffff) + swap(room);
  sum = (sum & 0xffff) + (sum >> 16);
  sum = (sum & 0xffff) + (sum >> 16);
  const updated = ~sum & 0xffff;
  out[at.tcp + 16] = updated >> 8;
  out[at.tcp + 17] = updated & 0xff;
  return out;
}

interface MssAt {
  /** Where the IP header starts. */
  l3: number;
  v6: boolean;
  /** Where the TCP header starts. */
  tcp: number;
  /** Where the MSS option's two-byte value is. */
  value: number;
}

/** The MSS option of a TCP SYN over IPv4 (unfragmented) or IPv6 (no extension headers), behind up to two VLAN tags. */
function mssOption(f: Uint8Array): MssAt | null {
  if (f.length < 14) return null;
  let l3 = 12;
  let type = (f[12]! << 8) | f[13]!;
  for (let tags = 0; tags < 2 && VLAN_TAGS.has(type); tags++) {
    l3 += 4;
    if (l3 + 2 > f.length) return null;
    type = (f[l3]! << 8) | f[l3 + 1]!;
  }
  l3 += 2;
  let tcp: number;
  let end: number;
  const v6 = type === ETHERTYPE_IPV6;
  if (type === ETHERTYPE_IPV4) {
    if (f.length < l3 + 20 || f[l3]! >> 4 !== 4 || f[l3 + 9] !== TCP) return null;
    // Fragments are left alone: only the first has the TCP header, and a SYN is never fragmented in practice.
    if (((f[l3 + 6]! & 0x3f) | f[l3 + 7]!) !== 0) return null;
    tcp = l3 + (f[l3]! & 15) * 4;
    end = Math.min(f.length, l3 + ((f[l3 + 2]! << 8) | f[l3 + 3]!));
  } else if (v6) {
    if (f.length < l3 + 40 || f[l3 + 6] !== TCP) return null;
    tcp = l3 + 40;
    end = Math.min(f.length, tcp + ((f[l3 + 4]! << 8) | f[l3 + 5]!));
  } else {
    return null;
  }
  if (end < tcp + 20 || !(f[tcp + 13]! & SYN)) return null;
  const optionsEnd = Math.min(end, tcp + (f[tcp + 12]! >> 4) * 4);
  for (let o = tcp + 20; o < optionsEnd; ) {
    const kind = f[o]!;
    if (kind === 0) break;
    if (kind === 1) {
      o++;
      continue;
    }
    if (o + 1 >= optionsEnd) break;
    const len = f[o + 1]!;
    if (len < 2 || o + len > optionsEnd) break;
    if (kind === MSS_OPTION && len === 4) return { l3, v6, tcp, value: o + 2 };
    o += len;
  }
  return null;
}
