import { BROADCAST_MAC } from '../model/mac.js';
import type { Address, Rule } from '../model/state.js';

/**
 * The forwarding rules of a VNET overlay, built from where VMs are: the
 * resilient star of Fig. 1 with the tables of Fig. 2 (LCR 2004), and the
 * fast-path rules that send a VM pair's frames over a direct link. `vnetc
 * gen` writes whole networks from these; `vnetc adapt` adds to a network
 * with them, so both always agree on what a working table looks like.
 */

/** A VM (by MAC) and the machine whose daemon it is attached to. */
export interface Placed {
  mac: string;
  machine: string;
}

const exact = (mac: string): Address => ({ q: 'exact', mac });
const ANY: Address = { q: 'any' };

const overLink = (machine: string, src: Address, dst: Address, to: string): Rule => ({ machine, src, dst, dest: { kind: 'link', to } });
const intoIface = (machine: string, src: Address, dst: Address, iface: string): Rule => ({ machine, src, dst, dest: { kind: 'interface', iface } });

/**
 * A host's table (Fig. 2) for the VMs attached to its interface `iface`:
 * frames for them, and broadcasts from elsewhere, go into the interface; by
 * default everything they send goes to the Proxy. With one VM the broadcast
 * rule is the paper's `NOT <vm> ff:…:ff`; with several it is one
 * `ANY ff:…:ff` rule rather than a `NOT` rule per VM. Split horizon keeps a
 * local VM's own broadcast off the interface it came from either way, so the
 * default still carries it to the Proxy.
 */
export function hostStarRules(machine: string, iface: string, proxy: string, macs: readonly string[]): Rule[] {
  if (macs.length === 0) return [];
  const bcast = macs.length === 1 ? ({ q: 'not', mac: macs[0]! } as const) : ANY;
  const rules = [intoIface(machine, bcast, exact(BROADCAST_MAC), iface)];
  for (const m of macs) rules.push(intoIface(machine, ANY, exact(m), iface), overLink(machine, exact(m), { q: 'none' }, proxy));
  return rules;
}

/**
 * A host's table when its VMs may be on several interfaces (`macs` by
 * interface): with one interface, hostStarRules. With more, a VM's
 * broadcast must reach the host's other interfaces as well as the Proxy,
 * so every broadcast rule is `ANY ff:…:ff` (into each interface, and over
 * the link to the Proxy): equal rules, so each broadcast takes all of them
 * but the one it came in by.
 */
export function hostStarRulesOn(machine: string, proxy: string, macs: ReadonlyMap<string, readonly string[]>): Rule[] {
  const ifaces = [...macs];
  if (ifaces.length === 1) return hostStarRules(machine, ifaces[0]![0], proxy, ifaces[0]![1]);
  const rules = [overLink(machine, ANY, exact(BROADCAST_MAC), proxy)];
  for (const [iface, list] of ifaces) {
    rules.push(intoIface(machine, ANY, exact(BROADCAST_MAC), iface));
    for (const m of list) rules.push(intoIface(machine, ANY, exact(m), iface), overLink(machine, exact(m), { q: 'none' }, proxy));
  }
  return rules;
}

/** The Proxy's rules for one VM: frames for it go to its host. */
export function proxyVmRule(proxy: string, vm: Placed): Rule {
  return overLink(proxy, ANY, exact(vm.mac), vm.machine);
}

/** The Proxy's broadcast fan-out to one host: the rules tie, so every host gets each broadcast. */
export function proxyBroadcastRule(proxy: string, machine: string): Rule {
  return overLink(proxy, ANY, exact(BROADCAST_MAC), machine);
}

/** The Proxy's rules for its own LAN: broadcasts reach it, and frames for no known VM go there by default. */
export function proxyLanRules(proxy: string, iface: string): Rule[] {
  return [intoIface(proxy, ANY, exact(BROADCAST_MAC), iface), intoIface(proxy, ANY, { q: 'none' }, iface)];
}

/**
 * The fast path between two VMs on different machines joined by a link:
 * at each end, frames from the local VM for the other take the link
 * (exact/exact, priority 12, beats the exact/NONE default to the Proxy).
 */
export function directRules(a: Placed, b: Placed): Rule[] {
  return [overLink(a.machine, exact(a.mac), exact(b.mac), b.machine), overLink(b.machine, exact(b.mac), exact(a.mac), a.machine)];
}

/**
 * A bus (LCR 2004 §4.1, Fig. 12): links along `line`, and for every ordered
 * pair of VMs on different machines of the line a rule at each machine from
 * the source's up to (not including) the destination's, sending the pair's
 * frames on towards the destination. VNET matches on source and destination,
 * so a bus costs a rule per pair per hop.
 */
export function busRules(line: readonly string[], vms: readonly Placed[]): Rule[] {
  const at = new Map(line.map((m, i) => [m, i]));
  const rules: Rule[] = [];
  for (const s of vms) {
    for (const d of vms) {
      const i = at.get(s.machine);
      const j = at.get(d.machine);
      if (i === undefined || j === undefined || i === j) continue;
      const step = j > i ? 1 : -1;
      for (let k = i; k !== j; k += step) rules.push(overLink(line[k]!, exact(s.mac), exact(d.mac), line[k + step]!));
    }
  }
  return rules;
}
