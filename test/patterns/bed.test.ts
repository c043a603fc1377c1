import fs from 'node:fs';
import { startBed, type Bed } from '../../daemon/bed.js';
import type { Vnetd } from '../../daemon/vnetd-core.js';
import { messageFrameBytes } from '../../src/patterns/synthetic.js';
import { KINDS, pattern } from '../../src/patterns/topology.js';

/**
 * The patterns workload on real daemons in this process: a Proxy and hosts
 * linked in a star over loopback, synthetic VMs on QEMU datagram sockets.
 * Interface counters show that vnetd carried every frame of the run.
 */

/** An interface's frame counters, as DEVICES? reports them. */
function device(d: Vnetd, iface: string): { rx: number; tx: number } {
  const line = [...d.query('devices?')].find((l) => l.startsWith(`${iface} `));
  if (!line) throw new Error(`${d.machine} has no interface ${iface}`);
  return { rx: Number(/ rx=(\d+)\//.exec(line)![1]), tx: Number(/ tx=(\d+)\//.exec(line)![1]) };
}

describe('a bed of 8 VMs on 3 hosts, one interface per VM', () => {
  let bed: Bed;
  beforeAll(async () => {
    bed = await startBed({ vms: 8, hosts: 3 });
  }, 30_000);
  afterAll(() => bed?.close());

  test('VMs are placed round-robin with their own MACs and interfaces', () => {
    expect(bed.vms.slice(0, 4)).toEqual([
      { rank: 0, mac: '02:50:00:00:00:00', host: 'host1', iface: 'vm0' },
      { rank: 1, mac: '02:50:00:00:00:01', host: 'host2', iface: 'vm1' },
      { rank: 2, mac: '02:50:00:00:00:02', host: 'host3', iface: 'vm2' },
      { rank: 3, mac: '02:50:00:00:00:03', host: 'host1', iface: 'vm3' },
    ]);
    expect([...bed.daemons.keys()]).toEqual(['proxy', 'host1', 'host2', 'host3']);
  });

  test('INFO? names the port each daemon bound (asked for port 0), the one its peers dial', () => {
    for (const d of bed.daemons.values()) {
      expect(d.links.port).toBeGreaterThan(0);
      expect([...d.query('info?')]).toContain(`port ${d.links.port}`);
    }
  });

  test('every kind runs to the end with every message delivered, every frame through vnetd', async () => {
    const size = 2000; // two frames a message
    for (const kind of KINDS) {
      const before = bed.vms.map((v) => device(bed.daemons.get(v.host)!, v.iface).rx);
      const r = await bed.run({ topology: kind, iterations: 10, size, timeoutMs: 5000 });
      const p = pattern(kind, 8);
      expect({ kind, lost: r.lost, late: r.late, iterations: r.iterations }).toEqual({ kind, lost: 0, late: 0, iterations: 10 });
      expect(r.messagesSent).toBe(2 * p.edges.length * 10);
      expect(r.messagesReceived).toBe(r.messagesSent);
      // Each VM's interface received exactly its messages' frames: 2 per message, one message per partner per iteration.
      const partners = bed.vms.map((v) => p.edges.filter(([a, b]) => a === v.rank || b === v.rank).length);
      expect(bed.vms.map((v, i) => device(bed.daemons.get(v.host)!, v.iface).rx - before[i]!)).toEqual(partners.map((k) => k * 2 * 10));
    }
  }, 60_000);

  test('noise flows between the chosen pair at about the asked rate, and stops', async () => {
    const to = bed.vms[5]!;
    const before = device(bed.daemons.get(to.host)!, to.iface).tx;
    const noise = bed.noise([{ from: 0, to: 5, bytesPerS: 100_000 }]);
    await new Promise((r) => setTimeout(r, 300));
    const sent = noise.stop();
    expect(sent.frames).toBeGreaterThan(0);
    expect(sent.bytes).toBe(sent.frames * 1000); // 100 frames a second of rate/100 bytes
    const end = Date.now() + 5000;
    while (device(bed.daemons.get(to.host)!, to.iface).tx - before < sent.frames && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
    expect(device(bed.daemons.get(to.host)!, to.iface).tx - before).toBe(sent.frames);
  });

  test('a size the topology cannot take is refused with a clear message, and the bed still works', async () => {
    await expect(bed.run({ topology: 'mesh2d', dims: [3, 3], iterations: 1 })).rejects.toThrow('--dims 3x3 makes 9 VMs, not 8');
    expect(() => bed.noise([{ from: 0, to: 0, bytesPerS: 1 }])).toThrow('give two different ranks of 0..7');
    expect((await bed.run({ topology: 'ring', iterations: 2, size: 10 })).messagesReceived).toBe(32);
  });
});

test('VMs sharing a host interface reach each other without vnetd, like VMs on a host bridge', async () => {
  const bed = await startBed({ vms: 4, hosts: 2, sharedInterface: true, linkProto: 'udp' });
  try {
    expect(bed.vms.map((v) => `${v.host}/${v.iface}`)).toEqual(['host1/vm0', 'host2/vm0', 'host1/vm0', 'host2/vm0']);
    const r = await bed.run({ topology: 'all-to-all', iterations: 5, size: 100, timeoutMs: 5000 });
    expect([r.lost, r.messagesReceived]).toEqual([0, 4 * 3 * 5]);
    // Ranks 0 and 2 share host1: each sends 2 of its 3 messages an iteration through vnetd.
    expect(device(bed.daemons.get('host1')!, 'vm0').rx).toBe(2 * 2 * 5);
  } finally {
    await bed.close();
  }
  expect(fs.existsSync(bed.dir)).toBe(false);
}, 30_000);

test('a bed that cannot be built says why and leaves nothing behind', async () => {
  await expect(startBed({ vms: 1 })).rejects.toThrow('a bed needs 2 to 65535 VMs (got 1)');
  await expect(startBed({ vms: 4, hosts: 5 })).rejects.toThrow('a bed of 4 VMs takes 1 to 4 hosts (got 5)');
});

test('the frame bytes of a message, as vnetd counts them', () => {
  expect(messageFrameBytes(0)).toBe(60); // one padded frame
  expect(messageFrameBytes(1478)).toBe(1514);
  expect(messageFrameBytes(2000)).toBe(1514 + 14 + 22 + 522);
});
