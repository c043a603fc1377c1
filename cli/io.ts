import { constants } from 'node:fs';
import { access, chmod, open, readdir, readFile, readlink, realpath, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join, relative, resolve } from 'node:path';
import type { Diagnostic } from '../src/diag/diagnostic.js';
import { diagnostic } from '../src/diag/diagnostic.js';
import { Msg, Verbatim } from '../src/diag/messages.js';
import { SourceFile } from '../src/diag/source.js';
import { decode, MAX_FILE_BYTES } from '../src/lang/compile.js';
import { ioErrorText } from '../src/util/io-error.js';

/** What a command may touch of the outside world; tests pass their own. */
export interface Out {
  write(text: string): unknown;
  isTTY?: boolean;
}

export interface Io {
  stdout: Out;
  stderr: Out;
  /** Standard input, read to its end or until it is over `max` bytes (then the rest is left unread). */
  readStdin(max: number): Promise<Buffer>;
  cwd: string;
  env: Record<string, string | undefined>;
  /**
   * Asks a person a question on the terminal; absent when there is no
   * terminal to ask on. Undefined when they gave no answer: ended the input
   * (Ctrl-D) or interrupted (Ctrl-C).
   */
  ask?: (question: string) => Promise<string | undefined>;
}

/** A mistake in how vnetc was called: reported in one line, exit code 2. */
export class UsageError extends Error {}

/** `-` is standard input. */
export const STDIN = '-';

const SKIP_DIRS = new Set(['node_modules', '.git']);

/**
 * Expands the command line's paths: files as given, directories to the .vnet
 * files in them (and below, when `recursive`). Paths come back as the user
 * would write them, relative to the working directory.
 */
export async function expandPaths(io: Io, paths: readonly string[], recursive: boolean): Promise<string[]> {
  if (paths.filter((p) => p === STDIN).length > 1) throw new UsageError('standard input (-) can be read only once');
  const out: string[] = [];
  // One file named twice (a.vnet ./a.vnet, or a directory and a file in it) is checked, and counted, once.
  const seen = new Set<string>();
  const add = (shown: string, abs: string) => {
    if (!seen.has(abs)) out.push(shown);
    seen.add(abs);
  };
  for (const p of paths) {
    if (p === STDIN) {
      out.push(p);
      continue;
    }
    const abs = resolve(io.cwd, p);
    const info = await stat(abs).catch(() => undefined);
    if (!info?.isDirectory()) {
      add(p, abs); // a missing file is reported when it is read, with the others
      continue;
    }
    const found = await vnetFiles(abs, recursive);
    if (found.length === 0) {
      const below = recursive ? 0 : (await vnetFiles(abs, true)).length;
      throw new UsageError(`no .vnet files in '${p}'${below ? ` (${below} in its subdirectories: add --recursive to check them)` : ''}`);
    }
    for (const f of found) add(relative(io.cwd, f) || f, f);
  }
  return out;
}

async function vnetFiles(dir: string, recursive: boolean): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true });
  entries.sort((a, b) => a.name.localeCompare(b.name));
  const out: string[] = [];
  for (const e of entries) {
    const full = join(dir, e.name);
    // A link named .vnet is taken whatever it leads to: a dangling or looping one is reported when it is read, not skipped.
    if ((e.isFile() || e.isSymbolicLink()) && e.name.endsWith('.vnet') && !(await stat(full).then((i) => i.isDirectory(), () => false))) out.push(full);
    else if (recursive && e.isDirectory() && !e.name.startsWith('.') && !SKIP_DIRS.has(e.name)) {
      out.push(...(await vnetFiles(full, recursive)));
    }
  }
  return out;
}

export type Loaded =
  | { ok: true; file: SourceFile; diagnostics: Diagnostic[] }
  | { ok: false; diagnostics: Diagnostic[] };

/** Reads one path (or stdin) into a SourceFile; failures come back as diagnostics. */
export async function load(io: Io, path: string): Promise<Loaded> {
  const name = path === STDIN ? '<stdin>' : path;
  const fail = (reason: string): Loaded => ({
    ok: false,
    diagnostics: [diagnostic(Msg.CannotRead, new SourceFile(name, ''), undefined, [`'${name}'`, new Verbatim(reason)])],
  });
  let bytes: Buffer;
  if (path === STDIN) {
    try {
      bytes = await io.readStdin(MAX_FILE_BYTES);
    } catch (e) {
      return fail(describeIoError(e));
    }
    if (bytes.length > MAX_FILE_BYTES) return { ok: false, ...decodeTooLarge(name, `more than ${MAX_FILE_BYTES}`) };
  } else {
    const r = await readCapped(resolve(io.cwd, path));
    if ('refused' in r) return fail(r.refused);
    if ('over' in r) return { ok: false, ...decodeTooLarge(name, r.over) };
    bytes = r.bytes;
  }
  const { file, diagnostics } = decode(name, bytes);
  return diagnostics.length ? { ok: false, diagnostics } : { ok: true, file, diagnostics };
}

/** Why a file could not be read; 'no such file' would be puzzling for a link that is there, pointing nowhere. */
async function describeReadError(abs: string, e: unknown): Promise<string> {
  if ((e as NodeJS.ErrnoException)?.code === 'ENOENT') {
    const target = await readlink(abs).catch(() => undefined);
    if (target !== undefined) return `a symbolic link to '${target}', which does not exist`;
  }
  return describeIoError(e);
}

/**
 * A file named on the command line, whole; or why not: `refused` in words,
 * or `over` (its size, or 'more than …') past MAX_FILE_BYTES. A regular file
 * that is too large is not read at all.
 */
async function readCapped(abs: string): Promise<{ bytes: Buffer } | { refused: string } | { over: number | string }> {
  try {
    const info = await stat(abs);
    if (info.isDirectory()) return { refused: 'it is a directory' };
    if (info.isCharacterDevice() || info.isBlockDevice()) return { refused: 'it is a device, not a file (for standard input, pass -)' };
    if (info.size > MAX_FILE_BYTES) return { over: info.size };
    // A FIFO or a /proc file says size 0 whatever it holds: only a capped read tells.
    const bytes = info.isFile() && info.size > 0 ? await readFile(abs) : await readAtMost(abs, MAX_FILE_BYTES);
    return bytes.length > MAX_FILE_BYTES ? { over: `more than ${MAX_FILE_BYTES}` } : { bytes };
  } catch (e) {
    return { refused: await describeReadError(abs, e) };
  }
}

/** A file read until its end or until it holds more than `max` bytes (the rest is left unread). */
async function readAtMost(abs: string, max: number): Promise<Buffer> {
  const fh = await open(abs, 'r');
  try {
    const chunks: Buffer[] = [];
    let total = 0;
    while (total <= max) {
      const chunk = Buffer.allocUnsafe(Math.min(1 << 20, max + 1 - total));
      const { bytesRead } = await fh.read(chunk, 0, chunk.length, null);
      if (bytesRead === 0) break;
      chunks.push(chunk.subarray(0, bytesRead));
      total += bytesRead;
    }
    return Buffer.concat(chunks, total);
  } finally {
    await fh.close();
  }
}

function decodeTooLarge(name: string, size: number | string): { diagnostics: Diagnostic[] } {
  return { diagnostics: [diagnostic(Msg.FileTooLarge, new SourceFile(name, ''), undefined, [size, MAX_FILE_BYTES])] };
}

/** A whole text file named on the command line (relative to the working directory); a UsageError says why it cannot be read. */
export async function readTextFile(cwd: string, path: string, what: string): Promise<string> {
  return (await readInputFile(cwd, path, what)).toString('utf8');
}

/** The same, as bytes, for a command that checks them before taking them for text. */
export async function readInputFile(cwd: string, path: string, what: string): Promise<Buffer> {
  const r = await readCapped(resolve(cwd, path));
  if ('bytes' in r) return r.bytes;
  throw new UsageError(`cannot read ${what} '${path}': ${'refused' in r ? r.refused : `it is ${typeof r.over === 'number' ? `${r.over} bytes, ` : ''}more than ${MAX_FILE_BYTES} bytes`}`);
}

/** What went wrong with a file, in words (ioErrorText), or a failed write's own account. */
export function describeIoError(e: unknown): string {
  return e instanceof WriteFailure ? e.message : ioErrorText(e);
}

/**
 * Refuses an output path (`flag` names where it came from, e.g. --svg) that
 * cannot be written, or that is one of the command's `inputs` (the same file
 * by any path: writing it would destroy it), before the command does
 * anything that a failed write at the end would waste or leave half done
 * (infer turns VTTIF on at the daemons; plan fetches live state).
 */
export async function checkOutput(cwd: string, path: string, flag: string, inputs: readonly { path: string | undefined; what: string }[] = []): Promise<void> {
  const refuse = (why: string): never => {
    throw new UsageError(`cannot write ${flag} '${path}': ${why}`);
  };
  const abs = resolve(cwd, path);
  // Through a symlink, the file it names is the one written (writeFileAtomic), so its directory is the one that counts.
  const target = await realpath(abs).catch((e: NodeJS.ErrnoException) => (e.code === 'ENOENT' ? undefined : refuse(describeIoError(e))));
  if (target !== undefined && (await stat(target)).isDirectory()) refuse('it is a directory; name a file in it');
  if (target !== undefined) {
    for (const input of inputs) {
      if (input.path === undefined || input.path === STDIN) continue;
      const same = await realpath(resolve(cwd, input.path)).then((p) => p === target, () => false);
      if (same) refuse(`it is the same file as ${input.what} '${input.path}', which writing would destroy; name another file`);
    }
  }
  const dir = dirname(target ?? abs);
  await access(dir, constants.W_OK).catch((e: NodeJS.ErrnoException) =>
    refuse(e.code === 'ENOENT' ? `there is no directory '${dirname(path)}'; create it, or name a file elsewhere` : `${describeIoError(e)} (in '${dir}')`),
  );
}

/**
 * Write beside, then rename: an interrupted write never leaves half a file.
 * Through a symlink, the file it points to is the one rewritten (as gofmt
 * and terraform fmt do), and its mode is kept exactly, whatever the umask.
 */
export async function writeFileAtomic(path: string, text: string): Promise<void> {
  const existing = await realpath(path).catch((e: NodeJS.ErrnoException) => {
    if (e.code === 'ENOENT') return undefined; // a new file: plain mode, as the umask has it
    throw e;
  });
  const target = existing ?? path;
  const mode = existing === undefined ? undefined : (await stat(existing)).mode;
  const tmp = `${target}.vnetc-tmp-${process.pid}`;
  // Cleaning up must not hide why the write failed (nor remove a directory that happens to have the name).
  const cleanUp = () => rm(tmp, { force: true }).catch(() => {});
  try {
    await writeFile(tmp, text, { mode });
    if (mode !== undefined) await chmod(tmp, mode);
  } catch (e) {
    await cleanUp();
    throw new WriteFailure(`cannot create a temporary file beside it (${describeIoError(e)})`);
  }
  try {
    await rename(tmp, target);
  } catch (e) {
    await cleanUp();
    throw e;
  }
}

/** A write that failed for a reason vnetc has already put in words (describeIoError says it as it is). */
export class WriteFailure extends Error {}
