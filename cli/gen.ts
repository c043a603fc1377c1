import { resolve } from 'node:path';
import { expand } from '../src/gen/expand.js';
import { parseRequirements } from '../src/gen/requirements.js';
import { MAX_FILE_BYTES } from '../src/lang/compile.js';
import { InputError } from '../src/util/input-error.js';
import { checkOutput, describeIoError, readTextFile, STDIN, UsageError, writeFileAtomic, type Io } from './io.js';

/** `vnetc gen <requirements>`: 0 written, 1 the requirements are wrong, 2 usage or I/O. */
export async function gen(io: Io, args: { file: string; out: string | undefined }): Promise<number> {
  if (args.out !== undefined) await checkOutput(io.cwd, args.out, '--out', [{ path: args.file, what: 'the requirements file' }]);
  const name = args.file === STDIN ? '<stdin>' : args.file;
  const text = args.file === STDIN ? (await io.readStdin(MAX_FILE_BYTES)).toString('utf8') : await readTextFile(io.cwd, args.file, 'the requirements');
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
