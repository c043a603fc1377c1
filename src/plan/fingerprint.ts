import { createHash } from 'node:crypto';
import type { Live } from '../model/live.js';
import { linkKey } from '../model/state.js';

/**
 * A digest of live state that does not depend on the order daemons report
 * things in: a saved plan records it, and apply refuses the plan when the
 * daemons no longer hold what it was computed against.
 */
export function fingerprint(live: Live): string {
  const hash = createHash('sha256');
  const sorted = (xs: Iterable<string>): string[] => [...xs].sort();
  const { state } = live;
  for (const m of sorted(state.hosts.keys())) {
    const h = state.hosts.get(m)!;
    hash.update(`H ${m} ${h.user} ${h.port} ${h.iface}\n`);
  }
  for (const k of sorted(state.links.keys())) {
    const l = state.links.get(k)!;
    hash.update(`L ${linkKey(l.a, l.b)} ${l.proto} ${l.dialer}\n`);
  }
  for (const m of sorted(state.tables.keys())) {
    const table = state.tables.get(m)!;
    // Batch a table's rules into one update: a million small updates cost more than the hashing.
    if (table.size) hash.update(`R ${m}\n${sorted(table.keys()).join('\n')}\n`);
  }
  for (const d of sorted(live.drift.map((d) => JSON.stringify(d)))) hash.update(`D ${d}\n`);
  return `sha256:${hash.digest('hex')}`;
}

