import { isUtf8 } from 'node:buffer';
import { diagnostic, DiagnosticSink, type Diagnostic, type Span } from '../diag/diagnostic.js';
import { Msg } from '../diag/messages.js';
import { SourceFile } from '../diag/source.js';
import type { State } from '../model/state.js';
import type { Block, HostDecl, Program, Statement } from './ast.js';
import { damagedDeltaHeader, deltaBase } from './delta.js';
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

/**
 * Where UTF-8 first goes wrong (only asked once `isUtf8` has said it does):
 * stray continuation bytes, truncated sequences, overlong forms, surrogates
 * and code points past U+10FFFF all count, as they do for `isUtf8`.
 */
function firstInvalidUtf8(bytes: Uint8Array): number {
  let i = 0;
  while (i < bytes.length) {
    const b = bytes[i]!;
    if (b < 0x80) {
      i++;
      continue;
    }
    let need: number;
    let lo = 0x80;
    let hi = 0xbf;
    if (b >= 0xc2 && b <= 0xdf) need = 1;
    else if (b >= 0xe0 && b <= 0xef) {
      need = 2;
      if (b === 0xe0) lo = 0xa0; // overlong
      if (b === 0xed) hi = 0x9f; // surrogates
    } else if (b >= 0xf0 && b <= 0xf4) {
      need = 3;
      if (b === 0xf0) lo = 0x90; // overlong
      if (b === 0xf4) hi = 0x8f; // past U+10FFFF
    } else return i;
    for (let k = 1; k <= need; k++) {
      const c = bytes[i + k];
      if (c === undefined || c < (k === 1 ? lo : 0x80) || c > (k === 1 ? hi : 0xbf)) return i;
    }
    i += need + 1;
  }
  return -1;
}

/** Turns raw bytes into a SourceFile, or explains why they are not a program's text. */
/**
 * Why bytes are not text, in the words decode's diagnostics use, for inputs
 * that are not programs (gen's requirements); undefined when they are text.
 */
export function notText(bytes: Uint8Array): string | undefined {
  const nul = bytes.indexOf(0);
  if (nul !== -1) return `this looks like a binary file (NUL byte at offset ${nul})`;
  if (isUtf8(bytes)) return undefined;
  const at = Math.max(0, firstInvalidUtf8(bytes));
  return `the file is not valid UTF-8 (bad byte 0x${bytes[at]!.toString(16).toUpperCase().padStart(2, '0')} at offset ${at})`;
}

export function decode(name: string, bytes: Uint8Array): { file: SourceFile; diagnostics: Diagnostic[] } {
  const empty = new SourceFile(name, '');
  const sink = new DiagnosticSink(empty);
  if (bytes.length > MAX_FILE_BYTES) {
    sink.report(Msg.FileTooLarge, undefined, [bytes.length, MAX_FILE_BYTES]);
    return { file: empty, diagnostics: sink.finish() };
  }
  const nul = bytes.indexOf(0);
  if (nul !== -1) {
    const { file, span } = byteAt(name, bytes, nul);
    return { file: empty, diagnostics: [diagnostic(Msg.BinaryFile, file, span, [nul])] };
  }
  if (!isUtf8(bytes)) {
    // isUtf8 and this scan agree on what is valid; if they ever did not, still say something true.
    const at = Math.max(0, firstInvalidUtf8(bytes));
    const { file, span } = byteAt(name, bytes, at);
    return { file: empty, diagnostics: [diagnostic(Msg.InvalidUtf8, file, span, [bytes[at]!.toString(16).toUpperCase().padStart(2, '0'), at])] };
  }
  return { file: new SourceFile(name, withoutBom(utf8(bytes, bytes.length))), diagnostics: [] };
}

function utf8(bytes: Uint8Array, length: number): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, length).toString('utf8');
}

/** A byte-order mark is an editor's habit, not part of the program. */
function withoutBom(text: string): string {
  return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
}

/**
 * Where a bad byte is, as line and column: a text editor shows no byte
 * offsets. The file is decoded leniently (each bad sequence becomes U+FFFD),
 * which decodes the bytes before the bad one exactly as the whole would,
 * and only up to the end of the bad byte's line, all its excerpt shows (not
 * the rest of what may be a large binary file).
 */
function byteAt(name: string, bytes: Uint8Array, at: number): { file: SourceFile; span: Span } {
  const start = withoutBom(utf8(bytes, at)).length;
  const ends = [bytes.indexOf(10, at), bytes.indexOf(13, at)].filter((i) => i !== -1);
  return { file: new SourceFile(name, withoutBom(utf8(bytes, ends.length ? Math.min(...ends) : bytes.length))), span: { start, end: start + 1 } };
}

function parseFile(file: SourceFile, sink: DiagnosticSink, visit: (s: Statement) => void) {
  if (file.text.trim() === '') {
    sink.report(Msg.EmptyFile, undefined);
    return { bounds: undefined, begun: false, comments: [], complete: false };
  }
  const scanner = new Scanner(sink);
  const { bounds, begun, incomplete } = parse(scanner, sink, visit);
  const ok = !scanner.abandoned;
  return { bounds: ok ? bounds : undefined, begun: ok && begun, comments: scanner.comments, complete: ok && begun && !incomplete };
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
 * `base` is where evaluation starts: the live state, for a saved plan.
 */
export function compileSource(file: SourceFile, options: { base?: State } = {}): Compiled {
  const sink = new DiagnosticSink(file);
  const damaged = damagedDeltaHeader(file.text);
  if (damaged) sink.report(Msg.DamagedPlanHeader, damaged);
  // A saved plan checked on its own (validate, fmt) cannot know what its deletions refer to.
  const base = options.base ?? (deltaBase(file.text) === undefined && !damaged ? undefined : 'unknown');
  const evaluator = new Evaluator(sink, base);
  const { begun, complete } = parseFile(file, sink, evaluator.visit);
  const state = evaluator.finish(complete);
  return { file, state: begun ? state : undefined, diagnostics: sink.finish() };
}

export function compileText(name: string, text: string): Compiled {
  return compileSource(new SourceFile(name, text));
}
