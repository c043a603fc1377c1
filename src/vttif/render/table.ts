import { plain, visible, type Painter } from '../../diag/render.js';
import type { Inference, InferenceState, TopologyEdge } from '../types.js';
import { formatDuration, formatIntensity, formatParams, formatRate, intensityBar, plural, secondsBetween } from './units.js';
import { byName, hostOf, pending, sortedEdges, vmsByHost } from './vms.js';

/**
 * `vnetc infer` for a person at a terminal, in the manner of a NetFlow "top
 * talkers" view: a header with what produced the answer and how fresh it is,
 * the edges strongest first, what is about to change, and where each VM runs.
 * Every name is passed through `visible`: MACs and machine names come from
 * the network, and a control character must not reach the terminal.
 */
export function renderTable(inf: Inference, paint: Painter = plain): string {
  const out = header(inf, paint);
  if (inf.state === 'no-data') {
    out.push(
      '',
      'No traffic seen since the collector started: no daemon has reported a frame to or from a local VM.',
      paint.dim(`Daemons report every ${formatPeriod(inf.params.updateHz)}; check that the VMs are sending and that their daemons are linked to ${visible(inf.collector)}.`),
    );
    return out.join('\n');
  }
  if (inf.state === 'idle') out.push('', paint.dim(`No traffic in the window: the last settled topology stands (a compute phase is not a change).`));

  const diff = pending(inf);
  const rows: Row[] = byIntensity(inf.topology.edges).map((e) => ({ mark: ' ', edge: e }));
  if (diff) {
    // Appearing edges carry the window's figures, disappearing ones the settled topology's.
    for (const e of byIntensity(diff.added)) rows.push({ mark: '+', edge: e });
    for (const e of byIntensity(diff.removed)) rows.push({ mark: '-', edge: e });
  }
  out.push('');
  if (rows.length === 0) out.push('No edges.');
  else out.push(...edgeTable(inf, rows, diff !== undefined, paint));
  const hosts = hostSection(inf, paint);
  if (hosts.length) out.push('', ...hosts);
  return out.join('\n');
}

interface Row {
  /** ' ' settled, '+' appearing, '-' disappearing. */
  mark: ' ' | '+' | '-';
  edge: TopologyEdge;
}

const STATE_COLOUR: Record<InferenceState, keyof Painter> = { settled: 'green', settling: 'yellow', idle: 'cyan', 'no-data': 'yellow' };

function header(inf: Inference, paint: Painter): string[] {
  const settled = inf.settledAt === null ? 'never settled' : `settled ${ago(inf.settledAt, inf.at)}`;
  const sep = paint.dim('  ·  ');
  const first = [`${paint.bold(visible(inf.collector))}  ${paint[STATE_COLOUR[inf.state]](inf.state)}`, formatParams(inf.params), `${plural(inf.changes, 'change')}, ${settled}`];
  const groups = vmsByHost(inf);
  const vms = groups.reduce((sum, g) => sum + g.vms.length, 0);
  const hosts = groups.filter((g) => g.host !== undefined).length;
  const second = [`at ${visible(inf.at)}`, reporters(inf.reporters)];
  if (inf.state !== 'no-data') second.unshift(`${plural(vms, 'VM')} on ${plural(hosts, 'host')}, ${plural(inf.topology.edges.length, 'edge')}`);
  return [first.join(sep), paint.dim(second.join('  ·  '))];
}

function ago(when: string, now: string): string {
  const s = secondsBetween(when, now);
  return s === undefined ? `at ${visible(when)}` : `${formatDuration(s)} ago`;
}

function reporters(r: Record<string, number>): string {
  const names = Object.keys(r).sort(byName);
  if (names.length === 0) return 'no daemon has reported in the window';
  const oldest = names.reduce((a, b) => (r[b]! > r[a]! ? b : a));
  return `${plural(names.length, 'daemon')} reporting, oldest report ${formatDuration(r[oldest]!)} (${visible(oldest)})`;
}

function formatPeriod(hz: number): string {
  return hz > 0 && Number.isFinite(hz) ? formatDuration(1 / hz) : 'update period (not set)';
}

/** Strongest first, so the top of a long table is what matters; ties by (a, b) so the order is stable. */
function byIntensity(edges: readonly TopologyEdge[]): TopologyEdge[] {
  return sortedEdges(edges).sort((x, y) => y.intensity - x.intensity);
}

const BAR = 10;

function edgeTable(inf: Inference, rows: Row[], withMarks: boolean, paint: Painter): string[] {
  const cells = rows.map(({ mark, edge: e }) => {
    const ha = hostOf(inf, e.a);
    const hb = hostOf(inf, e.b);
    const where = ha !== undefined && ha === hb ? `${visible(ha)} (same host)` : `${visible(ha ?? '?')} — ${visible(hb ?? '?')}`;
    return { mark, edge: `${visible(e.a)} — ${visible(e.b)}`, intensity: formatIntensity(e.intensity), bar: intensityBar(e.intensity, BAR), rate: formatRate(e.bytesPerS), where };
  });
  const w = (k: 'edge' | 'rate') => Math.max(k === 'edge' ? 4 : 7, ...cells.map((c) => width(c[k])));
  const we = w('edge');
  const wr = w('rate');
  const lead = withMarks ? '  ' : '';
  const lines = [paint.dim(`  ${lead}${pad('EDGE', we)}  INTENSITY${' '.repeat(BAR - 4)}  ${padStart('BYTES/S', wr)}  HOSTS`)];
  for (const c of cells) {
    const mark = c.mark === '+' ? paint.green('+ ') : c.mark === '-' ? paint.red('- ') : lead;
    const bar = c.mark === '-' ? paint.dim(c.bar) : c.mark === '+' ? paint.green(c.bar) : paint.cyan(c.bar);
    const note = c.mark === '+' ? paint.green('  appearing') : c.mark === '-' ? paint.red('  disappearing') : '';
    lines.push(`  ${mark}${pad(c.edge, we)}  ${c.intensity} ${bar}  ${padStart(c.rate, wr)}  ${c.where}${note}`);
  }
  if (withMarks) lines.push('', paint.yellow('Settling:') + ' the window shows the + and - changes, not yet held long enough to be reported.');
  return lines;
}

function hostSection(inf: Inference, paint: Painter): string[] {
  const groups = vmsByHost(inf);
  if (groups.length === 0) return [];
  const names = groups.map((g) => (g.host === undefined ? '(host unknown)' : visible(g.host)));
  const wh = Math.max(...names.map(width));
  const lines = [paint.dim('  VMS BY HOST')];
  groups.forEach((g, i) => {
    // Four MACs to a line keeps a 64-VM host inside 100 columns.
    for (let k = 0; k < g.vms.length; k += 4) {
      const label = k === 0 ? pad(names[i]!, wh) : ' '.repeat(wh);
      lines.push(`    ${paint.bold(label)}  ${g.vms.slice(k, k + 4).map(visible).join('  ')}`);
    }
  });
  return lines;
}

const width = (s: string): number => [...s].length;
const pad = (s: string, n: number): string => s + ' '.repeat(Math.max(0, n - width(s)));
const padStart = (s: string, n: number): string => ' '.repeat(Math.max(0, n - width(s))) + s;
