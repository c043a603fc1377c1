import type { Diagnostic } from '../src/diag/diagnostic.js';
import { jsonDiagnostic, renderDiagnostics } from '../src/diag/render.js';
import { SourceFile } from '../src/diag/source.js';
import { printLink, printRule, printState } from '../src/lang/print.js';
import { describeDrift } from '../src/plan/text.js';
import type { Fetched } from '../src/remote/fetch.js';
import { copyState, linkKey, type State } from '../src/model/state.js';
import { painterFor } from './color.js';
import type { Io } from './io.js';
import { fetchFor, targets, type ReachArgs } from './live.js';

export interface ShowArgs extends ReachArgs {
  file: string | undefined;
  format: 'table' | 'json' | 'vnet' | 'dot';
  color: boolean | undefined;
}

/**
 * Fetches what the daemons hold, ready to display, with the diagnostics of
 * getting there (fetched is undefined when it could not); a JSON report
 * carries them, a text one prints them. `source` is the file the daemons
 * are reported against, for a daemon lost later.
 */
export async function collectTargets(io: Io, file: string | undefined, args: ReachArgs): Promise<{ fetched: Fetched | undefined; diags: Diagnostic[]; source: SourceFile }> {
  const diags: Diagnostic[] = [];
  const t = await targets(io, file, args, diags);
  // Without a file, the daemons are the ones the local transport started, whatever their names.
  const reachArgs = t?.file ? args : { ...args, local: true };
  const source = t?.file ?? new SourceFile('local daemons', '');
  const fetched = t ? await fetchFor(io, source, t.hosts, reachArgs, diags) : undefined;
  return { fetched, diags, source };
}

/** Fetches what the daemons hold, ready to display; prints diagnostics and returns undefined when it cannot. */
export async function fetchTargets(io: Io, file: string | undefined, args: ReachArgs & { color: boolean | undefined }): Promise<Fetched | undefined> {
  const { fetched, diags } = await collectTargets(io, file, args);
  if (diags.length) io.stderr.write(renderDiagnostics(diags, painterFor(io, io.stderr, args.color)) + '\n');
  return fetched;
}

/** `vnetc show [file]`: the topology the daemons hold, with link state and counters. */
export async function show(io: Io, args: ShowArgs): Promise<number> {
  if (args.format === 'json') {
    const { fetched, diags } = await collectTargets(io, args.file, args);
    io.stdout.write(JSON.stringify(showJson(fetched, diags), null, 2) + '\n');
    await fetched?.close();
    return fetched ? 0 : 1;
  }
  const fetched = await fetchTargets(io, args.file, args);
  if (!fetched) return 1;
  try {
    const text =
      args.format === 'vnet' ? showVnet(fetched.live.state)
      : args.format === 'dot' ? showDot(fetched)
      : showTable(fetched, painterFor(io, io.stdout, args.color));
    io.stdout.write(text + '\n');
    return 0;
  } finally {
    await fetched.close();
  }
}

/**
 * The live state as a program. A link to a machine no HOST line here
 * declares (its daemon did not answer, or the file leaves it out), and the
 * rules that send over it, would not validate as statements: they are
 * listed as comments instead, so the program still evaluates.
 */
function showVnet(state: State): string {
  const kept = copyState(state);
  const left: string[] = [];
  for (const [key, l] of state.links) {
    if (state.hosts.has(l.a) && state.hosts.has(l.b)) continue;
    kept.links.delete(key);
    left.push(printLink(l));
  }
  for (const [machine, table] of kept.tables) {
    for (const [key, r] of table) {
      if (r.dest.kind !== 'link' || kept.links.has(linkKey(machine, r.dest.to))) continue;
      table.delete(key);
      left.push(printRule(r));
    }
  }
  const header = ['What the daemons hold, as fetched by vnetc show.'];
  if (left.length) header.push('', 'Held too, but naming a machine no HOST line here declares (its daemon did not', 'answer, or the file leaves it out), so shown only as comments:', ...left.map((l) => `  ${l}`));
  return printState(kept, header).trimEnd();
}

/** A link's counters of frames it lost and records it refused (PROTOCOL.md, LINKS?). */
const TROUBLE = ['dropped', 'rejected', 'replayed', 'auth-failures'] as const;

function showTable(f: Fetched, paint: ReturnType<typeof painterFor>): string {
  const out: string[] = [];
  for (const [machine, r] of f.reached) {
    if (!r.report) {
      out.push(paint.bold(machine) + paint.dim(`  (${r.session.describe}): no daemon running`), '');
      continue;
    }
    const info = r.report.info;
    out.push(paint.bold(machine) + paint.dim(`  ${r.session.describe}, port ${info.get('port')}, vnetd ${info.get('version')}, up ${info.get('uptime-s')} s`));
    for (const d of r.report.devices) out.push(`  iface ${d}`);
    for (const l of r.report.links) {
      const state = l.state === 'up' ? paint.green('up') : paint.yellow(l.state);
      const rtt = l.rttMs === undefined ? '' : ` rtt ${l.rttMs.toFixed(2)} ms`;
      const c = l.counters;
      // Trouble only when there is some: frames lost, records refused.
      const trouble = TROUBLE.filter((k) => c[k]).map((k) => `${k} ${c[k]}`).join(' ');
      out.push(`  link  ${l.link.peer} ${l.link.proto.toUpperCase()} ${l.link.dial ? 'dial' : 'accept'} ${state}${rtt}` +
        paint.dim(`  tx ${c['tx-frames'] ?? 0}/${c['tx-bytes'] ?? 0} rx ${c['rx-frames'] ?? 0}/${c['rx-bytes'] ?? 0}`) +
        (trouble ? '  ' + paint.yellow(trouble) : ''));
    }
    for (const { rule, counters } of r.report.rules) out.push(`  rule  ${printRule(rule)}` + paint.dim(`  ${counters.packets ?? 0} frames, ${counters.bytes ?? 0} bytes`));
    out.push('');
  }
  if (f.live.drift.length) {
    out.push(paint.yellow('Drift:'));
    for (const d of f.live.drift) out.push(`  ${describeDrift(d)}`);
  }
  return out.join('\n').trimEnd();
}

/** Unreachable daemons leave `daemons` empty and say why in `diagnostics`, so the report always has its shape. */
function showJson(f: Fetched | undefined, diags: readonly Diagnostic[]) {
  return {
    format_version: '1.0',
    daemons: [...(f?.reached ?? [])].map(([machine, r]) => ({
      machine,
      reached_by: r.session.describe,
      running: r.report !== undefined,
      ...(r.report
        ? {
            info: Object.fromEntries(r.report.info),
            interfaces: r.report.devices,
            links: r.report.links.map((l) => ({ ...l.link, state: l.state, rtt_ms: l.rttMs ?? null, counters: l.counters })),
            rules: r.report.rules.map(({ rule, counters }) => ({ rule: printRule(rule), counters })),
          }
        : {}),
    })),
    drift: (f?.live.drift ?? []).map(describeDrift),
    diagnostics: diags.map(jsonDiagnostic),
  };
}

/** Graphviz: daemons as nodes, links as edges (dashed until up), with RTT. */
function showDot(f: Fetched): string {
  const q = (s: string) => JSON.stringify(s);
  const out = ['graph vnet {', '  node [shape=box, fontname="monospace"];'];
  for (const [machine, r] of f.reached) out.push(`  ${q(machine)}${r.report ? '' : ' [style=dashed]'};`);
  const state = new Map<string, { up: boolean; rtt: number | undefined }>();
  for (const [machine, r] of f.reached) for (const l of r.report?.links ?? []) state.set(`${machine} ${l.link.peer}`, { up: l.state === 'up', rtt: l.rttMs });
  for (const l of f.live.state.links.values()) {
    const s = state.get(`${l.a} ${l.b}`) ?? state.get(`${l.b} ${l.a}`);
    const label = `${l.proto.toUpperCase()}${s?.rtt === undefined ? '' : ` ${s.rtt.toFixed(2)} ms`}`;
    out.push(`  ${q(l.a)} -- ${q(l.b)} [label=${q(label)}${s?.up ? '' : ', style=dashed'}, tooltip=${q(printLink(l))}];`);
  }
  out.push('}');
  return out.join('\n');
}
