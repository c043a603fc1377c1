import { isGroupMac } from '../model/mac.js';
import type { State } from '../model/state.js';
import { byCodeUnit } from '../util/compare.js';
import { InputError } from '../util/input-error.js';
import type { Inference } from '../vttif/types.js';
import type { Network } from './network.js';

/**
 * One adaptation problem in the indexed form the heuristics and the solvers
 * share: machines and VMs as small integers, the network as dense matrices,
 * the traffic as directed demands. Built once per run from the inference
 * (the topology VTTIF settled on, each edge's two directions), the base
 * spec and the network.
 *
 * Machines 0..H-1 are the hosts VMs may run on; machine H is the Proxy.
 * Endpoints the Proxy's daemon saw (machines on the user's LAN) are in the
 * traffic but fixed there: no heuristic moves them.
 */
export interface Problem {
  machines: string[];
  /** Index of the Proxy (= number of hosts). */
  proxy: number;
  /** Row length of the machine matrices (hosts + the Proxy). */
  size: number;
  vms: string[];
  /** 0 for endpoints at the Proxy. */
  movable: Uint8Array;
  /** Where each VM is now. */
  current: Int32Array;
  /** VMs each host may run. */
  capacity: Int32Array;
  demands: Demands;
  /** The VM adjacency list: unordered pairs with both directions' traffic, heaviest first. */
  pairs: VmPair[];
  /** Directed Mbit/s between machines (row × size + column); the diagonal is inside a machine. */
  bw: Float64Array;
  lat: Float64Array;
  /** What a fast-path link between two machines costs, before rules. */
  linkCost: Float64Array;
  ruleCost: number;
  /** Links between two hosts that the base spec already has (symmetric). */
  baseLinks: Uint8Array;
  /** Traffic left out, and why: the objective covers VM-to-VM unicast only. */
  ignored: { entries: number; mbps: number; reasons: string[] };
}

export interface Demands {
  count: number;
  src: Int32Array;
  dst: Int32Array;
  mbps: Float64Array;
}

export interface VmPair {
  a: number;
  b: number;
  mbps: number;
}

export interface Sources {
  inference: string;
  spec: string;
  network: string;
}

export const toMbps = (bytesPerS: number): number => (bytesPerS * 8) / 1e6;

export function buildProblem(inference: Inference, base: State, proxyName: string, network: Network, names: Sources): Problem {
  const machines = [...base.hosts.keys()].filter((m) => m !== proxyName);
  machines.push(proxyName);
  const H = machines.length - 1;
  const size = H + 1;
  const index = new Map(machines.map((m, i) => [m, i]));
  for (const m of network.mentions) {
    if (!index.has(m.machine)) throw new InputError(`${names.network}: ${m.path}: machine '${m.machine}' is not a HOST of ${names.spec}`);
  }

  const vms: string[] = [];
  const current: number[] = [];
  const vmIndex = new Map<string, number>();
  // In MAC order, and the traffic below too: what adapt writes then depends on the inference, not on the order its collector listed things in.
  for (const [mac, machine] of Object.entries(inference.hosts).sort(([x], [y]) => byCodeUnit(x, y))) {
    const at = index.get(machine);
    if (at === undefined) {
      throw new InputError(`${names.inference}: hosts[${JSON.stringify(mac)}]: machine '${machine}' is not a HOST of ${names.spec}; is this the spec the inference was made on?`);
    }
    vmIndex.set(mac, vms.length);
    vms.push(mac);
    current.push(at);
  }
  const movable = new Uint8Array(vms.length).map((_, i) => (current[i] === H ? 0 : 1));

  const ignored = { entries: 0, mbps: 0, reasons: new Set<string>() };
  const skip = (mbps: number, why: string): void => {
    ignored.entries++;
    ignored.mbps += mbps;
    ignored.reasons.add(why);
  };
  const src: number[] = [];
  const dst: number[] = [];
  const mbps: number[] = [];
  const undirected = new Map<string, VmPair>();
  // The settled topology, not the window's matrix: it is what VTTIF's damping let through, and it stands while the window is idle (a compute phase) or settling.
  const directed = inference.topology.edges.flatMap((e) => [
    { src: e.a, dst: e.b, bytesPerS: e.aToBBytesPerS },
    { src: e.b, dst: e.a, bytesPerS: e.bytesPerS - e.aToBBytesPerS },
  ]).sort((x, y) => byCodeUnit(x.src, y.src) || byCodeUnit(x.dst, y.dst));
  for (const e of directed) {
    const rate = toMbps(e.bytesPerS);
    if (!(rate > 0)) continue;
    if (isGroupMac(e.dst)) {
      skip(rate, 'broadcast and multicast traffic (it takes the star whatever the topology)');
      continue;
    }
    const s = vmIndex.get(e.src);
    const d = vmIndex.get(e.dst);
    if (s === undefined || d === undefined) {
      skip(rate, 'traffic with an endpoint no daemon has seen send (not in hosts)');
      continue;
    }
    if (s === d) continue;
    if (!movable[s] && !movable[d]) {
      skip(rate, 'traffic between two endpoints on the Proxy’s LAN');
      continue;
    }
    src.push(s);
    dst.push(d);
    mbps.push(rate);
    const key = s < d ? `${s} ${d}` : `${d} ${s}`;
    const p = undirected.get(key);
    if (p) p.mbps += rate;
    else undirected.set(key, { a: Math.min(s, d), b: Math.max(s, d), mbps: rate });
  }
  const pairs = [...undirected.values()].sort((x, y) => y.mbps - x.mbps || x.a - y.a || x.b - y.b);

  const bw = new Float64Array(size * size);
  const lat = new Float64Array(size * size);
  const linkCost = new Float64Array(size * size);
  for (let i = 0; i < size; i++) {
    for (let j = 0; j < size; j++) {
      bw[i * size + j] = network.mbps(machines[i]!, machines[j]!);
      lat[i * size + j] = network.latencyMs(machines[i]!, machines[j]!);
      if (i !== j) linkCost[i * size + j] = network.linkCost(machines[i]!, machines[j]!);
    }
  }
  const baseLinks = new Uint8Array(size * size);
  for (const l of base.links.values()) {
    const i = index.get(l.a);
    const j = index.get(l.b);
    if (i !== undefined && j !== undefined && i !== H && j !== H) baseLinks[i * size + j] = baseLinks[j * size + i] = 1;
  }
  const capacity = new Int32Array(H);
  for (const at of current) if (at < H) capacity[at]!++;
  for (let h = 0; h < H; h++) capacity[h] = network.capacity(machines[h]!) ?? Math.max(1, capacity[h]!);

  return {
    machines,
    proxy: H,
    size,
    vms,
    movable,
    current: Int32Array.from(current),
    capacity,
    demands: { count: src.length, src: Int32Array.from(src), dst: Int32Array.from(dst), mbps: Float64Array.from(mbps) },
    pairs,
    bw,
    lat,
    linkCost,
    ruleCost: network.ruleCost,
    baseLinks,
    ignored: { entries: ignored.entries, mbps: ignored.mbps, reasons: [...ignored.reasons] },
  };
}
