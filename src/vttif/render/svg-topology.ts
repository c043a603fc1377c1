import type { Inference, TopologyEdge } from '../types.js';
import { APPEARING, EDGE, LEAVING } from './colours.js';
import { MONO_ADVANCE, n, text, title, type Look, type Panel } from './svg-kit.js';
import { formatIntensity, formatRate, plural } from './units.js';
import { linkKey } from '../../model/state.js';
import { pending, sortedEdges } from './vms.js';

/**
 * The application topology as a circle: VMs around it, grouped and coloured
 * by host (an arc of the host's colour behind each group), edges curving
 * through the middle as wide and as opaque as they are intense.
 */

export const TOPOLOGY_WIDTH = 560;
/** Dash patterns: appearing long dashes, disappearing dots. */
export const APPEARING_DASH = '8 5';
export const LEAVING_DASH = '2 4';

/** Stroke width for an intensity: thinner as the VMs get more numerous, so 64 of them stay readable. */
export function edgeWidth(intensity: number, vms: number): number {
  const max = Math.min(9, Math.max(2.5, 9 * Math.sqrt(8 / Math.max(vms, 1))));
  return 0.6 + (max - 0.6) * clamp01(intensity);
}

/** Opacity for an intensity; many edges share the ink, or all-to-all would be a solid disc. */
export function edgeOpacity(intensity: number, edges: number): number {
  return (0.2 + 0.8 * clamp01(intensity)) * Math.min(1, (40 / Math.max(edges, 1)) ** 0.75);
}

export function topologyPanel(inf: Inference, look: Look): Panel {
  const vms = look.groups.flatMap((g) => g.vms);
  const count = vms.length;
  const horizontal = count <= 12;
  const step = (2 * Math.PI) / Math.max(count, 1);
  // Radial labels need the arc between two VMs to be as tall as the font.
  const font = clamp(horizontal ? 12 : (2 * Math.PI * 180) / Math.max(count, 1) * 0.6, 6, 12);
  const labelRoom = look.longest * MONO_ADVANCE * font + 10;
  const radius = clamp(TOPOLOGY_WIDTH / 2 - labelRoom - 14, 110, 200);
  const node = clamp(Math.PI * radius / Math.max(count, 1) * 0.5, 3, 11);
  const cx = TOPOLOGY_WIDTH / 2;
  const cy = radius + labelRoom + 14;
  const angle = new Map(vms.map((v, i) => [v, -Math.PI / 2 + i * step]));
  const at = (v: string, r: number): [number, number] => [cx + r * Math.cos(angle.get(v)!), cy + r * Math.sin(angle.get(v)!)];

  const out: string[] = [];
  // Host arcs behind everything.
  if (count > 0) {
    for (const g of look.groups) {
      // A gap between neighbouring hosts' arcs, so where one host ends is plain.
      const a0 = angle.get(g.vms[0]!)! - step * 0.4;
      const a1 = angle.get(g.vms.at(-1)!)! + step * 0.4;
      const colour = look.colours.get(g.host)!;
      const big = a1 - a0 > Math.PI ? 1 : 0;
      const p = (a: number): string => `${n(cx + radius * Math.cos(a))} ${n(cy + radius * Math.sin(a))}`;
      const d = g.vms.length === count ? `M ${n(cx - radius)} ${n(cy)} a ${n(radius)} ${n(radius)} 0 1 0 ${n(2 * radius)} 0 a ${n(radius)} ${n(radius)} 0 1 0 ${n(-2 * radius)} 0` : `M ${p(a0)} A ${n(radius)} ${n(radius)} 0 ${big} 1 ${p(a1)}`;
      out.push(`<path d="${d}" fill="none" stroke="${colour}" stroke-opacity="0.25" stroke-width="${n(node * 2 + 8)}">${title(`host ${g.host ?? 'unknown'}: ${plural(g.vms.length, 'VM')}`)}</path>`);
    }
  }

  // Edges, weakest first so the strongest are drawn on top.
  const diff = pending(inf);
  const leaving = new Set((diff?.removed ?? []).map((e) => linkKey(e.a, e.b)));
  const drawn: Array<{ e: TopologyEdge; kind: 'settled' | 'appearing' | 'leaving' }> = [
    ...sortedEdges(inf.topology.edges).map((e) => ({ e, kind: leaving.has(linkKey(e.a, e.b)) ? ('leaving' as const) : ('settled' as const) })),
    ...(diff?.added ?? []).map((e) => ({ e, kind: 'appearing' as const })),
  ].sort((x, y) => x.e.intensity - y.e.intensity);
  const total = drawn.length;
  for (const { e, kind } of drawn) {
    if (!angle.has(e.a) || !angle.has(e.b)) continue;
    const [x1, y1] = at(e.a, radius);
    const [x2, y2] = at(e.b, radius);
    // Pulled towards the centre in proportion to length: neighbours stay almost straight, long chords bend and stop hiding each other.
    const pull = 1 - 0.6 * (Math.hypot(x2 - x1, y2 - y1) / (2 * radius));
    const qx = cx + ((x1 + x2) / 2 - cx) * pull;
    const qy = cy + ((y1 + y2) / 2 - cy) * pull;
    const colour = kind === 'appearing' ? APPEARING : kind === 'leaving' ? LEAVING : EDGE;
    // Butt caps on dashes: round ones would fill the gaps of a wide edge.
    const dash = kind === 'settled' ? ' stroke-linecap="round"' : ` stroke-dasharray="${kind === 'appearing' ? APPEARING_DASH : LEAVING_DASH}" stroke-linecap="butt"`;
    const tip = `${e.a} — ${e.b}: intensity ${formatIntensity(e.intensity)}, ${formatRate(e.bytesPerS)}${kind === 'settled' ? '' : ` (${kind === 'appearing' ? 'appearing' : 'disappearing'})`}`;
    out.push(
      `<path d="M ${n(x1)} ${n(y1)} Q ${n(qx)} ${n(qy)} ${n(x2)} ${n(y2)}" fill="none" stroke="${colour}" stroke-width="${n(edgeWidth(e.intensity, count))}" stroke-opacity="${n(edgeOpacity(e.intensity, total))}"${dash}>${title(tip)}</path>`,
    );
  }

  // VMs and their labels.
  const labels: string[] = [];
  for (const g of look.groups) {
    const colour = look.colours.get(g.host)!;
    for (const v of g.vms) {
      const [x, y] = at(v, radius);
      out.push(`<circle cx="${n(x)}" cy="${n(y)}" r="${n(node)}" fill="${colour}" stroke="#ffffff" stroke-width="1.5">${title(`${v} on ${g.host ?? 'an unknown host'}`)}</circle>`);
      labels.push(vmLabel(v, look.labels.get(v)!, angle.get(v)!, at(v, radius + node + 5), horizontal, font));
    }
  }
  out.push('<g class="topology-labels">', ...labels, '</g>');
  if (count === 0) out.push(text(cx, cy, 'No VMs in the settled topology', { size: 14, anchor: 'middle', fill: '#666666' }));
  return { svg: out.join('\n'), width: TOPOLOGY_WIDTH, height: cy + radius + labelRoom + 10 };
}

function vmLabel(vm: string, label: string, a: number, [x, y]: [number, number], horizontal: boolean, size: number): string {
  const cos = Math.cos(a);
  if (horizontal) {
    const anchor = cos > 0.3 ? 'start' : cos < -0.3 ? 'end' : 'middle';
    const dy = Math.sin(a) * size * 0.6;
    return text(x, y + dy, label, { size, anchor, mono: true, baseline: 'middle', tip: vm });
  }
  // Radial, reading outwards; on the left half turned half a circle so nothing reads upside down.
  const deg = (a * 180) / Math.PI;
  const left = cos < 0;
  return text(x, y, label, { size, anchor: left ? 'end' : 'start', mono: true, baseline: 'middle', rotate: left ? deg + 180 : deg, tip: vm });
}

const clamp = (x: number, lo: number, hi: number): number => Math.min(hi, Math.max(lo, x));
const clamp01 = (x: number): number => clamp(Number.isFinite(x) ? x : 0, 0, 1);
