import { countErrors, type Diagnostic } from '../src/diag/diagnostic.js';
import { renderDiagnostics, summary, validateReport } from '../src/diag/render.js';
import { compileSource } from '../src/lang/compile.js';
import { painterFor } from './color.js';
import { expandPaths, load, UsageError, type Io } from './io.js';

export interface ValidateArgs {
  files: string[];
  json: boolean;
  recursive: boolean;
  color: boolean | undefined;
}

/** `vnetc validate`: 0 valid (warnings allowed), 1 errors, 2 unreadable input. */
export async function validate(io: Io, args: ValidateArgs): Promise<number> {
  if (args.files.length === 0) throw new UsageError('say which files or directories to validate (- for standard input)');
  const paths = await expandPaths(io, args.files, args.recursive);
  const all: Diagnostic[] = [];
  let unreadable = false;
  for (const path of paths) {
    const loaded = await load(io, path);
    if (!loaded.ok) {
      // An unreadable file is an I/O problem; a binary or empty one is a bad program.
      unreadable ||= loaded.diagnostics.some((d) => d.code === 'VN1000');
      all.push(...loaded.diagnostics);
      continue;
    }
    all.push(...compileSource(loaded.file).diagnostics);
  }
  if (args.json) {
    io.stdout.write(JSON.stringify(validateReport(all), null, 2) + '\n');
  } else {
    const paint = painterFor(io, io.stdout, args.color);
    if (all.length) io.stdout.write(renderDiagnostics(all, paint) + '\n');
    const line = summary(paths.length, all);
    io.stdout.write((countErrors(all) ? paint.red(line) : paint.bold(line)) + '\n');
  }
  return unreadable ? 2 : countErrors(all) ? 1 : 0;
}
