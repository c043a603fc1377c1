import type { ChalkInstance } from 'chalk';
import { countErrors, countWarnings, type Diagnostic, type Span } from './diagnostic.js';
import type { SourceFile } from './source.js';
import { cells } from './width.js';

/** Colour functions the renderer uses; a ChalkInstance fits, and so does `plain`. */
export type Painter = Pick<ChalkInstance, 'red' | 'green' | 'yellow' | 'cyan' | 'bold' | 'dim' | 'blue'>;

const id = (s: string): string => s;
const identity: Record<keyof Painter, (s: string) => string> = {
  red: id,
  green: id,
  yellow: id,
  cyan: id,
  bold: id,
  dim: id,
  blue: id,
};
export const plain = identity as unknown as Painter;

/** Excerpts never show more than this many columns of a line. */
const WINDOW = 100;

function locate(file: SourceFile, span: Span | undefined): string {
  if (!span) return file.name;
  const p = file.position(span.start);
  return `${file.name}:${p.line}:${p.column}`;
}

/**
 * Excerpts echo the file to a terminal. Control and format characters (C0,
 * DEL, C1 such as CSI, bidi overrides) could garble it or disguise what the
 * line says, so each becomes one visible cell; tabs become one space, which
 * keeps the caret under the right column.
 */
export function visible(text: string): string {
  return text.replace(/\t/g, ' ').replace(/[\p{Cc}\p{Cf}\u2028\u2029]/gu, '\u00b7');
}

function excerpt(file: SourceFile, span: Span, paint: Painter, color: (s: string) => string): string[] {
  const start = file.position(span.start);
  const end = file.position(Math.max(span.start, span.end));
  const full = file.lineText(start.line);
  const lastCol = end.line === start.line ? end.column : full.length + 1;
  let from = 0;
  let to = full.length;
  if (full.length > WINDOW) {
    from = Math.max(0, start.column - 1 - Math.floor(WINDOW / 3));
    to = Math.min(full.length, from + WINDOW);
  }
  const pre = from > 0 ? '…' : '';
  const post = to < full.length ? '…' : '';
  const text = pre + visible(full.slice(from, to)) + post;
  const caretStart = start.column - 1 - from + pre.length;
  const units = Math.max(1, Math.min(lastCol, to + 1) - start.column);
  // Columns count code units; the caret goes by the cells the terminal draws.
  const width = Math.max(1, cells(text.slice(caretStart, caretStart + units)));
  const gutter = String(start.line);
  const pad = ' '.repeat(gutter.length);
  return [
    `${paint.blue(` ${gutter} |`)} ${text}`,
    `${paint.blue(` ${pad} |`)} ${' '.repeat(cells(text.slice(0, caretStart)))}${color('^' + '~'.repeat(width - 1))}`,
  ];
}

export function renderDiagnostic(d: Diagnostic, paint: Painter = plain): string {
  const color = d.severity === 'error' ? paint.red : paint.yellow;
  // Messages and hints may quote what a remote machine said (its shell's stderr, its log), which must not reach the terminal as control sequences.
  const lines = [`${paint.bold(locate(d.file, d.span))}: ${color(paint.bold(`${d.severity}[${d.code}]`))}: ${paint.bold(visible(d.message))}`];
  if (d.span) lines.push(...excerpt(d.file, d.span, paint, color));
  for (const r of d.related ?? []) {
    lines.push(`  ${paint.cyan('note')}: ${locate(d.file, r.span)}: ${visible(r.message)}`);
  }
  if (d.hint) lines.push(`  ${paint.cyan('hint')}: ${visible(d.hint)}`);
  return lines.join('\n');
}

export function renderDiagnostics(diags: readonly Diagnostic[], paint: Painter = plain): string {
  return diags.map((d) => renderDiagnostic(d, paint) + '\n').join('\n');
}

export function summary(files: number, diags: readonly Diagnostic[]): string {
  const errors = countErrors(diags);
  const warnings = countWarnings(diags);
  const plural = (n: number, w: string): string => `${n} ${w}${n === 1 ? '' : 's'}`;
  const what = files === 1 ? '1 file' : `${files} files`;
  if (errors === 0 && warnings === 0) return `${what} valid.`;
  if (errors === 0) return `${what} valid, with ${plural(warnings, 'warning')}.`;
  return `${plural(errors, 'error')}${warnings ? `, ${plural(warnings, 'warning')}` : ''} in ${what}.`;
}

// ── machines ────────────────────────────────────────────────────────────

export interface JsonDiagnostic {
  severity: string;
  code: string;
  message: string;
  hint: string | null;
  file: string;
  line: number | null;
  column: number | null;
  endLine: number | null;
  endColumn: number | null;
  related: { message: string; line: number; column: number; endLine: number; endColumn: number }[];
}

export function jsonDiagnostic(d: Diagnostic): JsonDiagnostic {
  const pos = (span: Span | undefined) => {
    if (!span) return { line: null, column: null, endLine: null, endColumn: null };
    const s = d.file.position(span.start);
    const e = d.file.position(span.end);
    return { line: s.line, column: s.column, endLine: e.line, endColumn: e.column };
  };
  return {
    severity: d.severity,
    code: d.code,
    message: d.message,
    hint: d.hint ?? null,
    file: d.file.name,
    ...pos(d.span),
    related: (d.related ?? []).map((r) => {
      const p = pos(r.span);
      return { message: r.message, line: p.line!, column: p.column!, endLine: p.endLine!, endColumn: p.endColumn! };
    }),
  };
}

/** Shaped after `terraform validate -json`; bump format_version on any breaking change. */
export function validateReport(diags: readonly Diagnostic[]) {
  const errorCount = countErrors(diags);
  return {
    format_version: '1.0',
    valid: errorCount === 0,
    errorCount,
    warningCount: countWarnings(diags),
    diagnostics: diags.map(jsonDiagnostic),
  };
}
