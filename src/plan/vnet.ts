import { backboneConsentLine, deltaHeader, proxyLine } from '../lang/delta.js';
import { printHost } from '../lang/print.js';
import type { State } from '../model/state.js';
import type { LinkStep, Plan, Step } from './plan.js';
import { printStep, summaryLine } from './text.js';

/**
 * A plan as a .vnet program of changes: evaluated on the live state it was
 * computed against (its first line names that state by fingerprint), it
 * gives the desired state, and diffing the two gives this plan back. That is
 * how a saved plan is applied: exactly what was reviewed, or nothing if the
 * live state has moved on. `allowedBackboneDeletes`: the links of the Proxy
 * star it deletes with --allow-backbone-delete, recorded with the Proxy so
 * the plan needs neither flag again.
 */
export function planToVnet(plan: Plan, desired: State, fingerprint: string, origin: readonly string[], allowedBackboneDeletes: readonly LinkStep[] = []): string {
  const out = [deltaHeader(fingerprint)];
  // Right under the header, where apply and plan read them: the consent the plan was made with, and for which Proxy.
  if (allowedBackboneDeletes.length) out.push(backboneConsentLine(allowedBackboneDeletes.map((s) => s.before!)));
  if (plan.proxy !== undefined) out.push(proxyLine(plan.proxy));
  out.push(...origin.map((l) => `# ${l}`), `# ${summaryLine(plan)}`, 'BEGIN');
  for (const h of desired.hosts.values()) out.push(`  ${printHost(h)}`);
  const block = (head: string, steps: Step[], side: 'before' | 'after'): void => {
    if (steps.length === 0) return;
    out.push('', `  ${head}`);
    for (const s of steps) {
      if (side === 'after' && s.action === 'replace') out.push(`    # replaces ${printStep(s, 'before')}`);
      out.push(`    ${printStep(s, side)}`);
    }
  };
  const where = (pred: (s: Step) => boolean): Step[] => plan.steps.filter(pred);

  // A link keeps its identity across a replace, so the old one goes first.
  block('DELETE', where((s) => s.kind === 'link' && s.action === 'replace'), 'before');
  block('ADD', where((s) => s.kind !== 'host' && s.action !== 'delete'), 'after');
  block('DELETE', where((s) => s.kind !== 'host' && s.action !== 'create' && !(s.kind === 'link' && s.action === 'replace') && !s.drift), 'before');
  const repairs = where((s) => s.drift === true);
  if (repairs.length) {
    out.push('', '  # Also removed from the daemons that hold them (drift, not in the live state):');
    for (const s of repairs) out.push(`  #   ${printStep(s, 'before')} on ${s.daemons.join(', ')}`);
  }
  out.push('END');
  return out.join('\n') + '\n';
}
