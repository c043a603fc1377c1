import type { Diagnostic } from '../src/diag/diagnostic.js';
import { jsonDiagnostic, visible } from '../src/diag/render.js';
import { copyState, type Link, type Rule, type State } from '../src/model/state.js';
import { printLink, printRule } from '../src/lang/print.js';
import { diff } from '../src/plan/diff.js';
import { applyPlan, hintOf } from '../src/remote/apply.js';
import { defaultLaunch } from '../src/remote/launch.js';
import { apply, type ApplyArgs } from './apply.js';
import { interruptible } from './interrupt.js';
import { UsageError, type Io } from './io.js';
import { prepare, type ReachArgs } from './live.js';
import { report } from './plan.js';

/**
 * `vnetc up <file>`: start the daemons a file names and establish its
 * topology (the papers' startup tool). A first Ctrl-C starts no more
 * daemons and pushes no changes, lets those being started come up, and says
 * which were started and how to stop them; a second ends at once, saying
 * the same.
 */
export async function up(io: Io, args: Omit<ApplyArgs, 'autoApprove'>): Promise<number> {
  return interruptible(io, 'starting no more daemons, then saying which were started', async (i) => {
    const code = await apply(io, { ...args, autoApprove: true }, i);
    return i.status ?? code;
  });
}

export interface DownArgs extends ReachArgs {
  file: string;
  json: boolean;
  color: boolean | undefined;
}

/**
 * `vnetc down <file>`: removes from the daemons the links and rules the
 * file describes (nothing else they hold), then stops its daemons. Their
 * state directories stay, empty of what the file made.
 */
export async function down(io: Io, args: DownArgs): Promise<number> {
  if (args.state !== undefined) throw new UsageError('down works on the live daemons; --state is for reviewing with plan');
  const diags: Diagnostic[] = [];
  const p = await prepare(io, args.file, args, diags);
  if (!p && args.json) {
    io.stdout.write(JSON.stringify(downJson(false, 0, [], [], [], diags), null, 2) + '\n');
    return 1;
  }
  if (!p) return report(io, args, diags);
  const fetched = p.fetched!;
  try {
    const desired = copyState(p.live.state);
    desired.hosts = new Map(p.desired.hosts);
    for (const key of p.desired.links.keys()) desired.links.delete(key);
    for (const [machine, table] of p.desired.tables) {
      const live = desired.tables.get(machine);
      if (live) for (const key of table.keys()) live.delete(key);
    }
    // A daemon refuses to drop a link a rule still sends over, and the other end would already have dropped its half: say so before touching anything.
    const stranded = strandedRules(p.live.state, desired);
    if (stranded.length) {
      const lines = stranded.map(({ rule, link }) => `${printRule(rule)} (not in ${args.file}) still sends over ${printLink(link)}, which down removes`);
      const hint = `add ${stranded.length === 1 ? 'that rule' : 'those rules'} to ${args.file}, or remove ${stranded.length === 1 ? 'it' : 'them'} first (vnetc apply a file without ${stranded.length === 1 ? 'it' : 'them'}); nothing was changed`;
      if (args.json) io.stdout.write(JSON.stringify(downJson(false, 0, [], [], [...lines, hint], diags), null, 2) + '\n');
      else {
        for (const l of lines) io.stderr.write(`vnetc: error: ${l}\n`);
        io.stderr.write(`vnetc: hint: ${hint}\n`);
      }
      return 1;
    }
    const plan = diff(p.live, desired);
    // A daemon already stopped is left as it is (its state directory too): the others are still taken down.
    const already = [...fetched.reached.values()].filter((r) => !r.client).map((r) => r.host.machine).sort();
    const skip = new Set(already);
    const result = await applyPlan(
      plan.steps.filter((s) => s.kind !== 'host' && s.daemons.some((m) => !skip.has(m))),
      fetched,
      { launchFor: defaultLaunch, parallelism: args.parallelism, skip },
    );
    const stopped: string[] = [];
    const failed: { text: string; hint?: string }[] = result.failures.map((f) => ({ text: `${f.machine}: ${f.message}`, hint: f.hint }));
    if (result.ok) {
      await Promise.all(
        [...fetched.reached.values()].map(async (r) => {
          if (!r.client) return;
          try {
            await r.session.stop();
            stopped.push(r.host.machine);
          } catch (e) {
            failed.push({ text: `${r.host.machine}: cannot stop its daemon: ${(e as Error).message}`, hint: hintOf(e) });
          }
        }),
      );
    }
    const removed = result.results.filter((r) => r.status === 'applied').length;
    if (args.json) {
      io.stdout.write(JSON.stringify(downJson(failed.length === 0, removed, stopped.sort(), already, failed.map((f) => f.text), diags), null, 2) + '\n');
    } else {
      const was = already.length ? ` ${already.join(', ')} ${already.length === 1 ? 'was' : 'were'} already stopped, and left as ${already.length === 1 ? 'it was' : 'they were'}.` : '';
      io.stdout.write(`Removed ${removed} of the file's links and rules; stopped ${stopped.length} daemon${stopped.length === 1 ? '' : 's'}${stopped.length ? ` (${stopped.sort().join(', ')})` : ''}.${was}\n`);
      // What a machine said (its shell's stderr, its log) must not reach the terminal as control sequences.
      for (const f of failed) io.stderr.write(`vnetc: error: ${visible(f.text)}\n${f.hint ? `vnetc: hint: ${visible(f.hint)}\n` : ''}`);
    }
    return failed.length ? 1 : 0;
  } finally {
    await fetched.close();
  }
}

function downJson(ok: boolean, removed: number, stopped: string[], already: string[], failures: string[], diags: readonly Diagnostic[]) {
  return { format_version: '1.0', ok, removed, stopped, already_stopped: already, failures, diagnostics: diags.map(jsonDiagnostic) };
}

/** Rules `desired` keeps that send over a link it no longer has: what a daemon would refuse (E_INUSE). */
function strandedRules(live: State, desired: State): { rule: Rule; link: Link }[] {
  const out: { rule: Rule; link: Link }[] = [];
  for (const [key, link] of live.links) {
    if (desired.links.has(key)) continue;
    for (const [self, peer] of [[link.a, link.b], [link.b, link.a]] as const) {
      for (const rule of desired.tables.get(self)?.values() ?? []) {
        if (rule.dest.kind === 'link' && rule.dest.to === peer) out.push({ rule, link });
      }
    }
  }
  return out;
}
