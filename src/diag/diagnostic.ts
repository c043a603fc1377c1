import { format, Msg, type MessageArg, type MessageDef, type Severity } from './messages.js';
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
  /** On the too-many-errors note: how many errors it stands for. */
  omitted?: number;
}

export interface DiagOptions {
  hint?: string | undefined;
  related?: Related[];
}

export function diagnostic(
  def: MessageDef,
  file: SourceFile,
  span: Span | undefined,
  args: readonly MessageArg[] = [],
  opts: DiagOptions = {},
): Diagnostic {
  const d: Diagnostic = { code: def.code, severity: def.severity, message: format(def.text, args), file };
  if (span) d.span = span;
  const hint = opts.hint ?? (def.hint === undefined ? undefined : format(def.hint, args));
  if (hint) d.hint = hint;
  if (opts.related?.length) d.related = opts.related;
  return d;
}

/** Errors in the file: the listed ones, plus those a too-many-errors note stands for. */
export function countErrors(diags: readonly Diagnostic[]): number {
  let n = 0;
  for (const d of diags) if (d.severity === 'error') n += d.code === Msg.TooManyErrors.code ? (d.omitted ?? 0) : 1;
  return n;
}

export function countWarnings(diags: readonly Diagnostic[]): number {
  let n = 0;
  for (const d of diags) if (d.severity === 'warning') n++;
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
  private stoppedAt: number | undefined;

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

  report(def: MessageDef, span: Span | undefined, args: readonly (string | number)[] = [], opts: DiagOptions = {}): undefined {
    this.add(diagnostic(def, this.file, span, args, opts));
    return undefined;
  }

  /**
   * Takes back a report that a later stage found to be the wrong reading of
   * the text and reports better itself, so one mistake gets one diagnostic.
   */
  withdraw(def: MessageDef, span: Span): void {
    // The report is recent, so it is looked for from the end.
    for (let i = this.list.length - 1; i >= 0; i--) {
      const d = this.list[i]!;
      if (d.code === def.code && d.span?.start === span.start && d.span.end === span.end) {
        this.list.splice(i, 1);
        if (d.severity === 'error') this.errors--;
        return;
      }
    }
    // Not listed: it came past the cap, where errors are only counted.
    if (def.severity === 'error' && this.dropped > 0) this.dropped--;
  }

  /** Errors found but not kept (a stage that caps its own list says so here). */
  drop(count: number): void {
    this.dropped += count;
  }

  /** The scanner gave up reading at `offset`: what follows is unknown. */
  stop(offset: number): void {
    this.stoppedAt = offset;
  }

  get errorCount(): number {
    return this.errors + this.dropped;
  }

  get full(): boolean {
    return this.errors >= MAX_ERRORS;
  }

  /** Sorted diagnostics, with a closing note when some were left out. */
  finish(): Diagnostic[] {
    const out = sortDiagnostics(this.list);
    if (this.stoppedAt !== undefined || this.dropped > 0) {
      const more = this.dropped > 0 ? `${this.dropped} more not shown` : '';
      const what = this.stoppedAt !== undefined ? `stopped reading the file here${more ? `; ${more}` : ''}` : more;
      const span = this.stoppedAt === undefined ? undefined : { start: this.stoppedAt, end: this.stoppedAt };
      const note = diagnostic(Msg.TooManyErrors, this.file, span, [what]);
      note.omitted = this.dropped;
      out.push(note);
    }
    return out;
  }
}
