import { byName, knownVms, topologyDiff, vmsByHost } from '../../src/vttif/render/vms.js';
import { mac, ring } from './fixtures.js';

describe('vttif render: VMs and hosts', () => {
  test('machine names in numeric order, then by code unit', () => {
    const names = ['host10', 'host2', 'host1', 'Host3', 'host02', 'rack2-host9', 'rack10-host1', 'host', 'host99999999999999999999'];
    expect([...names].sort(byName)).toEqual(['Host3', 'host', 'host1', 'host2', 'host02', 'host10', 'host99999999999999999999', 'rack2-host9', 'rack10-host1']);
  });

  test('known VMs: topology, current view, matrix and host map together, once each; VMs of no known host last', () => {
    const inf = ring(4);
    inf.matrix = [...inf.matrix, { src: mac(9), dst: mac(0), bytesPerS: 1, framesPerS: 1 }];
    inf.hosts = { ...inf.hosts, [mac(7)]: 'host10' };
    expect(knownVms(inf)).toEqual([0, 1, 2, 3, 7, 9].map(mac));
    expect(vmsByHost(inf)).toEqual([
      { host: 'host1', vms: [mac(0), mac(1)] },
      { host: 'host2', vms: [mac(2), mac(3)] },
      { host: 'host10', vms: [mac(7)] },
      { host: undefined, vms: [mac(9)] },
    ]);
  });

  test('a host map key named like an Object.prototype member is a VM like any other', () => {
    const inf = ring(4);
    inf.matrix = [...inf.matrix, { src: 'constructor', dst: mac(0), bytesPerS: 1, framesPerS: 1 }];
    expect(vmsByHost(inf).at(-1)).toEqual({ host: undefined, vms: ['constructor'] });
  });

  test('topology diff: unordered pairs, whichever way round an edge is written', () => {
    const e = (a: number, b: number) => ({ a: mac(a), b: mac(b), intensity: 1, bytesPerS: 1, aToBBytesPerS: 1 });
    const d = topologyDiff({ vms: [], edges: [e(0, 1), e(1, 2)] }, { vms: [], edges: [e(1, 0), e(3, 2)] });
    expect(d.added).toEqual([e(2, 3)]);
    expect(d.removed).toEqual([e(1, 2)]);
    expect(topologyDiff(null, { vms: [], edges: [e(0, 1)] }).added).toHaveLength(1);
  });
});
