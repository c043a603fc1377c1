import { resolve } from 'node:path';
import { countErrors } from '../src/diag/diagnostic.js';
import { renderDiagnostics } from '../src/diag/render.js';
import { compileSource } from '../src/lang/compile.js';
import { InputError } from '../src/util/input-error.js';
import { actedOn, adapt, type Adapted, type AdaptOptions, type Algorithm } from '../src/vadapt/adapt.js';
import { formatGain, formatMbps } from '../src/vadapt/emit.js';
import { readInference } from '../src/vadapt/inference-file.js';
import { defaultNetwork, readNetwork, withMeasuredRtts } from '../src/vadapt/network.js';
import type { Limit } from '../src/vadapt/topology.js';
import type { Inference } from '../src/vttif/types.js';
import { painterFor } from './color.js';
import { connectCollector, settledChanges, withCollector } from './infer.js';
import type { ReachArgs } from './live.js';
import { checkOutput, describeIoError, load, readTextFile, UsageError, writeFileAtomic, type Io } from './io.js';

export interface AdaptArgs extends ReachArgs {
  /** The inference from a file; or live from the spec's collector (`live`, `watch`). */
  matrix: string | undefined;
  live: boolean;
  watch: boolean;
  maxChanges: number | undefined;
  spec: string;
  k: string | undefined;
  budget: number | undefined;
  placement: boolean;
  network: string | undefined;
  out: string | undefined;
  delta: boolean;
  json: boolean;
  algorithm: Algorithm;
  seed: number;
  color: boolean | undefined;
}

/** -k N | -k all | --budget B | neither (all). */
export function limitFrom(args: { k: string | undefined; budget: number | undefined }): Limit {
  if (args.k !== undefined && args.budget !== undefined) throw new UsageError('give -k or --budget, not both');
  if (args.budget !== undefined) {
    if (!Number.isFinite(args.budget) || args.budget < 0) throw new UsageError(`--budget must be a number ≥ 0, not ${args.budget}`);
    return { kind: 'budget', budget: args.budget };
  }
  if (args.k === undefined || args.k === 'all') return { kind: 'all' };
  if (!/^\d+$/.test(args.k)) throw new UsageError(`-k must be a whole number or 'all', not '${args.k}'`);
  return { kind: 'count', k: Number(args.k) };
}

/**
 * `vnetc adapt`: 0 written, 1 a bad input file (spec, matrix or network) or
 * unreachable daemons, 2 usage. The inference comes from `--matrix`, or
 * live from the collector of the spec's daemons (`--live`); `--watch` writes
 * a numbered file each time the inference settles on a new topology.
 */
export async function adaptCommand(io: Io, args: AdaptArgs, signal?: AbortSignal): Promise<number> {
  const options: AdaptOptions = { limit: limitFrom(args), placement: args.placement, algorithm: args.algorithm, seed: args.seed };
  if (!Number.isInteger(args.seed)) throw new UsageError(`--seed must be a whole number, not ${args.seed}`);
  if (args.json && args.out === undefined) throw new UsageError('with --json the report goes to standard output: say where the .vnet file goes with --out');
  const live = args.live || args.watch;
  if (live && args.matrix !== undefined) throw new UsageError('give --matrix or --live (or --watch), not both');
  if (!live && args.matrix === undefined) throw new UsageError("say where the traffic comes from: --matrix m.json ('vnetc infer --json' output), or --live to ask the spec's collector");
  if (args.watch && args.out === undefined) throw new UsageError('--watch writes one file per settled change: give --out NAME.vnet (files are NAME-1.vnet, NAME-2.vnet, …)');
  if (args.maxChanges !== undefined && !args.watch) throw new UsageError('--max-changes goes with --watch');
  if (args.out !== undefined) {
    await checkOutput(io.cwd, args.out, '--out', [
      { path: args.spec, what: '--spec' },
      { path: args.matrix, what: '--matrix' },
      { path: args.network, what: '--network' },
    ]);
  }
  try {
    if (!live) return await run(io, args, readInference(args.matrix!, await readTextFile(io.cwd, args.matrix!, 'the matrix')), args.matrix!, options, []);
    const session = await connectCollector(io, args.spec, args, null);
    if (!session) return 1;
    return await withCollector(io, session, args.color, async () => {
      const name = `the live inference of collector ${session.collector}`;
      if (!args.watch) return await run(io, args, await session.read(), name, options, session.rtts);
      let n = 0;
      let status = 0;
      await settledChanges(session, args.maxChanges, signal, async (_prev, inf) => {
        const out = args.out!.replace(/(\.vnet)?$/, `-${++n}.vnet`);
        status = Math.max(status, await run(io, { ...args, out }, inf, `${name} at ${inf.at}`, options, session.rtts));
      });
      return status;
    });
  } catch (e) {
    if (e instanceof InputError) {
      io.stderr.write(`vnetc: error: ${e.message}\n`);
      return 1;
    }
    throw e;
  }
}

/** `rtts`: what the links measured, which replaces the network's latencies (live input only). */
async function run(io: Io, args: AdaptArgs, inference: Inference, inferenceName: string, options: AdaptOptions, rtts: readonly { a: string; b: string; rttMs: number }[]): Promise<number> {
  const loaded = await load(io, args.spec);
  const paint = painterFor(io, io.stderr, args.color);
  if (!loaded.ok) {
    io.stderr.write(renderDiagnostics(loaded.diagnostics, paint) + '\n');
    return 1;
  }
  const compiled = compileSource(loaded.file);
  if (countErrors(compiled.diagnostics) || !compiled.state) {
    io.stderr.write(renderDiagnostics(compiled.diagnostics, paint) + '\n');
    io.stderr.write(`vnetc: error: ${args.spec} has errors; adapt starts from a valid spec\n`);
    return 1;
  }
  const given = args.network === undefined ? defaultNetwork() : readNetwork(args.network, await readTextFile(io.cwd, args.network, 'the network file'));
  const network = rtts.length ? withMeasuredRtts(given, rtts) : given;
  const networkName =
    (args.network ?? 'defaults (1000 Mbit/s, 1 ms between any two machines)') +
    (rtts.length ? `, latency measured by the links' keep-alives on ${rtts.length} link${rtts.length === 1 ? '' : 's'}` : '');
  const result = adapt(
    { inference, inferenceName, base: { file: loaded.file, state: compiled.state }, network, networkName },
    options,
  );
  const output = args.delta ? result.delta : result.text;
  if (args.out === undefined) {
    io.stdout.write(output);
    io.stderr.write(summary(result, args) + '\n');
    return 0;
  }
  try {
    await writeFileAtomic(resolve(io.cwd, args.out), output);
  } catch (e) {
    throw new UsageError(`cannot write '${args.out}': ${describeIoError(e)}`);
  }
  io.stdout.write(args.json ? JSON.stringify(result.report, null, 2) + '\n' : summary(result, args) + '\n');
  return 0;
}

function summary({ report: r }: Adapted, args: AdaptArgs): string {
  const opt = r.optimal === null ? 'not computed' : 'skipped' in r.optimal ? `not computed: ${r.optimal.skipped}` : formatMbps(r.optimal.score);
  const lines = [
    // Said only when the window is not what was acted on: then the numbers below are not about the traffic now.
    ...(r.window === 'settled' ? [] : [`Adapted to ${actedOn(r)}.`]),
    `Objective (sum of residual bottleneck bandwidth, Mbit/s; higher is better): before ${formatMbps(r.before)}`,
    `  greedy ${formatMbps(r.greedy.score)}   improved ${r.improved ? formatMbps(r.improved.score) : 'not computed'}   optimal ${opt}   → wrote ${r.written}`,
    `${r.links.length} fast path${r.links.length === 1 ? '' : 's'} added, ${r.rulesAdded} rules added, ${r.rulesDeleted} deleted, ${r.migrations.length} migration${r.migrations.length === 1 ? '' : 's'}`,
  ];
  for (const l of r.links) lines.push(`  LINK ${l.a} ${l.b}   ${formatMbps(l.mbps)} Mbit/s   intensity ${l.intensity.toFixed(2)}   score ${formatGain(l.gain)}`);
  for (const m of r.migrations) lines.push(`  migrate ${m.vm}: ${m.from} → ${m.to}`);
  if (r.oversubscribed.length) lines.push(`Warning: ${r.oversubscribed.length} edge(s) oversubscribed; see the file's header`);
  if (args.out !== undefined) {
    lines.push(
      args.delta
        ? `Wrote ${args.out}, a saved plan against ${args.spec}: vnetc apply ${args.out} (refused if the daemons hold anything else).`
        : `Wrote ${args.out}. Review it: vnetc plan ${args.out} --state ${args.spec}`,
    );
  }
  return lines.join('\n');
}
