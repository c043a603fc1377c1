/**
 * Benchmark of vnetd's data path, in sections:
 *
 *   lookup   forwarding-table lookups on a 100,000-rule table: warm cache,
 *            cache off, and a flood of new flows that miss; beside a plain
 *            Map.get over the same destinations and a naive scan of every
 *            rule, both measured in the same run.
 *
 *   forward  frames/s through one real vnetd (the same 100,000-rule table,
 *            configured through its commit path) between two in-memory
 *            interfaces, VM1 -> daemon -> VM2, no network: the ceiling of
 *            our own code. Beside the same frames handed from one in-memory
 *            interface to the other by a bare event listener, no daemon.
 *
 *   qemu     round trip and echo rate between two QEMU datagram NICs (UDP
 *            sockets here) through two vnetd processes and an encrypted UDP
 *            link on loopback, with the fast path and with --no-fast-path,
 *            beside the same echoes between the two "VMs" directly, rounds
 *            alternating.
 *
 *   qemu-stream  the same between two QEMU stream NICs (TCP connections).
 *
 *   commit   latency of a durable commit on a daemon holding 100,000 rules:
 *            one RULE ADD, beside a bare synced append of a record of the
 *            same size to a file in the same directory (the floor of any
 *            durable commit on this disk); a 10,000-change batch, beside the
 *            same batch checked and installed in memory only (Config and
 *            ForwardingTable of the same size, no persistence).
 *
 *   npm run bench:daemon                          every section
 *   node dist/bench/daemon.js --section lookup    one section (repeatable)
 *   node dist/bench/daemon.js --rules 20000 --json
 *
 * The machines are shared and noisy, so each figure is the median of several
 * rounds, and the table and its baseline alternate round by round so that a
 * burst of load hits both; the ratio to the baseline is the steadier figure.
 *
 * A section is a function from the options to a report (setup lines,
 * figures, targets); adding one is adding an entry to SECTIONS.
 *
 * Exit status: 0 whether or not the targets are met (a benchmark reports; it
 * is not a test); 1 if the table disagrees with the naive scan, or on a
 * usage error.
 */
import dgram from 'node:dgram';
import { EventEmitter } from 'node:events';
import net from 'node:net';
import { mkdtemp, open, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { Config } from '../daemon/config.js';
import { Vnetd } from '../daemon/vnetd-core.js';
import { formatCommand, type Change } from '../src/wire/control.js';
import { ethernet, MemoryInterface } from './memory-interface.js';
import { MAX_FRAME } from '../src/model/frame.js';
import { LengthPrefixReader, withLength } from '../daemon/links/framing.js';
import { freePort } from '../test/support/sshd.js';
import { ForwardingTable, macToNumber, numberToMac, priorityOf, type Match } from '../daemon/forward/table.js';
import type { Address, Destination, Rule } from '../src/model/state.js';
import { prng } from '../src/util/prng.js';
import { batch, linkUp, ok, startVnetd, stopVnetd, type Daemon } from '../test/netns/testbed.js';
import { median } from './stats.js';
import { renderReport } from './table.js';

// ---------------------------------------------------------------------------
// Reports

interface Figure {
  name: string;
  value: number;
  unit: string;
  /** The same-run comparison: its name and value, and value / baseline. */
  baseline?: { name: string; value: number; ratio: number };
}

interface Target {
  name: string;
  value: number;
  limit: number;
  unit: string;
  pass: boolean;
}

interface SectionReport {
  title: string;
  setup: string[];
  figures: Figure[];
  targets: Target[];
}

interface Options {
  rules: number;
}

type Section = (opts: Options, progress: (s: string) => void) => SectionReport | Promise<SectionReport>;

class MismatchError extends Error {}

// ---------------------------------------------------------------------------
// Timing


/** Defeats dead-code elimination: every timed loop adds its results here. */
let sink = 0;

/** Seconds for one call of `run`. */
function time(run: () => number): number {
  const t0 = process.hrtime.bigint();
  sink += run();
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

/**
 * Operations per second of `subject` and `baseline` (each call does `ops`
 * operations), as medians over rounds that alternate the two. The number of
 * calls per round is set once, from a trial, so a round lasts ~`roundMs`.
 */
function paired(subject: () => number, baseline: () => number, ops: number, rounds = 7, roundMs = 120): [number, number] {
  for (let i = 0; i < 3; i++) {
    subject();
    baseline();
  }
  const reps = (run: () => number) => Math.max(1, Math.round(roundMs / 1000 / time(run)));
  const rs = reps(subject);
  const rb = reps(baseline);
  const s: number[] = [];
  const b: number[] = [];
  for (let r = 0; r < rounds; r++) {
    s.push((rs * ops) / time(() => repeat(subject, rs)));
    b.push((rb * ops) / time(() => repeat(baseline, rb)));
  }
  return [median(s), median(b)];
}

function repeat(run: () => number, times: number): number {
  let acc = 0;
  for (let i = 0; i < times; i++) acc += run();
  return acc;
}

// ---------------------------------------------------------------------------
// The lookup section: a Proxy-like daemon with 100 host links and the LAN.

const HOST_LINKS = 100;
const NOT_RULES = 16;
const VM_BASE = 0x00_50_56_00_00_00;
const BCAST = 'ff:ff:ff:ff:ff:ff';

const vmMac = (i: number): string => numberToMac(VM_BASE + i);
const hostOf = (vm: number): Destination => ({ kind: 'link', to: `host${vm % HOST_LINKS}` });
const ETH0: Destination = { kind: 'interface', iface: 'eth0' };
const exact = (mac: string): Address => ({ q: 'exact', mac });


interface Layout {
  vms: number;
  fastPaths: number;
  broadcast: number;
  not: number;
  defaults: number;
}

/**
 * Where each VM is (ANY -> its MAC, over its host's link), fast paths between
 * VM pairs (exact -> exact, as VADAPT adds them), the broadcast fan-out to
 * every host and the LAN, a few NOT rules, and the default to the LAN.
 */
function buildRules(total: number): { rules: Rule[]; layout: Layout } {
  const broadcast = HOST_LINKS + 1;
  const fixed = broadcast + NOT_RULES + 1;
  if (total < fixed + 10) throw new RangeError(`--rules must be at least ${fixed + 10}`);
  const fastPaths = Math.floor((total - fixed) / 5);
  const vms = total - fixed - fastPaths;
  const rules: Rule[] = [];
  const machine = 'proxy';
  for (let i = 0; i < vms; i++) rules.push({ machine, src: { q: 'any' }, dst: exact(vmMac(i)), dest: hostOf(i) });
  const rand = prng(1);
  const seen = new Set<number>();
  while (seen.size < fastPaths) {
    const a = Math.floor(rand() * vms);
    const b = Math.floor(rand() * vms);
    if (a === b || seen.has(a * vms + b)) continue;
    seen.add(a * vms + b);
    rules.push({ machine, src: exact(vmMac(a)), dst: exact(vmMac(b)), dest: hostOf(b) });
  }
  for (let h = 0; h < HOST_LINKS; h++) rules.push({ machine, src: { q: 'any' }, dst: exact(BCAST), dest: hostOf(h) });
  rules.push({ machine, src: { q: 'any' }, dst: exact(BCAST), dest: ETH0 });
  // Half NOT-source, half NOT-destination, so a miss walks both kinds of NOT bucket.
  for (let k = 0; k < NOT_RULES; k++) {
    const mac = vmMac(k);
    rules.push(
      k % 2 === 0
        ? { machine, src: { q: 'not', mac }, dst: { q: 'any' }, dest: ETH0 }
        : { machine, src: { q: 'any' }, dst: { q: 'not', mac }, dest: ETH0 },
    );
  }
  rules.push({ machine, src: { q: 'any' }, dst: { q: 'none' }, dest: ETH0 });
  return { rules, layout: { vms, fastPaths, broadcast, not: NOT_RULES, defaults: 1 } };
}

interface Flows {
  count: number;
  ingress: Int32Array;
  src: Float64Array;
  dst: Float64Array;
}

/**
 * A working set of flows: mostly VM to VM, some over fast paths, some
 * broadcasts, some from the LAN (to a VM or to an address no rule names).
 */
function buildFlows(table: ForwardingTable, rules: Rule[], layout: Layout, count: number, seed: number): Flows {
  const rand = prng(seed);
  const pick = (n: number) => Math.floor(rand() * n);
  const f: Flows = { count, ingress: new Int32Array(count), src: new Float64Array(count), dst: new Float64Array(count) };
  const eth0 = table.portId(ETH0);
  for (let i = 0; i < count; i++) {
    const kind = rand();
    let ingress: number;
    let src: number;
    let dst: number;
    if (kind < 0.1) {
      const r = rules[layout.vms + pick(layout.fastPaths)]!;
      src = macToNumber((r.src as { mac: string }).mac);
      dst = macToNumber((r.dst as { mac: string }).mac);
      ingress = table.portId(hostOf(src - VM_BASE));
    } else if (kind < 0.9) {
      const a = pick(layout.vms);
      src = VM_BASE + a;
      dst = kind < 0.8 ? VM_BASE + pick(layout.vms) : macToNumber(BCAST);
      ingress = table.portId(hostOf(a));
    } else {
      src = 0x02_00_00_00_00_00 + pick(2 ** 24);
      dst = kind < 0.95 ? VM_BASE + pick(layout.vms) : 0x02_00_00_00_00_00 + pick(2 ** 24);
      ingress = eth0;
    }
    f.ingress[i] = ingress;
    f.src[i] = src;
    f.dst[i] = dst;
  }
  return f;
}

/** Rules as flat arrays, for the scan that defines what a lookup should return. */
interface Flat {
  n: number;
  srcQ: Uint8Array;
  srcMac: Float64Array;
  dstQ: Uint8Array;
  dstMac: Float64Array;
  priority: Uint8Array;
  port: Int32Array;
}

const Q = { exact: 0, not: 1, any: 2, none: 3 } as const;

function flatten(table: ForwardingTable, rules: Rule[]): Flat {
  const n = rules.length;
  const f: Flat = {
    n,
    srcQ: new Uint8Array(n),
    srcMac: new Float64Array(n),
    dstQ: new Uint8Array(n),
    dstMac: new Float64Array(n),
    priority: new Uint8Array(n),
    port: new Int32Array(n),
  };
  rules.forEach((r, i) => {
    f.srcQ[i] = Q[r.src.q];
    f.srcMac[i] = 'mac' in r.src ? macToNumber(r.src.mac) : -1;
    f.dstQ[i] = Q[r.dst.q];
    f.dstMac[i] = 'mac' in r.dst ? macToNumber(r.dst.mac) : -1;
    f.priority[i] = priorityOf(r.src.q as 'exact' | 'not' | 'any', r.dst.q);
    f.port[i] = table.portId(r.dest);
  });
  return f;
}

function slot(q: number, mac: number, value: number): boolean {
  return q === 0 ? mac === value : q === 1 ? mac !== value : true;
}

/** Egress ports by scanning every rule; every port of the bench is up. */
function naive(f: Flat, ingress: number, src: number, dst: number): number[] {
  let best = 0;
  let ports: number[] = [];
  for (let i = 0; i < f.n; i++) {
    if (f.port[i] === ingress || !slot(f.srcQ[i]!, f.srcMac[i]!, src) || !slot(f.dstQ[i]!, f.dstMac[i]!, dst)) continue;
    const p = f.priority[i]!;
    if (p > best) {
      best = p;
      ports = [f.port[i]!];
    } else if (p === best && !ports.includes(f.port[i]!)) ports.push(f.port[i]!);
  }
  return ports.sort((a, b) => a - b);
}

const LOOKUP_TARGET = 5e6;
const WARM_FLOWS = 16384;
const FLOOD = 1 << 18;
const NAIVE_SAMPLE = 64;
const CHECKED = 4096;

const lookupSection: Section = (opts, progress) => {
  const { rules, layout } = buildRules(opts.rules);
  const table = new ForwardingTable();
  const uncached = new ForwardingTable({ cacheSize: 0 });
  for (const t of [table, uncached]) {
    for (let h = 0; h < HOST_LINKS; h++) t.attach(hostOf(h));
    t.attach(ETH0);
  }
  progress(`lookup: installing ${rules.length.toLocaleString('en-US')} rules ... `);
  const buildSec = time(() => {
    for (const r of rules) table.add(r);
    return table.size;
  });
  for (const r of rules) uncached.add(r);
  progress(`${(buildSec * 1000).toFixed(0)} ms\n`);

  const flows = buildFlows(table, rules, layout, WARM_FLOWS, 2);

  // Correctness first: a fast wrong answer is not a result.
  progress('lookup: checking against a scan of every rule ... ');
  const flat = flatten(table, rules);
  const check = (t: ForwardingTable, fl: Flows, i: number) => {
    const want = naive(flat, fl.ingress[i]!, fl.src[i]!, fl.dst[i]!);
    const got = t.lookup(fl.ingress[i]!, fl.src[i]!, fl.dst[i]!);
    if (want.join() !== got.join()) {
      throw new MismatchError(
        `flow ${i} (ingress ${fl.ingress[i]}, ${numberToMac(fl.src[i]!)} -> ${numberToMac(fl.dst[i]!)}): table says [${got.join()}], scan says [${want.join()}]`,
      );
    }
  };
  for (let i = 0; i < Math.min(CHECKED, flows.count); i++) {
    check(table, flows, i);
    check(uncached, flows, i);
  }
  progress('ok\n');

  // The baseline: one Map.get per flow, of the destination alone, into a map
  // holding each destination's answer: the cheapest lookup imaginable.
  const byDst = new Map<number, readonly number[]>();
  for (let i = 0; i < flows.count; i++) byDst.set(flows.dst[i]!, table.lookup(flows.ingress[i]!, flows.src[i]!, flows.dst[i]!));
  const none: readonly number[] = [];
  const mapPass = () => {
    let acc = 0;
    for (let i = 0; i < flows.count; i++) acc += (byDst.get(flows.dst[i]!) ?? none).length;
    return acc;
  };
  const lookupPass = (t: ForwardingTable, fl: Flows) => () => {
    let acc = 0;
    for (let i = 0; i < fl.count; i++) acc += t.lookup(fl.ingress[i]!, fl.src[i]!, fl.dst[i]!).length;
    return acc;
  };

  progress('lookup: warm cache vs Map.get ... ');
  const stats0 = table.stats().cache;
  const [warm, mapGet] = paired(lookupPass(table, flows), mapPass, flows.count);
  const stats1 = table.stats().cache;
  const warmHitRate = (stats1.hits - stats0.hits) / (stats1.hits - stats0.hits + stats1.misses - stats0.misses);
  progress('done\n');

  progress('lookup: cache off vs warm cache ... ');
  const [cold, warmAgain] = paired(lookupPass(uncached, flows), lookupPass(table, flows), flows.count, 5);
  progress('done\n');

  // A flood of flows never seen: new random sources from the LAN, each a miss
  // that resolves from the index and evicts an older flow.
  progress('lookup: flood of new flows vs naive scan ... ');
  const floodRand = prng(3);
  const flood: Flows = {
    count: FLOOD,
    ingress: new Int32Array(FLOOD).fill(table.portId(ETH0)),
    src: Float64Array.from({ length: FLOOD }, () => 0x02_00_00_00_00_00 + Math.floor(floodRand() * 2 ** 40)),
    dst: Float64Array.from({ length: FLOOD }, (_, i) => flows.dst[i % flows.count]!),
  };
  const heap0 = process.memoryUsage().heapUsed;
  const f0 = table.stats().cache;
  const floodSec = time(lookupPass(table, flood));
  const f1 = table.stats().cache;
  const heapGrowth = process.memoryUsage().heapUsed - heap0;
  const floodRate = FLOOD / floodSec;
  const floodMissRate = (f1.misses - f0.misses) / FLOOD;
  for (let i = 0; i < 256; i++) check(table, flood, i * 1021);
  const sample = Math.min(NAIVE_SAMPLE, flows.count);
  const naiveRate = median(
    [0, 1, 2].map(() => sample / time(() => repeat(() => {
      let acc = 0;
      for (let i = 0; i < sample; i++) acc += naive(flat, flows.ingress[i]!, flows.src[i]!, flows.dst[i]!).length;
      return acc;
    }, 1))),
  );
  progress('done\n');

  const match: Match = table.match(flows.ingress[0]!, flows.src[0]!, flows.dst[0]!);
  sink += match.ports.length;
  const mib = (b: number) => b / 2 ** 20;
  return {
    title: `forwarding-table lookups, ${table.size.toLocaleString('en-US')} rules`,
    setup: [
      `rules     ${layout.vms.toLocaleString('en-US')} ANY->VM, ${layout.fastPaths.toLocaleString('en-US')} VM->VM fast paths, ${layout.broadcast} broadcast fan-out, ${layout.not} NOT, ${layout.defaults} default; ${HOST_LINKS} links + eth0`,
      `installed ${(buildSec * 1000).toFixed(0)} ms (${Math.round(rules.length / buildSec).toLocaleString('en-US')} rules/s, one add() each)`,
      `flows     ${flows.count.toLocaleString('en-US')} (ingress, src, dst): 70% VM->VM, 10% fast path, 10% broadcast, 10% from the LAN`,
      `cache     ${table.stats().cache.capacity.toLocaleString('en-US')} flows, 4-way set-associative; hit rate ${(warmHitRate * 100).toFixed(1)}% on the warm set; the flood missed ${(floodMissRate * 100).toFixed(1)}%, heap ${heapGrowth >= 0 ? '+' : ''}${mib(heapGrowth).toFixed(1)} MiB over ${FLOOD.toLocaleString('en-US')} new flows`,
      `checked   ${Math.min(CHECKED, flows.count) + 256} lookups against a scan of every rule: all agree`,
    ],
    figures: [
      { name: 'warm cache', value: warm, unit: 'lookups/s', baseline: { name: 'Map.get(dst)', value: mapGet, ratio: warm / mapGet } },
      { name: 'cache off (index only)', value: cold, unit: 'lookups/s', baseline: { name: 'warm cache', value: warmAgain, ratio: cold / warmAgain } },
      { name: 'flood of new flows (miss + insert)', value: floodRate, unit: 'lookups/s', baseline: { name: 'naive scan', value: naiveRate, ratio: floodRate / naiveRate } },
    ],
    targets: [{ name: 'warm-cache lookups, 100,000 rules', value: warm, limit: LOOKUP_TARGET, unit: 'lookups/s', pass: warm >= LOOKUP_TARGET }],
  };
};

// ---------------------------------------------------------------------------
// The forward section: VM1 -> vnetd -> VM2 in one process, no sockets.

const FORWARD_FLOWS = 4096;
const FRAME_BYTES = 64;

const forwardSection: Section = async (opts, progress) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'vnetd-bench-'));
  let received = 0;
  let last: Uint8Array | null = null;
  const vm1 = new MemoryInterface('vm1');
  const vm2 = new MemoryInterface('vm2', (f) => {
    received++;
    last = f;
  });
  const log: string[] = [];
  const daemon = new Vnetd({ machine: 'h1', port: 0, listen: '127.0.0.1', stateDir: dir, interfaces: [vm1, vm2], log: (l) => log.push(l) });
  try {
    await daemon.start();
    // Half the VMs live behind vm1, half behind vm2: a table as large as the lookup section's.
    const half = Math.max(1, opts.rules >> 1);
    const changes: Change[] = [];
    for (let i = 0; i < opts.rules; i++) {
      changes.push({ op: 'rule-add', rule: { src: { q: 'any' }, dst: exact(vmMac(i)), dest: { kind: 'interface', iface: i < half ? 'vm1' : 'vm2' } } });
    }
    progress(`forward: committing ${changes.length.toLocaleString('en-US')} rules through the daemon ... `);
    const commit = await daemon.commit(changes);
    if (!commit.ok) throw new MismatchError(`the daemon refused the bench's rules: ${commit.errors.find((e) => e)?.message ?? commit.fatal?.message}`);
    progress(`${commit.ms.toFixed(0)} ms\n`);

    const rand = prng(4);
    const frames = Array.from({ length: FORWARD_FLOWS }, () =>
      ethernet(VM_BASE + half + Math.floor(rand() * (opts.rules - half)), VM_BASE + Math.floor(rand() * half), FRAME_BYTES),
    );
    const throughDaemon = () => {
      for (const f of frames) vm1.inject(f);
      return received;
    };
    // The same frames, the same interface objects' work, one listener between them and no daemon.
    const a = new MemoryInterface('a');
    const b = new MemoryInterface('b', (f) => {
      received++;
      last = f;
    });
    await b.open();
    a.on('frame', (f: Buffer) => b.send(f));
    const direct = () => {
      for (const f of frames) a.inject(f);
      return received;
    };

    progress('forward: checking every frame arrives, once, unchanged, at VM2 only ... ');
    received = 0;
    for (const f of frames) {
      vm1.inject(f);
      if (last !== f) throw new MismatchError('a frame did not arrive at VM2 as sent');
    }
    if (received !== frames.length || vm1.counters.txFrames !== 0) {
      throw new MismatchError(`sent ${frames.length} frames from VM1: VM2 got ${received}, VM1 got ${vm1.counters.txFrames} back`);
    }
    progress('ok\n');

    progress('forward: VM1 -> vnetd -> VM2 vs a bare listener ... ');
    const [rate, bare] = paired(throughDaemon, direct, frames.length);
    progress('done\n');
    const stats = daemon.table.stats();
    if (stats.drops.noMatch !== 0 || vm1.counters.txFrames !== 0 || vm2.counters.txFrames !== vm1.counters.rxFrames) {
      throw new MismatchError(`frames went astray: ${vm1.counters.rxFrames} sent, ${vm2.counters.txFrames} at VM2, ${vm1.counters.txFrames} back at VM1, ${stats.drops.noMatch} unmatched`);
    }
    return {
      title: `frames through one vnetd, in-memory interfaces, ${daemon.table.size.toLocaleString('en-US')} rules`,
      setup: [
        `path      VM1 -> MemoryInterface -> Vnetd.forward (table, counters) -> MemoryInterface -> VM2, one thread, no sockets`,
        `frames    ${FORWARD_FLOWS.toLocaleString('en-US')} flows of ${FRAME_BYTES}-byte frames, round robin; cache hit rate ${((stats.cache.hits / Math.max(1, stats.cache.hits + stats.cache.misses)) * 100).toFixed(1)}%`,
        `per frame ${(1e9 / rate).toFixed(0)} ns through the daemon, ${(1e9 / bare).toFixed(0)} ns for the bare hop`,
        `checked   ${vm1.counters.rxFrames.toLocaleString('en-US')} frames sent, all at VM2, none back at VM1, none unmatched`,
      ],
      figures: [{ name: 'VM1 -> vnetd -> VM2', value: rate, unit: 'frames/s', baseline: { name: 'bare listener hop', value: bare, ratio: rate / bare } }],
      targets: [],
    };
  } finally {
    await daemon.stop();
    await rm(dir, { recursive: true, force: true });
  }
};

// ---------------------------------------------------------------------------
// The qemu sections: VM1 -> vnetd -> link -> vnetd -> VM2 and back over QEMU's socket netdevs, real sockets.

const QEMU_ROUNDS = 5;
const QEMU_ECHOES = 200;
const QEMU_STREAM = 10_000;
const QEMU_WINDOW = 64;

type QemuKind = 'qemu-udp' | 'qemu-stream';

/** A "VM": QEMU's NIC as vnetd sees it, played by a socket of this process. Emits 'frame' (Buffer). */
abstract class Vm extends EventEmitter {
  abstract send(frame: Buffer): void;
  abstract close(): void;
}

/** -netdev dgram: a UDP socket on loopback, one frame a datagram, sent to `to`. */
class DatagramVm extends Vm {
  to = 0;
  private constructor(readonly sock: dgram.Socket) {
    super();
    sock.on('message', (f: Buffer) => this.emit('frame', f));
  }

  static async open(): Promise<DatagramVm> {
    const sock = dgram.createSocket('udp4');
    await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
    sock.setRecvBufferSize(4 << 20);
    sock.setSendBufferSize(4 << 20);
    return new DatagramVm(sock);
  }

  get port(): number {
    return this.sock.address().port;
  }

  send(frame: Buffer): void {
    this.sock.send(frame, this.to, '127.0.0.1');
  }

  close(): void {
    this.sock.close();
  }
}

/** -netdev stream: a TCP connection, each frame after its 4-byte length. */
class StreamVm extends Vm {
  constructor(private readonly sock: net.Socket) {
    super();
    sock.setNoDelay(true);
    const reader = new LengthPrefixReader(MAX_FRAME);
    sock.on('data', (chunk: Buffer) => reader.push(chunk, (f) => this.emit('frame', f)));
  }

  static connect(port: number): Promise<StreamVm> {
    return new Promise((resolve, reject) => {
      const s = net.connect(port, '127.0.0.1');
      s.once('error', reject);
      s.once('connect', () => (s.off('error', reject), resolve(new StreamVm(s))));
    });
  }

  send(frame: Buffer): void {
    this.sock.write(withLength(frame));
  }

  close(): void {
    this.sock.destroy();
  }
}

async function freeUdpPort(): Promise<number> {
  const vm = await DatagramVm.open();
  const port = vm.port;
  await new Promise<void>((r) => vm.sock.close(() => r()));
  return port;
}

interface VmPair {
  vm1: Vm;
  vm2: Vm;
  /** Frames the daemons between them carried in C. */
  carried: () => Promise<number>;
  stop: () => Promise<void>;
}

/** The two VMs joined directly, with no daemon: the baseline. */
async function directPair(kind: QemuKind): Promise<VmPair> {
  if (kind === 'qemu-udp') {
    const [vm1, vm2] = [await DatagramVm.open(), await DatagramVm.open()];
    [vm1.to, vm2.to] = [vm2.port, vm1.port];
    return { vm1, vm2, carried: async () => 0, stop: async () => void [vm1, vm2].forEach((vm) => vm.close()) };
  }
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const accepted = new Promise<net.Socket>((r) => server.once('connection', r));
  const vm1 = await StreamVm.connect((server.address() as net.AddressInfo).port);
  const vm2 = new StreamVm(await accepted);
  server.close();
  return { vm1, vm2, carried: async () => 0, stop: async () => void [vm1, vm2].forEach((vm) => vm.close()) };
}

/**
 * Two vnetd processes joined by an encrypted UDP link, a QEMU interface of
 * `kind` on each: VM1's frames for VM2 go h1 -> link -> h2, and back.
 * Returns once the link is up.
 */
async function qemuPair(dir: string, kind: QemuKind, flags: string[]): Promise<VmPair> {
  const daemons: Daemon[] = [];
  const vms: Vm[] = [];
  const stop = async () => {
    for (const d of daemons) await stopVnetd(d);
    for (const vm of vms) vm.close();
  };
  /** A daemon whose interface `vm` is the VM of, the VM connecting once the daemon listens. */
  const daemon = async (machine: string) => {
    const port = await freeUdpPort();
    let iface: string;
    let attach: () => Promise<Vm>;
    if (kind === 'qemu-udp') {
      const vm = await DatagramVm.open();
      vms.push(vm);
      vm.to = await freeUdpPort();
      iface = `vm=qemu-udp:listen=127.0.0.1:${vm.to},peer=127.0.0.1:${vm.port}`;
      attach = async () => vm;
    } else {
      const at = await freePort();
      iface = `vm=qemu-stream:listen=127.0.0.1:${at}`;
      attach = async () => {
        const vm = await StreamVm.connect(at);
        vms.push(vm);
        return vm;
      };
    }
    const d = await startVnetd({ machine, port, dir: await mkdtemp(path.join(dir, `${machine}-`)), log: '' }, ['--iface', iface, ...flags]);
    daemons.push(d);
    return { d, port, vm: await attach() };
  };
  try {
    const [h1, h2] = [await daemon('h1'), await daemon('h2')];
    const key = 'b7'.repeat(32);
    await batch(h2.d, [`LINK ADD h1 UDP ACCEPT - ${key}`, `RULE ADD ANY ${vmMac(2)} IFACE vm`, `RULE ADD ANY ${vmMac(1)} LINK h1`]);
    await batch(h1.d, [`LINK ADD h2 UDP DIAL 127.0.0.1:${h2.port} ${key}`, `RULE ADD ANY ${vmMac(1)} IFACE vm`, `RULE ADD ANY ${vmMac(2)} LINK h2`]);
    await linkUp(h1.d, 'h2');
    await linkUp(h2.d, 'h1');
    const count = async (d: Daemon) => Number((await ok(d, 'STATS?')).data.find((l) => l.startsWith('fast-path.frames '))?.split(' ')[1] ?? 0);
    return { vm1: h1.vm, vm2: h2.vm, carried: async () => (await count(h1.d)) + (await count(h2.d)), stop };
  } catch (e) {
    await stop();
    // Reported as the other sections report a failure: a message, not a stack trace.
    throw new MismatchError((e as Error).message);
  }
}

/** VM2 sends each frame back, addresses swapped; VM1 times round trips one at a time, then keeps a window in flight. */
async function echoes(vm1: Vm, vm2: Vm): Promise<{ rttUs: number; perSec: number; sent: number }> {
  vm2.removeAllListeners('frame');
  vm2.on('frame', (f: Buffer) => {
    const back = Buffer.from(f);
    f.copy(back, 0, 6, 12);
    f.copy(back, 6, 0, 6);
    vm2.send(back);
  });
  const next = () =>
    new Promise<void>((resolve, reject) => {
      const late = setTimeout(() => reject(new MismatchError('an echo did not come back within a second')), 1000);
      vm1.once('frame', () => (clearTimeout(late), resolve()));
    });
  const small = ethernet(VM_BASE + 2, VM_BASE + 1, 64);
  const rtts: number[] = [];
  for (let i = 0; i < QEMU_ECHOES; i++) {
    const t0 = process.hrtime.bigint();
    const back = next();
    vm1.send(small);
    await back;
    rtts.push(Number(process.hrtime.bigint() - t0) / 1000);
  }
  const full = ethernet(VM_BASE + 2, VM_BASE + 1, 1514);
  let got = 0;
  let sent = QEMU_ECHOES;
  const t0 = process.hrtime.bigint();
  await new Promise<void>((resolve, reject) => {
    const late = setTimeout(() => reject(new MismatchError(`the stream stalled: ${got} of ${QEMU_STREAM} echoes back`)), 2000);
    // Each echo back sends the next frame: a frame lost on the way narrows the window, and costs its time.
    vm1.on('frame', () => {
      // A stream's chunk may hold echoes past the last: they send nothing.
      if (++got >= QEMU_STREAM) return void (got === QEMU_STREAM && (clearTimeout(late), resolve()));
      late.refresh();
      vm1.send(full);
      sent++;
    });
    for (let i = 0; i < QEMU_WINDOW; i++, sent++) vm1.send(full);
  });
  vm1.removeAllListeners('frame');
  return { rttUs: median(rtts), perSec: QEMU_STREAM / (Number(process.hrtime.bigint() - t0) / 1e9), sent };
}

const qemuSection = (kind: QemuKind): Section => async (_opts, progress) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'vnetd-bench-qemu-'));
  const pairs: VmPair[] = [];
  const stream = kind === 'qemu-stream';
  const name = stream ? 'qemu-stream' : 'qemu';
  try {
    progress(`${name}: starting vnetd with and without its fast path ... `);
    const fast = await qemuPair(dir, kind, []);
    pairs.push(fast);
    const js = await qemuPair(dir, kind, ['--no-fast-path']);
    pairs.push(js);
    const direct = await directPair(kind);
    pairs.push(direct);
    progress('ok\n');
    type Run = Awaited<ReturnType<typeof echoes>>;
    const runs = { fast: [] as Run[], js: [] as Run[], direct: [] as Run[] };
    for (let r = 0; r < QEMU_ROUNDS; r++) {
      progress(`${name}: round ${r + 1} of ${QEMU_ROUNDS} ... `);
      runs.fast.push(await echoes(fast.vm1, fast.vm2));
      runs.js.push(await echoes(js.vm1, js.vm2));
      runs.direct.push(await echoes(direct.vm1, direct.vm2));
      progress('done\n');
    }
    // Every frame VM1 sent crosses the two daemons there and, echoed, back, unless it was lost.
    const crossings = 4 * runs.fast.reduce((sum, x) => sum + x.sent, 0);
    const [inC, inJs] = [await fast.carried(), await js.carried()];
    if (inC < crossings * 0.99 || inJs !== 0) throw new MismatchError(`the fast path carried ${inC} of ${crossings} frames (with --no-fast-path ${inJs})`);
    const rtt = (k: keyof typeof runs) => median(runs[k].map((x) => x.rttUs));
    const rate = (k: keyof typeof runs) => median(runs[k].map((x) => x.perSec));
    return {
      title: `QEMU ${stream ? 'stream' : 'datagram'} NICs through two vnetd processes and an encrypted UDP link, loopback`,
      setup: [
        `path      VM1 -> ${kind} -> vnetd h1 -> UDP link -> vnetd h2 -> ${kind} -> VM2, which sends each frame back the same way: four daemon traversals per echo`,
        stream
          ? `VMs       TCP connections of this process, as QEMU's -netdev stream is; "direct" is the same echoes over one connection between them, no daemon`
          : `VMs       UDP sockets of this process, as QEMU's -netdev dgram is; "direct" is the same echoes between them with no daemon`,
        `echoes    ${QEMU_ECHOES} of 64 bytes one at a time (median round trip), then ${QEMU_STREAM.toLocaleString('en-US')} of 1514 bytes ${QEMU_WINDOW} in flight; median of ${QEMU_ROUNDS} alternating rounds`,
        `checked   the fast path carried ${inC.toLocaleString('en-US')} of the ${crossings.toLocaleString('en-US')} daemon crossings in C (the others: each flow's first frame, in JavaScript, and any lost); --no-fast-path none`,
        `extra     the fast path adds ${(rtt('fast') - rtt('direct')).toFixed(0)} µs per round trip to the direct one, JavaScript ${(rtt('js') - rtt('direct')).toFixed(0)} µs`,
        `limit     with the fast path the echo rate is ${(rate('fast') / rate('direct')).toFixed(2)}x the direct one: this process, playing both VMs, is close to its own limit`,
      ],
      figures: [
        { name: 'round trip, fast path', value: rtt('fast'), unit: 'µs', baseline: { name: '--no-fast-path', value: rtt('js'), ratio: rtt('fast') / rtt('js') } },
        { name: 'round trip, --no-fast-path', value: rtt('js'), unit: 'µs', baseline: { name: 'direct', value: rtt('direct'), ratio: rtt('js') / rtt('direct') } },
        { name: '1514-byte echoes, fast path', value: rate('fast'), unit: 'echoes/s', baseline: { name: '--no-fast-path', value: rate('js'), ratio: rate('fast') / rate('js') } },
        { name: '1514-byte echoes, --no-fast-path', value: rate('js'), unit: 'echoes/s', baseline: { name: 'direct', value: rate('direct'), ratio: rate('js') / rate('direct') } },
      ],
      targets: [],
    };
  } finally {
    for (const p of pairs) await p.stop();
    await rm(dir, { recursive: true, force: true });
  }
};

// ---------------------------------------------------------------------------
// The commit section: what a change costs to make durable on a large table.

const SINGLE_COMMITS = 200;
const BATCH_CHANGES = 10_000;

function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(p * s.length))]!;
}

/** Milliseconds to append `bytes` to a file and fdatasync it, `times` times. */
async function bareAppends(file: string, bytes: number, times: number): Promise<number[]> {
  const fh = await open(file, 'a', 0o600);
  const record = Buffer.alloc(bytes, 0x41);
  const ms: number[] = [];
  try {
    for (let i = 0; i < times; i++) {
      const t0 = performance.now();
      await fh.appendFile(record);
      await fh.datasync();
      ms.push(performance.now() - t0);
    }
  } finally {
    await fh.close();
  }
  return ms;
}

const commitSection: Section = async (opts, progress) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'vnetd-bench-'));
  const daemon = new Vnetd({ machine: 'h1', port: 0, listen: '127.0.0.1', stateDir: path.join(dir, 'state'), interfaces: [new MemoryInterface('vm0')], log: () => {} });
  const addRule = (i: number): Change => ({ op: 'rule-add', rule: { src: { q: 'any' }, dst: exact(vmMac(i)), dest: { kind: 'interface', iface: 'vm0' } } });
  const commit = async (changes: Change[]): Promise<number> => {
    const t0 = performance.now();
    const r = await daemon.commit(changes);
    if (!r.ok) throw new MismatchError(`the daemon refused a bench commit: ${r.errors.find((e) => e)?.message ?? r.fatal?.message}`);
    return performance.now() - t0;
  };
  try {
    await daemon.start();
    progress(`commit: ${opts.rules.toLocaleString('en-US')} rules in one batch (the first snapshot) ... `);
    const first = await commit(Array.from({ length: opts.rules }, (_, i) => addRule(i)));
    progress(`${first.toFixed(0)} ms\n`);
    let next = opts.rules;
    progress(`commit: ${SINGLE_COMMITS} single RULE ADDs vs a bare synced append ... `);
    const single: number[] = [];
    const bare: number[] = [];
    const probe = formatCommand(addRule(next));
    // Alternating, so a burst of disk load hits both.
    for (let i = 0; i < SINGLE_COMMITS; i++) {
      single.push(await commit([addRule(next++)]));
      bare.push(...(await bareAppends(path.join(dir, 'bare'), probe.length + 40, 1)));
    }
    progress('done\n');
    progress(`commit: a ${BATCH_CHANGES.toLocaleString('en-US')}-change batch ... `);
    const batch = Array.from({ length: BATCH_CHANGES }, () => addRule(next++));
    const batchAdd = await commit(batch);
    progress('done\n');
    progress('commit: the same batch in memory only, on a table of the same size ... ');
    const config = new Config('h1', new Set(['vm0']));
    const table = new ForwardingTable();
    table.attach({ kind: 'interface', iface: 'vm0' });
    const base = Array.from({ length: opts.rules }, (_, i) => addRule(i));
    config.apply(base);
    for (const c of base) if (c.op === 'rule-add') table.add({ machine: 'h1', ...c.rule });
    const t0 = performance.now();
    if (!config.apply(batch).ok) throw new MismatchError('the in-memory baseline refused the batch');
    for (const c of batch) if (c.op === 'rule-add') table.add({ machine: 'h1', ...c.rule });
    const batchMemory = performance.now() - t0;
    progress('done\n');
    const rules = daemon.table.size;
    const med = median(single);
    const bareMed = median(bare);
    return {
      title: `durable commits on a daemon holding ${rules.toLocaleString('en-US')} rules`,
      setup: [
        `first     ${opts.rules.toLocaleString('en-US')} rules in one batch: ${first.toFixed(0)} ms (checked, written as the first snapshot, installed)`,
        `single    ${SINGLE_COMMITS} commits of one RULE ADD: median ${med.toFixed(3)} ms, p90 ${percentile(single, 0.9).toFixed(3)} ms, max ${Math.max(...single).toFixed(3)} ms`,
        `bare      ${SINGLE_COMMITS} appends of ${probe.length + 40} bytes + fdatasync: median ${bareMed.toFixed(3)} ms, p90 ${percentile(bare, 0.9).toFixed(3)} ms`,
        `batch     ${BATCH_CHANGES.toLocaleString('en-US')} RULE ADDs in one commit: ${batchAdd.toFixed(1)} ms (${Math.round(BATCH_CHANGES / (batchAdd / 1000)).toLocaleString('en-US')} changes/s)`,
      ],
      figures: [
        { name: 'one RULE ADD, committed', value: med, unit: 'ms', baseline: { name: 'bare synced append', value: bareMed, ratio: med / bareMed } },
        { name: `${BATCH_CHANGES.toLocaleString('en-US')}-change batch, committed`, value: batchAdd, unit: 'ms', baseline: { name: 'same batch, in memory only', value: batchMemory, ratio: batchAdd / batchMemory } },
      ],
      targets: [],
    };
  } finally {
    await daemon.stop();
    await rm(dir, { recursive: true, force: true });
  }
};

const SECTIONS: Record<string, { about: string; run: Section }> = {
  lookup: { about: 'forwarding-table lookup rate, warm and cold', run: lookupSection },
  forward: { about: 'frames/s through one daemon between two in-memory interfaces', run: forwardSection },
  qemu: { about: 'round trip and echo rate between QEMU datagram NICs through two daemons and a UDP link, fast path on and off', run: qemuSection('qemu-udp') },
  'qemu-stream': { about: 'the same between QEMU stream NICs', run: qemuSection('qemu-stream') },
  commit: { about: 'durable commit latency on a large table: one change, a 10,000-change batch', run: commitSection },
};

// ---------------------------------------------------------------------------
// Output

const fmtRate = (x: number) => (x >= 1e6 ? `${(x / 1e6).toFixed(2)} M` : x >= 1e3 ? `${(x / 1e3).toFixed(1)} k` : x.toFixed(0));
/** Rates in k/M; durations in ms, which are small numbers. */
const fmtValue = (x: number, unit: string) => (unit === 'ms' ? x.toFixed(x < 10 ? 3 : 1) : unit === 'µs' ? x.toFixed(0) : fmtRate(x));

function render(reports: SectionReport[]): string {
  const sections = reports.map((r) => ({
    ...r,
    rows: r.figures.map((f): [string, string, string, string] => [
      f.name,
      `${fmtValue(f.value, f.unit)} ${f.unit}`,
      f.baseline ? `${f.baseline.name}: ${fmtValue(f.baseline.value, f.unit)}` : '',
      f.baseline ? `${f.baseline.ratio.toFixed(2)}x` : '',
    ]),
  }));
  const targets = reports.flatMap((r) => r.targets).map((t) => ({ ...t, detail: `${fmtRate(t.value)} ${t.unit} (target ${fmtRate(t.limit)})` }));
  return renderReport('vnetd benchmark', sections, targets);
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      section: { type: 'string', multiple: true },
      rules: { type: 'string', default: '100000' },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  const usage = `usage: node dist/bench/daemon.js [--section ${Object.keys(SECTIONS).join('|')}]... [--rules N] [--json]\n${Object.entries(SECTIONS)
    .map(([name, s]) => `  ${name.padEnd(11)} ${s.about}`)
    .join('\n')}\n`;
  if (values.help) {
    process.stdout.write(usage);
    return 0;
  }
  const rules = Number(values.rules);
  const names = values.section ?? Object.keys(SECTIONS);
  const unknown = names.filter((n) => !(n in SECTIONS));
  if (!Number.isInteger(rules) || rules <= 0 || unknown.length > 0) {
    process.stderr.write(unknown.length > 0 ? `unknown section: ${unknown.join(', ')}\n${usage}` : `--rules must be a positive whole number\n${usage}`);
    return 1;
  }
  const progress = (s: string) => void process.stderr.write(s);
  try {
    const reports: SectionReport[] = [];
    for (const name of names) reports.push(await SECTIONS[name]!.run({ rules }, progress));
    if (values.json) {
      process.stdout.write(JSON.stringify({ node: process.version, cpus: os.cpus().length, loadavg: os.loadavg(), sections: reports }, null, 2) + '\n');
    } else {
      process.stdout.write(render(reports));
    }
  } catch (e) {
    if (e instanceof MismatchError || e instanceof RangeError) {
      process.stderr.write(`\nerror: ${e.message}\n`);
      return 1;
    }
    throw e;
  }
  // Printed so the timed loops' results are observably used.
  if (sink === -1) process.stderr.write('\n');
  return 0;
}

process.exitCode = await main();
