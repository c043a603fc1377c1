import { assemble, type DaemonView, type Live } from '../model/live.js';
import type { Host, Link, Rule } from '../model/state.js';
import { mapBounded } from '../util/pool.js';
import { clipWord } from '../wire/clip-word.js';
import { parseFields, parseLinkLine, parseRuleLine, WireError, type LinkStatus, type Reply } from '../wire/control.js';
import type { ControlClient } from './control-client.js';
import { ReachError, unreadableReply, type Session, type Transport } from './transport.js';

/**
 * Live state, fetched: every daemon a file names is asked what it holds, in
 * parallel, over one session per machine that stays open for whatever the
 * command does next (apply, show).
 */

/** What one daemon reported, beyond the model: what show and route display. */
export interface DaemonReport {
  view: DaemonView;
  info: Map<string, string>;
  /** `DEVICES?` lines: name, kind and counters. */
  devices: string[];
  links: LinkStatus[];
  rules: { rule: Rule; counters: Record<string, number> }[];
}

export interface Reached {
  /** The host as the file declares it. */
  host: Host;
  session: Session;
  /** Absent when no daemon runs on the machine yet. */
  client: ControlClient | undefined;
  report: DaemonReport | undefined;
}

export interface Fetched {
  live: Live;
  reached: Map<string, Reached>;
  /** Machines that could not be reached, each with why. */
  failures: ReachError[];
  close(): Promise<void>;
}

export async function fetchLive(hosts: readonly Host[], transport: Transport, parallelism = 10): Promise<Fetched> {
  const results = await mapBounded(hosts, parallelism, async (host): Promise<Reached> => {
    const session = await transport.open(host);
    try {
      const client = await session.control();
      return { host, session, client, report: client ? await readDaemon(client, host) : undefined };
    } catch (e) {
      await session.close().catch(() => {});
      throw e;
    }
  });
  const reached = new Map<string, Reached>();
  const failures: ReachError[] = [];
  results.forEach((r, i) => {
    const machine = hosts[i]!.machine;
    if (r.status === 'fulfilled') reached.set(machine, r.value);
    else failures.push(r.reason instanceof ReachError ? r.reason : new ReachError(machine, (r.reason as Error).message));
  });
  return {
    live: liveOf(reached),
    reached,
    failures,
    close: async () => {
      await Promise.all([...reached.values()].map((r) => r.session.close().catch(() => {})));
    },
  };
}

/** The live state as the reports now stand (again after apply has started daemons). */
/** Where each machine's daemon is reached for overlay links now (for diff's check of what dialers dial). */
export const overlayAddresses =
  (reached: Map<string, Reached>) =>
  (machine: string): string | undefined =>
    reached.get(machine)?.session.overlayAddress;

export function liveOf(reached: Map<string, Reached>): Live {
  return assemble([...reached.values()].flatMap((r) => (r.report ? [r.report.view] : [])));
}

/** Asks a daemon everything at once (the queries are pipelined: one round trip). */
export async function readDaemon(client: ControlClient, declared: Host): Promise<DaemonReport> {
  const [info, devices, links, rules] = await Promise.all(['INFO?', 'DEVICES?', 'LINKS?', 'RULES?'].map((q) => client.request(q)));
  const machine = declared.machine;
  const data = (r: Reply, what: string): string[] => {
    if (!r.ok) throw new ReachError(machine, `the daemon of ${machine} refused ${what}: ${r.code} ${r.text}`, 'is it an older vnetd? upgrade it');
    return r.data;
  };
  const fields = parseFields(data(info!, 'INFO?'));
  // Interfaces the daemon has open; `(can open) …` lines list what it could open besides.
  const deviceLines = data(devices!, 'DEVICES?').filter((l) => !l.startsWith('('));
  const names = deviceLines.map((l) => l.split(' ')[0]!);
  let linkStatus: LinkStatus[];
  let ruleLines: { rule: Rule; counters: Record<string, number> }[];
  try {
    linkStatus = data(links!, 'LINKS?').map(parseLinkLine);
    ruleLines = data(rules!, 'RULES?').map((l) => {
      const { rule, counters } = parseRuleLine(l);
      return { rule: { machine, ...rule }, counters };
    });
  } catch (e) {
    if (!(e instanceof WireError)) throw e;
    throw unreadableReply(machine, `a listing vnetc cannot read: ${e.message}`);
  }
  const port = fields.get('port') ?? String(declared.port);
  if (!/^\d{1,5}$/.test(port) || Number(port) > 65535) throw unreadableReply(machine, `a listing vnetc cannot read: INFO? gives port '${clipWord(port)}'`);
  const host: Host = {
    machine,
    // The daemon does not know who reached it; the session's user is the file's.
    user: declared.user,
    port: Number(port),
    // A daemon may open several interfaces; the host matches when the declared one is among them.
    iface: names.includes(declared.iface) ? declared.iface : (names[0] ?? 'none'),
  };
  const viewLinks: Link[] = linkStatus.map(({ link }) => ({ a: machine, b: link.peer, proto: link.proto, dialer: link.dial ? machine : link.peer }));
  const dials = new Map(linkStatus.flatMap(({ link }) => (link.dial && link.address !== undefined ? [[link.peer, link.address] as const] : [])));
  return { view: { host, links: viewLinks, rules: ruleLines.map((r) => r.rule), dials }, info: fields, devices: deviceLines, links: linkStatus, rules: ruleLines };
}
