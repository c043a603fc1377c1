import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pcapBinding } from '../../daemon/interfaces/pcap.js';
import { QemuUdpInterface } from '../../daemon/interfaces/qemu-udp.js';
import { Vnetd } from '../../daemon/vnetd-core.js';
import { isChange, parseCommand } from '../../src/wire/control.js';
import { freePort } from '../support/sshd.js';
import { syntheticVm } from '../support/synthetic-vm.js';

/**
 * vnetd with and without its fast path (`--no-fast-path`), in one process:
 * two daemons, a QEMU datagram interface each and a link between them.
 * Frames cross either way, in order; with the fast path a flow's frames
 * after the first few pass through C (the QEMU socket, and the link's UDP
 * socket or the TCP connection it was handed), and STATS? says so.
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

let dir: string;
beforeAll(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vnetd-fast-path-'))));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const cases = [
  ['TCP', 'on'],
  ['UDP', 'on'],
  ['TCP', 'off'],
  ['UDP', 'off'],
] as const;

test.each(built ? cases : cases.filter(([, how]) => how === 'off'))('a %s link, fast path %s: frames cross both ways, and STATS? says what the fast path holds', async (proto, how) => {
  const fastPath = how === 'on';
  const vms = await Promise.all([syntheticVm(), syntheticVm()]);
  const ports = [await freePort(), await freePort()];
  const daemons = [0, 1].map((i) => new Vnetd({
    machine: `h${i + 1}`, port: 0, listen: '127.0.0.1', stateDir: path.join(dir, `${proto}-${fastPath}-h${i + 1}`),
    interfaces: [QemuUdpInterface.parse('vm0', `listen=127.0.0.1:${ports[i]},peer=127.0.0.1:${vms[i]!.sock.address().port}`)],
    log: () => {},
    fastPath,
  }));
  const [h1, h2] = daemons as [Vnetd, Vnetd];
  const stats = (d: Vnetd) => [...d.query('stats?')].filter((l) => l.startsWith('fast-path.'));
  try {
    for (const d of daemons) await d.start();
    const key = 'cd'.repeat(32);
    const batch = async (d: Vnetd, lines: string[]) => expect((await d.commit(lines.map((l) => parseCommand(l)).filter(isChange))).ok).toBe(true);
    await batch(h2, [`LINK ADD h1 ${proto} ACCEPT - ${key}`, `RULE ADD ANY ${colon(MAC[0])} LINK h1`, `RULE ADD ANY ${colon(MAC[1])} IFACE vm0`]);
    await batch(h1, [`LINK ADD h2 ${proto} DIAL 127.0.0.1:${h2.links.port} ${key}`, `RULE ADD ANY ${colon(MAC[1])} LINK h2`, `RULE ADD ANY ${colon(MAC[0])} IFACE vm0`]);
    while (!h1.links.isUp('h2') || !h2.links.isUp('h1')) await new Promise((r) => setTimeout(r, 10));
    // A TCP connection is handed over on a later turn than the handshake's.
    await new Promise((r) => setTimeout(r, 20));
    const burst = async (from: number, to: number) => {
      for (let n = from; n <= to; n++) {
        vms[0]!.sock.send(frame(MAC[1], MAC[0], n), ports[0]!, '127.0.0.1');
        vms[1]!.sock.send(frame(MAC[0], MAC[1], n), ports[1]!, '127.0.0.1');
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
    expect([...h1.query('devices?')][0]).toMatch(/^vm0 qemu-udp:\S+ rx=40\/4000 tx=40\/4000 errors=0$/);
  } finally {
    for (const d of daemons) await d.stop();
    for (const v of vms) v.sock.close();
  }
});
