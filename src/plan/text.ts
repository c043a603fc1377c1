import type { Painter } from '../diag/render.js';
import { plain } from '../diag/render.js';
import { printHost, printLink, printRule } from '../lang/print.js';
import type { Drift } from '../model/live.js';
import { summarize, type Plan, type Step } from './plan.js';

/**
 * A plan for people, in terraform's manner: one mark per change (+ create,
 * ~ replace, - delete), grouped by the daemon that acts (a link under the
 * end that dials), the Proxy first; drift apart; a summary line last.
 */

export function summaryLine(plan: Plan): string {
  const s = summarize(plan);
  if (s.add + s.replace + s.delete === 0) return 'No changes. The daemons hold what the file describes.';
  return `Plan: ${s.add} to add, ${s.replace} to replace, ${s.delete} to delete.`;
}

export function renderPlan(plan: Plan, paint: Painter = plain): string {
  const out: string[] = [];
  if (plan.steps.length) {
    out.push(`vnetc will make these changes (${paint.green('+')} create, ${paint.yellow('~')} replace, ${paint.red('-')} delete):`);
    const groups = new Map<string, Step[]>();
    for (const s of plan.steps) {
      const d = s.daemons[0]!;
      let g = groups.get(d);
      if (!g) groups.set(d, (g = []));
      g.push(s);
    }
    const daemons = [...groups.keys()].sort((a, b) => (a === plan.proxy ? -1 : b === plan.proxy ? 1 : a < b ? -1 : a > b ? 1 : 0));
    for (const d of daemons) {
      out.push('', `  ${paint.bold(d)}${d === plan.proxy ? paint.dim(' (Proxy)') : ''}`);
      for (const s of groups.get(d)!) out.push(...renderStep(s, paint));
    }
  }
  if (plan.drift.length) {
    out.push('', 'Drift: the daemons hold things the file does not explain.');
    for (const d of plan.drift) out.push(`  ${paint.yellow('!')} ${describeDrift(d)}`);
  }
  if (out.length) out.push('');
  const line = summaryLine(plan);
  out.push(plan.steps.length ? paint.bold(line) : paint.green(line));
  return out.join('\n');
}

function renderStep(s: Step, paint: Painter): string[] {
  const note = (text: string): string => paint.dim(`  # ${text}`);
  switch (s.action) {
    case 'create': {
      const extra = s.kind === 'host' ? note('a daemon to start') : s.kind === 'link' ? note(`between ${s.daemons.join(' and ')}`) : '';
      return [`    ${paint.green('+')} ${printStep(s, 'after')}${extra}`];
    }
    case 'delete': {
      const extra = s.drift ? note(`held by ${s.daemons.join(' and ')} only as drift`) : '';
      return [`    ${paint.red('-')} ${printStep(s, 'before')}${extra}`];
    }
    case 'replace':
      return [
        `    ${paint.yellow('~')} ${printStep(s, 'after')}${s.kind === 'host' ? note('the daemon restarts') : s.why ? note(s.why) : ''}`,
        `        ${paint.dim(`was ${printStep(s, 'before')}`)}`,
      ];
  }
}

const count = (n: number, what: string): string => `${n} ${what}${n === 1 ? '' : 's'}`;

export function describeDrift(d: Drift): string {
  switch (d.kind) {
    case 'half-open':
      return `${printLink(d.link)}: held by ${d.heldBy} but not by ${d.missingAt}`;
    case 'link-disagrees':
      return `${printLink(d.link)}: the other end holds ${printLink(d.other)}`;
    case 'unmanaged-daemon':
      return `daemon ${d.machine} is not in the file (${count(d.links, 'link')}, ${count(d.rules, 'rule')}); left alone`;
    case 'unmanaged-link':
      return `${printLink(d.link)}: ${d.outside} is not in the file; left alone`;
  }
}

/** One side of a step as a statement; by default the side it leaves (what a delete removes, what the others make). */
export function printStep(s: Step, side: 'before' | 'after' = s.action === 'delete' ? 'before' : 'after'): string {
  switch (s.kind) {
    case 'host':
      return printHost(s[side]!);
    case 'link':
      return printLink(s[side]!);
    case 'rule':
      return printRule(s[side]!);
  }
}
