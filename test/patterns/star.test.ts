import { starLines, type StarVm } from '../../src/patterns/star.js';
import { linkKey, type Rule, type State } from '../../src/model/state.js';
import { trace } from '../../src/route/trace.js';
import { parseCommand } from '../../src/wire/control.js';

/**
 * The bed's star, read back from its control lines and traced frame by
 * frame: every VM reaches every other exactly once, at its own interface,
 * and a broadcast reaches every other VM's interface once and never comes
 * back to its sender, whether VMs have interfaces of their own or share one.
 */

function stateOf(lines: Map<string, string[]>): State {
  const state: State = { hosts: new Map(), links: new Map(), tables: new Map() };
  for (const [machine, batch] of lines) {
    const table = new Map<string, Rule>();
    state.tables.set(machine, table);
    for (const line of batch) {
      const c = parseCommand(line);
      if (c.op === 'link-add') state.links.set(linkKey(machine, c.link.peer), { a: machine, b: c.link.peer, proto: c.link.proto, dialer: c.link.dial ? machine : c.link.peer });
      else if (c.op === 'rule-add') table.set(line, { machine, ...c.rule });
      else throw new Error(`unexpected line ${line}`);
    }
  }
  return state;
}

const mac = (i: number) => `02:50:00:00:00:${i.toString(16).padStart(2, '0')}`;

test.each([
  ['an interface per VM', (i: number) => `vm${i}`],
  ['one interface per host', () => 'vm0'],
])('%s: unicast and broadcast reach every other VM exactly once', (_, iface) => {
  const vms: StarVm[] = Array.from({ length: 6 }, (_, i) => ({ mac: mac(i), host: `host${(i % 2) + 1}`, iface: iface(i) }));
  const state = stateOf(starLines(vms, { proxyAddress: '127.0.0.1:5000', proto: 'tcp', mode: 'encrypt', key: () => 'ab'.repeat(32) }));
  for (const s of vms) {
    const ingress = { kind: 'interface' as const, iface: s.iface };
    for (const d of vms) {
      if (d === s || (d.host === s.host && d.iface === s.iface)) continue; // VMs on one interface reach each other without vnetd
      expect(trace(state, s.host, ingress, s.mac, d.mac).endings).toEqual([{ kind: 'delivered', machine: d.host, iface: d.iface }]);
    }
    const b = trace(state, s.host, ingress, s.mac, 'ff:ff:ff:ff:ff:ff');
    const delivered = b.endings.filter((e) => e.kind === 'delivered').map((e) => `${e.machine}/${(e as { iface: string }).iface}`).sort();
    const others = [...new Set(vms.map((v) => `${v.host}/${v.iface}`))].filter((x) => x !== `${s.host}/${s.iface}`).sort();
    expect(delivered).toEqual(others);
    // The Proxy has nowhere else to send a broadcast back towards its sender's host: that branch ends there, and nothing else.
    expect(b.endings.filter((e) => e.kind !== 'delivered')).toEqual(b.endings.filter((e) => e.kind === 'dead-end' && e.machine === 'proxy'));
  }
});
