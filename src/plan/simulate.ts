import { copyState, linkKey, tableKey, type State } from '../model/state.js';
import type { Step } from './plan.js';

/**
 * What a state becomes after some steps, computed rather than done: the
 * meaning of a plan, against which tests hold diff and the daemons' batches.
 * The input is not changed.
 */
export function simulate(state: State, steps: Iterable<Step>): State {
  const out = copyState(state);
  for (const step of steps) applyStep(out, step);
  return out;
}

/** Applies one step in place. */
export function applyStep(state: State, step: Step): void {
  switch (step.kind) {
    case 'host': {
      const h = step.after!;
      state.hosts.set(h.machine, h);
      if (!state.tables.has(h.machine)) state.tables.set(h.machine, new Map());
      return;
    }
    case 'link': {
      const l = (step.after ?? step.before)!;
      const key = linkKey(l.a, l.b);
      if (step.after) state.links.set(key, step.after);
      else state.links.delete(key);
      return;
    }
    case 'rule': {
      const machine = (step.after ?? step.before)!.machine;
      let table = state.tables.get(machine);
      if (!table) state.tables.set(machine, (table = new Map()));
      if (step.before) table.delete(tableKey(step.before));
      if (step.after) table.set(tableKey(step.after), step.after);
      return;
    }
  }
}
