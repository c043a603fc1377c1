import type { Inference } from '../types.js';
import { MONO_ADVANCE, n, text, title, type Look, type Panel } from './svg-kit.js';
import { formatNumber, formatRate } from './units.js';

/**
 * The traffic load matrix as a heat map: a row per source VM, a column per
 * destination, in the circle's order (by host) so each host's own traffic
 * forms a block on the diagonal. The colour scale is logarithmic: BSP
 * traffic, background noise and the threshold's margin lie decades apart,
 * and a linear scale would paint all but the strongest pairs the same.
 */

/** Viridis at 0, ¼, ½, ¾ and 1: perceptually even, readable in grey and by most colour-blind readers. */
const RAMP: Array<[number, number, number]> = [
  [68, 1, 84],
  [59, 82, 139],
  [33, 145, 140],
  [94, 201, 98],
  [253, 231, 37],
];
/** The scale spans at most this many decades below the most intense pair; weaker pairs take the lowest colour. */
const DECADES = 4;
const EMPTY = '#f1f1f1';
const SELF = '#e3e3e3';

export function rampColour(t: number): string {
  const x = Math.min(1, Math.max(0, Number.isFinite(t) ? t : 0)) * (RAMP.length - 1);
  const i = Math.min(RAMP.length - 2, Math.floor(x));
  const f = x - i;
  const [a, b] = [RAMP[i]!, RAMP[i + 1]!];
  const c = a.map((v, k) => Math.round(v + (b[k]! - v) * f));
  return '#' + c.map((v) => v.toString(16).padStart(2, '0')).join('');
}

export interface LogScale {
  lo: number;
  hi: number;
  /** Whether some pairs are below `lo` and share its colour. */
  clipped: boolean;
  /** 0 at lo, 1 at hi. */
  at(v: number): number;
}

export function logScale(values: readonly number[]): LogScale | undefined {
  const positive = values.filter((v) => v > 0 && Number.isFinite(v));
  if (positive.length === 0) return undefined;
  const hi = Math.max(...positive);
  const min = Math.min(...positive);
  let lo = Math.max(min, hi / 10 ** DECADES);
  // One value, or all equal: a decade below keeps the scale a scale.
  if (lo >= hi) lo = hi / 10;
  const span = Math.log10(hi) - Math.log10(lo);
  return { lo, hi, clipped: min < lo, at: (v) => (Math.log10(Math.max(v, lo)) - Math.log10(lo)) / span };
}

export function heatmapPanel(inf: Inference, look: Look): Panel {
  const vms = look.groups.flatMap((g) => g.vms);
  const scale = logScale(inf.matrix.map((m) => m.bytesPerS));
  const heading = text(0, 16, `Traffic matrix: bytes/s over the ${formatNumber(inf.params.windowS)} s window`, { size: 14, weight: 'bold' });
  if (!scale || vms.length === 0) {
    const msg = inf.state === 'idle' ? 'No traffic in the window: the VMs are quiet (a compute phase?)' : 'No traffic in the window';
    return { svg: [heading, `<rect x="0" y="30" width="400" height="120" rx="8" fill="${EMPTY}"/>`, text(200, 90, msg, { size: 13, anchor: 'middle', fill: '#555555', baseline: 'middle' })].join('\n'), width: 400, height: 160 };
  }

  const count = vms.length;
  const cell = Math.min(36, Math.max(6, Math.floor(460 / count)));
  const font = Math.min(11, Math.max(5.5, cell * 0.75));
  // -45° reads more easily; past 16 columns the labels would overlap, so they stand upright.
  const slant = count <= 16;
  const labelW = look.longest * MONO_ADVANCE * font + 4;
  const colH = slant ? labelW * Math.SQRT1_2 + font : labelW;
  const gx = 18 + labelW + 12;
  const gy = 28 + 16 + colH + 12;
  const grid = cell * count;
  const index = new Map(vms.map((v, i) => [v, i]));
  const out = [heading];

  out.push(text(gx + grid / 2, 40, 'destination VM', { size: 11, anchor: 'middle', fill: '#444444' }));
  out.push(text(10, gy + grid / 2, 'source VM', { size: 11, anchor: 'middle', fill: '#444444', rotate: -90 }));
  out.push(`<rect x="${n(gx)}" y="${n(gy)}" width="${n(grid)}" height="${n(grid)}" fill="${EMPTY}"/>`);
  for (let i = 0; i < count; i++) out.push(`<rect x="${n(gx + i * cell)}" y="${n(gy + i * cell)}" width="${n(cell)}" height="${n(cell)}" fill="${SELF}"/>`);

  const inset = cell >= 12 ? 0.5 : 0;
  for (const m of inf.matrix) {
    const r = index.get(m.src);
    const c = index.get(m.dst);
    if (r === undefined || c === undefined || !(m.bytesPerS > 0)) continue;
    const tip = `${m.src} → ${m.dst}: ${formatRate(m.bytesPerS)}, ${formatNumber(m.framesPerS)} frames/s`;
    out.push(`<rect x="${n(gx + c * cell + inset)}" y="${n(gy + r * cell + inset)}" width="${n(cell - 2 * inset)}" height="${n(cell - 2 * inset)}" fill="${rampColour(scale.at(m.bytesPerS))}">${title(tip)}</rect>`);
  }

  // Host boundaries across the grid, and a strip of each host's colour along both axes.
  let k = 0;
  for (const g of look.groups) {
    const colour = look.colours.get(g.host)!;
    const from = k * cell;
    const len = g.vms.length * cell;
    const tip = title(`host ${g.host ?? 'unknown'}`);
    out.push(`<rect x="${n(gx - 7)}" y="${n(gy + from)}" width="5" height="${n(len)}" fill="${colour}">${tip}</rect>`);
    out.push(`<rect x="${n(gx + from)}" y="${n(gy - 7)}" width="${n(len)}" height="5" fill="${colour}">${tip}</rect>`);
    k += g.vms.length;
    if (k < count) {
      const at = k * cell;
      out.push(`<path d="M ${n(gx)} ${n(gy + at)} h ${n(grid)} M ${n(gx + at)} ${n(gy)} v ${n(grid)}" stroke="#ffffff" stroke-width="1.5"/>`);
    }
  }

  const rows = vms.map((v, i) => text(gx - 10, gy + (i + 0.5) * cell, look.labels.get(v)!, { size: font, anchor: 'end', mono: true, baseline: 'middle', tip: v }));
  const columns = vms.map((v, i) => text(gx + (i + 0.5) * cell, gy - 10, look.labels.get(v)!, { size: font, mono: true, baseline: 'middle', rotate: slant ? -45 : -90, tip: v }));
  out.push('<g class="heatmap-rows">', ...rows, '</g>', '<g class="heatmap-columns">', ...columns, '</g>');

  const legend = colourLegend(scale, gx + grid + 22, gy, Math.min(Math.max(grid, 160), 260));
  out.push(legend.svg);
  // At least as wide as the heading.
  return { svg: out.join('\n'), width: Math.max(400, gx + grid + 22 + legend.width), height: Math.max(gy + grid, legend.bottom) + 12 };
}

function colourLegend(scale: LogScale, x: number, y: number, height: number): { svg: string; width: number; bottom: number } {
  const top = y + 14;
  const stops = RAMP.map((_, i) => `<stop offset="${n(i / (RAMP.length - 1))}" stop-color="${rampColour(i / (RAMP.length - 1))}"/>`);
  const out = [
    `<defs><linearGradient id="vttif-ramp" x1="0" y1="1" x2="0" y2="0">${stops.join('')}</linearGradient></defs>`,
    text(x, y, 'bytes/s, log scale', { size: 10, fill: '#444444' }),
    `<rect x="${n(x)}" y="${n(top)}" width="12" height="${n(height)}" fill="url(#vttif-ramp)"/>`,
  ];
  const ticks: Array<[number, string]> = [[scale.hi, formatRate(scale.hi)], [scale.lo, (scale.clipped ? '≤ ' : '') + formatRate(scale.lo)]];
  for (let p = Math.ceil(Math.log10(scale.lo)); 10 ** p < scale.hi; p++) {
    const ypos = top + height * (1 - scale.at(10 ** p));
    // A decade too close to an end would print over its label.
    if (ypos - top > 12 && top + height - ypos > 12) ticks.push([10 ** p, formatRate(10 ** p)]);
  }
  for (const [v, label] of ticks) {
    const ypos = top + height * (1 - scale.at(v));
    out.push(`<path d="M ${n(x + 12)} ${n(ypos)} h 4" stroke="#444444"/>`, text(x + 19, ypos, label, { size: 9, baseline: 'middle', fill: '#333333' }));
  }
  const sw = top + height + 12;
  out.push(`<rect x="${n(x)}" y="${n(sw)}" width="12" height="12" fill="${EMPTY}" stroke="#cccccc"/>`, text(x + 19, sw + 6, 'no traffic', { size: 9, baseline: 'middle', fill: '#333333' }));
  return { svg: out.join('\n'), width: 100, bottom: sw + 14 };
}
