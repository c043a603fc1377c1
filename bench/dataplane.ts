/**
 * Data-plane benchmark on the namespace testbed (test/netns/testbed.ts):
 * VM-to-VM ping round-trip time (the median, and the CPU the path's daemons
 * spent per echo), TCP throughput (iperf3, one stream, 1500-byte
 * frames) and 64-byte-frame rate (iperf3 UDP, 18-byte payloads, as fast as it
 * goes, counted at the receiver) for
 *   (a) two VM namespaces on a bare veth pair: the physical limit here;
 *   (b) vnetd one hop, pcap at both ends, over TCP and UDP links, encrypted and auth-only;
 *   (c) vnetd two hops, through the Proxy;
 *   (d) tinc 1.0 in switch mode between the same hosts, its VMs bridged to its
 *       tap device: with its default cipher and digest, and with neither.
 * Every figure is printed with its ratios to (a) and to (d) from the same run.
 * For vnetd's encrypted UDP link and tinc's default, the added round trip
 * is measured again with their daemons and the pings held on one CPU, which
 * says how much of it is waking idle CPUs (needs taskset and two CPUs).
 *
 *   npm run bench:dataplane            about a minute
 *   node dist/bench/dataplane.js --seconds 2 --json
 *
 * Needs root, iproute2, ethtool, ping, iperf3 and vnetd's pcap support; says
 * what is missing otherwise. Without tincd (Debian package tinc) the tinc
 * rows are left out and said to be. VMs checksum and segment their own frames (no
 * offloads), the baseline's too, so the paths differ only in what carries
 * the frames. The machine is shared and noisy: read the ratios.
 *
 * Exit status: 0 whether or not the figures please; 1 if the testbed cannot
 * be built or a VM cannot reach the other.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import dgram from 'node:dgram';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import { availableParallelism } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { pcapBinding } from '../daemon/interfaces/pcap.js';
import { batch, linkUp, netnsUnavailable, Testbed } from '../test/netns/testbed.js';
import { median } from './stats.js';
import { aligned } from './table.js';

const MAC = { vm1: '02:00:00:00:01:01', vm2: '02:00:00:00:02:02', bcast: 'ff:ff:ff:ff:ff:ff' };
const VM1 = '10.201.0.1';
const VM2 = '10.201.0.2';
const PORT = 5000;

interface Row {
  path: string;
  /** Median round trip of the ping run. */
  rttUs: number;
  /** Median round trip of the direct veth path, pinged in rounds alternating with this path's (the same as rttUs for that path). */
  directRttUs: number;
  /** The same two with the echoes 0.2 ms apart: the path's own latency, with CPUs too busy to doze between frames. */
  busyRttUs: number;
  directBusyRttUs: number;
  /** CPU the forwarding daemons (vnetd or tincd, all of them, every thread) used per echo; null with no daemon. */
  cpuUsPerEcho: number | null;
  /** Median added round trip with the daemons and both pings held on one CPU (oneCpu), where it was measured. */
  oneCpuAddedUs?: number;
  tcpGbit: number;
  udp64Kpps: number;
}

function fail(message: string): never {
  process.stderr.write(`bench:dataplane: ${message}\n`);
  process.exit(1);
}

/**
 * tinc 1.0 in switch mode on hosts h1 and h2, VM namespaces t1 and t2 bridged
 * to its tap device. Returns its processes' pids and a function that stops it.
 */
async function startTinc(tb: Testbed, variant: 'default' | 'none'): Promise<{ pids: number[]; stop: () => Promise<void> }> {
  const procs: ChildProcess[] = [];
  const hosts = [['h1', 'h2'], ['h2', 'h1']] as const;
  const dirs = new Map(hosts.map(([h]) => [h, path.join(tb.dir, `tinc-${variant}`, h)]));
  for (const [h] of hosts) {
    const dir = dirs.get(h)!;
    fs.mkdirSync(path.join(dir, 'hosts'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'tinc.conf'), `Name = ${h}\nMode = switch\nDeviceType = tap\nInterface = tinc0\nAddressFamily = ipv4\n${h === 'h1' ? 'ConnectTo = h2\n' : ''}`);
    const cipher = variant === 'none' ? 'Cipher = none\nDigest = none\n' : '';
    fs.writeFileSync(path.join(dir, 'hosts', h), `Address = ${tb.lanAddress.get(h)}\nPort = 655\n${cipher}`);
    fs.writeFileSync(path.join(dir, 'tinc-up'), '#!/bin/sh\nip link set "$INTERFACE" master brt up\n', { mode: 0o755 });
    const k = spawnSync('tincd', ['-c', dir, '-K', '2048'], { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
    if (k.status !== 0) fail(`tincd -K: ${k.stderr}`);
  }
  for (const [h, other] of hosts) fs.copyFileSync(path.join(dirs.get(other)!, 'hosts', other), path.join(dirs.get(h)!, 'hosts', other));
  for (const [h] of hosts) {
    const dir = dirs.get(h)!;
    procs.push(spawn('ip', ['netns', 'exec', tb.ns(h), 'tincd', '-c', dir, '-D', '-d0', `--pidfile=${dir}/pid`], { stdio: 'ignore' }));
  }
  const end = Date.now() + 20_000;
  while (!(await tb.exec('t1', ['ping', '-c', '1', '-W', '1', VM2]).then(() => true, () => false))) {
    if (Date.now() > end) fail(`tinc (${variant}): t1 cannot reach t2`);
  }
  // `ip netns exec` execs tincd in place: the pid is tincd's.
  const pids = procs.map((p) => p.pid!);
  return {
    pids,
    stop: async () => {
      for (const p of procs) {
        const exited = new Promise((r) => p.once('exit', r));
        p.kill('SIGTERM');
        await exited;
      }
    },
  };
}

/** CPU time a process has used so far, every thread, in µs (the scheduler's own count, in ns, not clock ticks). */
function cpuUs(pid: number): number {
  let ns = 0;
  for (const tid of fs.readdirSync(`/proc/${pid}/task`)) ns += Number(fs.readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
  return ns / 1000;
}

const ECHOES = 500;
const ROUNDS = 10;
const JS_ROW = 'vnetd 1 hop, TCP encrypt, no fast path';
/** The VM namespace of the bare veth pair that pings the other. */
const DIRECT_FROM = 'd1';

/** Round trips from `from` to VM2, in µs: `count` echoes `interval` s apart, ping held on CPU `cpu` if given. */
async function pings(tb: Testbed, path: string, from: string, count: number, interval: string, cpu?: number): Promise<number[]> {
  const ping = ['ping', '-c', String(count), '-i', interval, VM2];
  // ping exits 1 when an echo is missing: the count below judges that.
  const { stdout } = await tb.exec(from, cpu === undefined ? ping : ['taskset', '-c', String(cpu), ...ping]).catch((e: { stdout?: string }) => ({ stdout: e.stdout ?? '' }));
  const times = [...stdout.matchAll(/time=([\d.]+) ms/g)].map((m) => Number(m[1]) * 1000);
  if (times.length < count / 2) fail(`${path}: only ${times.length} of ${count} echoes ${interval} s apart came back:\n${stdout.split('\n').slice(-3).join('\n')}`);
  return times;
}

/**
 * Round trips of `path` and of the direct veth path, in ROUNDS alternating
 * blocks (ABBA), so that whatever else the shared machine is doing weighs on
 * both alike and "added" is not the drift between a baseline taken minutes
 * earlier and this path. `spent` is what `pids` used during this path's blocks.
 */
async function pairedPings(tb: Testbed, path: string, from: string, interval: string, pids: number[], cpu?: number): Promise<{ times: number[]; direct: number[]; spent: number }> {
  const times: number[] = [];
  const direct: number[] = [];
  let spent = 0;
  const own = async () => {
    const before = pids.map(cpuUs);
    times.push(...(await pings(tb, path, from, ECHOES / ROUNDS, interval, cpu)));
    spent += pids.reduce((sum, pid, i) => sum + cpuUs(pid) - before[i]!, 0);
  };
  const baseline = async () => void direct.push(...(await pings(tb, 'direct veth', DIRECT_FROM, ECHOES / ROUNDS, interval, cpu)));
  for (let round = 0; round < ROUNDS; round++) {
    for (const block of from === DIRECT_FROM ? [own] : round % 2 ? [own, baseline] : [baseline, own]) await block();
  }
  return { times, direct: from === DIRECT_FROM ? times : direct, spent };
}

/**
 * The added round trip with the path's daemons (every thread) and the pings
 * of both paths held on CPU 0, so that no frame wakes an idle CPU: set
 * beside the free figure, it says how much of that is waking them. The
 * daemons get their own CPU masks back after.
 */
async function onOneCpu(tb: Testbed, path: string, from: string, pids: number[]): Promise<number> {
  const taskset = (args: string[]): string => {
    const r = spawnSync('taskset', args, { encoding: 'utf8' });
    if (r.status !== 0) fail(`taskset ${args.join(' ')}: ${r.stderr.trim()}`);
    return r.stdout;
  };
  // "pid 123's current affinity mask: 3"
  const masks = pids.map((pid) => taskset(['-p', String(pid)]).trim().split(' ').pop()!);
  try {
    for (const pid of pids) taskset(['-a', '-p', '-c', '0', String(pid)]);
    const { times, direct } = await pairedPings(tb, path, from, '0.002', [], 0);
    return median(times) - median(direct);
  } finally {
    pids.forEach((pid, i) => taskset(['-a', '-p', masks[i]!, String(pid)]));
  }
}

/**
 * Round-trip time, TCP throughput and small-frame rate from one VM namespace
 * to the other, and what the daemons `pids` spent per echo: at ping rates
 * a frame's time in a daemon is mostly its CPU time.
 */
async function measure(tb: Testbed, path: string, from: string, to: string, seconds: number, pids: number[] = [], alsoOnOneCpu = false): Promise<Row> {
  // The first ping resolves ARP (through the star where there is one) and proves the path.
  await tb.exec(from, ['ping', '-c', '3', '-i', '0.1', '-W', '2', VM2]).catch(() => fail(`${path}: ${from} cannot ping ${VM2}`));
  const calm = await pairedPings(tb, path, from, '0.002', pids);
  const busy = await pairedPings(tb, path, from, '0.0002', []);
  const oneCpuAddedUs = alsoOnOneCpu ? await onOneCpu(tb, path, from, pids) : undefined;

  const iperf = async (args: string[]): Promise<{ end: Record<string, unknown> }> => {
    const server = spawn('ip', ['netns', 'exec', tb.ns(to), 'iperf3', '-s', '-1', '--forceflush', '-B', VM2], { stdio: ['ignore', 'pipe', 'pipe'] });
    try {
      // Dialling before it listens is refused, and a busy machine can take a while to start it. (--forceflush: its stdout is a pipe.)
      let said = '';
      await new Promise<void>((resolve, reject) => {
        const late = setTimeout(() => reject(new Error(`iperf3 -s in ${to} did not start listening in 10 s${said ? `: ${said.trim()}` : ''}`)), 10_000);
        const hear = (b: Buffer) => {
          said += b.toString();
          if (/listening/i.test(said)) (clearTimeout(late), resolve());
        };
        server.stdout!.on('data', hear);
        server.stderr!.on('data', hear);
        server.once('exit', (code) => (clearTimeout(late), reject(new Error(`iperf3 -s in ${to} exited (${code}): ${said.trim()}`))));
      });
      const { stdout } = await tb.exec(from, ['iperf3', '-c', VM2, '-J', '-t', String(seconds), ...args], (seconds + 20) * 1000).catch((e: { stdout?: string; message?: string }) => ({ stdout: e.stdout || `{"error": ${JSON.stringify(e.message ?? 'failed')}}` }));
      const result = JSON.parse(stdout) as { end: Record<string, unknown>; error?: string };
      if (result.error) fail(`${path}: iperf3 ${args.join(' ') || 'TCP'} from ${from}: ${result.error}`);
      return result;
    } finally {
      server.kill();
    }
  };
  const tcp = (await iperf([])).end as { sum_received: { bits_per_second: number } };
  const udp = (await iperf(['-u', '-b', '0', '-l', '18'])).end as { sum: { packets: number; lost_packets: number; seconds: number } };
  return {
    path,
    rttUs: median(calm.times),
    directRttUs: median(calm.direct),
    busyRttUs: median(busy.times),
    directBusyRttUs: median(busy.direct),
    cpuUsPerEcho: pids.length ? calm.spent / calm.times.length : null,
    ...(oneCpuAddedUs === undefined ? {} : { oneCpuAddedUs }),
    tcpGbit: tcp.sum_received.bits_per_second / 1e9,
    udp64Kpps: (udp.sum.packets - udp.sum.lost_packets) / udp.sum.seconds / 1000,
  };
}

/** A Node process that sends back each datagram it receives: the least a JavaScript forwarder can spend per frame. */
const ECHO_SERVER = `import dgram from 'node:dgram';
const s = dgram.createSocket('udp4');
s.on('message', (m, r) => s.send(m, r.port, r.address));
s.bind(0, '127.0.0.1', () => console.log(s.address().port));`;

/**
 * The event loop's own floor, same run: CPU per echo of ECHO_SERVER on
 * loopback, echoes 2 ms apart like the pings. Each echo is one wake-up, one
 * receive and one send, which is what one vnetd traversal of a ping is at
 * the least (a one-hop round trip is four of them).
 */
async function eventLoopFloor(): Promise<number> {
  const server = spawn(process.execPath, ['--input-type=module', '-e', ECHO_SERVER], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    const port = await new Promise<number>((resolve, reject) => {
      server.stdout!.once('data', (b: Buffer) => resolve(Number(b.toString().trim())));
      server.once('exit', () => reject(new Error('the echo server exited')));
    });
    const client = dgram.createSocket('udp4');
    await new Promise<void>((r) => client.bind(0, '127.0.0.1', () => r()));
    const frame = Buffer.alloc(98);
    const before = cpuUs(server.pid!);
    let back = 0;
    for (let i = 0; i < ECHOES; i++) {
      const echoed = new Promise<void>((resolve) => {
        const late = setTimeout(resolve, 100);
        client.once('message', () => (clearTimeout(late), back++, resolve()));
      });
      client.send(frame, port, '127.0.0.1');
      await echoed;
      await new Promise((r) => setTimeout(r, 2));
    }
    client.close();
    if (back < ECHOES / 2) fail(`the event-loop floor's echo server answered ${back} of ${ECHOES}`);
    return (cpuUs(server.pid!) - before) / back;
  } finally {
    server.kill();
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { seconds: { type: 'string', default: '3' }, json: { type: 'boolean', default: false } } });
  const seconds = Number(values.seconds);
  if (!(seconds >= 1 && seconds <= 60)) fail('--seconds must be 1..60');
  const missing = netnsUnavailable() ?? (typeof pcapBinding() === 'string' ? (pcapBinding() as string) : null);
  if (missing) fail(missing);
  for (const tool of ['iperf3', 'ethtool', 'ping']) {
    if (spawnSync('sh', ['-c', 'command -v "$0"', tool]).status !== 0) fail(`${tool} is not installed (apt-get install ${tool === 'ping' ? 'iputils-ping' : tool})`);
  }

  const hasTinc = spawnSync('sh', ['-c', 'command -v tincd']).status === 0;
  const canPin = availableParallelism() > 1 && spawnSync('sh', ['-c', 'command -v taskset']).status === 0;
  if (!hasTinc) process.stderr.write('bench:dataplane: tincd is not installed (apt-get install tinc): no tinc rows\n');
  const tb = await Testbed.create();
  const cleanup = () => void tb.destroy().finally(() => process.exit(130));
  process.once('SIGINT', cleanup);
  process.once('SIGTERM', cleanup);
  const rows: Row[] = [];
  try {
    await tb.lan(['proxy', 'h1', 'h2']);
    await tb.vm('h1', 'vm1', 'vm1', MAC.vm1, VM1);
    await tb.vm('h2', 'vm2', 'vm2', MAC.vm2, VM2);
    await tb.vmPair({ vm: 'd1', mac: MAC.vm1, addr: VM1 }, { vm: 'd2', mac: MAC.vm2, addr: VM2 });
    if (hasTinc) {
      for (const [h, vm, port, mac] of [['h1', 't1', 'tvm1', MAC.vm1], ['h2', 't2', 'tvm2', MAC.vm2]] as const) {
        await tb.vm(h, vm, port, mac, vm === 't1' ? VM1 : VM2);
        await tb.exec(h, ['ip', 'link', 'add', 'brt', 'type', 'bridge']);
        await tb.exec(h, ['ip', 'link', 'set', port, 'master', 'brt']);
        await tb.exec(h, ['ip', 'link', 'set', 'brt', 'up']);
      }
    }
    const host = (name: 'h1' | 'h2', flags: string[] = []) => tb.vnetd(name, name, PORT, [`vm${name.slice(1)}=pcap:vm${name.slice(1)}`], flags);
    const proxy = await tb.vnetd('proxy', 'proxy', PORT);
    let [h1, h2] = await Promise.all([host('h1'), host('h2')]);
    /** Stops both hosts' daemons and starts them again (they restore their links and rules), with `flags`. */
    const restart = async (flags: string[]): Promise<void> => {
      for (const d of [h1, h2]) {
        d.ctl.close();
        const gone = new Promise((r) => d.proc.once('exit', r));
        d.proc.kill('SIGTERM');
        await gone;
      }
      [h1, h2] = await Promise.all([host('h1', flags), host('h2', flags)]);
      await linkUp(h1, 'h2');
      await linkUp(h2, 'h1');
    };

    rows.push(await measure(tb, 'direct veth (no overlay)', DIRECT_FROM, 'd2', seconds));
    if (hasTinc) {
      for (const variant of ['default', 'none'] as const) {
        const tinc = await startTinc(tb, variant);
        rows.push(await measure(tb, variant === 'default' ? 'tinc 1.0 switch, default cipher' : 'tinc 1.0 switch, no cipher', 't1', 't2', seconds, tinc.pids, canPin && variant === 'default'));
        await tinc.stop();
      }
    }

    // One hop: each host delivers its VM's frames, and sends everything else from it to the other host.
    for (const [d, vm] of [[h1, 'vm1'], [h2, 'vm2']] as const) {
      const m = MAC[vm];
      await batch(d, [`RULE ADD NOT ${m} ${MAC.bcast} IFACE ${vm}`, `RULE ADD ANY ${m} IFACE ${vm}`]);
    }
    let first = true;
    for (const proto of ['TCP', 'UDP'] as const) {
      for (const mode of ['ENCRYPT', 'AUTH-ONLY'] as const) {
        const k = randomBytes(32).toString('hex');
        // LINK ADD replaces the link in place; the default rules keep using it.
        await batch(h2, [`LINK ADD h1 ${proto} ACCEPT - ${k} ${mode}`, ...(first ? [`RULE ADD ${MAC.vm2} NONE LINK h1`] : [])]);
        await batch(h1, [`LINK ADD h2 ${proto} DIAL ${tb.lanAddress.get('h2')}:${PORT} ${k} ${mode}`, ...(first ? [`RULE ADD ${MAC.vm1} NONE LINK h2`] : [])]);
        first = false;
        await linkUp(h1, 'h2');
        await linkUp(h2, 'h1');
        rows.push(await measure(tb, `vnetd 1 hop, ${proto} ${mode.toLowerCase()}`, 'vm1', 'vm2', seconds, [h1, h2].map((d) => d.proc.pid!), canPin && proto === 'UDP' && mode === 'ENCRYPT'));
      }
    }

    // The same hop with every frame forwarded in JavaScript, for the event loop's floor below.
    const k = randomBytes(32).toString('hex');
    await batch(h2, [`LINK ADD h1 TCP ACCEPT - ${k}`]);
    await batch(h1, [`LINK ADD h2 TCP DIAL ${tb.lanAddress.get('h2')}:${PORT} ${k}`]);
    await restart(['--no-fast-path']);
    rows.push(await measure(tb, JS_ROW, 'vm1', 'vm2', seconds, [h1, h2].map((d) => d.proc.pid!)));
    await restart([]);

    // Two hops: the hosts' default rules now point at the Proxy, which knows where each VM is.
    const [k1, k2] = [randomBytes(32).toString('hex'), randomBytes(32).toString('hex')];
    await batch(proxy, [`LINK ADD h1 TCP ACCEPT - ${k1}`, `LINK ADD h2 TCP ACCEPT - ${k2}`,
      `RULE ADD ANY ${MAC.vm1} LINK h1`, `RULE ADD ANY ${MAC.vm2} LINK h2`, `RULE ADD ANY ${MAC.bcast} LINK h1`, `RULE ADD ANY ${MAC.bcast} LINK h2`]);
    for (const [d, vm, other, k] of [[h1, 'vm1', 'h2', k1], [h2, 'vm2', 'h1', k2]] as const) {
      await batch(d, [`RULE DELETE ${MAC[vm]} NONE LINK ${other}`, `LINK DELETE ${other}`,
        `LINK ADD proxy TCP DIAL ${tb.lanAddress.get('proxy')}:${PORT} ${k}`, `RULE ADD ${MAC[vm]} NONE LINK proxy`]);
      await linkUp(d, 'proxy');
    }
    rows.push(await measure(tb, 'vnetd 2 hops via Proxy, TCP encrypt', 'vm1', 'vm2', seconds, [h1, h2, proxy].map((d) => d.proc.pid!)));
  } finally {
    await tb.destroy();
  }

  const floor = await eventLoopFloor();
  const base = rows[0]!;
  const tinc = hasTinc ? rows[1]! : undefined;
  const oneHop = rows.find((r) => r.path === JS_ROW)!;
  // Against the direct path's echoes from the same rounds, not rows[0]'s from minutes before.
  const added = (r: Row) => r.rttUs - r.directRttUs;
  const busyAdded = (r: Row) => r.busyRttUs - r.directBusyRttUs;
  if (values.json) {
    process.stdout.write(JSON.stringify({ eventLoopFloorUsPerEcho: floor, rows: rows.map((r) => ({ ...r, addedRttUs: added(r), addedBusyRttUs: busyAdded(r), tcpVsDirect: r.tcpGbit / base.tcpGbit,
      ...(tinc ? { tcpVsTinc: r.tcpGbit / tinc.tcpGbit } : {}) })) }, null, 2) + '\n');
    return;
  }
  const fmt = (n: number, d: number) => n.toFixed(d);
  const vsTinc = (n: number, t: number | undefined) => (t === undefined ? '-' : fmt(n / t, 3));
  const header = ['path', 'RTT µs', 'direct µs', 'added µs', 'busy: added', 'CPU µs/echo', 'TCP Gbit/s', 'x direct', 'x tinc', '64B kpps', 'x direct', 'x tinc'];
  const table = rows.map((r) => [r.path, fmt(r.rttUs, 0), fmt(r.directRttUs, 0), r === base ? '-' : fmt(added(r), 0), r === base ? '-' : fmt(busyAdded(r), 0), r.cpuUsPerEcho === null ? '-' : fmt(r.cpuUsPerEcho, 0), fmt(r.tcpGbit, 3),
    fmt(r.tcpGbit / base.tcpGbit, 3), vsTinc(r.tcpGbit, tinc?.tcpGbit), fmt(r.udp64Kpps, 1), fmt(r.udp64Kpps / base.udp64Kpps, 3),
    vsTinc(r.udp64Kpps, tinc?.udp64Kpps)]);
  process.stdout.write(aligned([header, ...table], 'l').join('\n') + '\n');
  process.stdout.write(`(${seconds} s per throughput point; ping: median of ${ECHOES} echoes 2 ms apart, with the CPU the path's daemons used per echo,` +
    ` in ${ROUNDS} rounds alternating with as many echoes on the direct path, which "added" is against;` +
    ` "busy": ${ECHOES} more 0.2 ms apart, where no CPU dozes between frames;` +
    ` one iperf3 stream; VMs without offloads, MTU 1500 on a 1500-byte LAN (vnetd's UDP links and tinc clamp TCP's MSS to fit it);` +
    ` "x tinc" is against tinc with its default cipher)\n`);
  // A one-hop round trip crosses the two daemons twice each.
  const perTraversal = oneHop.cpuUsPerEcho! / 4;
  process.stdout.write(`\nevent-loop floor: a Node process that receives and sends back one datagram per wake-up spends ${fmt(floor, 0)} µs of CPU per echo;` +
    ` vnetd spends ${fmt(perTraversal, 0)} µs per traversal of a ping where JavaScript forwards (${JS_ROW}: ${fmt(oneHop.cpuUsPerEcho!, 0)} µs over 4 traversals), ${fmt(perTraversal / floor, 2)}x the floor`);
  // UDP links between pcap interfaces are the fast path's (frames of known flows forwarded in C).
  const fast = rows.find((r) => r.path === 'vnetd 1 hop, UDP encrypt')!;
  const fastTraversal = fast.cpuUsPerEcho! / 4;
  process.stdout.write(`; the fast path (1 hop, UDP encrypt) ${fmt(fastTraversal, 0)} µs, ${fmt(fastTraversal / floor, 2)}x\n`);
  // The target, for each one-hop link with the fast path: all three must hold for one configuration.
  // tinc's latency, same run, says what a C overlay gets from this machine as it is now.
  const misses = (r: Row): string[] => [
    ...(added(r) < 100 ? [] : ['latency']),
    ...(r.tcpGbit >= 1 ? [] : ['1 Gbit/s']),
    ...(!tinc || r.tcpGbit >= tinc.tcpGbit ? [] : ['tinc']),
  ];
  const hops = rows.filter((r) => r.path.startsWith('vnetd 1 hop') && r.path !== JS_ROW);
  process.stdout.write(`target (under 100 µs added per hop, at least 1 Gbit/s${tinc ? `, at least tinc's ${fmt(tinc.tcpGbit, 2)} Gbit/s; tinc adds ${fmt(added(tinc), 0)} µs` : ''}):\n` +
    hops.map((r) => {
      const miss = misses(r);
      return `  ${r.path.slice('vnetd 1 hop, '.length)}: ${fmt(added(r), 0)} µs (${fmt(busyAdded(r), 0)} busy), ${fmt(r.tcpGbit, 2)} Gbit/s: ${miss.length ? `NOT met (${miss.join(', ')})` : 'met'}\n`;
    }).join(''));
  // Not a target: how much of the added time is waking idle CPUs, which a deployment's placement decides, not the daemon.
  const pinned = rows.filter((r) => r.oneCpuAddedUs !== undefined);
  if (pinned.length) {
    process.stdout.write(`on one CPU (the path's daemons and the pings of both paths held on CPU 0, so that no frame wakes an idle CPU): ` +
      `${pinned.map((r) => `${r.path} adds ${fmt(r.oneCpuAddedUs!, 0)} µs (${fmt(added(r), 0)} free)`).join('; ')}\n`);
  }
  process.stdout.write(idleCpus());
}

/**
 * How this machine's idle CPUs sleep, which the 2 ms figures depend on more
 * than on any daemon: every traversal of a round trip wakes one, and a
 * virtual CPU that halts at once (guest_halt_poll_ns 0) is woken through
 * the hypervisor. README.md has what halt polling changed.
 */
function idleCpus(): string {
  const read = (file: string) => {
    try {
      return fs.readFileSync(file, 'utf8').trim();
    } catch {
      return undefined;
    }
  };
  const driver = read('/sys/devices/system/cpu/cpuidle/current_driver');
  if (!driver) return '';
  const poll = driver === 'haltpoll' ? read('/sys/module/haltpoll/parameters/guest_halt_poll_ns') : undefined;
  return `idle CPUs: cpuidle driver ${driver}${poll === undefined ? '' : `, guest_halt_poll_ns ${poll}${poll === '0' ? ' (an idle vCPU halts at once, and each traversal wakes one through the hypervisor)' : ''}`}\n`;
}

main().catch((e: Error) => fail(e.message));
