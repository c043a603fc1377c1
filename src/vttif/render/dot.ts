import { visible } from '../../diag/render.js';
import type { Inference, TopologyEdge } from '../types.js';
import { APPEARING, EDGE, LEAVING } from './colours.js';
import { formatIntensity, formatParams, formatRate } from './units.js';
import { linkKey } from '../../model/state.js';
import { pending, sortedEdges, vmsByHost } from './vms.js';

/**
 * Graphviz DOT of the settled topology: VMs as nodes in one cluster per
 * host, edges as wide as they are intense. Everything is sorted, so the same
 * inference gives the same bytes and two snapshots diff line by line. A
 * settling inference also shows what is pending: appearing edges dashed,
 * disappearing ones dotted.
 */
export function renderDot(inf: Inference): string {
  const out = [
    'graph vttif {',
    `  graph [label=${q(...caption(inf))}, labelloc=t, fontname="sans-serif", fontsize=12];`,
    '  node [shape=box, style="rounded,filled", fillcolor="#f7f7f7", fontname="monospace", fontsize=10];',
    `  edge [fontname="sans-serif", fontsize=9, color="${EDGE}"];`,
  ];
  for (const g of vmsByHost(inf)) {
    const nodes = g.vms.map((vm) => `${q(vm)} [label=${q(vm)}, tooltip=${q(`${vm} on ${g.host ?? 'an unknown host'}`)}];`);
    if (g.host === undefined) out.push(...nodes.map((n) => '  ' + n));
    else out.push(`  subgraph ${q(`cluster ${g.host}`)} {`, `    label=${q(g.host)}; style="rounded"; color="#8899aa";`, ...nodes.map((n) => '    ' + n), '  }');
  }
  const diff = pending(inf);
  const leaving = new Set((diff?.removed ?? []).map((e) => linkKey(e.a, e.b)));
  for (const e of sortedEdges(inf.topology.edges)) out.push('  ' + edge(e, leaving.has(linkKey(e.a, e.b)) ? 'disappearing' : 'settled'));
  for (const e of diff?.added ?? []) out.push('  ' + edge(e, 'appearing'));
  out.push('}');
  return out.join('\n') + '\n';
}

/** Width from 1 (at the threshold, near 0) to 6 (the most intense pair): strictly growing with intensity. */
export function penwidth(intensity: number): number {
  return 1 + 5 * Math.min(1, Math.max(0, intensity));
}

function edge(e: TopologyEdge, kind: 'settled' | 'appearing' | 'disappearing'): string {
  const style = kind === 'appearing' ? `, style=dashed, color="${APPEARING}"` : kind === 'disappearing' ? `, style=dotted, color="${LEAVING}"` : '';
  const label = formatIntensity(e.intensity) + (kind === 'appearing' ? ' new' : kind === 'disappearing' ? ' leaving' : '');
  const tip = `${e.a} -- ${e.b}: intensity ${formatIntensity(e.intensity)}, ${formatRate(e.bytesPerS)}${kind === 'settled' ? '' : `, ${kind}`}`;
  return `${q(e.a)} -- ${q(e.b)} [penwidth=${penwidth(e.intensity).toFixed(2)}, label=${q(label)}, tooltip=${q(tip)}${style}];`;
}

function caption(inf: Inference): string[] {
  const settled = inf.settledAt === null ? 'never settled' : `settled at ${inf.settledAt}`;
  const lines = [`VTTIF on ${inf.collector}: ${inf.state}, ${settled}`, `${formatParams(inf.params)}; at ${inf.at}`];
  if (inf.state === 'settling') lines.push('dashed: appearing (new), dotted: disappearing (leaving)');
  if (inf.state === 'no-data') lines.push('no traffic seen since the collector started');
  return lines;
}

/**
 * A DOT quoted string of one or more lines. Inside quotes only `"` and a
 * line-ending backslash are special to the parser, but labels give `\`
 * escapes (`\N`, `\G`, `\l`) a meaning, so backslashes are doubled. Control
 * characters, line breaks included, are made visible rather than passed on:
 * the only breaks are those between the lines given.
 */
function q(...lines: string[]): string {
  return '"' + lines.map((line) => visible(line).replace(/\\/g, '\\\\').replace(/"/g, '\\"')).join('\\n') + '"';
}
