import type { Inference, InferenceState } from '../types.js';
import { heatmapPanel } from './svg-heatmap.js';
import { clip, esc, hostColours, n, SANS, text, vmLabels, type Look } from './svg-kit.js';
import { APPEARING, EDGE, LEAVING } from './colours.js';
import { APPEARING_DASH, edgeOpacity, edgeWidth, LEAVING_DASH, topologyPanel, TOPOLOGY_WIDTH } from './svg-topology.js';
import { formatNumber, formatParams, plural } from './units.js';
import { pending, vmsByHost } from './vms.js';

/**
 * `vnetc infer --svg`: a standalone picture, drawn here rather than by
 * Graphviz so nothing needs installing to get it. Left, the settled
 * topology on a circle with its legend (parameters and time); right, the
 * traffic matrix as a heat map. `no-data` gets a message panel instead.
 */
export function renderSvg(inf: Inference): string {
  const M = 20;
  const head = header(inf, M);
  if (inf.state === 'no-data') return document(760, 300, [head, noData(inf, M, 64)]);

  const groups = vmsByHost(inf);
  const labels = vmLabels(groups.flatMap((g) => g.vms));
  const look: Look = { groups, colours: hostColours(groups), labels: labels.of, longest: labels.longest };
  const top = 64;
  const topo = topologyPanel(inf, look);
  const legend = topologyLegend(inf, look, labels.prefix, topo.height);
  const heat = heatmapPanel(inf, look);
  const right = M + TOPOLOGY_WIDTH + 36;
  const width = right + heat.width + M;
  const height = top + Math.max(legend.bottom, heat.height) + M;
  return document(width, height, [
    head,
    `<g transform="translate(${M} ${top})">`,
    text(0, 16, 'Application topology', { size: 14, weight: 'bold' }),
    topo.svg,
    legend.svg,
    '</g>',
    `<path d="M ${n(right - 18)} ${top} V ${n(height - M)}" stroke="#dddddd"/>`,
    `<g transform="translate(${n(right)} ${top})">`,
    heat.svg,
    '</g>',
  ]);
}

function document(width: number, height: number, body: string[]): string {
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<svg xmlns="http://www.w3.org/2000/svg" width="${n(width)}" height="${n(height)}" viewBox="0 0 ${n(width)} ${n(height)}" font-family="${SANS}">`,
    `<rect width="100%" height="100%" fill="#ffffff"/>`,
    ...body,
    '</svg>',
    '',
  ].join('\n');
}

const STATE_FILL: Record<InferenceState, string> = { settled: '#2a8a3a', settling: '#c77700', idle: '#2f7f9f', 'no-data': '#9a6a00' };

function header(inf: Inference, m: number): string {
  const name = `VTTIF on ${clip(inf.collector, 40)}`;
  return [
    `<title>${esc(`${name}: ${inf.state}, ${inf.at}`)}</title>`,
    text(m, m + 18, name, { size: 18, weight: 'bold' }),
    text(m + 18 + name.length * 10.5, m + 18, inf.state, { size: 14, weight: 'bold', fill: STATE_FILL[inf.state] }),
  ].join('\n');
}

function noData(inf: Inference, m: number, top: number): string {
  const lines = [
    `The collector on ${clip(inf.collector, 40)} has seen no traffic since it started.`,
    `Daemons report every ${formatNumber(1 / inf.params.updateHz)} s; ${formatParams(inf.params)}.`,
    'Check that the VMs are sending and that their daemons are linked to the collector.',
    `Computed at ${inf.at}.`,
  ];
  return [
    `<rect x="${m}" y="${top}" width="${760 - 2 * m}" height="${300 - top - m}" rx="10" fill="#f6f3ea" stroke="#d8cfae"/>`,
    text(380, top + 52, 'No data yet', { size: 24, weight: 'bold', anchor: 'middle', fill: '#7a5a00' }),
    ...lines.map((l, i) => text(380, top + 92 + i * 22, l, { size: 13, anchor: 'middle', fill: '#444444' })),
  ].join('\n');
}

function topologyLegend(inf: Inference, look: Look, prefix: string, y0: number): { svg: string; bottom: number } {
  const out: string[] = [];
  const vms = look.groups.reduce((s, g) => s + g.vms.length, 0);
  const diff = pending(inf);
  const edges = inf.topology.edges.length + (diff?.added.length ?? 0);
  let y = y0 + 8;
  const line = (s: string, o: { bold?: boolean; fill?: string } = {}) => {
    out.push(text(0, y, s, { size: 11, fill: o.fill ?? '#333333', ...(o.bold ? { weight: 'bold' as const } : {}) }));
    y += 16;
  };
  const settled = inf.settledAt === null ? 'never settled' : `settled at ${inf.settledAt}`;
  line(`${plural(vms, 'VM')} on ${plural(look.groups.filter((g) => g.host !== undefined).length, 'host')}, ${plural(inf.topology.edges.length, 'edge')}; ${plural(inf.changes, 'change')}, this one ${settled}`, { bold: true });
  line(`${formatParams(inf.params)}; computed at ${inf.at}`);
  if (inf.state === 'idle') line('Idle: no traffic in the window; the last settled topology stands.', { fill: STATE_FILL.idle });
  if (prefix) line(`VM labels leave out the prefix ${prefix} that all VMs share.`, { fill: '#666666' });

  // Edge samples as wide as the picture draws them; as opaque as a lone edge, or they would vanish beside 2000 others.
  y += 6;
  let x = 0;
  for (const i of [0.25, 0.5, 1]) {
    out.push(`<path d="M ${x} ${n(y)} h 34" stroke="${EDGE}" stroke-width="${n(edgeWidth(i, vms))}" stroke-opacity="${n(edgeOpacity(i, 1))}" stroke-linecap="round"/>`);
    out.push(text(x + 46, y, `intensity ${i.toFixed(2)}`, { size: 10, baseline: 'middle', fill: '#333333' }));
    x += 140;
  }
  if (edges > 40) out.push(text(x, y, '(fainter where many overlap)', { size: 10, baseline: 'middle', fill: '#666666' }));
  y += 18;
  if (diff) {
    out.push(`<path d="M 0 ${n(y)} h 34" stroke="${APPEARING}" stroke-width="2.5" stroke-dasharray="${APPEARING_DASH}"/>`, text(46, y, 'appearing (not yet settled)', { size: 10, baseline: 'middle' }));
    out.push(`<path d="M 210 ${n(y)} h 34" stroke="${LEAVING}" stroke-width="2.5" stroke-dasharray="${LEAVING_DASH}"/>`, text(256, y, 'disappearing', { size: 10, baseline: 'middle' }));
    y += 18;
  }

  // Host swatches, three to a row; a long tail is counted, not listed.
  const SHOWN = 24;
  y += 4;
  look.groups.slice(0, SHOWN).forEach((g, i) => {
    const cx = (i % 3) * 180;
    const cy = y + Math.floor(i / 3) * 16;
    out.push(`<rect x="${cx}" y="${n(cy - 5)}" width="10" height="10" rx="2" fill="${look.colours.get(g.host)!}"/>`);
    out.push(text(cx + 15, cy, `${clip(g.host ?? 'host unknown', 24)} (${plural(g.vms.length, 'VM')})`, { size: 10, baseline: 'middle', fill: '#333333', tip: g.host ?? 'host unknown' }));
  });
  y += Math.ceil(Math.min(look.groups.length, SHOWN) / 3) * 16;
  if (look.groups.length > SHOWN) line(`and ${look.groups.length - SHOWN} more hosts`, { fill: '#666666' });
  return { svg: out.join('\n'), bottom: y };
}
