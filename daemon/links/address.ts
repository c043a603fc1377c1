import { isIP } from 'node:net';

/** A dual-stack socket reports IPv4 peers as ::ffff:a.b.c.d; one spelling keeps UDP demultiplexing exact. */
export function unmapped(ip: string): string {
  return ip.startsWith('::ffff:') && isIP(ip.slice(7)) === 4 ? ip.slice(7) : ip;
}

export function addressKey(ip: string, port: number): string {
  const bare = unmapped(ip);
  return isIP(bare) === 6 ? `[${bare}]:${port}` : `${bare}:${port}`;
}

/**
 * What inbound connections are counted against: an IPv4 address, or an IPv6
 * /64. One host is commonly given a whole /64, so counting IPv6 addresses
 * one by one would let it pose as billions of sources.
 */
export function sourceOf(ip: string): string {
  const bare = unmapped(ip);
  return isIP(bare) === 6 ? `${ipv6Prefix64(bare)}::/64` : bare;
}

/** The first four groups of an IPv6 address, each without leading zeros. */
function ipv6Prefix64(ip: string): string {
  const [head = '', tail] = ip.split('%')[0]!.split('::');
  // An embedded IPv4 address is the last 32 bits: two groups, never part of the prefix.
  const groups = (s: string): string[] => (s ? s.split(':').flatMap((g) => (g.includes('.') ? ['0', '0'] : [g])) : []);
  const before = groups(head);
  const after = tail === undefined ? [] : groups(tail);
  const full = tail === undefined ? before : [...before, ...Array<string>(8 - before.length - after.length).fill('0'), ...after];
  return full
    .slice(0, 4)
    .map((g) => parseInt(g, 16).toString(16))
    .join(':');
}
