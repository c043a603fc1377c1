import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { DEVICE_CHECK_MS, listCapturable, pcapBinding, PcapInterface } from '../../daemon/interfaces/pcap.js';
import { netnsUnavailable, Testbed } from '../netns/testbed.js';

/**
 * The pcap interface on a real veth pair: one end here, the other in a
 * namespace of its own standing in for a VM; and on a bridge with such a
 * veth for its port. (test/qemu/guests.test.ts has one on a tap, with a
 * real guest behind it.) Needs root and the built binding; skips with the
 * reason otherwise.
 */

const lib = pcapBinding();
const skip = netnsUnavailable() ?? (typeof lib === 'string' ? lib : null);
const suite = skip ? describe.skip : describe;
if (skip) console.warn(`pcap interface tests skipped: ${skip}`);

const VM_MAC = '02:00:00:00:0a:01';
const mac = (s: string) => Buffer.from(s.replace(/:/g, ''), 'hex');
const probe = (n: number): Buffer => Buffer.concat([mac(VM_MAC), mac('02:00:00:00:0a:99'), Buffer.from([0x88, 0xb5]), Buffer.alloc(46, n)]);

async function until(what: string, ok: () => boolean | Promise<boolean>, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await ok())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

suite(`pcap interface (${skip ?? 'veth in a namespace'})`, () => {
  let tb: Testbed;
  let dev: string;
  const opened: PcapInterface[] = [];
  const open = async (params: string) => {
    const i = PcapInterface.parse('vm', params);
    await i.open();
    opened.push(i);
    const got: Buffer[] = [];
    i.on('frame', (f: Buffer) => got.push(f));
    return { i, got };
  };
  /** Five ICMP echo requests from the "VM" to a neighbour that never answers: five frames, nothing else. */
  const pingOut = () => tb.exec('vm', ['ping', '-c', '5', '-i', '0.05', '-W', '0.1', '10.202.0.2']).catch(() => undefined);

  beforeAll(async () => {
    tb = await Testbed.create();
    dev = await tb.rootVeth('vm');
    await tb.exec('vm', ['ip', 'link', 'set', 'eth0', 'address', VM_MAC]);
    await tb.exec('vm', ['ip', 'addr', 'add', '10.202.0.1/24', 'dev', 'eth0']);
    await tb.exec('vm', ['ip', 'neigh', 'replace', '10.202.0.2', 'lladdr', '02:00:00:00:0a:99', 'dev', 'eth0', 'nud', 'permanent']);
  }, 30_000);
  afterEach(async () => {
    for (const i of opened.splice(0)) await i.close();
  });
  afterAll(() => tb?.destroy(), 30_000);

  test('captures what the VM sends, every frame, and injects frames the VM receives', async () => {
    const { i, got } = await open(dev);
    await pingOut();
    await until('five echo requests', () => got.length >= 5);
    expect(got.length).toBe(5);
    for (const f of got) {
      expect(f.subarray(6, 12).equals(mac(VM_MAC))).toBe(true);
      expect(f.readUInt16BE(12)).toBe(0x0800);
    }
    const before = await tb.linkStats('vm', 'eth0');
    for (let n = 0; n < 3; n++) expect(i.send(probe(n))).toBe(true);
    await until('three frames at the VM', async () => (await tb.linkStats('vm', 'eth0')).rx >= before.rx + 3);
    expect(i.counters).toMatchObject({ rxFrames: 5, txFrames: 3, errors: 0 });
  });

  test('a frame the device refuses is counted and said once, and the frames around it still go', async () => {
    const { i } = await open(dev);
    const notes: string[] = [];
    i.on('note', (line: string) => notes.push(line));
    const before = await tb.linkStats('vm', 'eth0');
    // Over the veth's 1500-byte MTU, between two that fit: one sendmmsg for all three.
    const jumbo = Buffer.concat([probe(7).subarray(0, 14), Buffer.alloc(3000)]);
    expect(i.send(probe(1))).toBe(true);
    expect(i.send(jumbo)).toBe(true);
    expect(i.send(probe(2))).toBe(true);
    await until('two frames at the VM', async () => (await tb.linkStats('vm', 'eth0')).rx >= before.rx + 2);
    expect(i.counters).toMatchObject({ txFrames: 2, txBytes: 2 * probe(0).length, errors: 1 });
    i.send(jumbo);
    await new Promise((r) => setImmediate(r));
    expect(i.counters.errors).toBe(2);
    expect(notes).toEqual([`the device refused a frame: ${i.lastError}`]);
    expect(i.lastError).toMatch(/too long/i);
  });

  test('never captures frames sent out of the device: its own, another injector\'s, or the host\'s', async () => {
    const { i, got } = await open(dev);
    const { i: other, got: otherGot } = await open(dev);
    const before = await tb.linkStats('vm', 'eth0');
    for (let n = 0; n < 10; n++) {
      i.send(probe(n));
      other.send(probe(100 + n));
    }
    await until('twenty frames at the VM', async () => (await tb.linkStats('vm', 'eth0')).rx >= before.rx + 20);
    // Both handles are live: a frame from the VM still reaches both.
    await pingOut();
    await until('the echo requests on both', () => got.length >= 5 && otherGot.length >= 5);
    expect([...got, ...otherGot].every((f) => f.readUInt16BE(12) === 0x0800)).toBe(true);
  });

  test('a device set down and up again is captured again', async () => {
    const { i, got } = await open(dev);
    execFileSync('ip', ['link', 'set', dev, 'down']);
    execFileSync('ip', ['link', 'set', dev, 'up']);
    await pingOut();
    await until('five echo requests after the device came up again', () => got.length >= 5);
    expect(i.present).toBe(true);
  });

  test('a device renamed is gone, as one deleted is, and the device that next has the configured name is captured', async () => {
    const name = await tb.rootVeth('vm3');
    const renamed = `${name}r`;
    await tb.exec('vm3', ['ip', 'addr', 'add', '10.203.0.1/24', 'dev', 'eth0']);
    await tb.exec('vm3', ['ip', 'neigh', 'replace', '10.203.0.2', 'lladdr', '02:00:00:00:0a:99', 'dev', 'eth0', 'nud', 'permanent']);
    const rename = (from: string, to: string) => {
      // A device is renamed only while down.
      execFileSync('ip', ['link', 'set', from, 'down']);
      execFileSync('ip', ['link', 'set', from, 'name', to]);
      execFileSync('ip', ['link', 'set', to, 'up']);
    };
    const { i, got } = await open(name);
    const notes: string[] = [];
    const present: boolean[] = [];
    i.on('note', (l: string) => notes.push(l));
    i.on('device', (p: boolean) => present.push(p));
    rename(name, renamed);
    try {
      await until('the renamed device to be let go', () => !i.present);
      expect(notes).toEqual([`device ${name} is gone (its VM stopped, or the device was deleted or renamed): frames for it are dropped until a device of that name is back`]);
      expect(present).toEqual([false]);
    } finally {
      rename(renamed, name);
    }
    await until('the device under its configured name again', () => i.present);
    expect(notes.slice(1)).toEqual([`device ${name} is there: capturing it`]);
    expect(present).toEqual([false, true]);
    await tb.exec('vm3', ['ping', '-c', '5', '-i', '0.05', '-W', '0.1', '10.203.0.2']).catch(() => undefined);
    await until('five echo requests', () => got.length >= 5);
  });

  test('a device opened by an alternative name stays captured', async () => {
    const name = await tb.rootVeth('vm4');
    const alt = `${name}a`;
    execFileSync('ip', ['link', 'property', 'add', 'dev', name, 'altname', alt]);
    const { i } = await open(alt);
    const notes: string[] = [];
    i.on('note', (l: string) => notes.push(l));
    // Checks that asked the bound device for its name would have let it go at the first.
    await new Promise((r) => setTimeout(r, 2.5 * DEVICE_CHECK_MS));
    expect(notes).toEqual([]);
    expect(i.present).toBe(true);
  });

  test('a BPF filter narrows what is captured', async () => {
    const { got: arpOnly } = await open(`${dev},filter=arp`);
    const { got: icmp } = await open(`${dev},filter=icmp and ether src ${VM_MAC}`);
    await pingOut();
    await until('the echo requests', () => icmp.length >= 5);
    expect(arpOnly).toEqual([]);
  });

  test('a device that is not there is waited for; one there that cannot be captured is said once', async () => {
    const name = `tun${tb.prefix.slice(-6)}`;
    const i = PcapInterface.parse('vm', name);
    opened.push(i);
    const notes: string[] = [];
    i.on('note', (l: string) => notes.push(l));
    await i.open();
    expect(i.present).toBe(false);
    expect(notes).toEqual([`device ${name} does not exist (yet): frames for it are dropped until it does (DEVICES? lists the devices this machine has)`]);
    // A tun device: there but down, then up but with no Ethernet frames; either way the interface stays without it.
    execFileSync('ip', ['tuntap', 'add', 'dev', name, 'mode', 'tun']);
    try {
      await until('the first refusal', () => notes.length > 1);
      execFileSync('ip', ['link', 'set', name, 'up']);
      await until('the second refusal', () => notes.length > 2);
      await new Promise((r) => setTimeout(r, 2 * DEVICE_CHECK_MS)); // two more checks, which say nothing new
      expect(notes.slice(1)).toEqual([
        `device ${name} is not up: frames for it are dropped until it is`,
        `device ${name} is there, but cannot be captured: ${name}: not an Ethernet device (vnetd carries Ethernet frames)`,
      ]);
      expect(i.present).toBe(false);
    } finally {
      execFileSync('ip', ['link', 'del', name]);
    }
  });

  test('bad filters are refused with libpcap\'s reason', async () => {
    await expect(PcapInterface.parse('vm', `${dev},filter=port banana`).open()).rejects.toThrow(`interface vm (pcap ${dev}: bad filter:`);
    expect(() => PcapInterface.parse('vm', 'eth0,snaplen=9')).toThrow("pcap: after the device only filter=BPF may follow, not 'snaplen=9'");
    expect(() => PcapInterface.parse('vm', 'eth0,filter=')).toThrow('filter= is empty');
    expect(() => PcapInterface.parse('vm', 'a b')).toThrow("'a b' is not a network interface name");
  });

  test('on a bridge: captures what its port brings in, and what it injects leaves by the port', async () => {
    const bridge = await tb.rootBridge('vm2');
    const vm2 = '02:00:00:00:0b:01';
    await tb.exec('vm2', ['ip', 'link', 'set', 'eth0', 'address', vm2]);
    await tb.exec('vm2', ['ip', 'addr', 'add', '10.204.0.1/24', 'dev', 'eth0']);
    await tb.exec('vm2', ['ip', 'neigh', 'replace', '10.204.0.2', 'lladdr', '02:00:00:00:0b:99', 'dev', 'eth0', 'nud', 'permanent']);
    const { i, got } = await open(bridge);
    await tb.exec('vm2', ['ping', '-c', '5', '-i', '0.05', '-W', '0.1', '10.204.0.2']).catch(() => undefined);
    await until('five echo requests', () => got.length >= 5);
    expect(got.length).toBe(5);
    expect(got.every((f) => f.subarray(6, 12).equals(mac(vm2)) && f.readUInt16BE(12) === 0x0800)).toBe(true);
    // The bridge learned vm2's address from those: frames for it leave by its port only.
    const before = await tb.linkStats('vm2', 'eth0');
    for (let n = 0; n < 3; n++) expect(i.send(Buffer.concat([mac(vm2), probe(n).subarray(6)]))).toBe(true);
    await until('three frames at vm2', async () => (await tb.linkStats('vm2', 'eth0')).rx >= before.rx + 3);
    expect(i.counters).toMatchObject({ rxFrames: 5, txFrames: 3, errors: 0 });
  });

  test('listCapturable names Ethernet devices that can be opened, not lo or pseudo-devices', () => {
    const names = listCapturable().map((d) => d.name);
    expect(names).toContain(dev);
    expect(names).not.toContain('lo');
    expect(names).not.toContain('any');
    expect(listCapturable().find((d) => d.name === dev)!.description).toBe('up');
  });
});

(typeof lib === 'string' ? describe.skip : describe)('pathRoom (the native addon)', () => {
  test('is the route\'s MTU less the IP and UDP headers, for IPv4, IPv6 and v4-mapped addresses; 0 for what is not an address', () => {
    const binding = lib as Exclude<typeof lib, string>;
    const mtu = Number(readFileSync('/sys/class/net/lo/mtu', 'utf8'));
    // An IPv4 route's MTU is at most 65535: the total length field has 16 bits.
    expect(binding.pathRoom('127.0.0.1')).toBe(Math.min(mtu, 65535) - 20 - 8);
    expect(binding.pathRoom('::ffff:127.0.0.1')).toBe(Math.min(mtu, 65535) - 20 - 8);
    expect(binding.pathRoom('::1')).toBe(mtu - 40 - 8);
    expect(binding.pathRoom('not-an-address')).toBe(0);
  });
});
