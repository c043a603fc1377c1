import type { Drift } from '../model/live.js';
import type { Host, Link, Rule } from '../model/state.js';

/**
 * A plan: the primitive steps that turn live state into desired state, in
 * an order that never blackholes traffic, each naming the daemons it
 * touches so apply can run daemons in parallel within a phase.
 */

export type Action = 'create' | 'replace' | 'delete';

/**
 * Phases run one after another; steps within a phase are independent.
 * New paths exist before rules point at them, and rules stop pointing at a
 * path before it goes.
 */
export const Phase = {
  /** Daemons to start, or to restart with a new port, interface or user. */
  Hosts: 0,
  /** Links to create or replace (a replace keeps the link's identity: rules still have it). */
  Links: 1,
  /** Rules to create or replace: a replace adds the new destination, then drops the old. */
  Rules: 2,
  RuleDeletes: 3,
  LinkDeletes: 4,
} as const;
export type Phase = (typeof Phase)[keyof typeof Phase];

interface StepOf<K extends string, T> {
  kind: K;
  action: Action;
  /** Absent on create. */
  before?: T;
  /** Absent on delete. */
  after?: T;
  /** The daemons whose configuration changes; a link has two. */
  daemons: readonly string[];
  phase: Phase;
  /** Clears up drift: the object is held by some daemons but is not part of the live state. */
  drift?: true;
  /** Why a replace whose two sides read the same is needed. */
  why?: string;
}

export type HostStep = StepOf<'host', Host>;
export type LinkStep = StepOf<'link', Link>;
export type RuleStep = StepOf<'rule', Rule>;
export type Step = HostStep | LinkStep | RuleStep;

export interface Unchanged {
  hosts: number;
  links: number;
  rules: number;
}

export interface Plan {
  steps: Step[];
  /** What the live state shows that the plan does not (or cannot) set right. */
  drift: Drift[];
  /** The machine whose links form the backbone star. */
  proxy: string | undefined;
  unchanged: Unchanged;
}

export interface Summary {
  add: number;
  replace: number;
  delete: number;
}

/** Terraform's count: a replace is one change, not an add and a delete. */
export function summarize(plan: Plan): Summary {
  const s: Summary = { add: 0, replace: 0, delete: 0 };
  for (const step of plan.steps) s[step.action === 'create' ? 'add' : step.action]++;
  return s;
}

/** Terraform's vocabulary for an action. */
export function actionsOf(action: Action | 'no-op'): string[] {
  return action === 'replace' ? ['delete', 'create'] : [action];
}
