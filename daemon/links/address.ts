import { isIP } from 'node:net';

/** A dual-stack socket reports IPv4 peers as ::ffff:a.b.c.d; one spelling keeps UDP demultiplexing exact. */
export function unmapped(ip: string): string {
  return ip.startsWith('::ffff:') && isIP(ip.slice(7)) === 4 ? ip.slice(7) : ip;
}

export function addressKey(ip: string, port: number): string {
  const bare = unmapped(ip);
  return isIP(bare) === 6 ? `[${bare}]:${port}` : `${bare}:${port}`;
}
