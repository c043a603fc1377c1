import { resolve } from 'node:path';
import type { Diagnostic } from '../src/diag/diagnostic.js';
import { renderDiagnostics } from '../src/diag/render.js';
import type { Fetched, Reached } from '../src/remote/fetch.js';
import { BrokenReply, ReachError, unreadableReply } from '../src/remote/transport.js';
import { applySettingWords, formatSettings, settingsFromLines, settingsProblem, type VttifSettings } from '../src/vttif/params.js';
import { changeLine } from '../src/vttif/render/change.js';
import { renderDot } from '../src/vttif/render/dot.js';
import { renderSvg } from '../src/vttif/render/svg.js';
import { renderTable } from '../src/vttif/render/table.js';
import type { Inference, Topology } from '../src/vttif/types.js';
import { parseFields } from '../src/wire/control.js';
import { parseInference } from '../src/wire/vttif.js';
import { painterFor } from './color.js';
import { checkOutput, describeIoError, UsageError, writeFileAtomic, type Io } from './io.js';
import { unreachable, upCommand, type ReachArgs } from './live.js';
import { collectTargets } from './show.js';

/**
 * `vnetc infer [file]`: what VTTIF has inferred, from the collector daemon.
 * The daemons a file names (or every local daemon) are asked for their VTTIF
 * settings first; any that do not report to the collector, or differ from
 * the parameters given, are set (and told so on stderr), so that the first
 * `infer` on a deployment turns inference on and later ones only read.
 */

export interface InferArgs extends ReachArgs {
  file: string | undefined;
  format: 'table' | 'json' | 'dot';
  svg: string | undefined;
  watch: boolean;
  /** With --watch: stop after this many settled changes (default: until interrupted). */
  maxChanges: number | undefined;
  collector: string | undefined;
  rate: number | undefined;
  /** Count one frame in this many (sFlow-style), default: every frame. */
  sampleEvery: number | undefined;
  /** Seconds, or 'auto': from the daemons' configuration-time bound. */
  window: string | undefined;
  threshold: number | undefined;
  color: boolean | undefined;
}

/** A session to the collector of a deployment, for as long as a command reads from it. */
export interface CollectorSession {
  collector: string;
  settings: VttifSettings;
  /** Round-trip times the daemons' links measured with their keep-alives, one per link that has one. */
  rtts: { a: string; b: string; rttMs: number }[];
  /** Rejects with a ReachError when the collector's daemon has gone away or refuses. */
  read(): Promise<Inference>;
  /** A lost collector as the diagnostic any unreachable daemon gets (VN5001, at its HOST line). */
  lost(e: ReachError): Diagnostic[];
  close(): Promise<void>;
}

/**
 * Reaches the daemons of `file` (or every local daemon) and their collector.
 * With `configure`, settings that differ from what is asked are set (and
 * said on stderr); without, a deployment where VTTIF is off is an error
 * that says how to turn it on. Undefined (diagnostics printed) when the
 * daemons cannot be reached.
 */
export async function connectCollector(io: Io, file: string | undefined, args: ReachArgs & { color: boolean | undefined }, configure: InferArgs | null): Promise<CollectorSession | undefined> {
  const { fetched, diags, source } = await collectTargets(io, file, args);
  if (diags.length) io.stderr.write(renderDiagnostics(diags, painterFor(io, io.stderr, args.color)) + '\n');
  if (!fetched) return undefined;
  try {
    const running = [...fetched.reached].filter(([, r]) => r.client);
    const stopped = [...fetched.reached].filter(([, r]) => !r.client).map(([m]) => m);
    if (stopped.length) throw new UsageError(`no daemon runs on ${stopped.join(', ')}; start them with '${upCommand(file, args)}'`);
    // The daemons are asked at once, not in turn: each has its own session.
    const current = new Map<string, VttifSettings>(await Promise.all(running.map(async ([machine, r]) => [machine, settingsFromLines(await ask(r, 'VTTIF?'))] as const)));
    let collector: string;
    let settings: VttifSettings;
    if (configure) {
      collector = chooseCollector(configure, fetched, current);
      settings = await wantedSettings(configure, running, current, collector);
      const changes = running.map(([machine, r]) => ({ machine, r, words: difference(current.get(machine)!, settings) })).filter((c) => c.words.length);
      const done = await Promise.allSettled(changes.map((c) => ask(c.r, `VTTIF ${c.words.join(' ')}`)));
      // What was set is said, in order, even when another daemon refused.
      changes.forEach((c, i) => done[i]!.status === 'fulfilled' && io.stderr.write(`vttif: ${c.machine}: set ${c.words.join(' ')}\n`));
      const refused = done.find((d): d is PromiseRejectedResult => d.status === 'rejected');
      if (refused) throw refused.reason;
    } else {
      const named = [...current.values()].map((x) => x.collector).find((c): c is string => c !== null && fetched.reached.has(c));
      if (named === undefined) throw new UsageError(`VTTIF is not on for these daemons; turn it on with 'vnetc infer${file ? ` ${file}` : ''}'`);
      collector = named;
      settings = current.get(collector)!;
    }
    const at = fetched.reached.get(collector)!;
    const rtts = new Map<string, { a: string; b: string; rttMs: number }>();
    for (const [machine, r] of running) {
      for (const l of r.report?.links ?? []) {
        if (l.rttMs === undefined) continue;
        const [a, b] = machine < l.link.peer ? [machine, l.link.peer] : [l.link.peer, machine];
        rtts.set(`${a} ${b}`, { a, b, rttMs: l.rttMs });
      }
    }
    return {
      collector,
      settings,
      rtts: [...rtts.values()],
      read: async () => {
        let reply;
        try {
          reply = await at.client!.request('INFER?');
        } catch (e) {
          // A daemon stopped, killed or restarted while this command read from it (idle, or while it owed INFER?'s reply).
          if (e instanceof ReachError && !(e instanceof BrokenReply)) throw e;
          const why = e instanceof BrokenReply ? e.why : (e as Error).message;
          throw new ReachError(collector, `the collector went away while vnetc read from it (${why})`, `start it again with '${upCommand(file, args)}', then run this command again`);
        }
        if (!reply.ok) throw new ReachError(collector, `the collector refused INFER?: ${reply.code} ${reply.text}`, `VTTIF may have been turned off or moved; 'vnetc infer${file ? ` ${file}` : ''}' turns it on again`);
        return inferenceFrom(collector, reply.data);
      },
      lost: (e) => unreachable(source, [e]),
      close: () => fetched.close(),
    };
  } catch (e) {
    await fetched.close();
    throw e;
  }
}

/** The collector's INFER? answer read, or a ReachError naming it: a daemon's bad reply is the daemon's fault, not vnetc's. */
export function inferenceFrom(collector: string, lines: readonly string[]): Inference {
  try {
    return parseInference(lines);
  } catch (e) {
    if (!(e instanceof RangeError)) throw e;
    throw unreadableReply(collector, `an answer to INFER? vnetc cannot read: ${e.message}`);
  }
}

export async function infer(io: Io, args: InferArgs, signal?: AbortSignal): Promise<number> {
  if (args.maxChanges !== undefined && !args.watch) throw new UsageError('--max-changes goes with --watch');
  if (args.maxChanges !== undefined && !(Number.isInteger(args.maxChanges) && args.maxChanges > 0)) throw new UsageError(`--max-changes must be a whole number above 0, not ${args.maxChanges}`);
  if (args.svg !== undefined) await checkOutput(io.cwd, args.svg, '--svg');
  const session = await connectCollector(io, args.file, args, args);
  if (!session) return 1;
  return withCollector(io, session, args.color, () => inferFrom(io, session, args, signal));
}

/**
 * Runs `use` on the collector's session, then closes it. A collector that
 * goes away meanwhile (stopped, killed, restarted) is reported as any
 * unreachable daemon is, at its HOST line, exit 1.
 */
export async function withCollector(io: Io, session: CollectorSession, color: boolean | undefined, use: () => Promise<number>): Promise<number> {
  try {
    return await use();
  } catch (e) {
    if (!(e instanceof ReachError)) throw e;
    io.stderr.write(renderDiagnostics(session.lost(e), painterFor(io, io.stderr, color)) + '\n');
    return 1;
  } finally {
    await session.close();
  }
}

async function inferFrom(io: Io, session: CollectorSession, args: InferArgs, signal: AbortSignal | undefined): Promise<number> {
  const paint = painterFor(io, io.stdout, args.color);
  const svg = async (inf: Inference): Promise<void> => {
    if (args.svg === undefined) return;
    try {
      await writeFileAtomic(resolve(io.cwd, args.svg), renderSvg(inf));
    } catch (e) {
      throw new UsageError(`cannot write --svg '${args.svg}': ${describeIoError(e)}`);
    }
    io.stderr.write(`wrote ${args.svg}\n`);
  };
  if (args.watch) {
    // The picture is redrawn with each settled change, so it always shows the topology of the last line.
    await settledChanges(session, args.maxChanges, signal, async (prev, inf) => {
      await svg(inf);
      io.stdout.write(changeLine(prev, inf, paint) + '\n');
    });
    return 0;
  }
  const inf = await session.read();
  await svg(inf);
  const text = args.format === 'json' ? JSON.stringify(inf, null, 2) : args.format === 'dot' ? renderDot(inf) : renderTable(inf, paint);
  io.stdout.write(text.trimEnd() + '\n');
  return 0;
}

/**
 * Calls `each` with every settled topology, the one already settled first,
 * polling at the update rate, until `max` calls or `signal`.
 */
export async function settledChanges(
  session: CollectorSession,
  max: number | undefined,
  signal: AbortSignal | undefined,
  each: (prev: Topology | null, inf: Inference) => void | Promise<void>,
): Promise<void> {
  let prev: Topology | null = null;
  let seen = 0;
  let calls = 0;
  while (!signal?.aborted) {
    const inf = await session.read();
    if (inf.changes > seen) {
      await each(prev, inf);
      prev = inf.topology;
      seen = inf.changes;
      if (max !== undefined && ++calls >= max) return;
    }
    await new Promise((r) => setTimeout(r, 1000 / session.settings.updateHz));
  }
}

async function ask(r: Reached, line: string): Promise<string[]> {
  const reply = await r.client!.request(line);
  if (!reply.ok) throw new Error(`${r.host.machine}: ${line.split(' ')[0]} was refused: ${reply.code} ${reply.text}`);
  return reply.data;
}

/**
 * The collector is the one asked for, else the one the daemons already
 * report to, else the hub of the star (the machine with the most links: the
 * Proxy of the papers' Fig. 1).
 */
function chooseCollector(args: InferArgs, fetched: Fetched, current: Map<string, VttifSettings>): string {
  const machines = [...fetched.reached.keys()];
  if (args.collector !== undefined) {
    if (!fetched.reached.has(args.collector)) throw new UsageError(`--collector ${args.collector} is not one of the daemons here (${machines.join(', ')})`);
    return args.collector;
  }
  const named = new Set([...current.values()].map((s) => s.collector).filter((c): c is string => c !== null && fetched.reached.has(c)));
  if (named.size === 1) return [...named][0]!;
  const degree = new Map(machines.map((m) => [m, 0]));
  for (const l of fetched.live.state.links.values()) for (const m of [l.a, l.b]) degree.set(m, (degree.get(m) ?? 0) + 1);
  const ranked = [...degree].sort((x, y) => y[1] - x[1]);
  if (ranked.length === 1 || (ranked[0]![1] > 0 && ranked[0]![1] > ranked[1]![1])) return ranked[0]![0];
  throw new UsageError(`cannot tell which daemon is the Proxy (no single machine has the most links); name it with --collector (one of ${machines.join(', ')})`);
}

async function wantedSettings(args: InferArgs, running: [string, Reached][], current: Map<string, VttifSettings>, collector: string): Promise<VttifSettings> {
  const base = current.get(collector)!;
  const words = [`collector=${collector}`, 'sampling=on'];
  if (args.rate !== undefined) words.push(`update-hz=${args.rate}`);
  if (args.sampleEvery !== undefined) words.push(`sample-every=${args.sampleEvery}`);
  if (args.threshold !== undefined) words.push(`threshold=${args.threshold}`);
  if (args.window === 'auto') words.push(`window-s=${await autoWindow(running, args.rate ?? base.updateHz)}`);
  else if (args.window !== undefined) words.push(`window-s=${args.window}`);
  let s: VttifSettings;
  try {
    s = applySettingWords(base, words);
  } catch (e) {
    throw new UsageError(flagWords((e as Error).message));
  }
  const problem = settingsProblem(s);
  if (problem) throw new UsageError(flagWords(problem));
  return s;
}

/** The daemons' words, as the flags a person typed. */
const flagWords = (m: string): string => m.replace('sample-every', '--sample-every').replace('update-hz', '--rate').replace('window-s', '--window').replace(/\bthreshold=/, '--threshold ');

/**
 * 000 §2.1/§4: the time VNET takes to reconfigure is what VTTIF's smoothing
 * interval should be set from, so that it never reports changes faster than
 * the overlay can follow them. Each daemon's bound is the one it was given
 * (CONFIGTIME), else the longest commit it has measured itself; the window
 * is twice the largest, never under one update interval.
 */
async function autoWindow(running: [string, Reached][], rateHz: number): Promise<number> {
  let bound = 0;
  for (const [, r] of running) {
    const f = parseFields(await ask(r, 'CONFIGTIME?'));
    const given = f.get('bound-ms');
    const v = given !== undefined && given !== '-' ? given : f.get('max-commit-ms');
    if (v !== undefined && Number.isFinite(Number(v))) bound = Math.max(bound, Number(v));
  }
  return Math.round(Math.max(1 / rateHz, (2 * bound) / 1000) * 1000) / 1000;
}

function difference(have: VttifSettings, want: VttifSettings): string[] {
  const h = formatSettings(have).split(' ');
  return formatSettings(want).split(' ').filter((w, i) => w !== h[i]);
}
