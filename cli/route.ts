import type { Diagnostic } from '../src/diag/diagnostic.js';
import { jsonDiagnostic, renderDiagnostics } from '../src/diag/render.js';
import { printRule } from '../src/lang/print.js';
import { parseMac } from '../src/model/mac.js';
import { reportedPorts } from '../src/route/ports.js';
import { allDelivered, homeOf, passedOverText, trace, type Ending, type Hop, type Ingress, type PassedOver, type Trace } from '../src/route/trace.js';
import { painterFor } from './color.js';
import { UsageError, type Io } from './io.js';
import { upCommand, type ReachArgs } from './live.js';
import { collectTargets } from './show.js';

export interface RouteArgs extends ReachArgs {
  src: string;
  dst: string;
  from: string | undefined;
  file: string | undefined;
  json: boolean;
  color: boolean | undefined;
}

/**
 * `vnetc route <src-mac> <dst-mac>`: the path a frame takes through the
 * daemons' live tables, hop by hop. By default the frame starts where the
 * source VM lives (the daemon that delivers frames for its MAC into an
 * interface), entering from that interface. The daemons' link states
 * decide which rules apply, as in vnetd. Exit 0 when every path ends in an
 * interface (or joins one that does: a duplicate), 1 on a dead end, a loop,
 * a path too long to follow or a daemon that did not report.
 */
export async function route(io: Io, args: RouteArgs): Promise<number> {
  const mac = (text: string, what: string): string => {
    const r = parseMac(text);
    if (!r.ok) throw new UsageError(`the ${what} '${text}' is not a MAC address: ${r.reason}`);
    return r.mac;
  };
  const src = mac(args.src, 'source');
  const dst = mac(args.dst, 'destination');
  const { fetched, diags } = await collectTargets(io, args.file, args);
  if (!args.json && diags.length) io.stderr.write(renderDiagnostics(diags, painterFor(io, io.stderr, args.color)) + '\n');
  if (!fetched) {
    if (args.json) io.stdout.write(JSON.stringify(routeJson(src, dst, { hops: [], endings: [] }, false, diags), null, 2) + '\n');
    return 1;
  }
  try {
    const state = fetched.live.state;
    let from = args.from;
    const home = homeOf(state, src);
    if (from === undefined) {
      if (!home) throw new UsageError(`no daemon delivers frames for ${src} into an interface, so where it lives is unknown; say where the frame starts with --from MACHINE`);
      from = home.machine;
    } else if (!state.tables.has(from)) {
      const running = [...state.tables.keys()];
      if (!running.length) throw new UsageError(`--from ${from}: none of the daemons runs, so there are no tables to follow; start them with '${upCommand(args.file, args)}'`);
      throw new UsageError(`--from ${from}: no such daemon among ${running.join(', ')}`);
    }
    const ingress: Ingress = home && home.machine === from ? { kind: 'interface', iface: home.iface } : { kind: 'interface', iface: state.hosts.get(from)?.iface ?? '' };
    const t = trace(state, from, ingress, src, dst, { ports: reportedPorts(fetched.reached) });
    const ok = allDelivered(t);
    io.stdout.write((args.json ? JSON.stringify(routeJson(src, dst, t, ok, diags), null, 2) : routeText(src, dst, t, painterFor(io, io.stdout, args.color))) + '\n');
    return ok ? 0 : 1;
  } finally {
    await fetched.close();
  }
}

const ingressText = (i: Ingress): string => (i.kind === 'interface' ? `from interface ${i.iface}` : `over the link from ${i.from}`);

function endingText(e: Ending): string {
  switch (e.kind) {
    case 'delivered':
      return `delivered into ${e.iface} on ${e.machine}`;
    case 'dead-end':
      return `DEAD END at ${e.machine}: ${e.why}`;
    case 'loop':
      return `LOOP: the frame comes back to ${e.machine} the way it came before, on the same path`;
    case 'duplicate':
      return `DUPLICATE: a second copy reaches ${e.machine} ${ingressText(e.ingress)} by another path; it goes on as the first did`;
    case 'too-long':
      return `TOO LONG: the path reaches ${e.machine} after ${e.hops} hops, more than route follows; no loop up to there`;
    case 'no-link':
      return `NO LINK: ${e.machine} has a rule sending to ${e.to} but no link to it`;
    case 'unknown':
      return `UNKNOWN: ${e.machine} did not report its table (not in the file, or not running)`;
  }
}

/** Rules passed over for split horizon explain only a hop where nothing else applied; elsewhere they are the fan-out working. */
const worthShowing = (h: Hop, x: PassedOver): boolean => x.why !== 'ingress' || h.drop !== undefined;

const endingMark = (e: Ending, paint: ReturnType<typeof painterFor>): string =>
  e.kind === 'delivered' ? paint.green('  ✓ ') : e.kind === 'duplicate' ? paint.yellow('  ! ') : paint.red('  ✗ ');

function routeText(src: string, dst: string, t: Trace, paint: ReturnType<typeof painterFor>): string {
  const out = [paint.bold(`Route of a frame ${src} → ${dst}:`)];
  t.hops.forEach((h, i) => {
    out.push(`  ${i + 1}. ${paint.bold(h.machine)} (${ingressText(h.ingress)})`);
    if (h.drop === 'no-match') out.push(paint.red('       no rule matches'));
    else if (h.drop) out.push(paint.red(`       no rule applies${h.drop === 'link-down' ? ': the ports of those that match are not up' : ''}`));
    for (const r of h.matched) out.push(`       ${printRule(r)}` + paint.dim(`  priority ${h.priority}`));
    for (const x of h.passedOver.filter((x) => worthShowing(h, x))) {
      out.push(paint.dim(`       ${printRule(x.rule)}  priority ${x.priority}`) + paint.yellow(`  passed over: ${passedOverText(x)}`));
    }
  });
  for (const e of t.endings) out.push(endingMark(e, paint) + endingText(e));
  return out.join('\n');
}

/** Daemons that could not be asked leave `hops` and `endings` empty and say why in `diagnostics`. */
function routeJson(src: string, dst: string, t: Pick<Trace, 'hops' | 'endings'>, ok: boolean, diags: readonly Diagnostic[]) {
  return {
    format_version: '1.0',
    src,
    dst,
    ok,
    hops: t.hops.map((h) => ({
      machine: h.machine,
      ingress: h.ingress,
      priority: h.priority,
      rules: h.matched.map(printRule),
      passed_over: h.passedOver.map((x) => ({ rule: printRule(x.rule), priority: x.priority, why: x.why, text: passedOverText(x) })),
      ...(h.drop ? { drop: h.drop } : {}),
    })),
    endings: t.endings.map((e) => ({ ...e, text: endingText(e) })),
    diagnostics: diags.map(jsonDiagnostic),
  };
}
