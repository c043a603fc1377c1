import { resolve } from 'node:path';
import { createTwoFilesPatch, formatPatch } from 'diff';
import type { Diagnostic } from '../src/diag/diagnostic.js';
import { renderDiagnostics, type Painter } from '../src/diag/render.js';
import { parseSource } from '../src/lang/compile.js';
import { format } from '../src/lang/format.js';
import { painterFor } from './color.js';
import { describeIoError, expandPaths, load, STDIN, UsageError, writeFileAtomic, type Io } from './io.js';

export interface FmtArgs {
  files: string[];
  write: boolean;
  check: boolean;
  diff: boolean;
  recursive: boolean;
  color: boolean | undefined;
}

/**
 * `vnetc fmt`, after terraform fmt: prints the canonical form; `--write`
 * rewrites files and lists them; `--check` lists files that are not canonical
 * and exits 3; `--diff` shows what would change. A file that does not parse
 * is reported and left alone (exit 1).
 */
export async function fmt(io: Io, args: FmtArgs): Promise<number> {
  if (args.write && args.check) throw new UsageError('--write and --check do not go together: --check only reports');
  if (args.write && args.files.includes(STDIN)) throw new UsageError('--write cannot rewrite standard input');
  const paths = await expandPaths(io, args.files.length ? args.files : ['.'], args.recursive);
  const out = painterFor(io, io.stdout, args.color);
  const err = painterFor(io, io.stderr, args.color);
  const problems: Diagnostic[] = [];
  let unreadable = false; // or unwritable: an I/O problem either way
  let changed = 0;

  for (const path of paths) {
    const loaded = await load(io, path);
    if (!loaded.ok) {
      unreadable ||= loaded.diagnostics.some((d) => d.code === 'VN1000');
      problems.push(...loaded.diagnostics);
      continue;
    }
    const parsed = parseSource(loaded.file);
    if (!parsed.syntaxOk || !parsed.program) {
      problems.push(...parsed.diagnostics);
      continue;
    }
    const before = loaded.file.text;
    const after = format(loaded.file, parsed.program, parsed.comments);
    const name = loaded.file.name;
    const differs = after !== before;
    if (differs) changed++;

    if (args.diff && differs) io.stdout.write(colorDiff(unifiedDiff(name, before, after), out));
    if (args.write) {
      if (differs) {
        try {
          await writeFileAtomic(resolve(io.cwd, path), after);
          io.stdout.write(name + '\n');
        } catch (e) {
          io.stderr.write(`vnetc: error: cannot write '${name}': ${describeIoError(e)}\n`);
          unreadable = true;
        }
      }
    } else if (args.check) {
      if (differs && !args.diff) io.stdout.write(name + '\n');
    } else if (!args.diff) {
      io.stdout.write(after);
    }
  }
  if (problems.length) io.stderr.write(renderDiagnostics(problems, err));
  if (unreadable) return 2;
  if (problems.length) return 1;
  return args.check && changed > 0 ? 3 : 0;
}

function colorDiff(patch: string, paint: Painter): string {
  return patch
    .split('\n')
    .map((line) =>
      line.startsWith('+') && !line.startsWith('+++')
        ? paint.green(line)
        : line.startsWith('-') && !line.startsWith('---')
          ? paint.red(line)
          : line.startsWith('@@')
            ? paint.dim(line)
            : line,
    )
    .join('\n');
}

/**
 * A minimal diff costs time quadratic in the lines changed (half an hour
 * for a 100,000-line file whose every line fmt reindents). Beyond this many
 * edits the whole file is one hunk, which says the same in linear time.
 */
const MAX_EDITS = 2000;

function unifiedDiff(name: string, before: string, after: string): string {
  return createTwoFilesPatch(name, name, before, after, '', '', { maxEditLength: MAX_EDITS }) ?? wholeFileHunk(name, before, after);
}

/** Every line of `before` taken out and every line of `after` put in, as a unified diff that patch(1) applies. */
function wholeFileHunk(name: string, before: string, after: string): string {
  const side = (text: string, sign: string): { count: number; lines: string[] } => {
    if (text === '') return { count: 0, lines: [] };
    const lines = text.split('\n');
    const whole = lines[lines.length - 1] === '';
    if (whole) lines.pop();
    const out = lines.map((l) => sign + l);
    if (!whole) out.push('\\ No newline at end of file');
    return { count: lines.length, lines: out };
  };
  const a = side(before, '-');
  const b = side(after, '+');
  return formatPatch({ oldFileName: name, newFileName: name, oldHeader: '', newHeader: '', hunks: [{ oldStart: 1, oldLines: a.count, newStart: 1, newLines: b.count, lines: [...a.lines, ...b.lines] }] });
}
