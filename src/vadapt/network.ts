import { linkKey } from '../model/state.js';
import { InputError, parseJsonFile } from '../util/input-error.js';
import { JsonReader, type Json } from '../util/json-reader.js';
import { MAX_RATE } from '../vttif/types.js';

/**
 * What the underlying network offers between the machines of an overlay:
 * bandwidth and latency for each direction of each machine pair, what a
 * fast-path link costs, and how many VMs a host may run. VADAPT's objective
 * and heuristics read nothing else about the network.
 *
 * Given as a file (docs/ADAPT.md, "The network file"), or defaults: 1000
 * Mbit/s and 1 ms between any two machines, 10,000 Mbit/s inside a machine.
 * Measured figures (the daemons' link keep-alive RTTs, `LINKS?`) enter
 * through `withMeasuredRtts`.
 */
export interface Network {
  /** Bandwidth from a to b in Mbit/s; a === b is the machine's own (VMs on one host). */
  mbps(a: string, b: string): number;
  latencyMs(a: string, b: string): number;
  /** What a fast-path link between a and b costs, before its rules. */
  linkCost(a: string, b: string): number;
  /** What each forwarding rule a fast path needs costs. */
  ruleCost: number;
  /** How many VMs the host may run, if the file says. */
  capacity(machine: string): number | undefined;
  /** Every machine the file names, with where, so it can be checked against the spec. */
  mentions: { machine: string; path: string }[];
}

interface Figures {
  mbps: number;
  latencyMs: number;
  cost: number;
}

/** The most bandwidth a pair may have, in Mbit/s: the matrix's MAX_RATE, 1e15 B/s. */
export const MAX_MBPS = (MAX_RATE * 8) / 1e6;

/**
 * The longest one-way latency, in ms: 1e7 ms is nearly three hours, past any
 * path (Earth to Mars at its farthest is about 22 minutes). Placement sums
 * two of them for a round trip to break ties between equally fast pairs;
 * at 1e308 that sum was Infinity, and the nearer pair lost its tie-break.
 */
export const MAX_LATENCY_MS = 1e7;

/**
 * The dearest link or rule: costs are only added up and compared with each
 * other and --budget, so their scale is the user's to choose. At 1e9 each, a
 * fast path for every pair of 1,024 machines (523,776) and two rules for each
 * of as many VM pairs total about 1.6e15, below 2^53, where a double still
 * adds whole numbers exactly: a budget is kept to the unit and no sum is
 * Infinity (at 1e308, a cost of 1 vanished into the sum and a rule cost
 * doubled to Infinity).
 */
export const MAX_COST = 1e9;

export const DEFAULT_FIGURES: Figures = { mbps: 1000, latencyMs: 1, cost: 1 };
export const DEFAULT_LOCAL_MBPS = 10000;

const directed = (a: string, b: string): string => `${a}>${b}`;

class TableNetwork implements Network {
  readonly pairs = new Map<string, Partial<Figures>>();
  readonly hosts = new Map<string, { capacity?: number; localMbps?: number }>();
  mentions: { machine: string; path: string }[] = [];
  constructor(
    readonly defaults: Figures = DEFAULT_FIGURES,
    readonly localMbps: number = DEFAULT_LOCAL_MBPS,
    public ruleCost = 0,
  ) {}

  private figure<K extends keyof Figures>(a: string, b: string, k: K): number {
    return this.pairs.get(directed(a, b))?.[k] ?? this.defaults[k];
  }
  mbps(a: string, b: string): number {
    return a === b ? (this.hosts.get(a)?.localMbps ?? this.localMbps) : this.figure(a, b, 'mbps');
  }
  latencyMs(a: string, b: string): number {
    return a === b ? 0 : this.figure(a, b, 'latencyMs');
  }
  linkCost(a: string, b: string): number {
    // A link is one thing: it costs what its costlier direction says.
    return Math.max(this.figure(a, b, 'cost'), this.figure(b, a, 'cost'));
  }
  capacity(machine: string): number | undefined {
    return this.hosts.get(machine)?.capacity;
  }
}

export function defaultNetwork(): Network {
  return new TableNetwork();
}

const EXPECTED = 'a network description: {"default": {...}, "hosts": {...}, "pairs": [...]} (docs/ADAPT.md)';

export function readNetwork(name: string, text: string): Network {
  const root = parseJsonFile(name, text, EXPECTED);
  const r = new JsonReader(name);
  const machine = (v: unknown, path: string): string => (typeof v === 'string' && v !== '' ? v : r.fail(path, 'a machine name', v));

  if (typeof root !== 'object' || root === null || Array.isArray(root)) throw new InputError(`${name}: not ${EXPECTED}`);
  const o = root as Record<string, unknown>;
  r.only(o, '(top level)', ['default', 'localMbps', 'ruleCost', 'hosts', 'pairs']);
  // As for the matrix's rates (inference-file.ts): far beyond any link, and every sum of them finite.
  const bandwidth = (v: unknown, path: string): number => {
    const n = r.positive(v as Json, path);
    return n <= MAX_MBPS ? n : r.fail(path, 'a number of Mbit/s above 0, at most 8e9 (8 Pbit/s, beyond any link)', v as Json);
  };
  const latency = (v: unknown, path: string): number => {
    const n = r.positive(v as Json, path, true);
    return n <= MAX_LATENCY_MS ? n : r.fail(path, 'a number of ms from 0 to 1e7 (nearly three hours, past any path)', v as Json);
  };
  const cost = (v: unknown, path: string): number => {
    const n = r.positive(v as Json, path, true);
    return n <= MAX_COST ? n : r.fail(path, 'a number from 0 to 1e9 (costs only compare with each other and --budget: scale them all down)', v as Json);
  };
  const figures = (v: unknown, path: string): Partial<Figures> => {
    const f = r.object(v, path);
    const out: Partial<Figures> = {};
    if (f.mbps !== undefined) out.mbps = bandwidth(f.mbps, `${path}.mbps`);
    if (f.latencyMs !== undefined) out.latencyMs = latency(f.latencyMs, `${path}.latencyMs`);
    if (f.cost !== undefined) out.cost = cost(f.cost, `${path}.cost`);
    return out;
  };
  let defaults = DEFAULT_FIGURES;
  if (o.default !== undefined) {
    r.only(r.object(o.default, 'default'), 'default', ['mbps', 'latencyMs', 'cost']);
    defaults = { ...DEFAULT_FIGURES, ...figures(o.default, 'default') };
  }
  const net = new TableNetwork(
    defaults,
    o.localMbps === undefined ? DEFAULT_LOCAL_MBPS : bandwidth(o.localMbps, 'localMbps'),
    o.ruleCost === undefined ? 0 : cost(o.ruleCost, 'ruleCost'),
  );
  if (o.hosts !== undefined) {
    for (const [m, v] of Object.entries(r.object(o.hosts, 'hosts'))) {
      const path = `hosts[${JSON.stringify(m)}]`;
      const h = r.object(v, path);
      r.only(h, path, ['capacity', 'localMbps']);
      const entry: { capacity?: number; localMbps?: number } = {};
      if (h.capacity !== undefined) {
        if (!Number.isInteger(h.capacity) || (h.capacity as number) < 0) r.fail(`${path}.capacity`, 'a whole number ≥ 0', h.capacity);
        entry.capacity = h.capacity as number;
      }
      if (h.localMbps !== undefined) entry.localMbps = bandwidth(h.localMbps, `${path}.localMbps`);
      net.hosts.set(m, entry);
      net.mentions.push({ machine: m, path });
    }
  }
  if (o.pairs !== undefined) {
    if (!Array.isArray(o.pairs)) r.fail('pairs', 'an array', o.pairs);
    (o.pairs as unknown[]).forEach((v, i) => {
      const path = `pairs[${i}]`;
      const p = r.object(v, path);
      r.only(p, path, ['between', 'from', 'to', 'mbps', 'latencyMs', 'cost']);
      let ends: [string, string][];
      if (p.between !== undefined) {
        if (p.from !== undefined || p.to !== undefined) r.fail(path, "either 'between' or 'from' and 'to'", Object.keys(p));
        const b = p.between;
        if (!Array.isArray(b) || b.length !== 2) return r.fail(`${path}.between`, 'two machine names', b);
        const [x, y] = [machine(b[0], `${path}.between[0]`), machine(b[1], `${path}.between[1]`)];
        if (x === y) r.fail(`${path}.between`, 'two different machines', b);
        net.mentions.push({ machine: x, path: `${path}.between[0]` }, { machine: y, path: `${path}.between[1]` });
        ends = [[x, y], [y, x]];
      } else {
        const [x, y] = [machine(p.from, `${path}.from`), machine(p.to, `${path}.to`)];
        if (x === y) r.fail(`${path}.to`, 'a machine other than from', y);
        net.mentions.push({ machine: x, path: `${path}.from` }, { machine: y, path: `${path}.to` });
        ends = [[x, y]];
      }
      const f = figures({ mbps: p.mbps, latencyMs: p.latencyMs, cost: p.cost }, path);
      for (const [x, y] of ends) net.pairs.set(directed(x, y), { ...net.pairs.get(directed(x, y)), ...f });
    });
  }
  return net;
}

/**
 * The network with latencies measured by the overlay links themselves (the
 * RTT `LINKS?` reports for each link, halved for one way) in place of the
 * given ones. This is the seam for live input: bandwidth still comes from
 * the file or the defaults.
 */
export function withMeasuredRtts(net: Network, rtts: readonly { a: string; b: string; rttMs: number }[]): Network {
  const measured = new Map(rtts.map((r) => [linkKey(r.a, r.b), r.rttMs / 2]));
  return {
    mbps: (a, b) => net.mbps(a, b),
    latencyMs: (a, b) => (a === b ? 0 : (measured.get(linkKey(a, b)) ?? net.latencyMs(a, b))),
    linkCost: (a, b) => net.linkCost(a, b),
    ruleCost: net.ruleCost,
    capacity: (m) => net.capacity(m),
    mentions: net.mentions,
  };
}
