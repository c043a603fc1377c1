import { plain, visible, type Painter } from '../../diag/render.js';
import type { Inference, Topology } from '../types.js';
import { plural } from './units.js';
import { topologyDiff } from './vms.js';

/**
 * One line per settled change, for `vnetc infer --watch`, so a log of them
 * reads like a changelog: when it settled, its size, and what moved since
 * the previous settled topology (null: this is the first one seen).
 */
export function changeLine(prev: Topology | null, next: Inference, paint: Painter = plain): string {
  const t = next.topology;
  const when = visible(next.settledAt ?? next.at);
  const size = `${plural(t.vms.length, 'VM')}, ${plural(t.edges.length, 'edge')}`;
  let delta: string;
  if (prev === null) delta = paint.dim('first topology seen');
  else {
    const d = topologyDiff(prev, t);
    delta =
      d.added.length + d.removed.length === 0 ? paint.dim('same edges, new intensities')
      : `${paint.green(`+${d.added.length}`)} ${paint.red(`-${d.removed.length}`)} edges`;
  }
  return `${when}  change ${next.changes}: ${size}  ${delta}`;
}
