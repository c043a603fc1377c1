import os from 'node:os';

/**
 * Rows as lines of aligned columns. `align` has a letter a column, `l` or
 * `r` (right, for figures); columns past it are right-aligned.
 */
export function aligned(rows: readonly (readonly string[])[], align: string): string[] {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => r[i]?.length ?? 0))) ?? [];
  return rows.map((r) => r.map((c, i) => (align[i] === 'l' ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ').trimEnd());
}

/** Where the figures came from: they mean little without the machine and its load. */
export function machine(): string {
  return `Node ${process.version}, ${process.platform} ${process.arch}, ${os.cpus().length} CPUs, load ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`;
}

export interface ReportSection {
  title: string;
  setup: string[];
  /** name, value, baseline, ratio to the baseline */
  rows: [string, string, string, string][];
}

/** A sectioned benchmark report: each section's setup and its figures beside their same-run baselines, then every target met or not. */
export function renderReport(heading: string, sections: readonly ReportSection[], targets: readonly { pass: boolean; name: string; detail: string }[]): string {
  const out = [`${heading}: ${machine()}`];
  for (const s of sections) out.push('', `## ${s.title}`, '', ...s.setup, '', ...aligned(s.rows, 'lrlr').map((l) => `  ${l}`));
  if (targets.length > 0) out.push('', 'targets');
  for (const t of targets) out.push(`  ${t.pass ? 'PASS' : 'FAIL'}  ${t.name}: ${t.detail}`);
  return out.join('\n') + '\n';
}
