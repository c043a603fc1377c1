import { isIP } from 'node:net';

/** `host:port` as the control plane gives it; IPv6 literals in brackets. */
export interface HostPort {
  host: string;
  port: number;
}

export function parseHostPort(text: string): HostPort | null {
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([^\s:[\]]+)):(\d{1,5})$/.exec(text);
  if (!m) return null;
  const host = m[1] ?? m[2]!;
  const port = Number(m[3]);
  if (port < 1 || port > 65535) return null;
  if (m[1] !== undefined && isIP(host) !== 6) return null;
  return { host, port };
}

/** A dual-stack socket reports IPv4 peers as ::ffff:a.b.c.d; one spelling keeps UDP demultiplexing exact. */
export function unmapped(ip: string): string {
  return ip.startsWith('::ffff:') && isIP(ip.slice(7)) === 4 ? ip.slice(7) : ip;
}

export function addressKey(ip: string, port: number): string {
  const bare = unmapped(ip);
  return isIP(bare) === 6 ? `[${bare}]:${port}` : `${bare}:${port}`;
}
