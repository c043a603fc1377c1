import { resolve } from 'node:path';
import { expand } from '../src/gen/expand.js';
import { parseRequirements } from '../src/gen/requirements.js';
import { MAX_FILE_BYTES, notText } from '../src/lang/compile.js';
import { InputError } from '../src/util/input-error.js';
import { checkOutput, describeIoError, readInputFile, STDIN, UsageError, writeFileAtomic, type Io } from './io.js';

/** `vnetc gen <requirements>`: 0 written, 1 the requirements are wrong, 2 usage or I/O. */
export async function gen(io: Io, args: { file: string; out: string | undefined }): Promise<number> {
  if (args.out !== undefined) await checkOutput(io.cwd, args.out, '--out', [{ path: args.file, what: 'the requirements file' }]);
  const name = args.file === STDIN ? '<stdin>' : args.file;
  const bytes = args.file === STDIN ? await io.readStdin(MAX_FILE_BYTES) : await readInputFile(io.cwd, args.file, 'the requirements');
  // Checked as load() checks a .vnet file: otherwise the parser's message quotes the binary back to the terminal.
  const problem = bytes.length > MAX_FILE_BYTES ? `the file is more than ${MAX_FILE_BYTES} bytes` : notText(bytes);
  if (problem) {
    io.stderr.write(`vnetc: error: ${name}: ${problem}; expected a requirements file (docs/GEN.md)\n`);
    return 1;
  }
  const text = bytes.toString('utf8');
  let vnet: string;
  try {
    vnet = expand(parseRequirements(name, text), name);
  } catch (e) {
    if (!(e instanceof InputError)) throw e;
    io.stderr.write(`vnetc: error: ${e.message}\n`);
    return 1;
  }
  if (args.out === undefined) {
    io.stdout.write(vnet);
    return 0;
  }
  try {
    await writeFileAtomic(resolve(io.cwd, args.out), vnet);
  } catch (e) {
    throw new UsageError(`cannot write '${args.out}': ${describeIoError(e)}`);
  }
  io.stderr.write(`Wrote ${args.out}. Next: vnetc plan ${args.out}\n`);
  return 0;
}
