import fc from 'fast-check';
import {
  BROADCAST48,
  ForwardingTable,
  MAX_PRIORITY,
  macToNumber,
  numberToMac,
  priorityOf,
  readMac48,
  ruleError,
  writeMac48,
  type Match,
} from '../../daemon/forward/table.js';
import { tableKey, type Address, type Destination, type Rule } from '../../src/model/state.js';

// ---------------------------------------------------------------------------
// Helpers: rules written the way the language writes them, frames as bytes.

const A = '00:50:56:00:21:01';
const B = '00:50:56:00:21:02';
const C = '00:50:56:00:21:03';
const X = '00:50:56:00:21:0a';
const FF = 'ff:ff:ff:ff:ff:ff';
const n = macToNumber;

/** `ANY`, `NONE`, `NOT <mac>` or `<mac>`. */
function addr(text: string): Address {
  if (text === 'ANY') return { q: 'any' };
  if (text === 'NONE') return { q: 'none' };
  if (text.startsWith('NOT ')) return { q: 'not', mac: text.slice(4) };
  return { q: 'exact', mac: text };
}

/** `>peer` for a link, `@iface` for an interface. */
function dest(text: string): Destination {
  return text.startsWith('>') ? { kind: 'link', to: text.slice(1) } : { kind: 'interface', iface: text.slice(1) };
}

function rule(src: string, dst: string, to: string, machine = 'host1'): Rule {
  return { machine, src: addr(src), dst: addr(dst), dest: dest(to) };
}

function frame(src: string, dst: string, length = 60): Uint8Array {
  const bytes = new Uint8Array(length);
  if (length >= 12) {
    writeMac48(bytes, 0, n(dst));
    writeMac48(bytes, 6, n(src));
  }
  return bytes;
}

/** A table with the given ports attached and rules installed. */
function tableWith(ports: string[], rules: Rule[], cacheSize?: number): { t: ForwardingTable; p: (name: string) => number } {
  const t = new ForwardingTable(cacheSize === undefined ? {} : { cacheSize });
  for (const name of ports) t.attach(dest(name));
  for (const r of rules) t.add(r);
  return { t, p: (name) => t.portId(dest(name)) };
}

function look(t: ForwardingTable, ingress: number, src: string, dst: string): readonly number[] {
  return t.lookup(ingress, n(src), n(dst));
}

// ---------------------------------------------------------------------------

describe('48-bit MACs', () => {
  test('round-trip between the canonical string, the number and the frame bytes', () => {
    for (const text of [A, FF, '00:00:00:00:00:00', 'fe:dc:ba:98:76:54', '80:00:00:00:00:01']) {
      const value = n(text);
      expect(numberToMac(value)).toBe(text);
      const bytes = new Uint8Array(8);
      writeMac48(bytes, 2, value);
      expect(readMac48(bytes, 2)).toBe(value);
    }
    expect(n(FF)).toBe(BROADCAST48);
    expect(n('0:50:56:0:21:1')).toBe(n(A));
    expect(() => n('00:50:56')).toThrow(RangeError);
    expect(() => numberToMac(2 ** 48)).toThrow(RangeError);
  });

  test('frames carry the destination first, then the source', () => {
    const bytes = frame(A, B);
    expect(readMac48(bytes, 0)).toBe(n(B));
    expect(readMac48(bytes, 6)).toBe(n(A));
  });
});

describe("Fig. 2: a host's table", () => {
  // host1 runs VM A on vmnet1 and has its star link to the Proxy.
  const fig2 = () =>
    tableWith(['@vmnet1', '>proxy'], [rule(`NOT ${A}`, FF, '@vmnet1'), rule('ANY', A, '@vmnet1'), rule(A, 'NONE', '>proxy')]);

  test('broadcasts from elsewhere are injected into the VM interface', () => {
    const { t, p } = fig2();
    expect(look(t, p('>proxy'), B, FF)).toEqual([p('@vmnet1')]);
    expect(t.match(p('>proxy'), n(B), n(FF)).rules.map((r) => r.key)).toEqual([tableKey(rule(`NOT ${A}`, FF, '@vmnet1'))]);
  });

  test("the VM's own broadcast is not matched by NOT A and takes the default to the Proxy", () => {
    const { t, p } = fig2();
    expect(look(t, p('@vmnet1'), A, FF)).toEqual([p('>proxy')]);
  });

  test('frames for the VM are injected into its interface', () => {
    const { t, p } = fig2();
    expect(look(t, p('>proxy'), B, A)).toEqual([p('@vmnet1')]);
  });

  test('everything else the VM sends goes to the Proxy by the default rule', () => {
    const { t, p } = fig2();
    const m = t.match(p('@vmnet1'), n(A), n(X));
    expect(m.ports).toEqual([p('>proxy')]);
    expect(m.priority).toBe(priorityOf('exact', 'none'));
  });

  test("another source's frame for an unknown address matches nothing and is dropped", () => {
    const { t, p } = fig2();
    const m = t.match(p('>proxy'), n(B), n(X));
    expect(m.ports).toEqual([]);
    expect(m.drop).toBe('no-match');
  });
});

describe('priority table', () => {
  // The rows of PROTOCOL.md, strongest first. Each rule matches a frame from
  // A to B; `miss` is an address the same rule does not match.
  const ROWS: [src: string, dst: string, priority: number][] = [
    [A, B, 12],
    [`NOT ${X}`, B, 11],
    ['ANY', B, 10],
    [A, `NOT ${X}`, 9],
    [`NOT ${X}`, `NOT ${X}`, 8],
    ['ANY', `NOT ${X}`, 7],
    [A, 'ANY', 6],
    [`NOT ${X}`, 'ANY', 5],
    ['ANY', 'ANY', 4],
    [A, 'NONE', 3],
    [`NOT ${X}`, 'NONE', 2],
    ['ANY', 'NONE', 1],
  ];
  const ports = ROWS.map((_, i) => `@row${i}`);

  test.each(ROWS)('%s / %s has priority %i', (src, dst, priority) => {
    expect(priorityOf(addr(src).q as 'exact' | 'not' | 'any', addr(dst).q)).toBe(priority);
  });

  test('the twelve priorities are distinct, so only rules of one shape tie', () => {
    expect(new Set(ROWS.map((r) => r[2])).size).toBe(12);
    expect(MAX_PRIORITY).toBe(12);
  });

  test.each(ROWS.map((row, i) => [i, ...row] as const))('row %i (%s / %s) matches alone, and only what it should', (i, src, dst) => {
    const { t, p } = tableWith(['>in', ports[i]!], [rule(src, dst, ports[i]!)]);
    expect(look(t, p('>in'), A, B)).toEqual([p(ports[i]!)]);
    // An exact slot misses another address; a NOT slot misses its own address.
    const srcMiss = src === A ? C : src.startsWith('NOT') ? X : undefined;
    const dstMiss = dst === B ? C : dst.startsWith('NOT') ? X : undefined;
    if (srcMiss !== undefined) expect(look(t, p('>in'), srcMiss, B)).toEqual([]);
    if (dstMiss !== undefined) expect(look(t, p('>in'), A, dstMiss)).toEqual([]);
  });

  test('each row beats every row below it', () => {
    const { t, p } = tableWith(['>in', ...ports], ROWS.map(([src, dst], i) => rule(src, dst, ports[i]!)));
    ROWS.forEach(([src, dst, priority], i) => {
      const m = t.match(p('>in'), n(A), n(B));
      expect(m.priority).toBe(priority);
      expect(m.ports).toEqual([p(ports[i]!)]);
      t.delete(rule(src, dst, ports[i]!));
    });
    expect(t.match(p('>in'), n(A), n(B)).drop).toBe('no-match');
  });
});

describe('ties', () => {
  // The Proxy of the star: broadcasts fan out to every host and the LAN.
  const proxy = () =>
    tableWith(
      ['>h1', '>h2', '>h3', '@eth0'],
      [rule('ANY', FF, '>h1'), rule('ANY', FF, '>h2'), rule('ANY', FF, '>h3'), rule('ANY', FF, '@eth0'), rule('ANY', 'NONE', '@eth0')],
    );

  test('a broadcast goes to every winner but the one it came from', () => {
    const { t, p } = proxy();
    expect(look(t, p('>h1'), A, FF)).toEqual([p('>h2'), p('>h3'), p('@eth0')]);
    expect(look(t, p('@eth0'), X, FF)).toEqual([p('>h1'), p('>h2'), p('>h3')]);
  });

  test('winners sharing a port send the frame there once and are all counted', () => {
    const r1 = rule(`NOT ${A}`, FF, '>h2');
    const r2 = rule(`NOT ${B}`, FF, '>h2');
    const { t, p } = tableWith(['>h1', '>h2'], [r1, r2]);
    expect(t.forward(p('>h1'), frame(C, FF, 100))).toEqual([p('>h2')]);
    expect(t.get(r1)?.packets).toBe(1);
    expect(t.get(r2)?.packets).toBe(1);
    expect(t.port(p('>h2'))?.txPackets).toBe(1);
  });

  test('a tie at a lower priority does not join a stronger winner', () => {
    const { t, p } = tableWith(['>in', '@a', '@b', '@c'], [rule('ANY', B, '@a'), rule('ANY', 'ANY', '@b'), rule('ANY', 'ANY', '@c')]);
    expect(look(t, p('>in'), A, B)).toEqual([p('@a')]);
    expect(look(t, p('>in'), A, C)).toEqual([p('@b'), p('@c')]);
  });
});

describe('split horizon and ports that are down', () => {
  test('a rule that points back at the ingress does not apply, and a lower rule takes the frame', () => {
    // Written without Fig. 2's NOT: the VM's own broadcast still reaches the Proxy.
    const { t, p } = tableWith(['@vmnet1', '>proxy'], [rule('ANY', FF, '@vmnet1'), rule(A, 'NONE', '>proxy')]);
    expect(look(t, p('@vmnet1'), A, FF)).toEqual([p('>proxy')]);
    expect(look(t, p('>proxy'), B, FF)).toEqual([p('@vmnet1')]);
  });

  test('a frame is never sent back out of its ingress, even when every rule points there', () => {
    const { t, p } = tableWith(['@eth0'], [rule('ANY', 'NONE', '@eth0')]);
    expect(t.forward(p('@eth0'), frame(X, C))).toEqual([]);
    expect(t.match(p('@eth0'), n(X), n(C)).drop).toBe('ingress');
    expect(t.stats().drops.ingress).toBe(1);
    expect(t.port(p('@eth0'))?.txPackets).toBe(0);
  });

  test('a rule over a link that is down does not apply: the default takes over until the link is back', () => {
    const fast = rule(A, B, '>host2');
    const { t, p } = tableWith(['@vmnet1', '>proxy'], [fast, rule(A, 'NONE', '>proxy')]);
    const vm = p('@vmnet1');
    expect(look(t, vm, A, B)).toEqual([p('>proxy')]);
    const h2 = t.attach(dest('>host2'));
    expect(look(t, vm, A, B)).toEqual([h2]);
    expect(t.detach(dest('>host2'))).toBe(true);
    expect(look(t, vm, A, B)).toEqual([p('>proxy')]);
    expect(t.detach(dest('>host2'))).toBe(false);
  });

  test('with no other way out, a frame for a port that is down is dropped as link-down', () => {
    const { t, p } = tableWith(['@vmnet1'], [rule(A, B, '>host2'), rule('ANY', B, '@vmnet1')]);
    expect(t.forward(p('@vmnet1'), frame(A, B))).toEqual([]);
    expect(t.match(p('@vmnet1'), n(A), n(B)).drop).toBe('link-down');
    expect(t.stats().drops).toEqual({ noMatch: 0, linkDown: 1, ingress: 0, malformed: 0 });
  });

  test('a port keeps its id and counters across detach and attach', () => {
    const { t, p } = tableWith(['>in', '>h2'], [rule('ANY', B, '>h2')]);
    const id = p('>h2');
    t.forward(p('>in'), frame(A, B));
    t.detach(dest('>h2'));
    expect(t.attach(dest('>h2'))).toBe(id);
    expect(t.port(id)).toMatchObject({ up: true, txPackets: 1, dest: { kind: 'link', to: 'h2' } });
  });

  test('a link and an interface of the same name are different ports', () => {
    const { t, p } = tableWith(['>eth0', '@eth0'], []);
    expect(p('>eth0')).not.toBe(p('@eth0'));
    expect(t.ports().map((q) => q.dest)).toEqual([dest('>eth0'), dest('@eth0')]);
  });
});

describe('default rules', () => {
  test('win only when nothing else applies, the strongest source first', () => {
    const { t, p } = tableWith(
      ['>in', '@exact', '@not', '@any', '@cfor'],
      [rule(A, 'NONE', '@exact'), rule(`NOT ${X}`, 'NONE', '@not'), rule('ANY', 'NONE', '@any'), rule('ANY', C, '@cfor')],
    );
    const ingress = p('>in');
    expect(look(t, ingress, A, C)).toEqual([p('@cfor')]);
    expect(look(t, ingress, A, B)).toEqual([p('@exact')]);
    expect(look(t, ingress, B, B)).toEqual([p('@not')]);
    expect(look(t, ingress, X, B)).toEqual([p('@any')]);
  });

  test('a default rule matches broadcast destinations too', () => {
    const { t, p } = tableWith(['>in', '@out'], [rule('ANY', 'NONE', '@out')]);
    expect(look(t, p('>in'), A, FF)).toEqual([p('@out')]);
  });
});

describe('drops and counters', () => {
  test('a frame that matches nothing is dropped and counted', () => {
    const { t, p } = tableWith(['>in', '@vm'], [rule('ANY', A, '@vm')]);
    expect(t.forward(p('>in'), frame(B, C, 80))).toEqual([]);
    expect(t.stats()).toMatchObject({ frames: 1, bytes: 80, forwarded: 0, dropped: 1, drops: { noMatch: 1 } });
    expect(t.port(p('>in'))).toMatchObject({ rxPackets: 1, rxBytes: 80 });
  });

  test('a frame too short for its addresses is dropped as malformed', () => {
    const { t, p } = tableWith(['>in', '@vm'], [rule('ANY', 'ANY', '@vm')]);
    expect(t.forward(p('>in'), new Uint8Array(13))).toEqual([]);
    expect(t.stats().drops.malformed).toBe(1);
    expect(t.forward(p('>in'), new Uint8Array(14))).toEqual([p('@vm')]);
  });

  test('an unknown ingress is a caller error', () => {
    const { t } = tableWith([], []);
    expect(() => t.forward(7, frame(A, B))).toThrow(RangeError);
  });

  test('per-rule and per-port packet and byte counters', () => {
    const toVm = rule('ANY', A, '@vmnet1');
    const bcast = rule(`NOT ${A}`, FF, '@vmnet1');
    const dflt = rule(A, 'NONE', '>proxy');
    const { t, p } = tableWith(['@vmnet1', '>proxy'], [toVm, bcast, dflt]);
    t.forward(p('>proxy'), frame(B, A, 100));
    t.forward(p('>proxy'), frame(B, A, 200));
    t.forward(p('>proxy'), frame(C, FF, 64));
    t.forward(p('@vmnet1'), frame(A, B, 1500));
    t.forward(p('@vmnet1'), frame(A, X, 1000));
    expect(t.get(toVm)).toMatchObject({ packets: 2, bytes: 300 });
    expect(t.get(bcast)).toMatchObject({ packets: 1, bytes: 64 });
    expect(t.get(dflt)).toMatchObject({ packets: 2, bytes: 2500 });
    expect(t.port(p('>proxy'))).toMatchObject({ rxPackets: 3, rxBytes: 364, txPackets: 2, txBytes: 2500 });
    expect(t.port(p('@vmnet1'))).toMatchObject({ rxPackets: 2, rxBytes: 2500, txPackets: 3, txBytes: 364 });
    expect(t.stats()).toMatchObject({ frames: 5, bytes: 2864, forwarded: 5, dropped: 0 });
  });

  test('replaceAll keeps the counters of rules it keeps; delete and add starts a rule afresh', () => {
    const keep = rule('ANY', A, '@vm');
    const drop = rule('ANY', B, '@vm');
    const { t, p } = tableWith(['>in', '@vm'], [keep, drop]);
    t.forward(p('>in'), frame(C, A));
    t.forward(p('>in'), frame(C, B));
    t.replaceAll([keep, rule('ANY', C, '@vm')]);
    expect(t.size).toBe(2);
    expect(t.get(keep)?.packets).toBe(1);
    expect(t.has(drop)).toBe(false);
    t.delete(keep);
    t.add(keep);
    expect(t.get(keep)?.packets).toBe(0);
  });
});

describe('rule identity and validation', () => {
  test('a rule is its tableKey: adding it twice is a no-op, deleting an absent rule too', () => {
    const { t } = tableWith([], []);
    expect(t.add(rule('ANY', A, '@vm'))).toBe(true);
    expect(t.add(rule('ANY', A, '@vm'))).toBe(false);
    expect(t.add(rule('ANY', A, '>h2'))).toBe(true);
    expect(t.size).toBe(2);
    expect(t.delete(rule('ANY', B, '@vm'))).toBe(false);
    expect(t.delete(rule('ANY', A, '@vm'))).toBe(true);
    expect([...t.rules()].map((r) => r.key)).toEqual([tableKey(rule('ANY', A, '>h2'))]);
  });

  test('faulty rules are refused, and replaceAll changes nothing when one is', () => {
    const bad: Rule = { machine: 'host1', src: { q: 'none' }, dst: { q: 'any' }, dest: dest('@vm') };
    expect(ruleError(bad)).toMatch(/NONE/);
    expect(ruleError(rule('ANY', '00:50:56', '@vm'))).toMatch(/MAC/);
    expect(ruleError(rule('ANY', A, '@'))).toMatch(/name/);
    expect(ruleError(rule('ANY', A, '@vm'))).toBeNull();
    const { t } = tableWith([], [rule('ANY', A, '@vm')]);
    expect(() => t.add(bad)).toThrow(RangeError);
    expect(() => t.replaceAll([rule('ANY', B, '@vm'), bad])).toThrow(RangeError);
    expect([...t.rules()].map((r) => r.key)).toEqual([tableKey(rule('ANY', A, '@vm'))]);
  });
});

describe('lookup cache', () => {
  test('repeated lookups are served from the cache', () => {
    const { t, p } = tableWith(['>in', '@vm'], [rule('ANY', A, '@vm')]);
    look(t, p('>in'), B, A);
    look(t, p('>in'), B, A);
    look(t, p('>in'), B, A);
    expect(t.stats().cache).toMatchObject({ hits: 2, misses: 1, entries: 1 });
  });

  test('the ingress is part of the key', () => {
    const { t, p } = tableWith(['>h1', '>h2'], [rule('ANY', FF, '>h1'), rule('ANY', FF, '>h2')]);
    expect(look(t, p('>h1'), A, FF)).toEqual([p('>h2')]);
    expect(look(t, p('>h2'), A, FF)).toEqual([p('>h1')]);
  });

  test('a cached result changes when a rule is added, deleted or replaced', () => {
    const stronger = rule(A, B, '>h2');
    const { t, p } = tableWith(['@vm', '>proxy', '>h2'], [rule(A, 'NONE', '>proxy')]);
    const vm = p('@vm');
    expect(look(t, vm, A, B)).toEqual([p('>proxy')]);
    expect(look(t, vm, A, B)).toEqual([p('>proxy')]);
    t.add(stronger);
    expect(look(t, vm, A, B)).toEqual([p('>h2')]);
    t.delete(stronger);
    expect(look(t, vm, A, B)).toEqual([p('>proxy')]);
    t.replaceAll([stronger]);
    expect(look(t, vm, A, B)).toEqual([p('>h2')]);
    t.replaceAll([]);
    expect(look(t, vm, A, B)).toEqual([]);
  });

  test('a cached result changes when a port goes down or up', () => {
    const { t, p } = tableWith(['@vm', '>h2'], [rule('ANY', B, '>h2')]);
    expect(look(t, p('@vm'), A, B)).toEqual([p('>h2')]);
    t.detach(dest('>h2'));
    expect(look(t, p('@vm'), A, B)).toEqual([]);
    t.attach(dest('>h2'));
    expect(look(t, p('@vm'), A, B)).toEqual([p('>h2')]);
  });

  test('a flood of random source MACs does not grow the cache past its size, and results stay right', () => {
    const { t, p } = tableWith(['>in', '@vm', '>proxy'], [rule('ANY', A, '@vm'), rule('ANY', 'NONE', '>proxy')], 64);
    const random = fc.sample(fc.integer({ min: 0, max: 2 ** 48 - 1 }), { numRuns: 10_000, seed: 42 });
    for (const src of random) {
      expect(t.lookup(p('>in'), src, n(A))).toEqual([p('@vm')]);
      expect(t.lookup(p('>in'), src, src)).toEqual([p('>proxy')]);
    }
    const cache = t.stats().cache;
    expect(cache.capacity).toBe(64);
    expect(cache.entries).toBeLessThanOrEqual(64);
    expect(cache.misses).toBeGreaterThanOrEqual(10_000);
  });

  test('flows with the same winners share one result, so a flood of broadcasts does not copy the fan-out per flow', () => {
    const hosts = ['>h1', '>h2', '>h3', '>h4'];
    const { t, p } = tableWith(['@eth0', ...hosts], hosts.map((h) => rule('ANY', FF, h)));
    const first = t.lookup(p('@eth0'), n(A), n(FF));
    for (const src of fc.sample(fc.integer({ min: 0, max: 2 ** 48 - 1 }), { numRuns: 200, seed: 7 })) {
      expect(t.lookup(p('@eth0'), src, n(FF))).toBe(first);
    }
    expect(first).toEqual(hosts.map(p));
    // A different ingress is a different set of winners.
    expect(t.lookup(p('>h1'), n(A), n(FF))).toEqual([p('>h2'), p('>h3'), p('>h4')]);
  });

  test('a cache of size 0 is off: every lookup resolves from the rules', () => {
    const { t, p } = tableWith(['>in', '@vm'], [rule('ANY', A, '@vm')], 0);
    look(t, p('>in'), B, A);
    look(t, p('>in'), B, A);
    expect(t.stats().cache).toMatchObject({ capacity: 0, entries: 0, hits: 0, misses: 2 });
    expect(look(t, p('>in'), B, A)).toEqual([p('@vm')]);
  });
});

// ---------------------------------------------------------------------------
// The indexed, cached table against the definition: scan every rule, keep
// the applicable ones, take the top priority.

const PRIORITY: Record<string, number> = {
  'exact/exact': 12, 'not/exact': 11, 'any/exact': 10,
  'exact/not': 9, 'not/not': 8, 'any/not': 7,
  'exact/any': 6, 'not/any': 5, 'any/any': 4,
  'exact/none': 3, 'not/none': 2, 'any/none': 1,
};

function slotMatches(a: Address, mac: number): boolean {
  if (a.q === 'exact') return macToNumber(a.mac) === mac;
  if (a.q === 'not') return macToNumber(a.mac) !== mac;
  return true;
}

interface Expected {
  ports: number[];
  keys: string[];
  priority: number;
  drop: Match['drop'];
}

function reference(rules: Iterable<Rule>, up: (d: Destination) => boolean, id: (d: Destination) => number, ingress: number, src: number, dst: number): Expected {
  let best: Rule[] = [];
  let priority = 0;
  let sawDown = false;
  let sawIngress = false;
  for (const r of rules) {
    if (!slotMatches(r.src, src) || !slotMatches(r.dst, dst)) continue;
    if (id(r.dest) === ingress) {
      sawIngress = true;
      continue;
    }
    if (!up(r.dest)) {
      sawDown = true;
      continue;
    }
    const pr = PRIORITY[`${r.src.q}/${r.dst.q}`]!;
    if (pr > priority) [best, priority] = [[r], pr];
    else if (pr === priority) best.push(r);
  }
  return {
    ports: [...new Set(best.map((r) => id(r.dest)))].sort((a, b) => a - b),
    keys: best.map(tableKey).sort(),
    priority,
    drop: best.length > 0 ? null : sawDown ? 'link-down' : sawIngress ? 'ingress' : 'no-match',
  };
}

function observed(m: Match): Expected {
  return { ports: [...m.ports], keys: m.rules.map((r) => r.key).sort(), priority: m.priority, drop: m.drop };
}

describe('property: the indexed, cached table agrees with a scan of every rule', () => {
  const POOL = [A, B, C, FF];
  const DESTS = ['>h1', '>h2', '>proxy', '@vmnet1', '@eth0'].map(dest);
  const mac = fc.constantFrom(...POOL);
  const srcAddr: fc.Arbitrary<Address> = fc.oneof(
    mac.map((m) => ({ q: 'exact' as const, mac: m })),
    mac.map((m) => ({ q: 'not' as const, mac: m })),
    fc.constant({ q: 'any' as const }),
  );
  const dstAddr: fc.Arbitrary<Address> = fc.oneof(srcAddr, fc.constant({ q: 'none' as const }));
  const ruleArb: fc.Arbitrary<Rule> = fc.record({ machine: fc.constant('m'), src: srcAddr, dst: dstAddr, dest: fc.constantFrom(...DESTS) });
  // Frames mostly use the rules' addresses, sometimes any 48-bit address.
  const frameMac = fc.oneof({ weight: 4, arbitrary: mac.map(macToNumber) }, { weight: 1, arbitrary: fc.integer({ min: 0, max: 2 ** 48 - 1 }) });

  type Op =
    | { t: 'add'; rule: Rule }
    | { t: 'delete'; rule: Rule }
    | { t: 'deleteNth'; nth: number }
    | { t: 'replaceAll'; rules: Rule[] }
    | { t: 'attach' | 'detach'; dest: Destination }
    | { t: 'lookup'; ingress: Destination; src: number; dst: number; repeat: number };

  const op: fc.Arbitrary<Op> = fc.oneof(
    { weight: 6, arbitrary: ruleArb.map((rule) => ({ t: 'add' as const, rule })) },
    { weight: 1, arbitrary: ruleArb.map((rule) => ({ t: 'delete' as const, rule })) },
    { weight: 2, arbitrary: fc.nat().map((nth) => ({ t: 'deleteNth' as const, nth })) },
    { weight: 1, arbitrary: fc.array(ruleArb, { maxLength: 12 }).map((rules) => ({ t: 'replaceAll' as const, rules })) },
    { weight: 2, arbitrary: fc.constantFrom(...DESTS).map((d) => ({ t: 'attach' as const, dest: d })) },
    { weight: 1, arbitrary: fc.constantFrom(...DESTS).map((d) => ({ t: 'detach' as const, dest: d })) },
    {
      weight: 10,
      arbitrary: fc.record({
        t: fc.constant('lookup' as const),
        ingress: fc.constantFrom(...DESTS),
        src: frameMac,
        dst: frameMac,
        repeat: fc.integer({ min: 1, max: 3 }),
      }),
    },
  );

  test('over thousands of random tables and frames, with rule and port changes between lookups', () => {
    fc.assert(
      fc.property(fc.constantFrom(0, 4, 16, 4096), fc.array(op, { minLength: 1, maxLength: 80 }), (cacheSize, ops) => {
        const t = new ForwardingTable({ cacheSize });
        const rules = new Map<string, Rule>();
        const up = new Set<string>();
        const upOf = (d: Destination): boolean => up.has(JSON.stringify(d));
        const id = (d: Destination): number => t.portId(d);
        for (const o of ops) {
          switch (o.t) {
            case 'add':
              expect(t.add(o.rule)).toBe(!rules.has(tableKey(o.rule)));
              rules.set(tableKey(o.rule), o.rule);
              break;
            case 'delete':
              expect(t.delete(o.rule)).toBe(rules.delete(tableKey(o.rule)));
              break;
            case 'deleteNth': {
              const victim = [...rules.values()][o.nth % Math.max(1, rules.size)];
              if (victim !== undefined) {
                expect(t.delete(victim)).toBe(true);
                rules.delete(tableKey(victim));
              }
              break;
            }
            case 'replaceAll':
              t.replaceAll(o.rules);
              rules.clear();
              for (const r of o.rules) rules.set(tableKey(r), r);
              break;
            case 'attach':
              t.attach(o.dest);
              up.add(JSON.stringify(o.dest));
              break;
            case 'detach':
              t.detach(o.dest);
              up.delete(JSON.stringify(o.dest));
              break;
            case 'lookup': {
              const ingress = id(o.ingress);
              const want = reference(rules.values(), upOf, id, ingress, o.src, o.dst);
              for (let i = 0; i < o.repeat; i++) {
                expect(observed(t.match(ingress, o.src, o.dst))).toEqual(want);
              }
              break;
            }
          }
        }
        expect(t.size).toBe(rules.size);
      }),
      { numRuns: 600 },
    );
  });
});
