import { spawnSync } from 'node:child_process';

/**
 * An external program a test runs for real, or why it cannot: the test is
 * skipped with that reason printed once, never silently passed.
 */
export function toolMissing(cmd: string, versionArgs: string[], debianPackage: string): string | undefined {
  const r = spawnSync(cmd, versionArgs, { stdio: 'ignore' });
  if (r.error === undefined && r.status === 0) return undefined;
  const why = `'${cmd}' is not installed (Debian package ${debianPackage}: apt-get install ${debianPackage})`;
  console.warn(`skipping the tests that need ${cmd}: ${why}`);
  return why;
}

export interface ToolRun {
  status: number | null;
  stdout: string;
  stderr: string;
}

export function runTool(cmd: string, args: string[], input: string): ToolRun {
  const r = spawnSync(cmd, args, { input, encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.error) throw r.error;
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}
