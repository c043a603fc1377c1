import { resolve } from 'node:path';
import { countErrors, diagnostic, type Diagnostic } from '../src/diag/diagnostic.js';
import { Msg } from '../src/diag/messages.js';
import { jsonDiagnostic, renderDiagnostics } from '../src/diag/render.js';
import { savedProxy } from '../src/lang/delta.js';
import { suggest } from '../src/lang/suggest.js';
import { backboneCheck, backboneDeletes } from '../src/plan/backbone.js';
import { diff } from '../src/plan/diff.js';
import { PLAN_FORMAT_VERSION, planJson } from '../src/plan/json.js';
import { renderPlan } from '../src/plan/text.js';
import { planToVnet } from '../src/plan/vnet.js';
import { overlayAddresses } from '../src/remote/fetch.js';
import { painterFor } from './color.js';
import { checkOutput, describeIoError, writeFileAtomic, type Io } from './io.js';
import { prepare, type Prepared, type ReachArgs } from './live.js';
import type { Plan } from '../src/plan/plan.js';

export interface PlanArgs extends ReachArgs {
  file: string;
  out: string | undefined;
  json: boolean;
  detailedExitcode: boolean;
  allowBackboneDelete: boolean;
  proxy: string | undefined;
  color: boolean | undefined;
}

/**
 * `vnetc plan`: 0 success, 1 error; with --detailed-exitcode, 2 when there
 * are changes. Errors never exit 2 here, so a script can tell them apart.
 */
export async function plan(io: Io, args: PlanArgs): Promise<number> {
  if (args.out !== undefined) {
    await checkOutput(io.cwd, args.out, '--out', [
      { path: args.file, what: 'the desired state' },
      { path: args.state, what: '--state' },
    ]);
  }
  const diags: Diagnostic[] = [];
  const prepared = await prepare(io, args.file, args, diags);
  if (!prepared) return report(io, args, diags);
  try {
    const result = computePlan(prepared, args, diags);
    const ok = result !== undefined && countErrors(diags) === 0;
    if (!result) return report(io, args, diags);
    show(io, args, prepared, result, diags);
    if (!ok) return 1;
    if (args.out !== undefined) {
      const origin = [`Computed by vnetc plan from ${prepared.file.name}, against the live state of ${prepared.liveSource}.`];
      try {
        // Saved only without errors, so every backbone deletion in it was allowed: the plan carries that consent.
        await writeFileAtomic(resolve(io.cwd, args.out), planToVnet(result, prepared.desired, prepared.fingerprint, origin, backboneDeletes(result)));
      } catch (e) {
        io.stderr.write(`vnetc: error: cannot write the plan to '${args.out}': ${describeIoError(e)}\n`);
        return 1;
      }
      if (!args.json) io.stderr.write(`Saved the plan to ${args.out}.\n`);
    }
    return args.detailedExitcode && result.steps.length ? 2 : 0;
  } finally {
    await prepared.fetched?.close();
  }
}

/** The plan from live to desired, with its checks (the Proxy, backbone deletions without consent) added to diags. */
export function computePlan(p: Prepared, args: { proxy: string | undefined; allowBackboneDelete: boolean }, diags: Diagnostic[]): Plan | undefined {
  const saved = savedProxy(p.file.text);
  if (saved && args.proxy !== undefined && args.proxy !== saved.name) {
    diags.push(diagnostic(Msg.PlanProxyDisagrees, p.file, saved.span, [saved.name, args.proxy]));
    return undefined;
  }
  const named = args.proxy !== undefined ? { name: args.proxy, by: '--proxy', span: undefined } : saved && { ...saved, by: "the saved plan's Proxy line" };
  const proxy = named?.name;
  if (named && !p.desired.hosts.has(named.name)) {
    const close = suggest(named.name, [...p.desired.hosts.keys()]);
    diags.push(diagnostic(Msg.UnknownProxy, p.file, named.span, [named.by, named.name], close ? { hint: `did you mean '${close}'?` } : {}));
    return undefined;
  }
  const result = diff(p.live, p.desired, { proxy, ...(p.fetched ? { overlayAddress: overlayAddresses(p.fetched.reached) } : {}) });
  const refused = backboneCheck(result, p.file, args.allowBackboneDelete);
  if (refused) diags.push(refused);
  return result;
}

/** Prints a plan (and its diagnostics) as text or JSON. */
export function show(io: Io, args: { json: boolean; color: boolean | undefined }, p: Prepared, result: Plan, diags: Diagnostic[]): void {
  if (args.json) {
    const report = planJson({
      plan: result,
      desired: p.desired,
      desiredFile: p.file.name,
      live: { source: p.liveSource, fingerprint: p.fingerprint },
      diagnostics: diags,
    });
    io.stdout.write(JSON.stringify(report, null, 2) + '\n');
  } else {
    if (diags.length) io.stderr.write(renderDiagnostics(diags, painterFor(io, io.stderr, args.color)) + '\n');
    io.stdout.write(renderPlan(result, painterFor(io, io.stdout, args.color)) + '\n');
  }
}

/** The diagnostics of a plan that could not be computed. */
export function report(io: Io, args: { json: boolean; color: boolean | undefined }, diags: Diagnostic[]): number {
  if (args.json) {
    const out = { format_version: PLAN_FORMAT_VERSION, applyable: false, diagnostics: diags.map(jsonDiagnostic) };
    io.stdout.write(JSON.stringify(out, null, 2) + '\n');
  } else {
    io.stderr.write(renderDiagnostics(diags, painterFor(io, io.stderr, args.color)) + '\n');
  }
  return 1;
}
