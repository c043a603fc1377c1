import dgram from 'node:dgram';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { interfaceFromSpec } from '../../daemon/interfaces/from-spec.js';
import type { Interface } from '../../daemon/interfaces/interface.js';
import type { QemuStreamInterface } from '../../daemon/interfaces/qemu-stream.js';
import type { QemuUdpInterface } from '../../daemon/interfaces/qemu-udp.js';
import { Vnetd } from '../../daemon/vnetd-core.js';
import { isChange, parseCommand } from '../../src/wire/control.js';
import { freePort } from '../support/sshd.js';
import { freeUdpPorts, QEMU, qemuMissing, startQemu, stopQemu, until } from '../support/qemu.js';

/**
 * vnetd's QEMU interfaces against real QEMU. QEMU runs with no guest
 * (`-machine none`); its emulated hub joins a datagram netdev and a stream
 * netdev, so a frame entering one leaves by the other, and QEMU becomes the
 * wire between two daemons:
 *
 *   VM A ─ h1 vm ─ h1 q (qemu-udp) ═ QEMU dgram ─ hub ─ QEMU stream ═ h2 q (qemu-stream) ─ h2 vm ─ VM B
 *
 * The VMs at the ends are plain UDP sockets (qemu-udp interfaces, as the
 * other tests use); the part in question is the ═, where only QEMU's own
 * code reads and writes vnetd's bytes. The netdev options are the README's.
 */

const skip = qemuMissing();
const suite = skip ? describe.skip : describe;

const MAC_A = '02:00:00:00:0a:01';
const MAC_B = '02:00:00:00:0b:01';
/** Every size from the shortest padded Ethernet frame to the longest untagged one, then a 9000-byte-MTU jumbo. */
const SIZES = [...Array.from({ length: 1514 - 60 + 1 }, (_, i) => 60 + i), 9014];
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

/** A synthetic VM: a UDP socket that a daemon's qemu-udp interface talks to. */
async function syntheticVm(): Promise<{ sock: dgram.Socket; got: Buffer[] }> {
  const sock = dgram.createSocket('udp4');
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
  const got: Buffer[] = [];
  sock.on('message', (m) => got.push(m));
  return { sock, got };
}

/** The ports and paths of one run: vnetd's ends and QEMU's. */
interface Ends {
  dir: string;
  /** vnetd's qemu-udp interface binds this; QEMU's datagram netdev sends to it. */
  vnetdUdp: number;
  /** QEMU's datagram netdev binds this; vnetd sends to it. */
  qemuUdp: number;
  /** vnetd's qemu-stream interface listens here; QEMU connects. */
  vnetdTcp: number;
}

/** One way of writing the two netdevs: vnetd's stream --iface and QEMU's two -netdev values (as the README gives them). */
interface Form {
  streamIface: (e: Ends) => string;
  dgramNetdev: (e: Ends) => string;
  streamNetdev: (e: Ends) => string;
}

const newDgram = (e: Ends) =>
  `dgram,id=nd,local.type=inet,local.host=127.0.0.1,local.port=${e.qemuUdp},remote.type=inet,remote.host=127.0.0.1,remote.port=${e.vnetdUdp}`;
const tcpIface = (e: Ends) => `q=qemu-stream:listen=127.0.0.1:${e.vnetdTcp}`;
const unixSocket = (e: Ends) => path.join(e.dir, 'vm.sock');

const FORMS: [string, Form][] = [
  ['-netdev dgram and -netdev stream over TCP', {
    dgramNetdev: newDgram,
    streamIface: tcpIface,
    streamNetdev: (e) => `stream,id=ns,server=off,addr.type=inet,addr.host=127.0.0.1,addr.port=${e.vnetdTcp}`,
  }],
  ['-netdev dgram and -netdev stream over a Unix socket', {
    dgramNetdev: newDgram,
    streamIface: (e) => `q=qemu-stream:path=${unixSocket(e)}`,
    streamNetdev: (e) => `stream,id=ns,server=off,addr.type=unix,addr.path=${unixSocket(e)}`,
  }],
  ['the older -netdev socket,udp=…,localaddr=… and -netdev socket,connect=…', {
    dgramNetdev: (e) => `socket,id=nd,udp=127.0.0.1:${e.vnetdUdp},localaddr=127.0.0.1:${e.qemuUdp}`,
    streamIface: tcpIface,
    streamNetdev: (e) => `socket,id=ns,connect=127.0.0.1:${e.vnetdTcp}`,
  }],
];

/** The -netdev arguments: QEMU with no guest, its two netdevs joined by hub 0. */
function hubbed(dgramNetdev: string, streamNetdev: string): string[] {
  return [
    '-machine', 'none',
    // The datagram netdev first: once QEMU has connected the stream one, the datagram socket is bound too.
    '-netdev', dgramNetdev, '-netdev', 'hubport,id=hd,hubid=0,netdev=nd',
    '-netdev', streamNetdev, '-netdev', 'hubport,id=hs,hubid=0,netdev=ns',
  ];
}

suite(`vnetd's QEMU interfaces through real QEMU (${skip ?? QEMU})`, () => {
  let dir: string;
  beforeEach(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vnetd-qemu-'))));
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  test.each(FORMS)('%s: every size from 60 to 1514 bytes and a 9014-byte jumbo, both ways, byte for byte', async (_name, form) => {
    // Everything started is undone in reverse, whatever fails.
    const undo: (() => Promise<void> | void)[] = [];
    try {
      const [a, b] = [await syntheticVm(), await syntheticVm()];
      undo.push(() => void a.sock.close(), () => void b.sock.close());
      const [vnetdUdp, qemuUdp, vmPortA, vmPortB] = (await freeUdpPorts(4)) as [number, number, number, number];
      const ends: Ends = { dir, vnetdUdp, qemuUdp, vnetdTcp: await freePort() };
      const vmIface = (vm: typeof a, port: number) => interfaceFromSpec(`vm=qemu-udp:listen=127.0.0.1:${port},peer=127.0.0.1:${vm.sock.address().port}`) as QemuUdpInterface;
      const ifaces = {
        h1vm: vmIface(a, vmPortA),
        h1q: interfaceFromSpec(`q=qemu-udp:listen=127.0.0.1:${ends.vnetdUdp},peer=127.0.0.1:${ends.qemuUdp}`) as QemuUdpInterface,
        h2q: interfaceFromSpec(form.streamIface(ends)) as QemuStreamInterface,
        h2vm: vmIface(b, vmPortB),
      };
      const daemon = async (machine: string, interfaces: Interface[]) => {
        const d = new Vnetd({ machine, port: 0, listen: '127.0.0.1', stateDir: path.join(dir, machine), interfaces, log: () => {} });
        await d.start();
        undo.push(() => d.stop());
        return d;
      };
      const h1 = await daemon('h1', [ifaces.h1vm, ifaces.h1q]);
      const h2 = await daemon('h2', [ifaces.h2q, ifaces.h2vm]);
      const batch = async (d: Vnetd, lines: string[]) => expect((await d.commit(lines.map((l) => parseCommand(l)).filter(isChange))).ok).toBe(true);
      // Towards B: out of h1 into QEMU, and from QEMU into h2 on to B; towards A the other way.
      await batch(h1, [`RULE ADD ANY ${MAC_B} IFACE q`, `RULE ADD ANY ${MAC_A} IFACE vm`]);
      await batch(h2, [`RULE ADD ANY ${MAC_B} IFACE vm`, `RULE ADD ANY ${MAC_A} IFACE q`]);

      const qemu = startQemu(hubbed(form.dgramNetdev(ends), form.streamNetdev(ends)));
      undo.push(() => stopQemu(qemu));
      await until('QEMU to connect its stream netdev to vnetd', () => ifaces.h2q.connected, qemu, 15_000);

      /** Sends every size from one VM, WINDOW at a time, waiting each time until the other VM has them. */
      const run = async (from: typeof a, toPort: number, to: typeof b, dst: string, src: string): Promise<Buffer[]> => {
        const sent = SIZES.map((size, seq) => frame(dst, src, seq, size));
        for (let i = 0; i < sent.length; i += WINDOW) {
          for (const f of sent.slice(i, i + WINDOW)) from.sock.send(f, toPort, '127.0.0.1');
          const want = Math.min(i + WINDOW, sent.length);
          await until(`frame ${want - 1} of ${sent.length} (${to.got.length} arrived)`, () => to.got.length >= want, qemu, 15_000);
        }
        return sent;
      };
      const toB = await run(a, ifaces.h1vm.port, b, MAC_B, MAC_A);
      const toA = await run(b, ifaces.h2vm.port, a, MAC_A, MAC_B);
      expect(qemu.gone()).toBe('');
      expect(firstDifference(toB, b.got)).toBeUndefined();
      expect(firstDifference(toA, a.got)).toBeUndefined();

      // Every frame crossed QEMU once each way, as vnetd counted it on both sides of QEMU, and nothing else did.
      const n = SIZES.length;
      const bytes = SIZES.reduce((sum, x) => sum + x, 0);
      const crossed = { rxFrames: n, rxBytes: bytes, txFrames: n, txBytes: bytes, errors: 0 };
      for (const iface of Object.values(ifaces)) expect(iface.counters).toEqual(crossed);
    } finally {
      for (const step of undo.reverse()) await step();
    }
  }, 60_000);
});
