import type { Reached } from '../../src/remote/fetch.js';
import { reportedPorts } from '../../src/route/ports.js';
import type { LinkStatus } from '../../src/wire/control.js';

/** A daemon's report as fetchLive keeps it, with only what reportedPorts reads. */
const reached = (links: [string, LinkStatus['state']][], devices: string[]): Reached =>
  ({ report: { links: links.map(([peer, state]) => ({ link: { peer }, state })), devices } }) as unknown as Reached;

test('ports are as each daemon reports its own end: links by LINKS? state, interfaces up while open, down while their device is missing', () => {
  const ports = reportedPorts(
    new Map([
      ['d3', reached([['d4', 'connecting'], ['d1', 'up']], ['vm0 tap:vm0 rx=0/0 tx=0/0 errors=0', 'vm2 pcap:tap2 rx=0/0 tx=0/0 errors=0 device=missing'])],
      ['d4', reached([['d3', 'up']], [])],
      ['gone', { report: undefined } as unknown as Reached],
    ]),
  );
  expect(ports('d3', { kind: 'link', to: 'd4' })).toBe('connecting');
  expect(ports('d3', { kind: 'link', to: 'd1' })).toBe('up');
  // The other end's view does not count: d3 forwards by its own.
  expect(ports('d4', { kind: 'link', to: 'd3' })).toBe('up');
  expect(ports('d3', { kind: 'link', to: 'd9' })).toBe('absent');
  expect(ports('d3', { kind: 'interface', iface: 'vm0' })).toBe('up');
  expect(ports('d3', { kind: 'interface', iface: 'vm1' })).toBe('absent');
  // Open, but waiting for its device: down, as vnetd's table has it.
  expect(ports('d3', { kind: 'interface', iface: 'vm2' })).toBe('down');
  expect(ports('gone', { kind: 'link', to: 'd3' })).toBe('absent');
});
