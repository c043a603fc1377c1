import { randomBytes } from 'node:crypto';
import { pcapBinding } from '../../daemon/interfaces/pcap.js';
import { runProcesses } from '../../src/patterns/processes.js';
import { starLines } from '../../src/patterns/star.js';
import { vmMac } from '../../src/patterns/synthetic.js';
import { batch, link, linkUp, netnsUnavailable, Testbed, type Daemon } from './testbed.js';

/**
 * The patterns workload as real processes inside VM namespaces, talking UDP
 * through their own kernels (ARP included), with vnetd forwarding between
 * hosts over the Proxy star: a ring of 4 VMs on two hosts, every edge
 * crossing the overlay.
 */

const lib = pcapBinding();
const skip = netnsUnavailable() ?? (typeof lib === 'string' ? lib : null);
const suite = skip ? describe.skip : describe;
if (skip) console.warn(`patterns namespace test skipped: ${skip}`);

const PORT = 5000;
const VMS = [0, 1, 2, 3].map((rank) => ({ rank, mac: vmMac(rank), host: rank % 2 ? 'h2' : 'h1', iface: `vm${rank}`, addr: `10.201.0.${rank + 1}` }));

suite(`patterns in VM namespaces (${skip ?? 'root, ip, pcap'})`, () => {
  let tb: Testbed;
  const daemons = new Map<string, Daemon>();

  beforeAll(async () => {
    tb = await Testbed.create();
    await tb.lan(['proxy', 'h1', 'h2']);
    for (const v of VMS) await tb.vm(v.host, v.iface, v.iface, v.mac, v.addr);
    const started = await Promise.all([
      tb.vnetd('proxy', 'proxy', PORT),
      ...['h1', 'h2'].map((h) => tb.vnetd(h, h, PORT, VMS.filter((v) => v.host === h).map((v) => `${v.iface}=pcap:${v.iface}`))),
    ]);
    for (const d of started) daemons.set(d.machine, d);
    const lines = starLines(VMS, { proxyAddress: `${tb.lanAddress.get('proxy')}:${PORT}`, proto: 'tcp', mode: 'encrypt', key: () => randomBytes(32).toString('hex') });
    for (const [machine, theirs] of lines) await batch(daemons.get(machine)!, theirs);
    for (const h of ['h1', 'h2']) await linkUp(daemons.get(h)!, 'proxy');
  }, 90_000);
  afterAll(() => tb?.destroy(), 30_000);

  test('a ring of 4 processes exchanges every message through vnetd', async () => {
    const before = (await link(daemons.get('h1')!, 'proxy')).tx;
    const r = await runProcesses(
      VMS.map((v) => ({ prefix: ['ip', 'netns', 'exec', tb.ns(v.iface)], address: { host: v.addr, port: 7000 } })),
      { topology: 'ring', bsp: { iterations: 20, size: 3000, compute: { ms: 1 }, computeMode: 'busy', timeoutMs: 3000 } },
    );
    expect(r).toMatchObject({ topology: 'ring', vms: 4, iterations: 20, lost: 0, late: 0, messagesSent: 160, messagesReceived: 160 });
    expect(r.iterationsPerS).toBeGreaterThan(0);
    // Every ring edge joins h1 and h2: h1's two VMs sent 2 messages of 3 datagrams per iteration each over the star.
    const after = (await link(daemons.get('h1')!, 'proxy')).tx;
    expect(after - before).toBeGreaterThanOrEqual(2 * 2 * 3 * 20);
  }, 60_000);
});
