import type { Diagnostic } from '../diag/diagnostic.js';
import { jsonDiagnostic } from '../diag/render.js';
import { linkKey, tableKey, type State } from '../model/state.js';
import { version } from '../version.js';
import { actionsOf, summarize, type Plan, type Step } from './plan.js';

/**
 * The plan for programs (PLAN.md documents it). Shaped like terraform's
 * `show -json` plan: `resource_changes[]` with an `address`, a `type` and a
 * `change` of `actions`, `before` and `after`. Hosts and links that stay as
 * they are appear as `["no-op"]`; unchanged rules are only counted, since a
 * network has millions of them.
 */
export const PLAN_FORMAT_VERSION = '1.0';

export interface PlanJsonInput {
  plan: Plan;
  desired: State;
  desiredFile: string;
  live: { source: string; fingerprint: string };
  diagnostics: readonly Diagnostic[];
}

export function planJson({ plan, desired, desiredFile, live, diagnostics }: PlanJsonInput) {
  const changes: object[] = [];
  const touched = new Set<string>();
  for (const s of plan.steps) {
    const address = addressOf(s);
    touched.add(address);
    changes.push({
      address,
      type: s.kind,
      daemons: s.daemons,
      phase: s.phase,
      ...(s.drift ? { drift: true } : {}),
      ...(s.why ? { why: s.why } : {}),
      change: { actions: actionsOf(s.action), before: s.before ?? null, after: s.after ?? null },
    });
  }
  const noop = (address: string, type: string, daemons: string[], value: object): void => {
    if (!touched.has(address)) changes.push({ address, type, daemons, change: { actions: actionsOf('no-op'), before: value, after: value } });
  };
  for (const h of desired.hosts.values()) noop(`host.${h.machine}`, 'host', [h.machine], h);
  for (const l of desired.links.values()) noop(`link.${linkKey(l.a, l.b).replace(' ', '~')}`, 'link', [l.a, l.b], l);
  return {
    format_version: PLAN_FORMAT_VERSION,
    vnetc_version: version(),
    desired: { file: desiredFile },
    live,
    proxy: plan.proxy ?? null,
    applyable: !diagnostics.some((d) => d.severity === 'error'),
    summary: { ...summarize(plan), unchanged: plan.unchanged },
    resource_changes: changes,
    drift: plan.drift,
    diagnostics: diagnostics.map(jsonDiagnostic),
  };
}

/** A stable name for a step's object: `host.h1`, `link.h1~proxy`, `rule.h1[ANY 00:50:56:00:21:01 >proxy]`. */
export function addressOf(s: Step): string {
  switch (s.kind) {
    case 'host':
      return `host.${s.daemons[0]}`;
    case 'link': {
      const l = (s.after ?? s.before)!;
      return `link.${linkKey(l.a, l.b).replace(' ', '~')}`;
    }
    case 'rule': {
      const r = (s.after ?? s.before)!;
      return `rule.${r.machine}[${tableKey(r)}]`;
    }
  }
}
