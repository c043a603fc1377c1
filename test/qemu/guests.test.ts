import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { interfaceFromSpec } from '../../daemon/interfaces/from-spec.js';
import type { Interface } from '../../daemon/interfaces/interface.js';
import { pcapBinding } from '../../daemon/interfaces/pcap.js';
import { Vnetd } from '../../daemon/vnetd-core.js';
import { commitLines } from '../support/commit-lines.js';
import { findGuestParts, guestArgs, guestInitramfs, MARK } from '../support/guest.js';
import { freeUdpPorts, QEMU, qemuMissing, startQemu, stopQemu, until, type Qemu } from '../support/qemu.js';
import { netnsUnavailable, Testbed } from '../netns/testbed.js';

/**
 * Two real Linux guests under QEMU (TCG, no KVM) ping each other through
 * vnetd: guest A's NIC is on host h1's qemu-udp interface (`-netdev dgram`),
 * guest B's on host h2's qemu-stream interface (`-netdev stream` over a Unix
 * socket) or, as root, on a tap device h2 captures with pcap (`-netdev
 * tap`), and h1 and h2 are joined by an encrypted overlay link. ARP and
 * ICMP are the guests' own; the daemons only forward, the later frames of
 * each flow in their fast paths. And guest B on a tap that QEMU itself makes
 * as it starts and removes as it stops, started twice while h2 runs.
 */

const parts = findGuestParts();
const skip = qemuMissing() ?? (typeof parts === 'string' ? parts : undefined);
if (skip && typeof parts === 'string') console.warn(`skipping the QEMU guest test: ${parts}`);
const suite = skip ? describe.skip : describe;

const lib = pcapBinding();
/** Why guest B cannot be put on a tap here (creating one needs root; capturing it, the addon), or undefined. */
const tapUnavailable = netnsUnavailable() ?? (typeof lib === 'string' ? lib : undefined);

const MAC = { a: '52:54:00:00:0a:01', b: '52:54:00:00:0b:01' };
const IP = { a: '10.77.0.1', b: '10.77.0.2' };
const BROADCAST = 'ff:ff:ff:ff:ff:ff';

suite(`QEMU guests ping each other through vnetd (${skip ?? `${QEMU}, TCG`})`, () => {
  // Each test's own: the daemons' state, the guests' files and sockets.
  let dir: string;
  beforeEach(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vnetd-guests-'))));
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  /** Guest B's NIC: vnetd's interface for it, and QEMU's -netdev value (id n0); `undo` takes what must go after. */
  type NicB = (undo: (() => Promise<void>)[]) => Promise<{ iface: string; netdev: string }>;
  const B_NICS: [string, NicB | string][] = [
    ['a stream NIC (-netdev stream over a Unix socket)', async () => {
      const sock = path.join(dir, 'b.sock');
      return { iface: `vm=qemu-stream:path=${sock}`, netdev: `stream,id=n0,server=off,addr.type=unix,addr.path=${sock}` };
    }],
    // QEMU's tap backend on a tap device, which vnetd captures and injects on with pcap, as on a host's own NICs.
    ['a tap NIC captured with pcap (-netdev tap)', tapUnavailable ?? (async (undo) => {
      const tb = await Testbed.create();
      undo.push(() => tb.destroy());
      const tap = await tb.rootTap();
      return { iface: `vm=pcap:${tap}`, netdev: `tap,id=n0,ifname=${tap},script=no,downscript=no` };
    })],
  ];

  /**
   * Daemons h1 (guest A's dgram NIC) and h2 (`ifaceB`) joined by an encrypted overlay link, with each
   * host's rules: its own VM on the interface, the other VM over the link, broadcasts (ARP) both ways
   * (split horizon keeps them from coming back). `undo` takes what must go after.
   */
  async function overlay(undo: (() => Promise<void>)[], ifaceB: Interface) {
    const [vnetdUdp, qemuUdp] = (await freeUdpPorts(2)) as [number, number];
    const ifaceA = interfaceFromSpec(`vm=qemu-udp:listen=127.0.0.1:${vnetdUdp},peer=127.0.0.1:${qemuUdp}`);
    const daemon = async (machine: string, iface: Interface) => {
      const d = new Vnetd({ machine, port: 0, listen: '127.0.0.1', stateDir: path.join(dir, machine), interfaces: [iface], log: () => {} });
      await d.start();
      undo.push(() => d.stop());
      return d;
    };
    const h1 = await daemon('h1', ifaceA);
    const h2 = await daemon('h2', ifaceB);
    const key = 'c3'.repeat(32);
    await commitLines(h2, ['LINK ADD h1 tcp ACCEPT - ' + key, `RULE ADD ANY ${MAC.b} IFACE vm`, `RULE ADD ANY ${MAC.a} LINK h1`, `RULE ADD ANY ${BROADCAST} IFACE vm`, `RULE ADD ANY ${BROADCAST} LINK h1`]);
    await commitLines(h1, [`LINK ADD h2 tcp DIAL 127.0.0.1:${h2.links.port} ${key}`, `RULE ADD ANY ${MAC.a} IFACE vm`, `RULE ADD ANY ${MAC.b} LINK h2`, `RULE ADD ANY ${BROADCAST} IFACE vm`, `RULE ADD ANY ${BROADCAST} LINK h2`]);
    await until('the overlay link h1-h2', () => h1.links.isUp('h2'));
    // The README's line for the datagram form.
    const dgramA = `dgram,id=n0,local.type=inet,local.host=127.0.0.1,local.port=${qemuUdp},remote.type=inet,remote.host=127.0.0.1,remote.port=${vnetdUdp}`;
    return { h1, h2, ifaceA, dgramA };
  }

  /** A guest that pings the other until it answers, then five times more, and reports. */
  function guest(undo: (() => Promise<void>)[], name: 'a' | 'b', netdev: string): Qemu {
    if (typeof parts === 'string') throw new Error(parts);
    const initrd = path.join(dir, `${name}.cpio`);
    fs.writeFileSync(initrd, guestInitramfs(parts, IP[name], IP[name === 'a' ? 'b' : 'a']));
    const q = startQemu(guestArgs(parts, initrd, MAC[name], netdev));
    undo.push(() => stopQemu(q));
    return q;
  }

  /** Waits for the guest's report, which must be five of five pings answered. */
  async function reported(q: Qemu, name: string): Promise<void> {
    // A whole line: the console may have delivered only part of it so far.
    const result = () => new RegExp(`${MARK} (RESULT|FAIL) ([^\r\n]*)\r?\n`).exec(q.output());
    // Booting under TCG on a loaded machine takes its time; this bounds the wait, it measures nothing.
    await until(`guest ${name} to report its pings`, () => result() !== null, q, 100_000);
    const r = result()!;
    if (r[1] === 'FAIL' || !/5 packets transmitted, 5 packets received/.test(r[2]!)) throw new Error(`guest ${name}: ${r[0]}\n${q.output()}`);
  }

  /** Frames the fast path carried, as STATS? says. */
  const carried = (d: Vnetd) => Number([...d.query('stats?')].find((l) => l.startsWith('fast-path.frames '))?.split(' ')[1]);

  test.each(B_NICS)('ARP and ping both ways, over a dgram NIC, an overlay link and %s', async (_name, nicB) => {
    if (typeof nicB === 'string') return void console.warn(`skipped: ${nicB}`);
    const undo: (() => Promise<void>)[] = [];
    try {
      const b = await nicB(undo);
      const ifaceB = interfaceFromSpec(b.iface);
      const { h1, h2, ifaceA, dgramA } = await overlay(undo, ifaceB);
      const a = guest(undo, 'a', dgramA);
      const guestB = guest(undo, 'b', b.netdev);
      await reported(a, 'A');
      await reported(guestB, 'B');
      for (const q of [a, guestB]) await stopQemu(q);

      // Everything the guests said to each other crossed the link, and all of it reached the other NIC.
      // Read as an operator reads them: a query folds in what the fast path carried.
      const link = (d: Vnetd) => (void [...d.query('stats?')], d.links.stats()[0]!);
      await until('the link to go quiet', () => link(h1).rxFrames === link(h2).txFrames && link(h2).rxFrames === link(h1).txFrames);
      expect(ifaceB.counters.txFrames).toBe(link(h2).rxFrames);
      expect(ifaceA.counters.txFrames).toBe(link(h1).rxFrames);
      // Five echo requests and five replies each way at least, and ARP.
      expect(link(h1).txFrames).toBeGreaterThanOrEqual(11);
      expect(link(h2).txFrames).toBeGreaterThanOrEqual(11);
      for (const iface of [ifaceA, ifaceB]) expect(iface.counters.errors).toBe(0);
      // Both NICs are fast-path ports (a stream once its connection is handed over): once a flow is cached,
      // its frames cross each daemon in C, requests 2 to 5 and the replies at least.
      for (const d of [h1, h2]) expect(carried(d)).toBeGreaterThanOrEqual(8);
    } finally {
      for (const step of undo.reverse()) await step();
    }
  }, 240_000);

  // QEMU makes the tap as the guest starts (its ifup script sets it up, as /etc/qemu-ifup does) and
  // removes it as the guest stops: vnetd, started before the guest, waits for it, and finds it again.
  (tapUnavailable ? test.skip : test)(`a tap QEMU makes and removes, before the guest's first start and across a restart (${tapUnavailable ?? 'root'})`, async () => {
    const undo: (() => Promise<void>)[] = [];
    try {
      const tap = `vgt${process.pid % 100000}`;
      undo.push(async () => void spawnSync('ip', ['link', 'del', tap])); // QEMU's own, gone with it unless something went wrong
      const ifup = path.join(dir, 'ifup');
      fs.writeFileSync(ifup, '#!/bin/sh\nip link set "$1" up\n', { mode: 0o755 });
      const ifaceB = interfaceFromSpec(`vm=pcap:${tap}`);
      const { h2, dgramA } = await overlay(undo, ifaceB);
      expect(ifaceB.present).toBe(false);
      const a = guest(undo, 'a', dgramA);
      for (const round of ['first start', 'restart']) {
        const before = carried(h2);
        const guestB = guest(undo, 'b', `tap,id=n0,ifname=${tap},script=${ifup},downscript=no`);
        await reported(guestB, `B (${round})`);
        // A pings B until it answers, then five times more: all of those before B stops.
        if (round === 'first start') await reported(a, 'A');
        // The frames crossed h2 in C: the capture of this tap is on the fast path.
        expect(carried(h2) - before).toBeGreaterThanOrEqual(4);
        await stopQemu(guestB);
        await until(`h2 to let go of the tap QEMU removed (${round})`, () => ifaceB.present === false);
      }
    } finally {
      for (const step of undo.reverse()) await step();
    }
  }, 300_000);
});
