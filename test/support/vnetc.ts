import { spawn, spawnSync } from 'node:child_process';
import path from 'node:path';
import { packageRoot } from '../../src/util/package-root.js';

/** Running the built binary the way a user does (`npm test` builds dist/ first). */

export const ROOT = packageRoot();
export const VNETC = path.join(ROOT, 'dist', 'cli', 'vnetc.js');
export const SAMPLES = path.join(ROOT, 'samples');

export interface Run {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** The test runner's own colour settings must not leak into the binary's. */
export function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const k of ['FORCE_COLOR', 'NO_COLOR', 'NODE_OPTIONS', 'CLICOLOR', 'CLICOLOR_FORCE', 'COLORTERM']) delete env[k];
  return { ...env, ...extra };
}

export interface RunOptions {
  cwd: string;
  input?: string | Buffer;
  env?: Record<string, string>;
  /** Options for node itself, such as a heap limit. */
  nodeArgs?: string[];
}

export function runVnetc(args: string[], opts: RunOptions): Run {
  const r = spawnSync(process.execPath, [...(opts.nodeArgs ?? []), VNETC, ...args], {
    cwd: opts.cwd,
    input: opts.input ?? '',
    env: cleanEnv(opts.env),
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  });
  if (r.error) throw r.error;
  return { status: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
}

/** The same, without blocking jest's worker (for the slow, large inputs). */
export function runVnetcAsync(args: string[], opts: RunOptions): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...(opts.nodeArgs ?? []), VNETC, ...args], {
      cwd: opts.cwd,
      env: cleanEnv(opts.env),
      stdio: 'pipe',
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.stdin.on('error', () => {}); // vnetc need not read its input
    child.on('error', reject);
    child.on('close', (status, signal) =>
      resolve({ status, signal, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') }),
    );
    child.stdin.end(opts.input ?? '');
  });
}

/** Whatever the input, vnetc answers with diagnostics: never a stack trace, a crash or an internal error. */
export function expectNoCrash(r: Run): void {
  for (const out of [r.stderr, r.stdout]) {
    expect(out).not.toMatch(/internal error/i);
    expect(out).not.toMatch(/^\s+at\s/m);
    expect(out).not.toMatch(/RangeError|TypeError|Maximum call stack|FATAL ERROR|stack trace/);
  }
  expect(r.signal).toBeNull();
  expect(r.status).not.toBe(70);
}
