import { countErrors, DiagnosticSink, type Diagnostic } from '../../src/diag/diagnostic.js';
import { SourceFile } from '../../src/diag/source.js';
import type { Program } from '../../src/lang/ast.js';
import { compileText, parseSource } from '../../src/lang/compile.js';
import type { State } from '../../src/model/state.js';

/** Small helpers that keep each test to a few lines (Langium's parseHelper idea). */

export function sinkFor(text: string): DiagnosticSink {
  return new DiagnosticSink(new SourceFile('t.vnet', text));
}

/** Compiles, and fails the test with the rendered diagnostics if there is any error. */
export function stateOf(text: string): State {
  const r = compileText('t.vnet', text);
  const errors = r.diagnostics.filter((d) => d.severity === 'error');
  if (errors.length || !r.state) throw new Error(`expected no errors, got:\n${errors.map((d) => `${d.code} ${d.message}`).join('\n')}`);
  return r.state;
}

export function programOf(text: string): Program {
  const r = parseSource(new SourceFile('t.vnet', text));
  if (!r.syntaxOk || !r.program) throw new Error(`expected a clean parse, got:\n${r.diagnostics.map((d) => `${d.code} ${d.message}`).join('\n')}`);
  return r.program;
}

export function diagnosticsOf(text: string): Diagnostic[] {
  return compileText('t.vnet', text).diagnostics;
}

/** `code@line:col` for each diagnostic: compact, and exact about where. */
export function codesOf(text: string): string[] {
  return diagnosticsOf(text).map((d) => {
    const p = d.span ? d.file.position(d.span.start) : undefined;
    return p ? `${d.code}@${p.line}:${p.column}` : d.code;
  });
}

export function errorCount(text: string): number {
  return countErrors(diagnosticsOf(text));
}

/** Wraps statements in a program with the usual hosts. */
export function program(body: string, hosts = 'HOST u AT proxy 5000 eth0\nHOST u AT h1 5000 vmnet1\nHOST u AT h2 5000 vmnet1'): string {
  return `BEGIN\n${hosts}\n${body}\nEND\n`;
}
