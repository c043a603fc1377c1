import { format, Msg, type MessageDef, type Severity } from './messages.js';
import type { SourceFile } from './source.js';

/** Offsets into a SourceFile, end exclusive. */
export interface Span {
  start: number;
  end: number;
}

export interface Related {
  span: Span;
  message: string;
}

/**
 * A diagnostic is data: what, where, how bad. It is rendered in exactly one
 * place (render.ts), for people or for machines.
 */
export interface Diagnostic {
  code: string;
  severity: Severity;
  message: string;
  hint?: string;
  file: SourceFile;
  /** Absent for diagnostics about a file as a whole (unreadable, binary…). */
  span?: Span;
  related?: Related[];
}

export interface DiagOptions {
  hint?: string | undefined;
  related?: Related[];
}

export function diagnostic(
  def: MessageDef,
  file: SourceFile,
  span: Span | undefined,
  args: readonly (string | number)[] = [],
  opts: DiagOptions = {},
): Diagnostic {
  const d: Diagnostic = { code: def.code, severity: def.severity, message: format(def.text, args), file };
  if (span) d.span = span;
  const hint = opts.hint ?? (def.hint === undefined ? undefined : format(def.hint, args));
  if (hint) d.hint = hint;
  if (opts.related?.length) d.related = opts.related;
  return d;
}

export function countErrors(diags: readonly Diagnostic[]): number {
  let n = 0;
  for (const d of diags) if (d.severity === 'error') n++;
  return n;
}

/** Source order, then errors before warnings, so output reads top to bottom. */
export function sortDiagnostics(diags: Diagnostic[]): Diagnostic[] {
  return diags.sort(
    (a, b) =>
      (a.span?.start ?? -1) - (b.span?.start ?? -1) ||
      (a.severity === b.severity ? 0 : a.severity === 'error' ? -1 : 1) ||
      a.code.localeCompare(b.code),
  );
}

/** How many errors one file may report before the rest are summarised. */
export const MAX_ERRORS = 100;

/**
 * Collects a file's diagnostics and caps errors, so a file of garbage costs
 * a hundred diagnostics, not millions.
 */
export class DiagnosticSink {
  readonly list: Diagnostic[] = [];
  private errors = 0;
  private dropped = 0;

  constructor(readonly file: SourceFile) {}

  add(d: Diagnostic): void {
    if (d.severity === 'error') {
      if (this.errors >= MAX_ERRORS) {
        this.dropped++;
        return;
      }
      this.errors++;
    }
    this.list.push(d);
  }

  report(def: MessageDef, span: Span | undefined, args: readonly (string | number)[] = [], opts: DiagOptions = {}): void {
    this.add(diagnostic(def, this.file, span, args, opts));
  }

  get errorCount(): number {
    return this.errors + this.dropped;
  }

  get full(): boolean {
    return this.errors >= MAX_ERRORS;
  }

  /** Sorted diagnostics, with a closing note when some were dropped. */
  finish(): Diagnostic[] {
    const out = sortDiagnostics(this.list);
    if (this.dropped > 0) {
      out.push(diagnostic(Msg.TooManyErrors, this.file, undefined, [this.errorCount]));
    }
    return out;
  }
}
