import type { Fragment } from './message.js';
import type { Step } from './topology.js';

/**
 * The bulk-synchronous loop of one rank, over any transport: per iteration a
 * compute phase, then the rank's communication script (send a message to
 * each partner, wait for each partner's message of this iteration). A wait
 * gives up after `timeoutMs`: the iteration is counted lost and the rank
 * goes on, so a dropped frame costs one iteration, never the whole run.
 */

/** What a rank's transport does for it: send one message (split into frames as the transport needs). */
export interface MessageSender {
  /** Resolves when the message's frames have been handed to the network (a transport may pace them). */
  send(to: number, iteration: number, size: number): Promise<void>;
}

export const CALIBRATION_ITERATIONS = 5;

export interface BspOptions {
  iterations: number;
  /** Message size in bytes. */
  size: number;
  /**
   * A fixed compute phase, or a compute/communicate ratio: the first
   * CALIBRATION_ITERATIONS compute nothing, then each compute phase lasts
   * ratio × their mean communication phase.
   */
  compute: { ms: number } | { ratio: number };
  /**
   * `busy` spins the CPU (a rank in its own process); `sleep` waits, for
   * ranks that share one thread with each other and the daemons, where
   * spinning would stall them all.
   */
  computeMode: 'busy' | 'sleep';
  /** How long a wait for partners' messages lasts before the iteration is given up. */
  timeoutMs: number;
  /** Ends the run with the current iteration (a waiting compute phase is cut short). */
  signal?: AbortSignal;
}

export interface RankResult {
  rank: number;
  /** Iterations started (less than asked when stopped by the signal). */
  iterations: number;
  /** Iterations in which some partner's message did not arrive in time. */
  lost: number;
  /** Messages that completed after their iteration had been given up. */
  late: number;
  elapsedMs: number;
  computeMs: number;
  commMs: number;
  messagesSent: number;
  messagesReceived: number;
}

/**
 * Reassembles one rank's incoming fragments into messages, and lets the
 * loop wait for the messages of an iteration. Memory stays bounded: what
 * belongs to iterations already given up is dropped as the rank moves on.
 */
export class Mailbox {
  /** Complete messages not yet consumed: "iteration:src". */
  private readonly complete = new Set<string>();
  /** Messages in assembly: fragments seen, by index. */
  private readonly partial = new Map<string, { iteration: number; seen: Uint8Array; left: number }>();
  private waiter: (() => void) | undefined;
  /** The iteration the rank is in: older messages are late. */
  current = 0;
  late = 0;
  received = 0;

  constructor(
    readonly rank: number,
    readonly run: number,
  ) {}

  /** Takes one fragment addressed to this rank (the transport has checked kind, run and rank). */
  fragment(f: Fragment): void {
    const key = `${f.iteration}:${f.src}`;
    let m = this.partial.get(key);
    if (!m) {
      if (this.complete.has(key)) return; // a duplicate of a finished message
      m = { iteration: f.iteration, seen: new Uint8Array(f.count), left: f.count };
      this.partial.set(key, m);
    }
    if (f.index >= m.seen.length || m.seen[f.index]) return;
    m.seen[f.index] = 1;
    if (--m.left > 0) return;
    this.partial.delete(key);
    this.received++;
    if (f.iteration < this.current) {
      this.late++;
      return;
    }
    this.complete.add(key);
    const w = this.waiter;
    this.waiter = undefined;
    w?.();
  }

  /** Waits until a message of `iteration` from each of `srcs` is in, or the deadline (performance.now()) passes, or `signal` aborts. */
  async take(iteration: number, srcs: readonly number[], deadline: number, signal?: AbortSignal): Promise<boolean> {
    const missing = new Set(srcs);
    for (;;) {
      if (signal?.aborted) return false;
      for (const s of missing) {
        if (this.complete.delete(`${iteration}:${s}`)) missing.delete(s);
      }
      if (missing.size === 0) return true;
      const left = deadline - performance.now();
      if (left <= 0) return false;
      await new Promise<void>((resolve) => {
        const t = setTimeout(() => {
          this.waiter = undefined;
          resolve();
        }, left);
        this.waiter = () => {
          clearTimeout(t);
          resolve();
        };
      });
    }
  }

  /** Ends a wait at once (the run was stopped: partners that stopped first will send nothing more). */
  wake(): void {
    const w = this.waiter;
    this.waiter = undefined;
    w?.();
  }

  /** The rank moves on to `iteration`: what is left of earlier ones is dropped. */
  advance(iteration: number): void {
    this.current = iteration;
    for (const key of this.complete) if (Number(key.slice(0, key.indexOf(':'))) < iteration) this.complete.delete(key);
    // A message still in pieces one iteration behind may yet complete (and count as late); older ones will not.
    for (const [key, m] of this.partial) if (m.iteration + 1 < iteration) this.partial.delete(key);
  }
}

export async function runRank(script: readonly Step[], mailbox: Mailbox, sender: MessageSender, opts: BspOptions): Promise<RankResult> {
  const r: RankResult = { rank: mailbox.rank, iterations: 0, lost: 0, late: 0, elapsedMs: 0, computeMs: 0, commMs: 0, messagesSent: 0, messagesReceived: 0 };
  const start = performance.now();
  // With a ratio, the first iterations compute nothing and measure communication; the compute phase is then fixed.
  // (Scaling each phase by the last would feed back: waiting for a computing partner counts as communication.)
  const calibrate = 'ratio' in opts.compute ? Math.min(CALIBRATION_ITERATIONS, opts.iterations) : 0;
  let computeMs = 'ms' in opts.compute ? opts.compute.ms : 0;
  opts.signal?.addEventListener('abort', () => mailbox.wake(), { once: true });
  for (let it = 0; it < opts.iterations && !opts.signal?.aborted; it++) {
    mailbox.advance(it);
    r.iterations++;
    if (it === calibrate && 'ratio' in opts.compute && it > 0) computeMs = (opts.compute.ratio * r.commMs) / it;
    const ms = it < calibrate ? 0 : computeMs;
    if (ms > 0) {
      const c0 = performance.now();
      if (opts.computeMode === 'busy') spin(ms);
      else await sleep(ms, opts.signal);
      r.computeMs += performance.now() - c0;
      // Stopped while computing: the iteration ends here, not after a communication phase that partners no longer answer.
      if (opts.signal?.aborted) break;
    }
    const t0 = performance.now();
    let lost = false;
    for (const step of script) {
      if ('send' in step) {
        for (const to of step.send) {
          await sender.send(to, it, opts.size);
          r.messagesSent++;
        }
      } else if (!(await mailbox.take(it, step.recv, performance.now() + opts.timeoutMs, opts.signal))) {
        lost = true;
      }
    }
    // An iteration cut short by a stop is not lost: the run ended in it.
    if (lost && !opts.signal?.aborted) r.lost++;
    r.commMs += performance.now() - t0;
  }
  r.elapsedMs = performance.now() - start;
  r.late = mailbox.late;
  r.messagesReceived = mailbox.received;
  return r;
}

/** A compute phase that really computes: the CPU is busy for `ms` (the result keeps the work from being optimised away). */
function spin(ms: number): number {
  const end = performance.now() + ms;
  let x = 0;
  while (performance.now() < end) for (let i = 0; i < 1000; i++) x = Math.sqrt(x + i);
  return x;
}

/** A compute phase that waits, cut short by `signal`: a stop must not wait out a long phase. */
function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise<void>((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}

export interface PatternResult {
  topology: string;
  vms: number;
  iterations: number;
  /** Iterations over the running time of the slowest rank. */
  iterationsPerS: number;
  totalS: number;
  /** Iterations lost on any rank (a rank's count, summed). */
  lost: number;
  late: number;
  messagesSent: number;
  messagesReceived: number;
  /** Mean per rank, in seconds. */
  computeS: number;
  commS: number;
  ranks: RankResult[];
}

export function summarize(topology: string, ranks: readonly RankResult[]): PatternResult {
  const totalMs = Math.max(0, ...ranks.map((r) => r.elapsedMs));
  const iterations = Math.min(...ranks.map((r) => r.iterations));
  const sum = (f: (r: RankResult) => number) => ranks.reduce((a, r) => a + f(r), 0);
  return {
    topology,
    vms: ranks.length,
    iterations,
    iterationsPerS: totalMs > 0 ? iterations / (totalMs / 1000) : 0,
    totalS: totalMs / 1000,
    lost: sum((r) => r.lost),
    late: sum((r) => r.late),
    messagesSent: sum((r) => r.messagesSent),
    messagesReceived: sum((r) => r.messagesReceived),
    computeS: sum((r) => r.computeMs) / ranks.length / 1000,
    commS: sum((r) => r.commMs) / ranks.length / 1000,
    ranks: [...ranks],
  };
}
