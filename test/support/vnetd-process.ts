import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { ControlClient } from '../../src/remote/control-client.js';
import { packageRoot } from '../../src/util/package-root.js';
import type { Reply } from '../../src/wire/control.js';

/**
 * Real vnetd processes for tests and benchmarks: started (on loopback, or
 * under a prefix such as `ip netns exec NS`), driven over their control
 * sockets, stopped by a signal.
 */

/* From the package root, found the same under jest (test/support/) and in benchmarks (dist/test/support/). */
export const VNETD = path.join(packageRoot(), 'dist', 'daemon', 'vnetd.js');

export interface SpawnedVnetd {
  machine: string;
  port: number;
  dir: string;
  proc?: ChildProcess | undefined;
  ctl?: ControlClient | undefined;
  /** What the daemon has logged (its stderr). */
  log: string;
}

/** A daemon startVnetd has started. */
export type RunningVnetd<D extends SpawnedVnetd = SpawnedVnetd> = D & { proc: ChildProcess; ctl: ControlClient };

export interface StartOptions {
  /** What the daemon is run under, such as `ip netns exec NS`. */
  prefix?: string[];
  /** The address its links listen on (127.0.0.1). */
  listen?: string;
}

export async function waitFor<T>(what: string, probe: () => Promise<T | undefined> | T | undefined, ms = 10_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/**
 * Starts the daemon, with `extra` arguments, and connects to its control
 * socket. If it exits or does not open the socket within 20 s, it is stopped
 * and the error carries its log.
 */
export async function startVnetd<D extends SpawnedVnetd>(d: D, extra: string[] = [], opts: StartOptions = {}): Promise<RunningVnetd<D>> {
  const [command, ...args] = [...(opts.prefix ?? []), process.execPath, VNETD, '--machine', d.machine, '--port', String(d.port), '--listen', opts.listen ?? '127.0.0.1', '--state-dir', d.dir, ...extra];
  const proc = spawn(command!, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  proc.stderr!.on('data', (b: Buffer) => (d.log += b.toString()));
  d.proc = proc;
  const sock = path.join(d.dir, 'vnetd.sock');
  try {
    d.ctl = await waitFor('its control socket', async () => {
      if (proc.exitCode !== null || proc.signalCode !== null) throw new Error(`exited ${proc.exitCode ?? proc.signalCode}`);
      return fs.existsSync(sock) ? ControlClient.connect(sock).catch(() => undefined) : undefined;
    }, 20_000);
  } catch (e) {
    await stopVnetd(d);
    throw new Error(`vnetd ${d.machine}: ${(e as Error).message}:\n${d.log}`);
  }
  return d as RunningVnetd<D>;
}

/** Closes the daemon's control connection and stops it with `signal`, then SIGKILL if it has not exited 3 s later. */
export async function stopVnetd(d: SpawnedVnetd, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  d.ctl?.close();
  d.ctl = undefined;
  const p = d.proc;
  if (!p || p.exitCode !== null || p.signalCode !== null) return;
  await new Promise<void>((resolve) => {
    const late = setTimeout(() => p.kill('SIGKILL'), 3000);
    p.once('exit', () => (clearTimeout(late), resolve()));
    p.kill(signal);
  });
}

/** A request that must succeed; an error reply throws, with the daemon's log. */
export async function ok(d: SpawnedVnetd, line: string): Promise<Reply> {
  const r = await d.ctl!.request(line);
  if (!r.ok) throw new Error(`${d.machine}: ${line} -> ERR ${r.code} ${r.text}\n${d.log}`);
  return r;
}

/** Lines committed as one batch. */
export async function batch(d: SpawnedVnetd, lines: string[]): Promise<void> {
  await ok(d, 'BATCH');
  for (const l of lines) await ok(d, l);
  await ok(d, 'COMMIT');
}
