import { isIPv6 } from 'node:net';
import { parseMac } from '../model/mac.js';

/**
 * Advice for a word with a colon where a name belongs (names have none, so
 * the scanner reads such a word as a MAC address). People put two things
 * there by mistake: a VM's MAC, and, for a machine, its IPv6 address, which
 * SSH command lines and daemon configuration cannot take in that place.
 */
export function colonWordHint(text: string, role: 'machine' | 'name'): string {
  const alias = 'give it a host name, or an SSH alias (a Host entry in ~/.ssh/config)';
  if (parseMac(text).ok) return role === 'machine' ? `a MAC address names a VM, not the machine its daemon runs on: ${alias}` : 'a MAC address names a VM, not a machine, user or interface';
  // Bracketed as in a URL or ssh's [::1]:22.
  if (role === 'machine' && isIPv6(text.replace(/^\[(.*)\]$/s, '$1'))) return `an IPv6 address cannot name a machine: ${alias}`;
  return 'names have no colons: a word with one is read as a MAC address';
}
