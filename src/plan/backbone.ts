import type { Link } from '../model/state.js';
import type { LinkStep, Plan } from './plan.js';

/**
 * The links of the resilient star (Fig. 1) that a plan would delete. They
 * keep every host reachable from the Proxy whatever else is configured, so
 * deleting one is refused unless the user says they mean it.
 */
export function backboneDeletes(plan: Plan): LinkStep[] {
  const { proxy } = plan;
  if (proxy === undefined) return [];
  const isBackbone = (l: Link): boolean => l.a === proxy || l.b === proxy;
  return plan.steps.filter((s): s is LinkStep => s.kind === 'link' && s.action === 'delete' && isBackbone(s.before!));
}
