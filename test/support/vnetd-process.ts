import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { ControlClient } from '../../src/remote/control-client.js';
import type { Reply } from '../../src/wire/control.js';
import { ROOT } from './vnetc.js';

/** Real vnetd processes for integration tests: started on loopback, driven over their control sockets, stopped by a signal. */

export const VNETD = path.join(ROOT, 'dist', 'daemon', 'vnetd.js');

export interface SpawnedVnetd {
  machine: string;
  port: number;
  dir: string;
  proc?: ChildProcess | undefined;
  ctl?: ControlClient | undefined;
  /** What the daemon has logged (its stderr). */
  log: string;
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

/** Starts the daemon listening on 127.0.0.1, with `extra` arguments, and connects to its control socket. */
export async function startVnetd(d: SpawnedVnetd, extra: string[] = []): Promise<void> {
  const args = [VNETD, '--machine', d.machine, '--port', String(d.port), '--listen', '127.0.0.1', '--state-dir', d.dir, ...extra];
  const proc = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  proc.stderr!.on('data', (b: Buffer) => (d.log += b.toString()));
  d.proc = proc;
  const sock = path.join(d.dir, 'vnetd.sock');
  d.ctl = await waitFor(`${d.machine}'s control socket\n${d.log}`, async () => {
    if (proc.exitCode !== null) throw new Error(`vnetd ${d.machine} exited ${proc.exitCode}:\n${d.log}`);
    return fs.existsSync(sock) ? ControlClient.connect(sock).catch(() => undefined) : undefined;
  });
}

export async function stopVnetd(d: SpawnedVnetd, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  d.ctl?.close();
  d.ctl = undefined;
  const p = d.proc;
  if (!p || p.exitCode !== null || p.signalCode !== null) return;
  await new Promise<void>((resolve) => {
    p.once('exit', () => resolve());
    p.kill(signal);
  });
}

/** A request that must succeed. */
export async function ok(d: SpawnedVnetd, line: string): Promise<Reply> {
  const r = await d.ctl!.request(line);
  if (!r.ok) throw new Error(`${d.machine}: ${line} -> ERR ${r.code} ${r.text}`);
  return r;
}
