import path from 'node:path';
import { interfaceFromSpec } from '../../daemon/interfaces/from-spec.js';
import type { Interface } from '../../daemon/interfaces/interface.js';
import type { QemuStreamInterface } from '../../daemon/interfaces/qemu-stream.js';
import type { QemuUdpInterface } from '../../daemon/interfaces/qemu-udp.js';
import { Vnetd } from '../../daemon/vnetd-core.js';
import { isChange, parseCommand } from '../../src/wire/control.js';
import { freeUdpPorts, startQemu, stopQemu, until, type Qemu } from './qemu.js';
import { freePort } from './sshd.js';
import { syntheticVm, type SyntheticVm } from './synthetic-vm.js';

/**
 * Real QEMU as the wire between two daemons. QEMU runs with no guest
 * (`-machine none`); its emulated hub joins a datagram netdev and a stream
 * netdev, so a frame entering one leaves by the other:
 *
 *   VM A ─ h1 vm ─ h1 q (qemu-udp) ═ QEMU dgram ─ hub ─ QEMU stream ═ h2 q (qemu-stream) ─ h2 vm ─ VM B
 *
 * The VMs at the ends are plain UDP sockets (qemu-udp interfaces, as the
 * other tests use); the part in question is the ═, where only QEMU's own
 * code reads and writes vnetd's bytes.
 */

export const MAC_A = '02:00:00:00:0a:01';
export const MAC_B = '02:00:00:00:0b:01';
/** Every size from the shortest padded Ethernet frame to the longest untagged one, then a 9000-byte-MTU jumbo. */
export const SIZES = [...Array.from({ length: 1514 - 60 + 1 }, (_, i) => 60 + i), 9014];
/** Frames in flight at once: well inside a loopback UDP socket's default buffer, so nothing is lost for want of room. */
const WINDOW = 32;

/** A frame no other frame equals: its number and size shape every byte after the header. */
function frame(dst: string, src: string, seq: number, size: number): Buffer {
  const f = Buffer.alloc(size);
  Buffer.from(dst.replaceAll(':', ''), 'hex').copy(f, 0);
  Buffer.from(src.replaceAll(':', ''), 'hex').copy(f, 6);
  f.writeUInt16BE(0x88b5, 12); // IEEE local experimental EtherType
  f.writeUInt32BE(seq, 14);
  for (let i = 18; i < size; i++) f[i] = (i * 31 + seq * 7 + size) & 0xff;
  return f;
}

/** Where two lists of frames first differ, in words; undefined when they are equal. */
function firstDifference(sent: Buffer[], got: Buffer[]): string | undefined {
  for (let i = 0; i < Math.max(sent.length, got.length); i++) {
    const s = sent[i];
    const g = got[i];
    if (!s || !g) return `frame ${i}: sent ${s?.length ?? 'nothing'} bytes, received ${g?.length ?? 'nothing'}`;
    if (!s.equals(g)) return `frame ${i} (${s.length} bytes) differs from what arrived (${g.length} bytes)`;
  }
  return undefined;
}

/** The ports and paths of one run: vnetd's ends and QEMU's. */
export interface Ends {
  dir: string;
  /** vnetd's qemu-udp interface binds this; QEMU's datagram netdev sends to it. */
  vnetdUdp: number;
  /** QEMU's datagram netdev binds this; vnetd sends to it. */
  qemuUdp: number;
  /** The stream netdev's TCP port, on whichever side listens. */
  streamTcp: number;
  /** The stream netdev's Unix socket, on whichever side listens. */
  streamPath: string;
}

/** One way of writing the two netdevs: vnetd's stream --iface and QEMU's two -netdev values. */
export interface Form {
  streamIface: (e: Ends) => string;
  dgramNetdev: (e: Ends) => string;
  streamNetdev: (e: Ends) => string;
}

/** QEMU's datagram netdev as the README gives it. */
export const dgramNetdev = (e: Ends) =>
  `dgram,id=nd,local.type=inet,local.host=127.0.0.1,local.port=${e.qemuUdp},remote.type=inet,remote.host=127.0.0.1,remote.port=${e.vnetdUdp}`;
/** The same, in the older `-netdev socket` spelling. */
export const socketUdpNetdev = (e: Ends) => `socket,id=nd,udp=127.0.0.1:${e.vnetdUdp},localaddr=127.0.0.1:${e.qemuUdp}`;

/** QEMU with no guest, its datagram netdev `nd` and stream netdev `ns` joined by hub 0. */
function hubbed(dgram: string, stream: string): string[] {
  return [
    '-machine', 'none',
    // The datagram netdev first: once the stream one is connected, the datagram socket is bound too.
    '-netdev', dgram, '-netdev', 'hubport,id=hd,hubid=0,netdev=nd',
    '-netdev', stream, '-netdev', 'hubport,id=hs,hubid=0,netdev=ns',
  ];
}

export interface Hub {
  ends: Ends;
  h1: Vnetd;
  h2: Vnetd;
  /** h1's interface to VM A and to QEMU's datagram netdev, h2's to QEMU's stream netdev and to VM B. */
  ifaces: { h1vm: QemuUdpInterface; h1q: QemuUdpInterface; h2q: QemuStreamInterface; h2vm: QemuUdpInterface };
  /** What h2 logged, every daemon h2 was so far. */
  h2log: string[];
  /** Starts QEMU with these two netdevs (`nd` and `ns`); it is stopped by close() if the test has not. */
  qemu(dgram: string, stream: string): Qemu;
  /** Stops h2 and starts it again on the same state directory and interface specs (fresh interfaces, fresh counters). */
  restartH2(): Promise<void>;
  /**
   * Sends a frame of each size from B to A, then from A to B, WINDOW at a time,
   * waiting each time until the other VM has them; checks they arrived byte
   * for byte and in order. Returns what crossed each way; the interfaces'
   * counters are up to date after.
   */
  exchange(sizes: number[], qemu: Qemu): Promise<{ frames: number; bytes: number }>;
  /** The interface's line in the daemon's DEVICES? listing. */
  device(d: Vnetd, iface: string): string;
  /** Undoes everything started, in reverse, whatever failed. */
  close(): Promise<void>;
}

/** Two daemons around a QEMU hub, rules set; QEMU not started yet. `streamIface` is h2's --iface for QEMU's stream netdev, named q. */
export async function startHub(dir: string, streamIface: (e: Ends) => string): Promise<Hub> {
  const undo: (() => Promise<void> | void)[] = [];
  const close = async () => {
    for (const step of undo.reverse()) await step();
    undo.length = 0;
  };
  try {
    const [a, b] = [await syntheticVm(), await syntheticVm()];
    undo.push(() => void a.sock.close(), () => void b.sock.close());
    const [vnetdUdp, qemuUdp, vmPortA, vmPortB] = (await freeUdpPorts(4)) as [number, number, number, number];
    const ends: Ends = { dir, vnetdUdp, qemuUdp, streamTcp: await freePort(), streamPath: path.join(dir, 'vm.sock') };
    const vmIface = (vm: SyntheticVm, port: number) => interfaceFromSpec(`vm=qemu-udp:listen=127.0.0.1:${port},peer=127.0.0.1:${vm.sock.address().port}`) as QemuUdpInterface;
    const h2log: string[] = [];
    const daemon = async (machine: string, interfaces: Interface[], log: (line: string) => void) => {
      const d = new Vnetd({ machine, port: 0, listen: '127.0.0.1', stateDir: path.join(dir, machine), interfaces, log });
      await d.start();
      undo.push(() => d.stop());
      return d;
    };
    const batch = async (d: Vnetd, lines: string[]) => {
      const r = await d.commit(lines.map((l) => parseCommand(l)).filter(isChange));
      if (!r.ok) throw new Error(`${d.machine} refused its rules: ${JSON.stringify(r)}`);
    };
    const h1vm = vmIface(a, vmPortA);
    const h1q = interfaceFromSpec(`q=qemu-udp:listen=127.0.0.1:${ends.vnetdUdp},peer=127.0.0.1:${ends.qemuUdp}`) as QemuUdpInterface;
    const h1 = await daemon('h1', [h1vm, h1q], () => {});
    const startH2 = async () => {
      const q = interfaceFromSpec(streamIface(ends)) as QemuStreamInterface;
      const vm = vmIface(b, vmPortB);
      return { d: await daemon('h2', [q, vm], (line) => h2log.push(line)), q, vm };
    };
    const first = await startH2();
    // Towards B: out of h1 into QEMU, and from QEMU into h2 on to B; towards A the other way. h2 keeps its rules across restarts.
    await batch(h1, [`RULE ADD ANY ${MAC_B} IFACE q`, `RULE ADD ANY ${MAC_A} IFACE vm`]);
    await batch(first.d, [`RULE ADD ANY ${MAC_B} IFACE vm`, `RULE ADD ANY ${MAC_A} IFACE q`]);

    const hub: Hub = {
      ends,
      h1,
      h2: first.d,
      ifaces: { h1vm, h1q, h2q: first.q, h2vm: first.vm },
      h2log,
      qemu(dgram, stream) {
        const q = startQemu(hubbed(dgram, stream));
        undo.push(() => stopQemu(q));
        return q;
      },
      async restartH2() {
        await hub.h2.stop();
        const next = await startH2();
        hub.h2 = next.d;
        hub.ifaces.h2q = next.q;
        hub.ifaces.h2vm = next.vm;
      },
      async exchange(sizes, qemu) {
        const one = async (from: SyntheticVm, toPort: number, to: SyntheticVm, dst: string, src: string) => {
          const sent = sizes.map((size, seq) => frame(dst, src, seq, size));
          const start = to.got.length;
          for (let i = 0; i < sent.length; i += WINDOW) {
            for (const f of sent.slice(i, i + WINDOW)) from.sock.send(f, toPort, '127.0.0.1');
            const want = start + Math.min(i + WINDOW, sent.length);
            await until(`frame ${want - start - 1} of ${sent.length} (${to.got.length - start} arrived)`, () => to.got.length >= want, qemu, 15_000);
          }
          return firstDifference(sent, to.got.slice(start));
        };
        // B to A first. When QEMU listens, vnetd is connected as soon as the kernel completes the
        // handshake, before QEMU has accepted: what vnetd writes waits in the socket, but a frame
        // QEMU's hub gets from the datagram side meanwhile has no stream to go to and is dropped.
        // Once B's first frame reaches A, QEMU has accepted.
        const toA = await one(b, hub.ifaces.h2vm.port, a, MAC_A, MAC_B);
        const toB = await one(a, hub.ifaces.h1vm.port, b, MAC_B, MAC_A);
        if (qemu.gone()) throw new Error(`QEMU stopped during the exchange${qemu.gone()}`);
        if (toB ?? toA) throw new Error(`towards ${toB ? 'B' : 'A'}: ${toB ?? toA}`);
        // Counters are read as an operator reads them: a query folds in what the fast path carried.
        for (const d of [hub.h1, hub.h2]) void [...d.query('devices?')];
        return { frames: sizes.length, bytes: sizes.reduce((sum, x) => sum + x, 0) };
      },
      device(d, iface) {
        const line = [...d.query('devices?')].find((l) => l.startsWith(`${iface} `));
        if (!line) throw new Error(`${d.machine} lists no interface ${iface}`);
        return line;
      },
      close,
    };
    return hub;
  } catch (e) {
    await close();
    throw e;
  }
}
