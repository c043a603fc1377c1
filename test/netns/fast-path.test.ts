import { randomBytes } from 'node:crypto';
import { pcapBinding } from '../../daemon/interfaces/pcap.js';
import { formatHostPort } from '../../src/wire/hostport.js';
import { waitFor } from '../support/vnetd-process.js';
import { batch, link, linkUp, netnsUnavailable, ok, Testbed, type Daemon } from './testbed.js';

/**
 * The fast path (daemon/forward/fast-path.ts, pcap-native/fastpath.c) on
 * real packets: two hosts joined by a UDP link, then by a TCP link (whose
 * connection the fast path takes over), a VM on each behind a pcap
 * interface. After a flow's first frame the frames cross in C, and the
 * counters an operator reads still add up to what the VMs' kernels counted;
 * a rule change takes effect on the next frame; a link that comes back
 * with a new session is carried again. Over the UDP link a TCP transfer's
 * frames fit the path unfragmented, their SYNs' MSS clamped (mss.ts), over
 * an IPv4 LAN and an IPv6 one, and leave in segmented sends (UDP GSO).
 * (test/daemon/fast-path.test.ts has the kernel refuse those.)
 */
const lib = pcapBinding();
const skip = netnsUnavailable() ?? (typeof lib === 'string' ? lib : null);
const suite = skip ? describe.skip : describe;
if (skip) console.warn(`fast-path tests skipped: ${skip}`);

const MAC = { vm1: '02:00:00:00:01:01', vm2: '02:00:00:00:02:02', bcast: 'ff:ff:ff:ff:ff:ff' };
const PORT = 5000;

/** A number from a query's lines: the line starting with `start`, the first match of `re` in it. */
async function read(d: Daemon, query: string, start: string, re: RegExp): Promise<number> {
  const line = (await ok(d, query)).data.find((l) => l.startsWith(start));
  const m = line && re.exec(line);
  if (!m) throw new Error(`${d.machine}: no '${start}' with ${re} in ${query}:\n${(await ok(d, query)).data.join('\n')}`);
  return Number(m[1]);
}

const carried = (d: Daemon) => read(d, 'STATS?', 'fast-path.frames ', /(\d+)$/);
const gso = async (d: Daemon) => ({
  on: await read(d, 'STATS?', 'fast-path.udp-gso ', /(\d+)$/),
  sends: await read(d, 'STATS?', 'fast-path.udp-gso-sends ', /(\d+)$/),
  datagrams: await read(d, 'STATS?', 'fast-path.udp-gso-datagrams ', /(\d+)$/),
});
const ruleCount = (d: Daemon, rule: string) => read(d, 'RULES?', `${rule} `, /packets=(\d+)/);
const device = async (d: Daemon, name: string) => {
  const line = (await ok(d, 'DEVICES?')).data.find((l) => l.startsWith(`${name} `))!;
  return { rx: Number(/ rx=(\d+)\//.exec(line)![1]), tx: Number(/ tx=(\d+)\//.exec(line)![1]) };
};

/** On `tb` (which removes them all, whatever fails): two hosts on a LAN (IPv6 with `v6`), a VM behind each on a pcap interface, and vnetd on each, its own VM's rules in. */
async function twoHosts(tb: Testbed, opts: { v6?: boolean } = {}): Promise<{ h1: Daemon; h2: Daemon }> {
  await tb.lan(['h1', 'h2'], opts);
  await tb.vm('h1', 'vm1', 'vm1', MAC.vm1, '10.201.0.1');
  await tb.vm('h2', 'vm2', 'vm2', MAC.vm2, '10.201.0.2');
  const [h1, h2] = await Promise.all([tb.vnetd('h1', 'h1', PORT, ['vm1=pcap:vm1']), tb.vnetd('h2', 'h2', PORT, ['vm2=pcap:vm2'])]);
  for (const [d, own] of [[h1, 'vm1'], [h2, 'vm2']] as const) {
    await batch(d, [`RULE ADD ANY ${MAC[own]} IFACE ${own}`, `RULE ADD NOT ${MAC[own]} ${MAC.bcast} IFACE ${own}`]);
  }
  return { h1, h2 };
}

/** The link h1 to h2 under `key`, and the rules that send each VM's frames over it; returns once it is up both ways. */
async function connect(tb: Testbed, h1: Daemon, h2: Daemon, proto: string, key: string): Promise<void> {
  await batch(h2, [`LINK ADD h1 ${proto} ACCEPT - ${key}`, `RULE ADD ${MAC.vm2} NONE LINK h1`]);
  await batch(h1, [`LINK ADD h2 ${proto} DIAL ${formatHostPort({ host: tb.lanAddress.get('h2')!, port: PORT })} ${key}`, `RULE ADD ${MAC.vm1} NONE LINK h2`]);
  await linkUp(h1, 'h2');
  await linkUp(h2, 'h1');
}

/**
 * A 4 MiB TCP transfer from vm1 to vm2 arrives whole, nearly all of it carried in C at h1. Over a UDP link
 * (`fragments`: the IP fragments h1's kernel has made) also: no frame of it was fragmented on the LAN (the
 * SYNs' MSS is clamped to the path), its datagrams left a poll callback's worth at a time (GSO), and a
 * 1514-byte ICMP frame, which nothing clamps, still crosses, as one datagram in two fragments.
 */
async function transferChecked(tb: Testbed, h1: Daemon, fragments?: () => Promise<number>): Promise<void> {
  expect((await tb.ping('vm1', '10.201.0.2', 2)).received).toBe(2); // the flows are cached: the connection's SYNs come to C first
  const [c1, frag1, gso1] = [await carried(h1), await fragments?.(), await gso(h1)];
  const [lan1, link1] = [await tb.linkStats('h1', 'eth0'), await link(h1, 'h2')];
  const { sent, got } = await (await tb.transfer('vm1', 'vm2', '10.201.0.2', 4 << 20)).done;
  const [lan2, link2] = [await tb.linkStats('h1', 'eth0'), await link(h1, 'h2')];
  expect(sent).toMatch(/^4194304 [0-9a-f]{64}$/);
  expect(got).toBe(sent);
  // 4 MiB is about 2,900 full segments one way: nearly all of them, and the ACKs, crossed in C.
  expect((await carried(h1)) - c1).toBeGreaterThan(2500);
  if (!fragments) return;
  expect((await fragments()) - frag1!).toBe(0);
  // One datagram per frame, but they leave a poll callback's worth at a time (UDP GSO): h1's LAN device
  // counts each send as one packet (about 260 for 3,100 frames here; one by one it would be 3,100 or more).
  expect(lan2.tx - lan1.tx).toBeLessThan((link2.tx - link1.tx) / 3);
  // STATS? says so too: GSO is on, and its sends (each one of the LAN's packets) carried several datagrams each.
  const gso2 = await gso(h1);
  expect(gso2.on).toBe(1);
  expect(gso2.sends - gso1.sends).toBeLessThanOrEqual(lan2.tx - lan1.tx);
  expect(gso2.datagrams - gso1.datagrams).toBeGreaterThan(3 * (gso2.sends - gso1.sends));
  const r = await tb.ping('vm1', '10.201.0.2', 3, { interval: 0.05, size: 1472, dontFragment: true });
  expect(r.received).toBe(3);
  expect((await fragments()) - frag1!).toBe(2 * r.sent);
}

suite.each(['UDP', 'TCP'])(`the fast path over a %s link on a namespace testbed (${skip ?? 'root, ip, pcap'})`, (proto) => {
  let tb: Testbed;
  let h1: Daemon, h2: Daemon;
  /** Replies vm1 got to `count` echo requests to vm2. */
  const ping = async (count: number): Promise<number> => (await tb.ping('vm1', '10.201.0.2', count)).received;
  /** IPv4 fragments h1's kernel made: of datagrams larger than their route's MTU. */
  const fragmentsMade = async () => Number((await tb.ipCounters('h1'))['FragCreates']);

  beforeAll(async () => {
    tb = await Testbed.create();
    ({ h1, h2 } = await twoHosts(tb));
    await connect(tb, h1, h2, proto, randomBytes(32).toString('hex'));
  }, 60_000);
  afterAll(() => tb?.destroy(), 30_000);

  test('after its first frame a flow crosses in C, and every counter still matches what the VMs\' kernels counted', async () => {
    expect(await ping(2)).toBe(2); // ARP, and the flows' first frames, through JavaScript
    const before = {
      c1: await carried(h1),
      c2: await carried(h2),
      vm1: await tb.linkStats('vm1', 'eth0'),
      vm2: await tb.linkStats('vm2', 'eth0'),
      dev1: await device(h1, 'vm1'),
      dev2: await device(h2, 'vm2'),
      rule1: await ruleCount(h1, `${MAC.vm1} NONE LINK h2`),
      rule2: await ruleCount(h2, `ANY ${MAC.vm2} IFACE vm2`),
    };
    expect(await ping(200)).toBe(200);
    const after = {
      vm1: await tb.linkStats('vm1', 'eth0'),
      vm2: await tb.linkStats('vm2', 'eth0'),
      dev1: await device(h1, 'vm1'),
      dev2: await device(h2, 'vm2'),
    };
    // Both daemons carried (nearly) all 200 echo requests and 200 replies themselves, in C.
    expect((await carried(h1)) - before.c1).toBeGreaterThanOrEqual(390);
    expect((await carried(h2)) - before.c2).toBeGreaterThanOrEqual(390);
    // What each VM sent is what its daemon took in, and what each VM received is what its daemon sent it.
    const sent1 = after.vm1.tx - before.vm1.tx;
    expect(after.dev1.rx - before.dev1.rx).toBe(sent1);
    expect(after.dev2.tx - before.dev2.tx).toBe(after.vm2.rx - before.vm2.rx);
    expect(after.dev1.tx - before.dev1.tx).toBe(after.vm1.rx - before.vm1.rx);
    expect(sent1).toBeGreaterThanOrEqual(200);
    // Rules count the carried frames too: every frame vm1 sent went by its link rule, and reached vm2 by vm2's.
    expect((await ruleCount(h1, `${MAC.vm1} NONE LINK h2`)) - before.rule1).toBe(sent1);
    expect((await ruleCount(h2, `ANY ${MAC.vm2} IFACE vm2`)) - before.rule2).toBe(after.vm2.rx - before.vm2.rx);
  }, 60_000);

  test('VTTIF counts what the fast path carries: the pair\'s rate in INFER? is the rate vm1\'s kernel sent at', async () => {
    await ok(h1, 'VTTIF collector=h1');
    try {
      // Echo requests every 10 ms for 2 s; after the first, every one of them is carried in C.
      const pinging = ping(200);
      await new Promise((r) => setTimeout(r, 600));
      const t0 = performance.now();
      const sent0 = (await tb.linkStats('vm1', 'eth0')).tx;
      await new Promise((r) => setTimeout(r, 1000));
      const pair = (await ok(h1, 'INFER?')).data.find((l) => l.startsWith(`pair ${MAC.vm1} ${MAC.vm2} `));
      const kernelRate = ((await tb.linkStats('vm1', 'eth0')).tx - sent0) / ((performance.now() - t0) / 1000);
      expect(await pinging).toBeGreaterThanOrEqual(190);
      const rate = Number(/frames-per-s=([\d.]+)/.exec(pair ?? '')?.[1]);
      // Over VTTIF's 1 s window, against the kernel's count over about the same second: not 0 (the C path
      // uncounted), not twice (counted twice), whatever pace the shared cores allow ping.
      expect(kernelRate).toBeGreaterThan(20);
      expect(rate / kernelRate).toBeGreaterThan(0.6);
      expect(rate / kernelRate).toBeLessThan(1.4);
    } finally {
      await ok(h1, 'VTTIF collector=-');
    }
  }, 60_000);

  test('a frame the VM\'s device refuses in the fast path is counted, and said in the log once', async () => {
    expect(await ping(2)).toBe(2); // the flow vm1 → vm2 is cached at h2
    const before = await device(h2, 'vm2');
    const said = () => h2.log.split('\n').filter((l) => l.includes('iface vm2: the device refused')).length;
    const notes = said();
    await tb.exec('h2', ['ip', 'link', 'set', 'vm2', 'mtu', '1000']);
    try {
      // 1242-byte frames for a 1000-byte device: every one refused, by C.
      const r = await tb.ping('vm1', '10.201.0.2', 5, { interval: 0.05, size: 1200 });
      expect(r.received).toBe(0);
      expect(r.sent).toBeGreaterThanOrEqual(5);
      const after = await device(h2, 'vm2');
      expect(after.tx).toBe(before.tx);
      expect((await ok(h2, 'DEVICES?')).data.find((l) => l.startsWith('vm2 '))).toMatch(new RegExp(` errors=${r.sent}\\b`));
      expect(said() - notes).toBe(1);
      expect(h2.log).toMatch(/iface vm2: the device refused (a frame|\d frames): message too long/);
    } finally {
      await tb.exec('h2', ['ip', 'link', 'set', 'vm2', 'mtu', '1500']);
    }
    expect(await ping(2)).toBe(2);
  }, 60_000);

  test(`a TCP transfer between the VMs arrives whole${proto === 'UDP' ? ', with no frame of it fragmented on the LAN (the SYNs\' MSS is clamped to the path) and its datagrams sent in batches (GSO), while larger frames still cross, fragmented' : ''}`, async () => {
    await transferChecked(tb, h1, proto === 'UDP' ? fragmentsMade : undefined);
  }, 60_000);

  if (proto === 'UDP') {
    test('when one host\'s route to the other gets a smaller MTU, the next connection fits it: that host clamps the SYN-ACK it receives', async () => {
      await tb.exec('h1', ['ip', 'route', 'add', `${tb.lanAddress.get('h2')}/32`, 'dev', 'eth0', 'mtu', '1400']);
      try {
        // The fast path reads the path's MTU again after a second (or at once, when the kernel refuses a send as too big).
        await new Promise((r) => setTimeout(r, 1100));
        expect(await ping(2)).toBe(2);
        const frag1 = await fragmentsMade();
        const transfer = await tb.transfer('vm1', 'vm2', '10.201.0.2', 2 << 20);
        const { sent, got } = await transfer.done;
        expect(got).toBe(sent);
        // vm1's segments are as large as vm2's SYN-ACK allows: h2 clamped it for its own 1500-byte path, h1 again for 1400.
        expect((await fragmentsMade()) - frag1).toBe(0);
      } finally {
        await tb.exec('h1', ['ip', 'route', 'del', `${tb.lanAddress.get('h2')}/32`]);
      }
    }, 60_000);
  }

  test('a rule change flushes the cached flows: the next frame already goes where the new rules say', async () => {
    expect(await ping(3)).toBe(3);
    await batch(h1, [`RULE DELETE ${MAC.vm1} NONE LINK h2`]);
    expect(await ping(3)).toBe(0);
    await batch(h1, [`RULE ADD ${MAC.vm1} NONE LINK h2`]);
    expect(await ping(3)).toBe(3);
  }, 60_000);

  test('a link that comes back with a new session (and a new key) is carried by the fast path again', async () => {
    await batch(h1, [`RULE DELETE ${MAC.vm1} NONE LINK h2`, 'LINK DELETE h2']);
    await batch(h2, [`RULE DELETE ${MAC.vm2} NONE LINK h1`, 'LINK DELETE h1']);
    expect(await ping(2)).toBe(0);
    await connect(tb, h1, h2, proto, randomBytes(32).toString('hex'));
    const c1 = await carried(h1);
    expect(await ping(50)).toBe(50);
    expect((await carried(h1)) - c1).toBeGreaterThanOrEqual(90);
  }, 60_000);
});

suite(`the fast path over a UDP link on an IPv6 LAN (${skip ?? 'root, ip, pcap'})`, () => {
  let tb: Testbed;
  let h1: Daemon, h2: Daemon;
  beforeAll(async () => {
    tb = await Testbed.create();
    ({ h1, h2 } = await twoHosts(tb, { v6: true }));
    await connect(tb, h1, h2, 'UDP', randomBytes(32).toString('hex'));
  }, 60_000);
  afterAll(() => tb?.destroy(), 30_000);

  test('a TCP transfer between the VMs arrives whole, fitted to the IPv6 path (no fragments: the SYNs were clamped for its 20 more header bytes) and sent in segmented batches; a larger frame still crosses, fragmented', async () => {
    await transferChecked(tb, h1, async () => (await tb.ip6Counters('h1'))['Ip6FragCreates']!);
  }, 60_000);
});

suite(`a VM's pcap device that comes and goes, as QEMU's tap does (${skip ?? 'root, ip, pcap'})`, () => {
  let tb: Testbed;
  afterAll(() => tb?.destroy(), 30_000);
  const state = async (d: Daemon): Promise<string> => /device=(\w+)/.exec((await ok(d, 'DEVICES?')).data.find((l) => l.startsWith('vm1 '))!)![1]!;
  const becomes = (d: Daemon, want: string) => waitFor(`vm1's device to be ${want}\n${d.log}`, async () => ((await state(d)) === want ? true : undefined));
  const linkDown = (d: Daemon) => read(d, 'STATS?', 'drops.linkDown ', /(\d+)$/);

  test('missing at start, it is waited for; once there, and again after it was gone, it is captured, on the fast path; meanwhile frames for it are link-down drops', async () => {
    tb = await Testbed.create();
    await tb.lan(['h1', 'h2']);
    await tb.namespace('vm1'); // the VM, not started: no device on h1 yet
    await tb.vm('h2', 'vm2', 'vm2', MAC.vm2, '10.201.0.2');
    const [h1, h2] = await Promise.all([tb.vnetd('h1', 'h1', PORT, ['vm1=pcap:vm1']), tb.vnetd('h2', 'h2', PORT, ['vm2=pcap:vm2'])]);
    expect(h1.log).toMatch(/iface vm1: device vm1 does not exist \(yet\): frames for it are dropped until it does/);
    expect(await state(h1)).toBe('missing');
    for (const [d, own] of [[h1, 'vm1'], [h2, 'vm2']] as const) {
      await batch(d, [`RULE ADD ANY ${MAC[own]} IFACE ${own}`, `RULE ADD NOT ${MAC[own]} ${MAC.bcast} IFACE ${own}`]);
    }
    await connect(tb, h1, h2, 'UDP', randomBytes(32).toString('hex'));
    const drops = await linkDown(h1);
    expect((await tb.ping('vm2', '10.201.0.1', 2)).received).toBe(0);
    expect(await linkDown(h1)).toBeGreaterThan(drops); // vm2's ARP requests, with nowhere to go on h1

    for (const round of ['started', 'restarted']) {
      await tb.plug('h1', 'vm1', 'vm1', MAC.vm1, '10.201.0.1');
      await becomes(h1, 'open');
      const c1 = await carried(h1);
      expect((await tb.ping('vm1', '10.201.0.2', 30)).received).toBe(30);
      // Past the flows' first frames, the echoes crossed h1 in C both ways: the new capture is on the fast path.
      expect((await carried(h1)) - c1).toBeGreaterThanOrEqual(50);
      if (round === 'restarted') break;
      await tb.unplug('h1', 'vm1');
      await becomes(h1, 'missing');
      expect(h1.log).toMatch(/iface vm1: device vm1 is gone \(its VM stopped, or the device was deleted or renamed\)/);
      expect((await tb.ping('vm2', '10.201.0.1', 2)).received).toBe(0);
    }
    expect(h1.log.match(/device vm1 is there: capturing it/g)).toHaveLength(2);
  }, 90_000);
});
