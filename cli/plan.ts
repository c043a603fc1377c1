import { resolve } from 'node:path';
import { countErrors, diagnostic, type Diagnostic } from '../src/diag/diagnostic.js';
import { Msg } from '../src/diag/messages.js';
import { jsonDiagnostic, renderDiagnostics } from '../src/diag/render.js';
import type { SourceFile } from '../src/diag/source.js';
import { compileSource } from '../src/lang/compile.js';
import { deltaBase } from '../src/lang/delta.js';
import { printLink } from '../src/lang/print.js';
import { suggest } from '../src/lang/suggest.js';
import { liveFromState, type Live } from '../src/model/live.js';
import type { State } from '../src/model/state.js';
import { backboneDeletes } from '../src/plan/backbone.js';
import { diff } from '../src/plan/diff.js';
import { fingerprint } from '../src/plan/fingerprint.js';
import { PLAN_FORMAT_VERSION, planJson } from '../src/plan/json.js';
import { renderPlan } from '../src/plan/text.js';
import { planToVnet } from '../src/plan/vnet.js';
import { painterFor } from './color.js';
import { load, UsageError, writeFileAtomic, type Io } from './io.js';

export interface PlanArgs {
  file: string;
  state: string | undefined;
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
  if (args.state === undefined) {
    throw new UsageError('say where the live state is: --state FILE (a .vnet file of what the daemons hold)');
  }
  const diags: Diagnostic[] = [];
  const fail = (): number => report(io, args, diags);

  const liveLoaded = await load(io, args.state);
  if (!liveLoaded.ok) return diags.push(...liveLoaded.diagnostics), fail();
  if (deltaBase(liveLoaded.file.text) !== undefined) {
    return diags.push(diagnostic(Msg.PlanAsLiveState, liveLoaded.file, undefined)), fail();
  }
  const liveCompiled = compileSource(liveLoaded.file);
  diags.push(...liveCompiled.diagnostics);
  if (countErrors(liveCompiled.diagnostics) || !liveCompiled.state) return fail();
  const live = liveFromState(liveCompiled.state);
  const liveFingerprint = fingerprint(live);

  const loaded = await load(io, args.file);
  if (!loaded.ok) return diags.push(...loaded.diagnostics), fail();
  const desired = compileDesired(loaded.file, live, liveFingerprint, diags);
  if (!desired) return fail();

  if (args.proxy !== undefined && !desired.hosts.has(args.proxy)) {
    const close = suggest(args.proxy, [...desired.hosts.keys()]);
    diags.push(diagnostic(Msg.UnknownProxy, loaded.file, undefined, [args.proxy], close ? { hint: `did you mean '${close}'?` } : {}));
    return fail();
  }
  const result = diff(live, desired, { proxy: args.proxy });
  const cut = backboneDeletes(result);
  if (cut.length && !args.allowBackboneDelete) {
    const shown = cut.slice(0, 3).map((s) => printLink(s.before!)).join('; ');
    const what = cut.length === 1 ? 'a backbone link' : `${cut.length} backbone links`;
    diags.push(diagnostic(Msg.BackboneDelete, loaded.file, undefined, [what, result.proxy!, shown + (cut.length > 3 ? '; …' : '')]));
  }
  const ok = countErrors(diags) === 0;

  if (args.json) {
    const report = planJson({
      plan: result,
      desired,
      desiredFile: loaded.file.name,
      live: { source: liveLoaded.file.name, fingerprint: liveFingerprint },
      diagnostics: diags,
    });
    io.stdout.write(JSON.stringify(report, null, 2) + '\n');
  } else {
    if (diags.length) io.stderr.write(renderDiagnostics(diags, painterFor(io, io.stderr, args.color)) + '\n');
    io.stdout.write(renderPlan(result, painterFor(io, io.stdout, args.color)) + '\n');
  }
  if (!ok) return 1;

  if (args.out !== undefined) {
    const origin = [`Computed by vnetc plan from ${loaded.file.name}, against the live state in ${liveLoaded.file.name}.`];
    try {
      await writeFileAtomic(resolve(io.cwd, args.out), planToVnet(result, desired, liveFingerprint, origin));
    } catch (e) {
      io.stderr.write(`vnetc: error: cannot write the plan to '${args.out}': ${(e as Error).message}\n`);
      return 1;
    }
    if (!args.json) io.stderr.write(`Saved the plan to ${args.out}.\n`);
  }
  return args.detailedExitcode && result.steps.length ? 2 : 0;
}

/**
 * The desired state: the file evaluated on its own, or, for a saved plan, on
 * the live state it was computed against, which must not have moved since.
 */
function compileDesired(file: SourceFile, live: Live, liveFingerprint: string, diags: Diagnostic[]): State | undefined {
  const base = deltaBase(file.text);
  if (base !== undefined && base !== liveFingerprint) {
    const eol = file.text.indexOf('\n');
    diags.push(diagnostic(Msg.StalePlan, file, { start: 0, end: eol < 0 ? file.text.length : eol }, [short(base), short(liveFingerprint)]));
    return undefined;
  }
  const compiled = compileSource(file, base === undefined ? {} : { base: live.state });
  diags.push(...compiled.diagnostics);
  return countErrors(compiled.diagnostics) || !compiled.state ? undefined : compiled.state;
}

/** Enough of a fingerprint to tell two apart at a glance. */
const short = (fp: string): string => fp.slice(0, 'sha256:'.length + 16);

/** The diagnostics of a plan that could not be computed. */
function report(io: Io, args: PlanArgs, diags: Diagnostic[]): number {
  if (args.json) {
    const out = { format_version: PLAN_FORMAT_VERSION, applyable: false, diagnostics: diags.map(jsonDiagnostic) };
    io.stdout.write(JSON.stringify(out, null, 2) + '\n');
  } else {
    io.stderr.write(renderDiagnostics(diags, painterFor(io, io.stderr, args.color)) + '\n');
  }
  return 1;
}
