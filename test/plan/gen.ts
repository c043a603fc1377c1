import fc from 'fast-check';
import { emptyState, linkKey, tableKey, type Address, type Host, type Link, type Rule, type State } from '../../src/model/state.js';

/**
 * Random consistent states over a small universe (few machines, few MACs),
 * so that pairs share most of their objects and collide often: the cases
 * where a diff can go wrong.
 */

export const MACHINES = ['proxy', 'h1', 'h2', 'h3', 'h4'];
const MACS = ['00:50:56:00:00:01', '00:50:56:00:00:02', '00:50:56:00:00:03', 'ff:ff:ff:ff:ff:ff'];

const address = (allowNone: boolean): fc.Arbitrary<Address> =>
  fc.oneof(
    fc.constantFrom(...MACS).map((mac): Address => ({ q: 'exact', mac })),
    fc.constantFrom(...MACS).map((mac): Address => ({ q: 'not', mac })),
    fc.constant<Address>({ q: 'any' }),
    ...(allowNone ? [fc.constant<Address>({ q: 'none' })] : []),
  );

interface Shape {
  hosts: { machine: string; port: number; iface: string }[];
  links: { i: number; j: number; udp: boolean; flip: boolean }[];
  rules: { m: number; src: Address; dst: Address; to: number }[];
}

const links = fc.array(fc.record({ i: fc.nat(9), j: fc.nat(9), udp: fc.boolean(), flip: fc.boolean() }), { maxLength: 8 });
const rules = fc.array(fc.record({ m: fc.nat(9), src: address(false), dst: address(true), to: fc.nat(9) }), { maxLength: 24 });

const shape: fc.Arbitrary<Shape> = fc.record({
  hosts: fc.subarray(MACHINES, { minLength: 1 }).chain((ms) =>
    fc.tuple(...ms.map((m) => fc.record({ machine: fc.constant(m), port: fc.constantFrom(5000, 5001), iface: fc.constantFrom('eth0', 'vm0') }))),
  ),
  links,
  rules,
});

/** Builds a state that would validate: rules only over links its machine has, or into its interface. */
export function build(s: Shape): State {
  const state = emptyState();
  const hosts: Host[] = s.hosts.map((h) => ({ machine: h.machine, user: 'vnet', port: h.port, iface: h.iface }));
  for (const h of hosts) {
    state.hosts.set(h.machine, h);
    state.tables.set(h.machine, new Map());
  }
  const n = hosts.length;
  for (const l of s.links) {
    const a = hosts[l.i % n]!.machine;
    const b = hosts[l.j % n]!.machine;
    if (a === b || state.links.has(linkKey(a, b))) continue;
    const link: Link = { a, b, proto: l.udp ? 'udp' : 'tcp', dialer: l.flip ? b : a };
    state.links.set(linkKey(a, b), link);
  }
  for (const r of s.rules) {
    const host = hosts[r.m % n]!;
    const peers = [...state.links.values()].filter((l) => l.a === host.machine || l.b === host.machine);
    const pick = r.to % (peers.length + 1);
    const dest: Rule['dest'] =
      pick === peers.length
        ? { kind: 'interface', iface: host.iface }
        : { kind: 'link', to: peers[pick]!.a === host.machine ? peers[pick]!.b : peers[pick]!.a };
    const rule: Rule = { machine: host.machine, src: r.src, dst: r.dst, dest };
    state.tables.get(host.machine)!.set(tableKey(rule), rule);
  }
  return state;
}

export const stateArb: fc.Arbitrary<State> = shape.map(build);

/**
 * States over exactly these hosts, only links and rules varying: what a
 * fixed set of running daemons can be asked to hold without being restarted.
 */
export const stateOver = (hosts: Shape['hosts']): fc.Arbitrary<State> => fc.record({ hosts: fc.constant(hosts), links, rules }).map(build);

/** A comparable picture of a state (or of the part of it on some machines). */
export function canonical(state: State, only?: (machine: string) => boolean): object {
  const keep = only ?? (() => true);
  return {
    hosts: [...state.hosts.values()].filter((h) => keep(h.machine)).map((h) => JSON.stringify(h)).sort(),
    links: [...state.links.values()]
      .filter((l) => keep(l.a) && keep(l.b))
      .map((l) => `${linkKey(l.a, l.b)} ${l.proto} ${l.dialer}`)
      .sort(),
    rules: [...state.tables.entries()]
      .filter(([m]) => keep(m))
      .flatMap(([m, t]) => [...t.keys()].map((k) => `${m} ${k}`))
      .sort(),
  };
}
