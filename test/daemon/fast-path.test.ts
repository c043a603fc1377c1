import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import fs from 'node:fs';
import type net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { pcapBinding } from '../../daemon/interfaces/pcap.js';
import { QemuStreamInterface } from '../../daemon/interfaces/qemu-stream.js';
import { QemuUdpInterface } from '../../daemon/interfaces/qemu-udp.js';
import { withLength } from '../../daemon/links/framing.js';
import { DATA } from '../../daemon/links/wire.js';
import { Vnetd } from '../../daemon/vnetd-core.js';
import { commitLines } from '../support/commit-lines.js';
import { batch, linkUp, ok, startVnetd, stopVnetd, type Daemon } from '../netns/testbed.js';
import { waitFor } from '../support/vnetd-process.js';
import { freePort } from '../support/sshd.js';
import { ROOT } from '../support/vnetc.js';
import { collect, connect, prefixed, syntheticVm } from '../support/synthetic-vm.js';
import { seal, tcpDial, udpDial } from '../support/link-peer.js';
import { buildGsoSender, gsoSender, type GsoSender } from '../support/udp-gso.js';

/**
 * vnetd with and without its fast path (`--no-fast-path`), in one process:
 * two daemons, a QEMU interface each (datagram or stream) and a link
 * between them. Frames cross either way, in order; with the fast path a
 * flow's frames after the first few pass through C (the QEMU socket or the
 * stream connection it was handed, and the link's UDP socket or the TCP
 * connection it was handed), and STATS? says so.
 * test/netns/fast-path.test.ts has the fast path carry real packets.
 */
const built = typeof pcapBinding() !== 'string';
if (!built) process.stderr.write('fast-path.test: the pcap addon (vnetd-pcap) is not built; only --no-fast-path is tested\n');

const MAC = ['020000000001', '020000000002'] as const;
const colon = (m: string) => m.match(/../g)!.join(':');
const frame = (dst: string, src: string, n: number): Buffer => {
  const f = Buffer.alloc(100, n);
  Buffer.from(dst, 'hex').copy(f, 0);
  Buffer.from(src, 'hex').copy(f, 6);
  f.writeUInt16BE(0x88b5, 12);
  return f;
};

(built ? test : test.skip)('an addon call with the wrong number of arguments is refused, naming the call', () => {
  const lib = pcapBinding() as unknown as Record<string, (...a: unknown[]) => unknown>;
  expect(() => lib.flush!()).toThrow('flush(dp)');
  expect(() => lib.tcpQueued!({}, 1, 2)).toThrow('tcpQueued(dp, port)');
  expect(() => lib.streamAttach!({}, 1)).toThrow('streamAttach(dp, port, fd, pending: Buffer)');
  expect(() => lib.flush!({})).toThrow('not a datapath handle');
});

let dir: string;
beforeAll(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vnetd-fast-path-'))));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** A VM on a QEMU socket of either kind: the interface its daemon gets, and the VM's own side once that is open. */
interface VmSide {
  send(f: Buffer): void;
  got: Buffer[];
  close(): void;
}
const attachments = {
  'qemu-udp': async () => {
    const vm = await syntheticVm();
    const port = await freePort();
    const side: VmSide = { send: (f) => vm.sock.send(f, port, '127.0.0.1'), got: vm.got, close: () => vm.sock.close() };
    return { iface: QemuUdpInterface.parse('vm0', `listen=127.0.0.1:${port},peer=127.0.0.1:${vm.sock.address().port}`), connect: async () => side };
  },
  'qemu-stream': async () => {
    const port = await freePort();
    const connectVm = async (): Promise<VmSide> => {
      const s = await connect(port);
      return { send: (f) => s.write(prefixed(f)), got: collect(s), close: () => s.destroy() };
    };
    return { iface: QemuStreamInterface.parse('vm0', `listen=127.0.0.1:${port}`), connect: connectVm };
  },
};

const cases = (['qemu-udp', 'qemu-stream'] as const).flatMap((kind) => [
  [kind, 'TCP', 'on'],
  [kind, 'UDP', 'on'],
  [kind, 'TCP', 'off'],
  [kind, 'UDP', 'off'],
] as const);

test.each(built ? cases : cases.filter(([, , how]) => how === 'off'))('%s interfaces, a %s link, fast path %s: frames cross both ways, and STATS? says what the fast path holds', async (kind, proto, how) => {
  const fastPath = how === 'on';
  const attached = await Promise.all([attachments[kind](), attachments[kind]()]);
  const vms: VmSide[] = [];
  const daemons = [0, 1].map((i) => new Vnetd({
    machine: `h${i + 1}`, port: 0, listen: '127.0.0.1', stateDir: path.join(dir, `${kind}-${proto}-${fastPath}-h${i + 1}`),
    interfaces: [attached[i]!.iface],
    log: () => {},
    fastPath,
  }));
  const [h1, h2] = daemons as [Vnetd, Vnetd];
  const stats = (d: Vnetd) => [...d.query('stats?')].filter((l) => l.startsWith('fast-path.'));
  try {
    for (const d of daemons) await d.start();
    for (const a of attached) vms.push(await a.connect());
    const key = 'cd'.repeat(32);
    await commitLines(h2, [`LINK ADD h1 ${proto} ACCEPT - ${key}`, `RULE ADD ANY ${colon(MAC[0])} LINK h1`, `RULE ADD ANY ${colon(MAC[1])} IFACE vm0`]);
    await commitLines(h1, [`LINK ADD h2 ${proto} DIAL 127.0.0.1:${h2.links.port} ${key}`, `RULE ADD ANY ${colon(MAC[1])} LINK h2`, `RULE ADD ANY ${colon(MAC[0])} IFACE vm0`]);
    while (!h1.links.isUp('h2') || !h2.links.isUp('h1')) await new Promise((r) => setTimeout(r, 10));
    // A TCP connection is handed over on a later turn than the handshake's.
    await new Promise((r) => setTimeout(r, 20));
    const burst = async (from: number, to: number) => {
      for (let n = from; n <= to; n++) {
        vms[0]!.send(frame(MAC[1], MAC[0], n));
        vms[1]!.send(frame(MAC[0], MAC[1], n));
      }
      while (vms[0]!.got.length < to || vms[1]!.got.length < to) await new Promise((r) => setTimeout(r, 5));
    };
    const carried = (d: Vnetd) => Number(stats(d).find((l) => l.startsWith('fast-path.frames '))?.split(' ')[1]);
    // The flows' first frames go through JavaScript, later ones through C once they are cached: none overtakes another.
    await burst(1, 20);
    for (const vm of vms) expect(vm.got.map((f) => f[20])).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    // The link and the QEMU interface are both fast-path ports; now that the flows are cached, C carries every frame.
    expect(stats(h1).filter((l) => l.startsWith('fast-path.ports'))).toEqual(fastPath ? ['fast-path.ports 2'] : []);
    expect(stats(h2).filter((l) => l.startsWith('fast-path.ports'))).toEqual(fastPath ? ['fast-path.ports 2'] : []);
    const before = daemons.map(carried);
    await burst(21, 40);
    for (const vm of vms) expect(vm.got.map((f) => f[20])).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));
    if (fastPath) expect(daemons.map(carried).map((n, i) => n - before[i]!)).toEqual([40, 40]);
    else expect(stats(h1)).toEqual([]);
    // The interface's own counters include what C carried.
    expect([...h1.query('devices?')][0]).toMatch(new RegExp(`^vm0 ${kind}:\\S+ rx=40/4000 tx=40/4000 errors=0( vm=up)?$`));
  } finally {
    for (const d of daemons) await d.stop();
    for (const v of vms) v.close();
  }
});

(built ? test : test.skip)('a QEMU stream the fast path reads: a VM that stops reading loses only what overflows (counted), garbage or a close ends the connection as it would in JavaScript, and the next connection is handed over again', async () => {
  const ports = [await freePort(), await freePort()];
  const log: string[] = [];
  const d = new Vnetd({
    machine: 'h1', port: 0, listen: '127.0.0.1', stateDir: path.join(dir, 'stream-lifecycle'),
    interfaces: ports.map((p, i) => QemuStreamInterface.parse(`vm${i}`, `listen=127.0.0.1:${p}`)),
    log: (l) => log.push(l),
  });
  const stat = (name: string) => Number([...d.query('stats?')].find((l) => l.startsWith(`${name} `))!.split(' ')[1]);
  const device = (name: string) => [...d.query('devices?')].find((l) => l.startsWith(`${name} `))!;
  const until = (what: string, ok: () => boolean) => waitFor(what, () => ok() || undefined, 5000);
  const open: net.Socket[] = [];
  const vm = async (i: number) => {
    const s = await connect(ports[i]!);
    open.push(s);
    return { s, got: collect(s) };
  };
  /** `n` frames each way between the two VMs, all of them back in order: how many of them C carried. */
  const exchange = async (a: { s: net.Socket; got: Buffer[] }, b: { s: net.Socket; got: Buffer[] }, n: number): Promise<number> => {
    const carried = stat('fast-path.frames');
    const [ga, gb] = [a.got.length, b.got.length];
    for (let k = 1; k <= n; k++) {
      a.s.write(prefixed(frame(MAC[1], MAC[0], k)));
      b.s.write(prefixed(frame(MAC[0], MAC[1], k)));
    }
    await until('the frames', () => a.got.length === ga + n && b.got.length === gb + n);
    expect(a.got.slice(ga).map((f) => f[20])).toEqual(Array.from({ length: n }, (_, k) => k + 1));
    expect(b.got.slice(gb).map((f) => f[20])).toEqual(Array.from({ length: n }, (_, k) => k + 1));
    return stat('fast-path.frames') - carried;
  };
  try {
    await d.start();
    await commitLines(d, [`RULE ADD ANY ${colon(MAC[0])} IFACE vm0`, `RULE ADD ANY ${colon(MAC[1])} IFACE vm1`]);
    let a = await vm(0);
    const b = await vm(1);
    await until('both streams on the fast path', () => stat('fast-path.ports') === 2);
    // The first frames cache the flows (a burst read at once goes through JavaScript whole); then C carries all.
    await exchange(a, b, 2);
    expect(await exchange(a, b, 20)).toBe(40);

    // A VM that stops reading: once the kernel holds all it will, C queues up to 1 MiB, then drops and counts;
    // nothing else stops. 24 MB is more than both kernels' buffers and the queue together.
    b.s.pause();
    const bulk = Buffer.alloc(1514, 0xee);
    frame(MAC[1], MAC[0], 0).copy(bulk, 0, 0, 14);
    const record = prefixed(bulk);
    for (let k = 0; k < 16_000; k++) a.s.write(record);
    await until('vm1 to drop frames it does not read', () => Number(/ errors=(\d+)/.exec(device('vm1'))![1]) > 0);
    b.s.resume();
    for (let seen = -1; seen !== b.got.length; ) {
      seen = b.got.length;
      await new Promise((r) => setTimeout(r, 300));
    }
    const dropped = Number(/ errors=(\d+)/.exec(device('vm1'))![1]);
    const bulkGot = b.got.filter((f) => f[20] === 0xee).length;
    // What was sent to vm1 and not dropped reached it, whole and in order; and the flows go on as before.
    expect(bulkGot + dropped).toBe(16_000);
    expect(b.got.filter((f) => f[20] === 0xee).every((f) => f.equals(bulk))).toBe(true);
    expect(await exchange(a, b, 20)).toBe(40);

    // A length no QEMU sends, read by C: the connection closes, counted and said as JavaScript says it.
    for (const [bad, said] of [[prefixed(Buffer.alloc(5)), 'a length of 5'], [Buffer.from([0, 1, 0x11, 0x70]), 'a length over 65535'], [Buffer.alloc(4), 'a length of 0']] as const) {
      const errors = Number(/ errors=(\d+)/.exec(device('vm0'))![1]);
      a.s.write(bad);
      await until(`vm0 to drop the connection after ${said}`, () => / vm=down$/.test(device('vm0')));
      expect(log).toContain(`iface vm0: QEMU sent ${said}, not a frame: closed the connection; waiting for QEMU to connect again`);
      expect(device('vm0')).toContain(` errors=${errors + 1} `);
      expect(stat('fast-path.ports')).toBe(1);
      // The next connection is taken over again, and its flows cached again.
      a = await vm(0);
      await until('vm0 back on the fast path', () => stat('fast-path.ports') === 2);
      await exchange(a, b, 2);
      expect(await exchange(a, b, 10)).toBe(20);
    }
    // QEMU going away, seen by C.
    a.s.end();
    await until('vm0 to see QEMU go', () => / vm=down$/.test(device('vm0')));
    expect(log).toContain('iface vm0: QEMU closed the connection; waiting for QEMU to connect again');
    // A reset, seen by C, is said as the reset it is.
    a = await vm(0);
    await until('vm0 back on the fast path', () => stat('fast-path.ports') === 2);
    a.s.resetAndDestroy();
    await until('vm0 to see the reset', () => / vm=down$/.test(device('vm0')));
    expect(log.filter((l) => l.startsWith('iface vm0: the connection failed'))).toEqual([
      'iface vm0: the connection failed: Connection reset by peer; waiting for QEMU to connect again',
    ]);
  } finally {
    await d.stop();
    for (const s of open) s.destroy();
  }
});

/** A daemon (state in `name`) whose one interface is a QEMU datagram NIC, played by `vm`. */
async function withOneVm(name: string): Promise<{ vm: Awaited<ReturnType<typeof syntheticVm>>; d: Vnetd }> {
  const vm = await syntheticVm();
  const vmPort = await freePort();
  const d = new Vnetd({
    machine: 'h1', port: 0, listen: '127.0.0.1', stateDir: path.join(dir, name),
    interfaces: [QemuUdpInterface.parse('vm0', `listen=127.0.0.1:${vmPort},peer=127.0.0.1:${vm.sock.address().port}`)],
    log: () => {},
  });
  return { vm, d };
}

(built ? test : test.skip)('authentic records whose frames cannot be forwarded, opened by C, are malformed drops and the links carry on: an empty frame as the first record of a UDP session, a TCP batch of no frames, one of an empty and a short frame', async () => {
  const { vm, d } = await withOneVm('hostile-records');
  const stat = (name: string) => Number([...d.query('stats?')].find((l) => l.startsWith(`${name} `))!.split(' ')[1]);
  const peerSock = dgram.createSocket('udp4');
  await new Promise<void>((r) => peerSock.bind(0, '127.0.0.1', () => r()));
  let tcp: net.Socket | undefined;
  try {
    await d.start();
    const [ku, kt] = [randomBytes(32), randomBytes(32)];
    const lines = [`LINK ADD pu UDP ACCEPT - ${ku.toString('hex')}`, `LINK ADD pt TCP ACCEPT - ${kt.toString('hex')}`, `RULE ADD ANY ${colon(MAC[0])} IFACE vm0`];
    await commitLines(d, lines);
    const u = await udpDial(peerSock, '127.0.0.1', d.links.port, ku, { self: 'pu', peer: 'h1', mode: 'encrypt' });
    const t = await tcpDial('127.0.0.1', d.links.port, kt, { self: 'pt', peer: 'h1', mode: 'encrypt' });
    tcp = t.sock;
    // vm0, the UDP link, and the TCP connection once JavaScript has handed it over.
    await waitFor('the TCP link to be handed to the fast path', () => stat('fast-path.ports') >= 3 || undefined, 5000);
    const good = frame(MAC[0], MAC[1], 7);
    const short = good.subarray(0, 13);
    const entries = (...frames: Buffer[]) => Buffer.concat(frames.flatMap((f) => [Buffer.from([f.length >> 8, f.length & 0xff]), f]));
    const udp = (seq: number, payload: Buffer) => peerSock.send(seal(u.d2a, u.tag, 'encrypt', DATA, seq, payload), d.links.port, '127.0.0.1');
    const overTcp = (seq: number, payload: Buffer) => t.sock.write(withLength(seal(t.keys.d2a, t.keys.tag, 'encrypt', DATA, seq, payload)));
    udp(0, Buffer.alloc(0));
    udp(1, short);
    overTcp(0, Buffer.alloc(0));
    overTcp(1, entries(Buffer.alloc(0), short));
    // Then a frame each way that does reach the VM: both sessions are still good.
    udp(2, good);
    overTcp(2, entries(good));
    await waitFor('2 frames to reach the VM', () => vm.got.length >= 2 || undefined, 5000);
    expect(vm.got.every((f) => f.equals(good))).toBe(true);
    // PROTOCOL.md: a frame shorter than 14 bytes is a malformed drop; a batch of no frames carries nothing, and is no error.
    expect(stat('drops.malformed')).toBe(4);
    for (const l of d.query('links?')) expect(l).toMatch(/ up .* rejected=0 replayed=0$/);
  } finally {
    await d.stop();
    tcp?.destroy();
    peerSock.close();
    vm.sock.close();
  }
});

(built ? test : test.skip)('a UDP link\'s records joined by GRO into one receive are opened one by one: the good ones reach the VM in order, a forged one among them is rejected, a shorter last one is its own record', async () => {
  const { vm, d } = await withOneVm('gro-records');
  const peerSock = dgram.createSocket('udp4');
  await new Promise<void>((r) => peerSock.bind(0, '127.0.0.1', () => r()));
  let gso: GsoSender | undefined;
  try {
    await d.start();
    gso = gsoSender(buildGsoSender(dir), peerSock, '127.0.0.1', d.links.port);
    const ku = randomBytes(32);
    const lines = [`LINK ADD pu UDP ACCEPT - ${ku.toString('hex')}`, `RULE ADD ANY ${colon(MAC[0])} IFACE vm0`];
    await commitLines(d, lines);
    const u = await udpDial(peerSock, '127.0.0.1', d.links.port, ku, { self: 'pu', peer: 'h1', mode: 'encrypt' });
    const record = (seq: number, f: Buffer) => seal(u.d2a, u.tag, 'encrypt', DATA, seq, f);
    const links = () => [...d.query('links?')].join('\n');
    // Seven records of one length, the fourth forged (its tag is wrong), and a shorter eighth: one send, one receive.
    const frames = [1, 2, 3, 4, 5, 6, 7].map((n) => frame(MAC[0], MAC[1], n));
    const records = frames.map((f, i) => record(i, f));
    records[3]![records[3]!.length - 1]! ^= 1;
    const last = frame(MAC[0], MAC[1], 8).subarray(0, 60);
    records.push(record(7, last));
    expect(await gso.send(records[0]!.length, Buffer.concat(records))).toBe(0);
    await waitFor('7 frames to reach the VM', () => vm.got.length >= 7 || undefined, 5000);
    expect(vm.got).toEqual([...frames.filter((_, i) => i !== 3), last]);
    expect(links()).toMatch(/ up .* rejected=1 replayed=0$/);
    // The session goes on: a frame on its own after them arrives too.
    peerSock.send(record(8, frame(MAC[0], MAC[1], 9)), d.links.port, '127.0.0.1');
    await waitFor('the frame after the joined ones to reach the VM', () => vm.got.length >= 8 || undefined, 5000);
    expect(vm.got[7]).toEqual(frame(MAC[0], MAC[1], 9));
  } finally {
    await gso?.close();
    await d.stop();
    peerSock.close();
    vm.sock.close();
  }
});

/**
 * The kernel refusing segmented UDP sends (EIO, or EINVAL for a segment the
 * path still takes), which this machine's kernel cannot be made to do: two
 * vnetd processes, h1 run with test/support/refuse-udp-gso.c preloaded, or
 * as it is, the control.
 */
const shim = (): string => {
  const so = path.join(dir, 'refuse-udp-gso.so');
  if (fs.existsSync(so)) return so;
  const cc = spawnSync('cc', ['-shared', '-fPIC', '-O2', '-o', so, path.join(ROOT, 'test', 'support', 'refuse-udp-gso.c'), '-ldl'], { encoding: 'utf8' });
  if (cc.status !== 0) throw new Error(`cannot build the test's sendmsg shim with cc (apt-get install gcc): ${cc.stderr ?? cc.error?.message}`);
  return so;
};

const kernels = ['refuses (EIO)', 'refuses (EINVAL)', 'allows'] as const;
(built ? test.each(kernels) : test.skip.each(kernels))('where the kernel %s segmented UDP sends, every frame of a burst over a UDP link arrives in order, and STATS? says how they left', async (kernel) => {
  const refuses = kernel !== 'allows';
  const vms = await Promise.all([syntheticVm(), syntheticVm()]);
  const daemons: Daemon[] = [];
  try {
    const ports = [await freePort(), await freePort()];
    const linkPorts = [await freePort(), await freePort()];
    for (const i of [0, 1]) {
      const machine = `h${i + 1}`;
      const state = fs.mkdtempSync(path.join(dir, `gso-${machine}-`));
      const prefix = refuses && i === 0 ? ['env', `LD_PRELOAD=${[process.env['LD_PRELOAD'], shim()].filter(Boolean).join(':')}`, `REFUSE_UDP_GSO=${kernel.includes('EINVAL') ? 'EINVAL' : 'EIO'}`] : [];
      daemons.push(await startVnetd({ machine, port: linkPorts[i]!, dir: state, log: '' }, ['--iface', `vm0=qemu-udp:listen=127.0.0.1:${ports[i]},peer=127.0.0.1:${vms[i]!.sock.address().port}`], { prefix }));
    }
    const [h1, h2] = daemons as [Daemon, Daemon];
    const key = 'ef'.repeat(32);
    await batch(h2, [`LINK ADD h1 UDP ACCEPT - ${key}`, `RULE ADD ANY ${colon(MAC[0])} LINK h1`, `RULE ADD ANY ${colon(MAC[1])} IFACE vm0`]);
    await batch(h1, [`LINK ADD h2 UDP DIAL 127.0.0.1:${linkPorts[1]} ${key}`, `RULE ADD ANY ${colon(MAC[1])} LINK h2`, `RULE ADD ANY ${colon(MAC[0])} IFACE vm0`]);
    await linkUp(h1, 'h2');
    await linkUp(h2, 'h1');
    const stat = async (name: string) => Number((await ok(h1, 'STATS?')).data.find((l) => l.startsWith(`${name} `))!.split(' ')[1]);
    // One frame caches the flow at h1; then bursts of 64, which h1 reads many at a time and sends on in batches.
    const send = (from: number, to: number) => {
      for (let n = from; n <= to; n++) vms[0]!.sock.send(frame(MAC[1], MAC[0], n % 256), ports[0]!, '127.0.0.1');
    };
    const arrived = async (count: number) => {
      for (const end = Date.now() + 5000; vms[1]!.got.length < count; await new Promise((r) => setTimeout(r, 5))) {
        if (Date.now() > end) throw new Error(`${vms[1]!.got.length} of ${count} frames arrived`);
      }
    };
    send(1, 1);
    await arrived(1);
    await new Promise((r) => setTimeout(r, 20));
    for (let b = 0; b < 10; b++) {
      send(2 + 64 * b, 1 + 64 * (b + 1));
      await arrived(1 + 64 * (b + 1));
    }
    expect(vms[1]!.got.map((f) => f[20])).toEqual(Array.from({ length: 641 }, (_, i) => (i + 1) % 256));
    expect(await stat('fast-path.frames')).toBeGreaterThanOrEqual(640);
    expect(await stat('fast-path.udp-gso')).toBe(refuses ? 0 : 1);
    if (refuses) expect(await stat('fast-path.udp-gso-sends')).toBe(0);
    else expect(await stat('fast-path.udp-gso-datagrams')).toBeGreaterThan(await stat('fast-path.udp-gso-sends'));
  } finally {
    for (const d of daemons) await stopVnetd(d);
    for (const v of vms) v.sock.close();
  }
}, 60_000);
