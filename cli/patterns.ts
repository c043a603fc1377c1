import { startBed } from '../daemon/bed.js';
import type { PatternResult } from '../src/patterns/bsp.js';
import { FRAME_ROOM } from '../src/patterns/synthetic.js';
import { MAX_FRAGMENTS } from '../src/patterns/message.js';
import { parseDims, pattern, TopologyError, type Kind } from '../src/patterns/topology.js';
import { MAX_TIMER_MS } from '../src/util/timer.js';
import { interruptible } from './interrupt.js';
import { UsageError, type Io } from './io.js';

/**
 * `vnetc patterns`: the synthetic BSP workload on this machine alone. A
 * Proxy and hosts run as daemons inside this process, the VMs are synthetic
 * (QEMU datagram sockets), and every frame crosses vnetd through the star.
 */

export interface PatternsArgs {
  topology: Kind;
  vms: number;
  hosts: number | undefined;
  dims: string | undefined;
  size: number;
  computeMs: number | undefined;
  ratio: number | undefined;
  iterations: number;
  timeoutMs: number;
  sharedInterface: boolean;
  linkProto: 'tcp' | 'udp';
  json: boolean;
}

const MAX_VMS = 1024;

function check(a: PatternsArgs): number[] | undefined {
  const int = (v: number, flag: string, min: number, max: number) => {
    if (!Number.isInteger(v) || v < min || v > max) throw new UsageError(`${flag} takes a whole number from ${min} to ${max}, not ${v}`);
  };
  int(a.vms, '--vms', 2, MAX_VMS);
  if (a.hosts !== undefined) int(a.hosts, '--hosts', 1, a.vms);
  int(a.size, '--size', 0, MAX_FRAGMENTS * FRAME_ROOM);
  int(a.iterations, '--iterations', 1, 10_000_000);
  // Node's timers take at most MAX_TIMER_MS; past it they fire after 1 ms.
  if (!(a.timeoutMs > 0 && a.timeoutMs <= MAX_TIMER_MS)) throw new UsageError(`--timeout-ms takes a positive number of milliseconds, at most ${MAX_TIMER_MS} (about 24.8 days), not ${a.timeoutMs}`);
  if (a.computeMs !== undefined && a.ratio !== undefined) throw new UsageError('--compute-ms and --ratio both set the compute phase (fixed, or in proportion to communication); give one');
  if (a.computeMs !== undefined && !(a.computeMs >= 0 && a.computeMs <= MAX_TIMER_MS)) throw new UsageError(`--compute-ms takes milliseconds from 0 to ${MAX_TIMER_MS} (about 24.8 days), not ${a.computeMs}`);
  if (a.ratio !== undefined && !(a.ratio >= 0 && Number.isFinite(a.ratio))) throw new UsageError(`--ratio takes a compute/communicate ratio (0 or more), not ${a.ratio}`);
  try {
    const dims = a.dims === undefined ? undefined : parseDims(a.dims);
    pattern(a.topology, a.vms, dims); // refuses sizes the kind cannot take, before anything starts
    return dims;
  } catch (e) {
    if (e instanceof TopologyError) throw new UsageError(e.message);
    throw e;
  }
}

export async function patterns(io: Io, a: PatternsArgs): Promise<number> {
  const dims = check(a);
  const hosts = a.hosts ?? a.vms;
  return interruptible(io, 'ending the run with the current iteration, then removing the daemons and their directory', async (stop) => {
    io.stderr.write(`vnetc: starting a Proxy and ${hosts} host${hosts === 1 ? '' : 's'} with ${a.vms} synthetic VMs (in this process)\n`);
    const starting = startBed({ vms: a.vms, hosts, sharedInterface: a.sharedInterface, linkProto: a.linkProto });
    // A start that fails has removed what it made; one still under way is waited for, so that nothing it makes is left.
    stop.atExit(() => starting.then((b) => b.close(), () => undefined));
    const bed = await starting;
    try {
      if (stop.signal.aborted) {
        io.stderr.write('vnetc: stopped before the workload started\n');
        return stop.status!;
      }
      const result = await bed.run({
        topology: a.topology,
        ...(dims ? { dims } : {}),
        size: a.size,
        iterations: a.iterations,
        ...(a.ratio !== undefined ? { ratio: a.ratio } : { computeMs: a.computeMs ?? 0 }),
        timeoutMs: a.timeoutMs,
        signal: stop.signal,
      });
      const p = pattern(a.topology, a.vms, dims);
      if (a.json) {
        io.stdout.write(JSON.stringify({ ...result, hosts, size: a.size, dims: p.dims, edges: p.edges, stopped: stop.signal.aborted }, null, 2) + '\n');
      } else {
        io.stdout.write(report(a, hosts, p.dims, result, stop.signal.aborted));
      }
      return 0;
    } finally {
      await bed.close();
    }
  });
}

function report(a: PatternsArgs, hosts: number, dims: number[], r: PatternResult, stopped: boolean): string {
  const compute = a.ratio !== undefined ? `compute ${a.ratio} x communication` : a.computeMs ? `${a.computeMs} ms compute` : 'no compute phase';
  const shape = dims.length ? ` (${dims.join('x')})` : '';
  const lines = [
    `${a.topology}${shape} of ${a.vms} VMs on ${hosts} host${hosts === 1 ? '' : 's'} through a Proxy star; ${a.size}-byte messages, ${compute}`,
    `  iterations/s  ${r.iterationsPerS.toFixed(1)}`,
    `  total time    ${r.totalS.toFixed(3)} s for ${r.iterations} iteration${r.iterations === 1 ? '' : 's'}${stopped ? ' (stopped early)' : ''}`,
    `  per VM        ${r.computeS.toFixed(3)} s compute, ${r.commS.toFixed(3)} s communication (mean)`,
    `  messages      ${r.messagesSent} sent, ${r.messagesReceived} received; ${r.lost} iteration${r.lost === 1 ? '' : 's'} lost, ${r.late} message${r.late === 1 ? '' : 's'} late`,
  ];
  if (r.lost) lines.push(`  (a lost iteration is one where a VM waited ${a.timeoutMs} ms for a partner's message and went on; try a smaller --size or fewer --vms)`);
  return lines.join('\n') + '\n';
}
