import fc from 'fast-check';
import { ForwardingTable, macToNumber } from '../../daemon/forward/table.js';
import { compileText } from '../../src/lang/compile.js';
import { destinationKey, tableKey, type Address, type Destination, type Rule } from '../../src/model/state.js';
import { allDelivered, homeOf, lookup, passedOverText, trace, type Ingress, type PortStates } from '../../src/route/trace.js';

const POOL = ['02:00:00:00:00:01', '02:00:00:00:00:02', '02:00:00:00:00:03', 'ff:ff:ff:ff:ff:ff'];
const mac = fc.constantFrom(...POOL);
const src: fc.Arbitrary<Address> = fc.oneof(mac.map((m) => ({ q: 'exact', mac: m }) as Address), mac.map((m) => ({ q: 'not', mac: m }) as Address), fc.constant<Address>({ q: 'any' }));
const dst: fc.Arbitrary<Address> = fc.oneof(src, fc.constant<Address>({ q: 'none' }));
const dest: fc.Arbitrary<Destination> = fc.oneof(
  fc.constantFrom('h2', 'h3').map((to) => ({ kind: 'link', to }) as Destination),
  fc.constantFrom('vm0', 'vm1').map((iface) => ({ kind: 'interface', iface }) as Destination),
);
const rule: fc.Arbitrary<Rule> = fc.record({ machine: fc.constant('h1'), src, dst, dest });
const ingress: fc.Arbitrary<Destination> = dest;

describe('route tracing', () => {
  // The tracer reads whole tables; vnetd uses an index and a cache. They must agree on every lookup.
  test('property: lookup picks exactly the rules vnetd picks (priority, ties, split horizon, ports down), and drops for the same reason', () => {
    const ports: Destination[] = [{ kind: 'link', to: 'h2' }, { kind: 'link', to: 'h3' }, { kind: 'interface', iface: 'vm0' }, { kind: 'interface', iface: 'vm1' }];
    fc.assert(
      fc.property(fc.uniqueArray(rule, { selector: tableKey, maxLength: 12 }), ingress, mac, mac, fc.subarray(ports), (rules, ing, s, d, down) => {
        const table = new ForwardingTable();
        for (const p of ports) table.attach(p);
        for (const p of down) table.detach(p);
        for (const r of rules) table.add(r);
        const daemon = table.match(table.portId(ing), macToNumber(s), macToNumber(d));
        const asIngress: Ingress = ing.kind === 'link' ? { kind: 'link', from: ing.to } : { kind: 'interface', iface: ing.iface };
        const downKeys = new Set(down.map(destinationKey));
        const ours = lookup(rules, asIngress, s, d, (p) => (downKeys.has(destinationKey(p)) ? 'down' : 'up'));
        expect(ours.matched.map(tableKey).sort()).toEqual(daemon.rules.map((r) => r.key).sort());
        expect(ours.priority).toBe(daemon.priority);
        expect(ours.drop ?? null).toBe(daemon.drop);
      }),
      { numRuns: 2000, seed: 11 },
    );
  });

  const star = compileText(
    's.vnet',
    `BEGIN
  HOST u AT p 5000 lan0
  HOST u AT a 5000 vm0
  HOST u AT b 5000 vm0
  ADD
    LINK a p
    LINK b p
    FORWARD a ANY 02:00:00:00:00:01 vm0
    FORWARD a NOT 02:00:00:00:00:01 ff:ff:ff:ff:ff:ff vm0
    FORWARD a 02:00:00:00:00:01 NONE a p
    FORWARD b ANY 02:00:00:00:00:02 vm0
    FORWARD b 02:00:00:00:00:02 NONE b p
    FORWARD p ANY 02:00:00:00:00:01 p a
    FORWARD p ANY 02:00:00:00:00:02 p b
    FORWARD p ANY ff:ff:ff:ff:ff:ff p a
    FORWARD p ANY ff:ff:ff:ff:ff:ff p b
END
`,
  ).state!;

  test('a unicast crosses the Proxy to the other host', () => {
    const home = homeOf(star, '02:00:00:00:00:01')!;
    expect(home).toEqual({ machine: 'a', iface: 'vm0' });
    const t = trace(star, 'a', { kind: 'interface', iface: 'vm0' }, '02:00:00:00:00:01', '02:00:00:00:00:02');
    expect(t.hops.map((h) => h.machine)).toEqual(['a', 'p', 'b']);
    expect(t.endings).toEqual([{ kind: 'delivered', machine: 'b', iface: 'vm0' }]);
  });

  test('a broadcast fans out at the Proxy, never back over the link it came in on; b has no broadcast rule: a dead end', () => {
    const t = trace(star, 'b', { kind: 'interface', iface: 'vm0' }, '02:00:00:00:00:02', 'ff:ff:ff:ff:ff:ff');
    expect(t.hops.map((h) => h.machine)).toEqual(['b', 'p', 'a']);
    expect(t.endings).toEqual([{ kind: 'delivered', machine: 'a', iface: 'vm0' }]);
    const fromA = trace(star, 'a', { kind: 'interface', iface: 'vm0' }, '02:00:00:00:00:01', 'ff:ff:ff:ff:ff:ff');
    expect(fromA.endings).toEqual([expect.objectContaining({ kind: 'dead-end', machine: 'b' })]);
  });

  test('tied rules naming one destination send the frame there once: no false loop, no delivery counted twice', () => {
    const tied = compileText(
      't.vnet',
      `BEGIN
  HOST u AT a 5000 vm0
  HOST u AT p 5000 eth0
  ADD
    LINK a p
    FORWARD a NOT 02:00:00:00:00:01 ff:ff:ff:ff:ff:ff a p
    FORWARD a NOT 02:00:00:00:00:02 ff:ff:ff:ff:ff:ff a p
    FORWARD p NOT 02:00:00:00:00:01 ff:ff:ff:ff:ff:ff eth0
    FORWARD p NOT 02:00:00:00:00:02 ff:ff:ff:ff:ff:ff eth0
END
`,
    ).state!;
    const t = trace(tied, 'a', { kind: 'interface', iface: 'vm0' }, '02:00:00:00:00:03', 'ff:ff:ff:ff:ff:ff');
    expect(t.hops.map((h) => [h.machine, h.matched.length])).toEqual([['a', 2], ['p', 2]]);
    expect(t.endings).toEqual([{ kind: 'delivered', machine: 'p', iface: 'eth0' }]);
  });

  test('loops and rules over missing links are found', () => {
    const ring = compileText(
      'l.vnet',
      `BEGIN
  HOST u AT a 5000 vm0
  HOST u AT b 5000 vm0
  HOST u AT c 5000 vm0
  ADD
    LINK a b
    LINK b c
    LINK c a
    FORWARD a ANY 02:00:00:00:00:09 a b
    FORWARD b ANY 02:00:00:00:00:09 b c
    FORWARD c ANY 02:00:00:00:00:09 c a
END
`,
    ).state!;
    const t = trace(ring, 'a', { kind: 'interface', iface: 'vm0' }, '02:00:00:00:00:01', '02:00:00:00:00:09');
    expect(t.hops.map((h) => h.machine)).toEqual(['a', 'b', 'c', 'a']);
    expect(t.endings).toEqual([{ kind: 'loop', machine: 'b' }]);
    const noLink = structuredClone(ring);
    noLink.links.clear();
    expect(trace(noLink, 'a', { kind: 'interface', iface: 'vm0' }, '02:00:00:00:00:01', '02:00:00:00:00:09').endings).toEqual([{ kind: 'no-link', machine: 'a', to: 'b' }]);
  });

  test('rules that match but all point back where the frame came from: a split-horizon dead end naming the rule, not "no rule matches"', () => {
    const back = compileText(
      'b.vnet',
      `BEGIN
  HOST u AT l1 5000 vm0
  HOST u AT px 5000 eth0
  ADD
    LINK l1 px
    FORWARD l1 ANY 00:50:56:00:00:99 l1 px
    FORWARD px ANY 00:50:56:00:00:99 px l1
END
`,
    ).state!;
    const t = trace(back, 'l1', { kind: 'interface', iface: 'vm0' }, '00:50:56:00:00:01', '00:50:56:00:00:99');
    expect(t.hops.map((h) => [h.machine, h.drop])).toEqual([['l1', undefined], ['px', 'ingress']]);
    expect(t.hops[1]!.passedOver).toEqual([{ rule: expect.objectContaining({ machine: 'px' }), priority: 10, why: 'ingress' }]);
    expect(t.endings).toEqual([{ kind: 'dead-end', machine: 'px', drop: 'ingress', why: expect.stringContaining('sends the frame back where it came from (over the link to l1)') }]);
    expect((t.endings[0] as { why: string }).why).toContain('FORWARD px ANY 00:50:56:00:00:99 px l1');
    // Nothing matching at all is still told apart.
    const none = trace(back, 'l1', { kind: 'interface', iface: 'vm0' }, '00:50:56:00:00:01', '00:50:56:00:00:98');
    expect(none.endings).toEqual([{ kind: 'dead-end', machine: 'l1', drop: 'no-match', why: 'no rule of l1 matches 00:50:56:00:00:01 → 00:50:56:00:00:98' }]);
  });

  /** A state from HOST lines for `machines` (vm0 each) and the given links and rules. */
  const net = (machines: string[], body: string[]) =>
    compileText('n.vnet', ['BEGIN', ...machines.map((m) => `  HOST u AT ${m} 5000 vm0`), '  ADD', ...body.map((l) => `    ${l}`), 'END', ''].join('\n')).state!;
  const BC = 'ff:ff:ff:ff:ff:ff';

  test('a fan-out that joins again is a duplicate, not a loop: a diamond delivers once and says the second copy arrives', () => {
    const diamond = net(['dp', 'd1', 'd2', 'd3', 'd4'], [
      'LINK dp d1', 'LINK dp d2', 'LINK d1 d3', 'LINK d2 d3', 'LINK d3 d4',
      `FORWARD dp ANY ${BC} dp d1`, `FORWARD dp ANY ${BC} dp d2`,
      `FORWARD d1 ANY ${BC} d1 d3`, `FORWARD d2 ANY ${BC} d2 d3`,
      `FORWARD d3 ANY ${BC} d3 d4`, `FORWARD d4 ANY ${BC} vm0`,
    ]);
    const t = trace(diamond, 'dp', { kind: 'interface', iface: 'vm0' }, '02:00:00:00:00:01', BC);
    expect(t.endings).toEqual([
      { kind: 'delivered', machine: 'd4', iface: 'vm0' },
      { kind: 'duplicate', machine: 'd4', ingress: { kind: 'link', from: 'd3' } },
    ]);
    // d3 is reached over two different links: both lookups are shown; d4's is not repeated.
    expect(t.hops.map((h) => h.machine)).toEqual(['dp', 'd1', 'd3', 'd4', 'd2', 'd3']);
    expect(allDelivered(t)).toBe(true);
  });

  test('a loop is per path: the frame coming back the way it came on its own path, even after a fan-out', () => {
    // dp fans out to d1 and d2; d1 ends at its VM, d2 and d3 pass the frame back and forth over a ring d2 → d3 → d4 → d2.
    const ring = net(['dp', 'd1', 'd2', 'd3', 'd4'], [
      'LINK dp d1', 'LINK dp d2', 'LINK d2 d3', 'LINK d3 d4', 'LINK d4 d2',
      `FORWARD dp ANY ${BC} dp d1`, `FORWARD dp ANY ${BC} dp d2`, `FORWARD d1 ANY ${BC} vm0`,
      `FORWARD d2 ANY ${BC} d2 d3`, `FORWARD d3 ANY ${BC} d3 d4`, `FORWARD d4 ANY ${BC} d4 d2`,
    ]);
    const t = trace(ring, 'dp', { kind: 'interface', iface: 'vm0' }, '02:00:00:00:00:01', BC);
    expect(t.endings).toEqual([{ kind: 'delivered', machine: 'd1', iface: 'vm0' }, { kind: 'loop', machine: 'd3' }]);
    expect(allDelivered(t)).toBe(false);
  });

  test('a chain longer than the tracer follows is too long, not a loop', () => {
    const n = 70;
    const ms = Array.from({ length: n }, (_, i) => `c${i}`);
    const body = ms.slice(1).flatMap((m, i) => [`LINK ${ms[i]} ${m}`, `FORWARD ${ms[i]} ANY 02:00:00:00:00:99 ${ms[i]} ${m}`]);
    const chain = net(ms, [...body, `FORWARD c${n - 1} ANY 02:00:00:00:00:99 vm0`]);
    const t = trace(chain, 'c0', { kind: 'interface', iface: 'vm0' }, '02:00:00:00:00:01', '02:00:00:00:00:99');
    expect(t.hops).toHaveLength(64);
    expect(t.endings).toEqual([{ kind: 'too-long', machine: 'c64', hops: 64 }]);
    expect(trace(chain, 'c0', { kind: 'interface', iface: 'vm0' }, '02:00:00:00:00:01', '02:00:00:00:00:99', { maxHops: n }).endings).toEqual([
      { kind: 'delivered', machine: `c${n - 1}`, iface: 'vm0' },
    ]);
  });

  test('a fan-out joining again stage after stage costs one lookup per port, not one per path (2^20 here)', () => {
    const stages = 20;
    const ms = ['s0'];
    const body: string[] = [];
    for (let i = 0; i < stages; i++) {
      const [a, b, next] = [`a${i}`, `b${i}`, `s${i + 1}`];
      ms.push(a, b, next);
      for (const mid of [a, b]) body.push(`LINK s${i} ${mid}`, `LINK ${mid} ${next}`, `FORWARD s${i} ANY ${BC} s${i} ${mid}`, `FORWARD ${mid} ANY ${BC} ${mid} ${next}`);
    }
    body.push(`FORWARD s${stages} ANY ${BC} vm0`);
    const t = trace(net(ms, body), 's0', { kind: 'interface', iface: 'vm0' }, '02:00:00:00:00:01', BC, { maxHops: 1000 });
    // Each stage's two branches once, and its join point once per link it is reached over.
    expect(t.hops.length).toBe(1 + stages * 4);
    // s20 is reached over two links, so it is looked up, and delivers, twice.
    expect(t.endings.filter((e) => e.kind === 'delivered')).toEqual(Array(2).fill({ kind: 'delivered', machine: `s${stages}`, iface: 'vm0' }));
    expect(t.endings.filter((e) => e.kind !== 'delivered' && e.kind !== 'duplicate')).toEqual([]);
  });

  describe('with the ports as the daemons report them (vnetc route)', () => {
    // d3 fans a broadcast out to d4 and, below that, delivers everything else into its VM.
    const fallback = net(['d1', 'd3', 'd4'], [
      'LINK d1 d3', 'LINK d3 d4',
      `FORWARD d1 ANY ${BC} d1 d3`, `FORWARD d3 ANY ${BC} d3 d4`, 'FORWARD d3 ANY NONE vm0', `FORWARD d4 ANY ${BC} vm0`,
    ]);
    const from = ['d1', { kind: 'interface', iface: 'vm0' }, '00:50:56:00:00:01', BC] as const;
    const allUp: PortStates = () => 'up';

    test('a rule whose link is not up does not apply: the frame takes the lower rule, and the rule passed over is named', () => {
      for (const state of ['connecting', 'down', 'absent'] as const) {
        const ports: PortStates = (m, d) => (m === 'd3' && d.kind === 'link' && d.to === 'd4' ? state : 'up');
        const t = trace(fallback, ...from, { ports });
        expect(t.endings).toEqual([{ kind: 'delivered', machine: 'd3', iface: 'vm0' }]);
        expect(t.hops.map((h) => h.machine)).toEqual(['d1', 'd3']);
        expect(t.hops[1]!.passedOver).toEqual([{ rule: expect.objectContaining({ dest: { kind: 'link', to: 'd4' } }), priority: 10, why: state }]);
        expect(passedOverText(t.hops[1]!.passedOver[0]!)).toBe(state === 'absent' ? 'd3 has no link to d4' : `the link to d4 is ${state}`);
      }
      // All up, the broadcast goes on to d4 as before, and without live ports too.
      expect(trace(fallback, ...from, { ports: allUp }).endings).toEqual([{ kind: 'delivered', machine: 'd4', iface: 'vm0' }]);
      expect(trace(fallback, ...from).endings).toEqual([{ kind: 'delivered', machine: 'd4', iface: 'vm0' }]);
    });

    test('an interface whose device is missing is passed over as down, named as such', () => {
      const ports: PortStates = (m, d) => (m === 'd4' && d.kind === 'interface' ? 'down' : 'up');
      const t = trace(fallback, ...from, { ports });
      expect(t.endings).toEqual([{ kind: 'dead-end', machine: 'd4', drop: 'link-down', why: expect.stringContaining('(the device of interface vm0 on d4 is missing)') }]);
    });

    test('nothing applicable because a link is down is a link-down dead end naming the rule and the link', () => {
      const ports: PortStates = (m, d) => (m === 'd1' && d.kind === 'link' ? 'connecting' : 'up');
      const t = trace(fallback, ...from, { ports });
      expect(t.hops.map((h) => [h.machine, h.drop])).toEqual([['d1', 'link-down']]);
      expect(t.endings).toEqual([{ kind: 'dead-end', machine: 'd1', drop: 'link-down', why: expect.stringContaining(`FORWARD d1 ANY ${BC} d1 d3 (the link to d3 is connecting)`) }]);
    });

    test('a link the daemon does not have is passed over as vnetd does, not a missing-link ending', () => {
      const noLink = structuredClone(fallback);
      noLink.links.clear();
      const ports: PortStates = (_m, d) => (d.kind === 'link' ? 'absent' : 'up');
      expect(trace(noLink, ...from).endings).toEqual([{ kind: 'no-link', machine: 'd1', to: 'd3' }]);
      expect(trace(noLink, ...from, { ports }).endings).toEqual([expect.objectContaining({ kind: 'dead-end', machine: 'd1', drop: 'link-down' })]);
    });

    test('an interface that is not open does not take the frame either', () => {
      const ports: PortStates = (m, d) => (m === 'd4' && d.kind === 'interface' ? 'absent' : 'up');
      const t = trace(fallback, ...from, { ports });
      expect(t.endings).toEqual([expect.objectContaining({ kind: 'dead-end', machine: 'd4', drop: 'link-down', why: expect.stringContaining('d4 has no interface vm0 open') })]);
    });
  });
});
