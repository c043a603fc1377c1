import { randomBytes } from 'node:crypto';
import type { Host } from '../model/state.js';
import { Phase, type Step } from '../plan/plan.js';
import { printStep } from '../plan/text.js';
import { mapBounded } from '../util/pool.js';
import type { Change } from '../wire/control.js';
import { readDaemon, type Fetched, type Reached } from './fetch.js';
import { ReachError, type DaemonLaunch, type Session } from './transport.js';

/**
 * Apply: a plan's steps pushed to the daemons. Daemons to start are started
 * first. Then every daemon gets its whole share of the plan as one
 * all-or-nothing batch, in the plan's phase order (links, rules, rule
 * deletions, link deletions), all daemons in parallel: one commit, so one
 * write to disk, per daemon.
 *
 * Why one batch is safe across daemons: vnetd applies a rule only while the
 * link it sends over is up (PROTOCOL.md), and a link is up only once both
 * ends hold it. A new fast-path rule therefore takes over only when its
 * link works, until then frames keep their old path; and a link deleted at
 * one end goes down at both, so rules still sending over it at the other
 * end stop applying rather than dropping frames.
 *
 * If a daemon fails, the others' batches stand (each is whole): the report
 * says step by step and daemon by daemon what was done, and a following
 * plan, fetched live, shows exactly the rest.
 */

/** Daemons are started first; then every daemon gets its whole share of the plan as one batch. */
export type Stage = 'daemons' | 'changes';

export interface ProgressEvent {
  machine: string;
  stage: Stage;
  ok: boolean;
  changes: number;
  message?: string;
}

export type StepStatus = 'applied' | 'failed' | 'partial' | 'not-attempted';

export interface StepResult {
  step: Step;
  status: StepStatus;
  /** Per daemon the step touches: done, or why not. */
  at: { machine: string; ok: boolean; error?: string }[];
}

export interface ApplyReport {
  results: StepResult[];
  ok: boolean;
  /** Daemons that failed, with why (one entry per daemon), and what to do about it when the failure says. */
  failures: { machine: string; message: string; hint?: string }[];
  /** Daemons this apply started. */
  started: string[];
  /** Whether `signal` cut it short: daemons not started, or changes not pushed. */
  interrupted: boolean;
}

export interface ApplyOptions {
  /** How a daemon to be started opens its interfaces. */
  launchFor(host: Host, session: Session): DaemonLaunch;
  parallelism?: number;
  /** Called as each daemon finishes a stage (for the progress display). */
  progress?: (event: ProgressEvent) => void;
  /**
   * The steps after the daemons phase, computed again once daemons have been
   * (re)started: a daemon restarted over its state directory comes back
   * holding what it held, which the plan, made while it was down, could not
   * know. Without it, the plan's own steps are used.
   */
  replan?: () => Step[];
  /** Daemons whose share is left out (down: a stopped daemon has nothing to remove); steps report only the others. */
  skip?: ReadonlySet<string>;
  /** Once aborted, no more daemons are started and no changes pushed; daemons being started finish starting, batches being pushed are answered. */
  signal?: AbortSignal;
  /** Told as a daemon is about to be started, and once it runs (before it is asked for its state): what a person must know is running if the command ends early. */
  daemon?: (machine: string, now: 'starting' | 'started') => void;
}

/** The changes one step makes at each daemon, in order. */
function changesOf(step: Step, fetched: Fetched): Map<string, Change[]> {
  const out = new Map<string, Change[]>();
  const put = (machine: string, c: Change) => {
    const list = out.get(machine);
    if (list) list.push(c);
    else out.set(machine, [c]);
  };
  switch (step.kind) {
    case 'host':
      return out;
    case 'link': {
      const l = (step.after ?? step.before)!;
      if (!step.after) {
        put(l.a, { op: 'link-delete', peer: l.b });
        put(l.b, { op: 'link-delete', peer: l.a });
        return out;
      }
      // LINK ADD of an existing peer replaces it in place, so a replace is one ADD per end, with a fresh key.
      const k = randomBytes(32).toString('hex');
      for (const [self, peer] of [[l.a, l.b], [l.b, l.a]] as const) {
        const address = fetched.reached.get(peer)?.session.overlayAddress;
        put(self, { op: 'link-add', link: { peer, proto: step.after.proto, dial: step.after.dialer === self, address, key: k, mode: 'encrypt' } });
      }
      return out;
    }
    case 'rule': {
      const r = (step.after ?? step.before)!;
      const wire = (x: typeof r) => ({ src: x.src, dst: x.dst, dest: x.dest });
      // A replace adds the new destination first, then drops the old: the frame always has somewhere to go.
      if (step.after) put(r.machine, { op: 'rule-add', rule: wire(step.after) });
      if (step.before) put(r.machine, { op: 'rule-delete', rule: wire(step.before) });
      return out;
    }
  }
}

/** The way forward a ReachError carries (a daemon's log, the command to run), which the report must not drop. */
export const hintOf = (e: unknown): string | undefined => (e instanceof ReachError ? e.hint : undefined);

export async function applyPlan(steps: readonly Step[], fetched: Fetched, opts: ApplyOptions): Promise<ApplyReport> {
  let results: StepResult[] = steps.map((step) => ({ step, status: 'not-attempted', at: [] }));
  const failures: ApplyReport['failures'] = [];
  const started: string[] = [];
  const parallelism = opts.parallelism ?? 10;
  let interrupted = false;
  const cut = (): boolean => (opts.signal?.aborted ? (interrupted = true) : false);

  /** Records how one daemon's share went, on each step it carried, and reports it. */
  const settle = (machine: string, stage: Stage, carried: Iterable<StepResult>, changes: number, message?: string, stepError?: Map<StepResult, string>, hint?: string): void => {
    for (const r of carried) {
      r.at.push(message === undefined ? { machine, ok: true } : { machine, ok: false, error: stepError?.get(r) ?? (stage === 'daemons' ? message : `not applied: ${message}`) });
    }
    if (message !== undefined) failures.push({ machine, message, ...(hint === undefined ? {} : { hint }) });
    opts.progress?.({ machine, stage, ok: message === undefined, changes, ...(message === undefined ? {} : { message }) });
  };

  const startDaemon = async (r: StepResult): Promise<void> => {
    const host = r.step.after as Host;
    const machine = host.machine;
    if (cut()) return;
    try {
      const reached = fetched.reached.get(machine)!;
      if (r.step.action === 'replace') await reached.session.stop();
      opts.daemon?.(machine, 'starting');
      await reached.session.start(opts.launchFor(host, reached.session));
      opts.daemon?.(machine, 'started');
      reached.client = await reached.session.control();
      if (!reached.client) throw new ReachError(machine, `the daemon of ${machine} started but its control socket does not answer`);
      // A daemon restarted over its state directory comes back holding what it held before.
      reached.report = await readDaemon(reached.client, host);
      started.push(machine);
      settle(machine, 'daemons', [r], 1);
    } catch (e) {
      settle(machine, 'daemons', [r], 1, (e as Error).message, undefined, hintOf(e));
    }
  };

  const pushBatch = async (machine: string, b: { changes: Change[]; owner: StepResult[] }): Promise<void> => {
    let message: string | undefined;
    let hint: string | undefined;
    const stepError = new Map<StepResult, string>();
    try {
      const reached: Reached | undefined = fetched.reached.get(machine);
      if (!reached?.client) throw new ReachError(machine, `no daemon runs on ${machine}`);
      const reply = await reached.client.batch(b.changes);
      if (!reply.ok) {
        let first: string | undefined;
        for (const line of reply.data) {
          const m = /^(\d+) ERR (E_[A-Z]+) (.*)$/.exec(line);
          const owner = m ? b.owner[Number(m[1]) - 1] : undefined;
          if (!owner) continue;
          if (!stepError.has(owner)) stepError.set(owner, `${m![2]} ${m![3]}`);
          // The step and the daemon's reason, not only "1 of 2 changes failed".
          first ??= `${printStep(owner.step)}: ${m![2]} ${m![3]}`;
        }
        message = `${reply.code} ${reply.text}${first ? `; refused: ${first}` : ''}`;
      }
    } catch (e) {
      message = (e as Error).message;
      hint = hintOf(e);
    }
    settle(machine, 'changes', new Set(b.owner), b.changes.length, message, stepError, hint);
  };

  const statusOf = (inStage: StepResult[]): void => {
    for (const r of inStage) {
      const done = r.at.filter((a) => a.ok).length;
      r.status = done === r.at.length ? 'applied' : done === 0 ? 'failed' : 'partial';
    }
  };

  const hosts = results.filter((r) => r.step.phase === Phase.Hosts);
  if (hosts.length) {
    await mapBounded(hosts, parallelism, startDaemon);
    // A daemon not begun (cut short by the signal) stays not-attempted.
    statusOf(hosts.filter((r) => r.at.length));
    if (failures.length) return { results, ok: false, failures, started, interrupted };
    if (started.length && opts.replan) {
      const rest = opts.replan().filter((s) => s.phase !== Phase.Hosts);
      results = [...hosts, ...rest.map((step): StepResult => ({ step, status: 'not-attempted', at: [] }))];
    }
  }
  const changes = results.filter((r) => r.step.phase !== Phase.Hosts);
  if (cut() && changes.length) return { results, ok: false, failures, started, interrupted };
  // Each daemon's batch: its changes in the plan's phase order, and which step each came from.
  const batches = new Map<string, { changes: Change[]; owner: StepResult[] }>();
  for (const r of [...changes].sort((a, b) => a.step.phase - b.step.phase)) {
    for (const [machine, list] of changesOf(r.step, fetched)) {
      if (opts.skip?.has(machine)) continue;
      let b = batches.get(machine);
      if (!b) batches.set(machine, (b = { changes: [], owner: [] }));
      for (const c of list) {
        b.changes.push(c);
        b.owner.push(r);
      }
    }
  }
  await mapBounded([...batches], parallelism, ([machine, b]) => pushBatch(machine, b));
  statusOf(changes);
  return { results, ok: failures.length === 0, failures, started, interrupted };
}
