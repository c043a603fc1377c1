import { randomBytes } from 'node:crypto';
import type { Host } from '../model/state.js';
import { Phase, type Step } from '../plan/plan.js';
import { mapBounded } from '../util/pool.js';
import type { Change } from '../wire/control.js';
import { readDaemon, type Fetched, type Reached } from './fetch.js';
import { ReachError, type DaemonLaunch, type Session } from './transport.js';

/**
 * Apply: a plan's steps pushed to the daemons. Phases run in the plan's
 * order (hosts, links, rules, rule deletes, link deletes), so a path exists
 * before a rule points at it and no rule points at a path when it goes.
 * Within a phase every daemon gets its share as one all-or-nothing batch,
 * all daemons in parallel. If any daemon fails, the phases after it are
 * not started: the network is left with every earlier phase whole, and the
 * report says step by step what was done; a following plan (fetched live)
 * shows exactly the rest.
 */

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
  /** Daemons that failed, with why (one entry per daemon). */
  failures: { machine: string; message: string }[];
  /** Daemons this apply started. */
  started: string[];
}

export interface ApplyOptions {
  /** How a daemon to be started opens its interfaces. */
  launchFor(host: Host, session: Session): DaemonLaunch;
  parallelism?: number;
  /** Called as each daemon finishes a phase (for the progress display). */
  progress?: (event: { machine: string; phase: Phase; ok: boolean; changes: number; message?: string }) => void;
  /**
   * The steps after the daemons phase, computed again once daemons have been
   * (re)started: a daemon restarted over its state directory comes back
   * holding what it held, which the plan, made while it was down, could not
   * know. Without it, the plan's own steps are used.
   */
  replan?: () => Step[];
  /** Link keys; random by default (tests may fix them). */
  newKey?: () => string;
}

/** The changes one step makes at each daemon, in order. */
function changesOf(step: Step, fetched: Fetched, key: () => string): Map<string, Change[]> {
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
      const k = key();
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

export async function applyPlan(steps: readonly Step[], fetched: Fetched, opts: ApplyOptions): Promise<ApplyReport> {
  let results: StepResult[] = steps.map((step) => ({ step, status: 'not-attempted', at: [] }));
  const failures: { machine: string; message: string }[] = [];
  const started: string[] = [];
  const key = opts.newKey ?? (() => randomBytes(32).toString('hex'));
  const parallelism = opts.parallelism ?? 10;

  for (const phase of Object.values(Phase).sort((a, b) => a - b)) {
    const inPhase = results.filter((r) => r.step.phase === phase);
    if (inPhase.length === 0) continue;
    if (phase === Phase.Hosts) {
      const outcomes = await mapBounded(inPhase, parallelism, async (r) => {
        const host = r.step.after as Host;
        const reached = fetched.reached.get(host.machine)!;
        if (r.step.action === 'replace') await reached.session.stop();
        await reached.session.start(opts.launchFor(host, reached.session));
        reached.client = await reached.session.control();
        if (!reached.client) throw new ReachError(host.machine, `the daemon of ${host.machine} started but its control socket does not answer`);
        // A daemon restarted over its state directory comes back holding what it held before.
        reached.report = await readDaemon(reached.client, host);
        started.push(host.machine);
      });
      outcomes.forEach((o, i) => {
        const r = inPhase[i]!;
        const machine = r.step.daemons[0]!;
        const ok = o.status === 'fulfilled';
        const message = ok ? undefined : (o.reason as Error).message;
        r.at.push(ok ? { machine, ok } : { machine, ok, error: message! });
        r.status = ok ? 'applied' : 'failed';
        if (!ok) failures.push({ machine, message: message! });
        opts.progress?.({ machine, phase, ok, changes: 1, ...(ok ? {} : { message: message! }) });
      });
    } else {
      // Each daemon's batch: its changes, and which step each came from.
      const batches = new Map<string, { changes: Change[]; owner: StepResult[] }>();
      for (const r of inPhase) {
        for (const [machine, changes] of changesOf(r.step, fetched, key)) {
          let b = batches.get(machine);
          if (!b) batches.set(machine, (b = { changes: [], owner: [] }));
          for (const c of changes) {
            b.changes.push(c);
            b.owner.push(r);
          }
        }
      }
      const machines = [...batches.keys()];
      const outcomes = await mapBounded(machines, parallelism, async (machine) => {
        const reached: Reached | undefined = fetched.reached.get(machine);
        if (!reached?.client) throw new ReachError(machine, `no daemon runs on ${machine}`);
        return reached.client.batch(batches.get(machine)!.changes);
      });
      outcomes.forEach((o, i) => {
        const machine = machines[i]!;
        const b = batches.get(machine)!;
        let message: string | undefined;
        const stepError = new Map<StepResult, string>();
        if (o.status === 'rejected') message = (o.reason as Error).message;
        else if (!o.value.ok) {
          message = `${o.value.code} ${o.value.text}`;
          for (const line of o.value.data) {
            const m = /^(\d+) ERR (E_[A-Z]+) (.*)$/.exec(line);
            if (m) {
              const owner = b.owner[Number(m[1]) - 1];
              if (owner && !stepError.has(owner)) stepError.set(owner, `${m[2]} ${m[3]}`);
            }
          }
        }
        for (const r of new Set(b.owner)) {
          r.at.push(message === undefined ? { machine, ok: true } : { machine, ok: false, error: stepError.get(r) ?? `not applied: ${message}` });
        }
        if (message !== undefined) failures.push({ machine, message });
        opts.progress?.({ machine, phase, ok: message === undefined, changes: b.changes.length, ...(message === undefined ? {} : { message }) });
      });
      for (const r of inPhase) {
        const done = r.at.filter((a) => a.ok).length;
        r.status = done === r.at.length ? 'applied' : done === 0 ? 'failed' : 'partial';
      }
    }
    if (failures.length) break;
    if (phase === Phase.Hosts && started.length && opts.replan) {
      const rest = opts.replan().filter((s) => s.phase !== Phase.Hosts);
      results = [...inPhase, ...rest.map((step): StepResult => ({ step, status: 'not-attempted', at: [] }))];
    }
  }
  return { results, ok: failures.length === 0, failures, started };
}
