import { countErrors, type Diagnostic } from '../src/diag/diagnostic.js';
import { jsonDiagnostic, visible } from '../src/diag/render.js';
import { deltaBase } from '../src/lang/delta.js';
import { summarize } from '../src/plan/plan.js';
import { printStep } from '../src/plan/text.js';
import { diff } from '../src/plan/diff.js';
import { applyPlan, type ApplyOptions, type ApplyReport, type ProgressEvent, type Stage, type StepResult } from '../src/remote/apply.js';
import { liveOf, overlayAddresses } from '../src/remote/fetch.js';
import { launchWith } from '../src/remote/launch.js';
import { isMachineName } from '../src/model/names.js';
import { suggest } from '../src/lang/suggest.js';
import { painterFor } from './color.js';
import { UsageError, type Io } from './io.js';
import { prepare, upCommand, type Prepared, type ReachArgs } from './live.js';
import type { Interrupt } from './interrupt.js';
import { computePlan, report, show } from './plan.js';

export interface ApplyArgs extends ReachArgs {
  file: string;
  autoApprove: boolean;
  json: boolean;
  allowBackboneDelete: boolean;
  proxy: string | undefined;
  color: boolean | undefined;
  /** `MACHINE=KIND:PARAMS`: how a daemon apply starts opens its interface, instead of the default. */
  iface: readonly string[];
}

/** Reads --iface MACHINE=KIND:PARAMS flags. */
export function ifaceSpecs(flags: readonly string[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const f of flags) {
    const m = /^([^=\s]+)=([a-z0-9-]+:\S*)$/.exec(f);
    if (!m || !isMachineName(m[1]!)) throw new UsageError(`--iface '${f}' is not MACHINE=KIND:PARAMS (for example host1=qemu-udp:listen=127.0.0.1:7001,peer=127.0.0.1:7000)`);
    if (out.has(m[1]!)) throw new UsageError(`--iface names ${m[1]} twice`);
    out.set(m[1]!, m[2]!);
  }
  return out;
}


export const APPLY_FORMAT_VERSION = '1.0';

/**
 * `vnetc apply`: computes the plan against the live daemons, shows it, asks
 * (unless --auto-approve, or the file is a saved plan, which was reviewed
 * when it was made), then pushes it. 0 applied (or nothing to do), 1 error.
 */
export async function apply(io: Io, args: ApplyArgs, interrupt?: Interrupt): Promise<number> {
  const ifaces = ifaceSpecs(args.iface);
  const launch = launchWith(ifaces);
  if (args.state !== undefined) throw new UsageError('apply works on the live daemons; --state is for reviewing with plan');
  const diags: Diagnostic[] = [];
  const prepared = await prepare(io, args.file, args, diags);
  if (!prepared) return notApplied(io, args, diags);
  try {
    // A misspelt machine would otherwise leave its daemon on the default interface, unsaid.
    const machines = [...prepared.desired.hosts.keys()];
    for (const m of ifaces.keys()) {
      if (prepared.desired.hosts.has(m)) continue;
      const close = suggest(m, machines);
      throw new UsageError(`--iface names ${m}, which ${prepared.file.name} does not declare${close ? `; did you mean '${close}'?` : ` (its machines: ${machines.join(', ')})`}`);
    }
    return await run(io, args, prepared, diags, launch, interrupt);
  } finally {
    await prepared.fetched?.close();
  }
}

async function run(io: Io, args: ApplyArgs, prepared: Prepared, diags: Diagnostic[], launch: ApplyOptions['launchFor'], interrupt: Interrupt | undefined): Promise<number> {
  const fetched = prepared.fetched!;
  const saved = deltaBase(prepared.file.text) !== undefined;
  // The question would come with no plan shown above it (JSON shows it only at the end), so nobody could answer it knowingly.
  if (args.json && !args.autoApprove && !saved) {
    throw new UsageError('--json needs --auto-approve, or a plan saved with plan --out (review it with plan first): apply cannot show the plan and ask while it prints JSON');
  }
  const plan = computePlan(prepared, args, diags);
  if (!plan || countErrors(diags)) {
    if (plan && !args.json) show(io, args, prepared, plan, diags);
    return notApplied(io, args, diags);
  }
  if (!args.json) show(io, args, prepared, plan, diags);
  if (plan.steps.length === 0) {
    if (args.json) io.stdout.write(JSON.stringify(applyJson(undefined, true, diags), null, 2) + '\n');
    return 0;
  }
  if (!saved && !args.autoApprove) {
    if (!io.ask) {
      throw new UsageError('apply needs a yes to go ahead, and there is no terminal to ask on: pass --auto-approve, or apply a plan saved with plan --out');
    }
    const answer = await io.ask('\nDo you want to make these changes? Only \'yes\' goes ahead: ');
    if (answer?.trim() !== 'yes') {
      io.stderr.write('Apply cancelled; nothing was changed.\n');
      return 1;
    }
  }

  const progress = progressPrinter(io, args);
  const started = Date.now();
  // What is left running if the command ends early: said by a second signal as the process exits, or after a first one cut the apply short.
  const daemons = { running: [] as string[], starting: new Set<string>() };
  interrupt?.sayAtExit(() => leftRunning(args, daemons.running, [...daemons.starting]));
  const result = await applyPlan(plan.steps, fetched, {
    launchFor: launch,
    parallelism: args.parallelism,
    progress: progress.event,
    signal: interrupt?.signal,
    daemon: (machine, now) => {
      if (now === 'starting') return void daemons.starting.add(machine);
      daemons.starting.delete(machine);
      daemons.running.push(machine);
    },
    replan: () => diff(liveOf(fetched.reached), prepared.desired, { proxy: plan.proxy, overlayAddress: overlayAddresses(fetched.reached) }).steps,
  });
  progress.done();
  if (interrupt?.status !== undefined) {
    if (args.json) io.stdout.write(JSON.stringify(applyJson(result, false, diags), null, 2) + '\n');
    else if (result.failures.length) io.stderr.write(renderFailure(result, prepared.file.name, painterFor(io, io.stderr, args.color)) + '\n');
    io.stderr.write(`vnetc: ${leftRunning(args, daemons.running, [], result.interrupted)}\n`);
    return interrupt.status;
  }
  const ms = Date.now() - started;
  if (args.json) {
    io.stdout.write(JSON.stringify({ ...applyJson(result, result.ok, diags), ms }, null, 2) + '\n');
    return result.ok ? 0 : 1;
  }
  const paint = painterFor(io, io.stdout, args.color);
  if (result.ok) {
    const s = summarize({ ...plan, steps: result.results.map((r) => r.step) });
    io.stdout.write(paint.bold(paint.green(`\nApply complete! ${s.add} added, ${s.replace} replaced, ${s.delete} deleted in ${ms} ms.`)) + '\n');
    return 0;
  }
  io.stderr.write(renderFailure(result, prepared.file.name, painterFor(io, io.stderr, args.color)) + '\n');
  return 1;
}

/**
 * After a signal: the daemons this command started, which keep running,
 * those it was still starting (which may be running by now), and how to
 * stop them all.
 */
function leftRunning(args: ApplyArgs, running: readonly string[], starting: readonly string[], cutShort = false): string {
  const list = (ms: readonly string[]) => (ms.length === 1 ? ms[0]! : `${ms.slice(0, -1).join(', ')} and ${ms[ms.length - 1]}`);
  if (!running.length && !starting.length) return 'interrupted before any daemon was started';
  const parts = [];
  if (running.length) parts.push(`the daemon${running.length === 1 ? '' : 's'} of ${list(running)} ${running.length === 1 ? 'was' : 'were'} started and ${running.length === 1 ? 'keeps' : 'keep'} running${cutShort ? `, without all of ${args.file}'s links and rules` : ''}`);
  if (starting.length) parts.push(`${list(starting)} ${starting.length === 1 ? 'was' : 'were'} being started and may be running too`);
  return `interrupted: ${parts.join('; ')}; to stop ${running.length + starting.length === 1 ? 'it' : 'them'}: ${upCommand(args.file, args, 'down')}`;
}

type Paint = ReturnType<typeof painterFor>;

/** What was applied and what was not, daemon by daemon, so nobody is left guessing. */
function renderFailure(result: ApplyReport, file: string, paint: Paint): string {
  const out = ['', paint.bold(paint.red(`Error: apply failed on ${result.failures.length} daemon${result.failures.length === 1 ? '' : 's'}:`))];
  // What a machine said (its shell's stderr, its log) must not reach the terminal as control sequences.
  for (const f of result.failures) out.push(`  ${f.machine}: ${visible(f.message)}`, ...(f.hint ? [`    ${paint.cyan('hint')}: ${visible(f.hint)}`] : []));
  const group = (status: StepResult['status'][], title: string): void => {
    const rs = result.results.filter((r) => status.includes(r.status));
    if (!rs.length) return;
    out.push('', `${title} (${rs.length}):`);
    for (const r of rs) {
      const where = r.status === 'partial' ? `  [done on ${r.at.filter((a) => a.ok).map((a) => a.machine).join(', ')}; not on ${r.at.filter((a) => !a.ok).map((a) => a.machine).join(', ')}]` : '';
      out.push(`  ${sign(r.step.action)} ${printStep(r.step)}${where}`);
    }
  };
  group(['applied'], 'Applied');
  group(['partial'], 'Applied at some daemons only');
  group(['failed', 'not-attempted'], 'Not applied');
  out.push('', `Each daemon took its share whole or not at all. Run 'vnetc plan ${file}' to see what remains.`);
  return out.join('\n');
}

const sign = (a: string): string => (a === 'create' ? '+' : a === 'delete' ? '-' : '~');

/** Progress: a status line rewritten in place on a terminal; a plain line per daemon and phase otherwise. */
function progressPrinter(io: Io, args: ApplyArgs) {
  const quiet = args.json;
  const tty = io.stderr.isTTY === true;
  let finished = 0;
  let stage: Stage | undefined;
  return {
    event: (e: ProgressEvent) => {
      if (quiet) return;
      if (e.stage !== stage) {
        if (tty && stage !== undefined) io.stderr.write('\n');
        stage = e.stage;
        finished = 0;
      }
      finished++;
      const what = e.stage === 'daemons' ? 'started' : `${e.changes} change${e.changes === 1 ? '' : 's'} committed`;
      const title = e.stage === 'daemons' ? 'Starting daemons' : 'Applying';
      if (tty) io.stderr.write(`\r\x1b[K${title}: ${finished} daemon${finished === 1 ? '' : 's'} done, last ${e.machine} ${e.ok ? 'ok' : 'FAILED'}`);
      else io.stderr.write(`${e.machine}: ${e.ok ? what : `failed: ${e.message}`}\n`);
    },
    done: () => {
      if (!quiet && tty && stage !== undefined) io.stderr.write('\n');
    },
  };
}

/** Nothing applied, because the plan could not be made: the diagnostics, as text or in apply's own JSON report. */
function notApplied(io: Io, args: ApplyArgs, diags: Diagnostic[]): number {
  if (!args.json) return report(io, args, diags);
  io.stdout.write(JSON.stringify(applyJson(undefined, false, diags), null, 2) + '\n');
  return 1;
}

function applyJson(result: ApplyReport | undefined, ok: boolean, diags: readonly Diagnostic[]) {
  return {
    format_version: APPLY_FORMAT_VERSION,
    applied: ok,
    steps: (result?.results ?? []).map((r) => ({
      kind: r.step.kind,
      action: r.step.action,
      change: printStep(r.step),
      daemons: r.step.daemons,
      status: r.status,
      at: r.at,
    })),
    failures: result?.failures ?? [],
    started: result?.started ?? [],
    diagnostics: diags.map(jsonDiagnostic),
  };
}
