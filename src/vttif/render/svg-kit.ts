import { visible } from '../../diag/render.js';
import type { HostGroup } from './vms.js';

/** What the SVG panels share: escaping, text, colours, and VM labels short enough to fit. */

/**
 * Text for XML content and attribute values. Names come from the network:
 * markup characters are escaped, and characters XML 1.0 forbids (controls,
 * lone surrogates, U+FFFE/U+FFFF) are replaced, so the file stays well formed
 * whatever a MAC or a machine name holds.
 */
export function esc(s: string): string {
  return visible(s)
    .replace(/[\p{Cs}\ufffe\uffff]/gu, '\ufffd')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');
}

/** One panel of the picture, drawn from (0, 0), and the room it takes. */
export interface Panel {
  svg: string;
  width: number;
  height: number;
}

/** What both panels draw the same way: VMs in one order (by host), hosts in one colour each, VMs under one label each. */
export interface Look {
  groups: HostGroup[];
  colours: Map<string | undefined, string>;
  labels: Map<string, string>;
  /** The longest label, in characters. */
  longest: number;
}

/** Coordinates with at most two decimals: smaller files, same picture. */
export const n = (x: number): string => String(Math.round(x * 100) / 100);

export const MONO = 'ui-monospace, Menlo, Consolas, monospace';
export const SANS = 'system-ui, Helvetica, Arial, sans-serif';
/** A monospace glyph is about this fraction of the font size wide: enough to reserve room for labels. */
export const MONO_ADVANCE = 0.62;

export interface TextOptions {
  size: number;
  anchor?: 'start' | 'middle' | 'end';
  mono?: boolean;
  fill?: string;
  weight?: 'bold';
  /** Degrees, about (x, y). */
  rotate?: number;
  baseline?: 'middle' | 'hanging';
  /** A tooltip. */
  tip?: string;
}

export function text(x: number, y: number, content: string, o: TextOptions): string {
  const attrs = [
    `x="${n(x)}"`,
    `y="${n(y)}"`,
    `font-size="${n(o.size)}"`,
    `font-family="${o.mono ? MONO : SANS}"`,
    o.anchor && o.anchor !== 'start' ? `text-anchor="${o.anchor}"` : '',
    o.fill ? `fill="${o.fill}"` : '',
    o.weight ? `font-weight="${o.weight}"` : '',
    o.baseline ? `dominant-baseline="${o.baseline === 'middle' ? 'central' : 'hanging'}"` : '',
    o.rotate ? `transform="rotate(${n(o.rotate)} ${n(x)} ${n(y)})"` : '',
  ].filter(Boolean);
  return `<text ${attrs.join(' ')}>${esc(content)}${o.tip === undefined ? '' : title(o.tip)}</text>`;
}

export const title = (s: string): string => `<title>${esc(s)}</title>`;

/** Distinct, colour-blind-friendly first; further hosts walk the hue circle by the golden angle. */
const PALETTE = ['#0072b2', '#e69f00', '#009e73', '#cc79a7', '#56b4e9', '#d55e00', '#7f7f7f', '#b8a21a', '#6a3d9a', '#1b9e77'];

export function hostColours(groups: readonly HostGroup[]): Map<string | undefined, string> {
  const out = new Map<string | undefined, string>();
  let i = 0;
  for (const g of groups) {
    if (g.host === undefined) out.set(undefined, '#bbbbbb');
    else out.set(g.host, PALETTE[i] ?? `hsl(${n((i * 137.508) % 360)}, 55%, 45%)`), i++;
  }
  return out;
}

/** At most `max` characters, the last an ellipsis when cut; whole code points, so no surrogate is split. */
export function clip(s: string, max: number): string {
  const cps = [...s];
  return cps.length > max ? cps.slice(0, max - 1).join('') + '…' : s;
}

const MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;

export interface VmLabels {
  /** VM → its label. */
  of: Map<string, string>;
  /** The octets every label leaves out, with their trailing colon; '' when none. */
  prefix: string;
  /** The longest label, in characters. */
  longest: number;
}

/**
 * The VMs of one deployment usually share their first octets (one OUI, one
 * allocator), which would fill a small picture with the same characters.
 * Labels drop the octets all VMs share, keeping at least the last two; the
 * legend says what was dropped. Anything that is not a MAC is shown whole,
 * cut at 20 characters (its tooltip has it all).
 */
export function vmLabels(vms: readonly string[]): VmLabels {
  const of = new Map<string, string>();
  let prefix = '';
  if (vms.length > 0 && vms.every((v) => MAC.test(v))) {
    const octets = vms.map((v) => v.split(':'));
    let common = 0;
    while (common < 4 && octets.every((o) => o[common] === octets[0]![common])) common++;
    prefix = common ? octets[0]!.slice(0, common).join(':') + ':' : '';
    for (const [i, v] of vms.entries()) of.set(v, octets[i]!.slice(common).join(':'));
  } else {
    for (const v of vms) of.set(v, clip(v, 20));
  }
  const longest = Math.max(1, ...[...of.values()].map((l) => [...l].length));
  return { of, prefix, longest };
}
