import { isUtf8 } from 'node:buffer';
import { DiagnosticSink, type Diagnostic, type Span } from '../diag/diagnostic.js';
import { Msg } from '../diag/messages.js';
import { SourceFile } from '../diag/source.js';
import type { State } from '../model/state.js';
import type { Block, HostDecl, Program, Statement } from './ast.js';
import { Evaluator } from './evaluate.js';
import { parse } from './parser.js';
import { Scanner } from './scanner.js';

/**
 * The language pipeline, text → tokens → AST → State, and the checks on the
 * raw bytes that come first so that no input reaches a stage it would break.
 */

/** Above this a file is refused before it is read; about six million lines. */
export const MAX_FILE_BYTES = 256 * 1024 * 1024;

export interface Parsed {
  file: SourceFile;
  /** Present unless the text was not a program at all. */
  program: Program | undefined;
  comments: Span[];
  diagnostics: Diagnostic[];
  /** No syntax errors: the AST is exactly the text (what the formatter needs). */
  syntaxOk: boolean;
}

export interface Compiled {
  file: SourceFile;
  /** The desired state; present when there is a program, meaningful when there are no errors. */
  state: State | undefined;
  diagnostics: Diagnostic[];
}

function firstInvalidUtf8(bytes: Uint8Array): number {
  let i = 0;
  while (i < bytes.length) {
    const b = bytes[i]!;
    const need = b < 0x80 ? 0 : b >= 0xc2 && b < 0xe0 ? 1 : b >= 0xe0 && b < 0xf0 ? 2 : b >= 0xf0 && b < 0xf5 ? 3 : -1;
    if (need < 0) return i;
    for (let k = 1; k <= need; k++) {
      const c = bytes[i + k];
      if (c === undefined || (c & 0xc0) !== 0x80) return i;
    }
    i += need + 1;
  }
  return -1;
}

/** Turns raw bytes into a SourceFile, or explains why they are not a program's text. */
export function decode(name: string, bytes: Uint8Array): { file: SourceFile; diagnostics: Diagnostic[] } {
  const empty = new SourceFile(name, '');
  const sink = new DiagnosticSink(empty);
  if (bytes.length > MAX_FILE_BYTES) {
    sink.report(Msg.FileTooLarge, undefined, [bytes.length, MAX_FILE_BYTES]);
    return { file: empty, diagnostics: sink.finish() };
  }
  const nul = bytes.indexOf(0);
  if (nul !== -1) {
    sink.report(Msg.BinaryFile, undefined, [nul]);
    return { file: empty, diagnostics: sink.finish() };
  }
  if (!isUtf8(bytes)) {
    const at = firstInvalidUtf8(bytes);
    sink.report(Msg.InvalidUtf8, undefined, [bytes[at]!.toString(16).toUpperCase().padStart(2, '0'), at]);
    return { file: empty, diagnostics: sink.finish() };
  }
  let text = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString('utf8');
  // A byte-order mark is an editor's habit, not part of the program.
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  return { file: new SourceFile(name, text), diagnostics: [] };
}

function parseFile(file: SourceFile, sink: DiagnosticSink, visit: (s: Statement) => void) {
  if (file.text.trim() === '') {
    sink.report(Msg.EmptyFile, undefined);
    return { bounds: undefined, comments: [], complete: false };
  }
  const scanner = new Scanner(sink);
  const { bounds, incomplete } = parse(scanner, sink, visit);
  return { bounds: scanner.abandoned ? undefined : bounds, comments: scanner.comments, complete: !incomplete && !scanner.abandoned };
}

/** Parses into a tree, without checking meaning: what the formatter needs. */
export function parseSource(file: SourceFile): Parsed {
  const sink = new DiagnosticSink(file);
  const hosts: HostDecl[] = [];
  const blocks: Block[] = [];
  const { bounds, comments } = parseFile(file, sink, (s) => {
    if (s.kind === 'host') hosts.push(s);
    else if (s.kind === 'block') blocks.push({ ...s, head: { start: s.start, end: s.end }, statements: [] });
    else {
      const open = blocks[blocks.length - 1]!;
      open.statements.push(s);
      open.end = s.end;
    }
  });
  const diagnostics = sink.finish();
  const program = bounds && { begin: bounds.begin, hosts, blocks, end: bounds.end };
  // Scanning and parsing are the only stages here, so any error is a syntax error.
  return { file, program, comments, diagnostics, syntaxOk: program !== undefined && sink.errorCount === 0 };
}

/**
 * Parses and evaluates: what `validate`, `plan` and everything after build
 * on. Statements stream from the parser into the evaluator; no tree is kept.
 */
export function compileSource(file: SourceFile): Compiled {
  const sink = new DiagnosticSink(file);
  const evaluator = new Evaluator(sink);
  const { bounds, complete } = parseFile(file, sink, evaluator.visit);
  const state = evaluator.finish(complete && bounds !== undefined);
  return { file, state: bounds ? state : undefined, diagnostics: sink.finish() };
}

export function compileText(name: string, text: string): Compiled {
  return compileSource(new SourceFile(name, text));
}
