import { diagnostic, type Diagnostic, type Span } from '../diag/diagnostic.js';
import { Msg } from '../diag/messages.js';
import type { SourceFile } from '../diag/source.js';
import { parseSource } from '../lang/compile.js';
import { backboneConsent } from '../lang/delta.js';
import { printLink } from '../lang/print.js';
import { linkKey, type Link } from '../model/state.js';
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

/** How many of the links are named in the message (and pointed at), so that cutting a big star stays one readable error. */
const SHOWN = 3;

/**
 * VN4001 for the backbone deletions a plan has no consent for, or undefined
 * when it has it: `--allow-backbone-delete` now, or, for a saved plan, the
 * consent recorded when it was made (for the links it names). The error
 * points at the LINK statement of the DELETE block that deletes the first
 * link, when the file has one; a link the file merely leaves out has no line.
 */
export function backboneCheck(plan: Plan, file: SourceFile, allowed: boolean): Diagnostic | undefined {
  if (allowed) return undefined;
  const consented = backboneConsent(file.text);
  const cut = backboneDeletes(plan).filter((s) => !consented.has(linkKey(s.before!.a, s.before!.b)));
  if (!cut.length) return undefined;
  const shown = cut.slice(0, SHOWN);
  const at = deletedAt(file);
  const spans = shown.map((s) => at.get(linkKey(s.before!.a, s.before!.b)));
  const first = spans.findIndex((span) => span !== undefined);
  const related = shown.flatMap((s, i) => (i !== first && spans[i] ? [{ span: spans[i], message: `${printLink(s.before!)} is deleted here too` }] : []));
  const what = cut.length === 1 ? 'a backbone link' : `${cut.length} backbone links`;
  const list = shown.map((s) => printLink(s.before!)).join('; ') + (cut.length > SHOWN ? '; …' : '');
  return diagnostic(Msg.BackboneDelete, file, first < 0 ? undefined : spans[first], [what, plan.proxy!, list], { related });
}

/**
 * Where a file deletes links: for each link whose last statement is in a
 * DELETE block, that LINK statement. Parsed again, as this is only asked
 * once something is wrong.
 */
function deletedAt(file: SourceFile): Map<string, Span> {
  const at = new Map<string, Span>();
  for (const block of parseSource(file).program?.blocks ?? []) {
    for (const s of block.statements) {
      if (s.kind !== 'link') continue;
      const key = linkKey(s.a.text, s.b.text);
      if (block.action === 'delete') at.set(key, { start: s.start, end: s.end });
      else at.delete(key);
    }
  }
  return at;
}
