import { spawn, type ChildProcess } from 'node:child_process';
import { randomInt } from 'node:crypto';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { packageRoot } from '../util/package-root.js';
import type { HostPort } from '../wire/hostport.js';
import { summarize, type BspOptions, type PatternResult, type RankResult } from './bsp.js';
import { pattern, type Kind } from './topology.js';
import type { UdpRankConfig } from './udp-rank.js';

/**
 * Runs the workload as one process per rank, each started by its own
 * command prefix (for a VM namespace, `ip netns exec NS`): starts them all,
 * waits until every one has bound its socket, starts them together, and
 * collects each rank's result. Every process is killed if anything fails.
 */

export interface ProcessRank {
  /** Argv put before `node rank-main.js …`, e.g. ['ip', 'netns', 'exec', ns]; [] runs it here. */
  prefix: string[];
  address: HostPort;
}

export interface ProcessRunOptions {
  topology: Kind;
  dims?: number[];
  bsp: Omit<BspOptions, 'signal'>;
  /** The whole run's limit, start-up included (default: iterations × timeout per step, plus 30 s). */
  deadlineMs?: number;
}

const RANK_MAIN = path.join(packageRoot(), 'dist', 'src', 'patterns', 'rank-main.js');

export async function runProcesses(ranks: readonly ProcessRank[], opts: ProcessRunOptions): Promise<PatternResult> {
  const p = pattern(opts.topology, ranks.length, opts.dims);
  const run = randomInt(1, 0xffffffff);
  const peers = ranks.map((r) => r.address);
  const steps = Math.max(...p.script.map((s) => s.length));
  const deadlineMs = opts.deadlineMs ?? opts.bsp.iterations * steps * opts.bsp.timeoutMs + 30_000;
  const procs: ChildProcess[] = [];
  let timer: NodeJS.Timeout | undefined;
  try {
    const outcome = new Promise<RankResult[]>((resolve, reject) => {
      timer = setTimeout(() => reject(new Error(`the ranks did not finish within ${deadlineMs / 1000} s`)), deadlineMs);
      const results: RankResult[] = [];
      let ready = 0;
      ranks.forEach((r, rank) => {
        const cfg: UdpRankConfig = { rank, run, peers, script: p.script[rank]!, bsp: opts.bsp };
        const [cmd, ...args] = [...r.prefix, process.execPath, RANK_MAIN, JSON.stringify(cfg)];
        const child = spawn(cmd!, args, { stdio: ['pipe', 'pipe', 'pipe'] });
        procs.push(child);
        let err = '';
        child.stderr!.on('data', (b: Buffer) => (err += b.toString()));
        child.on('error', (e) => reject(new Error(`rank ${rank}: cannot start ${cmd}: ${e.message}`)));
        child.on('close', (code) => {
          if (code !== 0 || results[rank] === undefined) reject(new Error(`rank ${rank} exited ${code} before reporting${err ? `: ${err.trim()}` : ''}`));
        });
        createInterface({ input: child.stdout! }).on('line', (line) => {
          if (line === 'ready') {
            if (++ready === ranks.length) for (const c of procs) c.stdin!.write('go\n');
            return;
          }
          try {
            results[rank] = JSON.parse(line) as RankResult;
          } catch {
            reject(new Error(`rank ${rank} printed '${line.slice(0, 80)}', not a result`));
            return;
          }
          if (results.filter(Boolean).length === ranks.length) resolve(results);
        });
      });
    });
    return summarize(opts.topology, await outcome);
  } finally {
    clearTimeout(timer);
    // Wait for each to be gone, so that its socket is free when this returns.
    await Promise.all(
      procs.map((c) => (c.exitCode !== null || c.signalCode !== null ? undefined : new Promise((r) => (c.once('exit', r), c.kill('SIGKILL'))))),
    );
  }
}
