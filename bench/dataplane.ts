/**
 * Data-plane benchmark on the namespace testbed (test/netns/testbed.ts):
 * VM-to-VM ping round-trip time, TCP throughput (iperf3, one stream, 1500-byte
 * frames) and 64-byte-frame rate (iperf3 UDP, 18-byte payloads, as fast as it
 * goes, counted at the receiver) for
 *   (a) two VM namespaces on a bare veth pair: the physical limit here;
 *   (b) vnetd one hop, pcap at both ends, over TCP and UDP links, encrypted and auth-only;
 *   (c) vnetd two hops, through the Proxy.
 * Every figure is printed with its ratio to (a) from the same run.
 *
 *   npm run bench:dataplane            about a minute
 *   node dist/bench/dataplane.js --seconds 2 --json
 *
 * Needs root, iproute2, ethtool, ping, iperf3 and vnetd's pcap support; says
 * what is missing otherwise. VMs checksum and segment their own frames (no
 * offloads), the baseline's too, so the paths differ only in what carries
 * the frames. The machine is shared and noisy: read the ratios.
 *
 * Exit status: 0 whether or not the figures please; 1 if the testbed cannot
 * be built or a VM cannot reach the other.
 */
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { pcapBinding } from '../daemon/interfaces/pcap.js';
import { netnsUnavailable, Testbed, type Daemon } from '../test/netns/testbed.js';

const MAC = { vm1: '02:00:00:00:01:01', vm2: '02:00:00:00:02:02', bcast: 'ff:ff:ff:ff:ff:ff' };
const VM1 = '10.201.0.1';
const VM2 = '10.201.0.2';
const PORT = 5000;

interface Row {
  path: string;
  rttUs: number;
  tcpGbit: number;
  udp64Kpps: number;
}

function fail(message: string): never {
  process.stderr.write(`bench:dataplane: ${message}\n`);
  process.exit(1);
}

async function request(d: Daemon, line: string): Promise<string[]> {
  const r = await d.ctl.request(line);
  if (!r.ok) fail(`${d.host}: ${line} -> ERR ${r.code} ${r.text}`);
  return r.data;
}

async function batch(d: Daemon, lines: string[]): Promise<void> {
  await request(d, 'BATCH');
  for (const l of lines) await request(d, l);
  await request(d, 'COMMIT');
}

async function linkUp(d: Daemon, peer: string): Promise<void> {
  const end = Date.now() + 15_000;
  for (;;) {
    const line = (await request(d, 'LINKS?')).find((l) => l.startsWith(peer + ' '));
    if (line?.split(' ')[5] === 'up') return;
    if (Date.now() > end) fail(`link ${d.host}–${peer} did not come up:\n${d.log()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Round-trip time, TCP throughput and small-frame rate from one VM namespace to the other. */
async function measure(tb: Testbed, path: string, from: string, to: string, seconds: number): Promise<Row> {
  // The first ping resolves ARP (through the star where there is one) and proves the path.
  await tb.exec(from, ['ping', '-c', '3', '-i', '0.1', '-W', '2', VM2]).catch(() => fail(`${path}: ${from} cannot ping ${VM2}`));
  const ping = await tb.exec(from, ['ping', '-q', '-c', '500', '-i', '0.002', VM2]);
  const avg = /= [\d.]+\/([\d.]+)\//.exec(ping.stdout);
  if (!avg) fail(`${path}: cannot read ping's summary: ${ping.stdout}`);

  const iperf = async (args: string[]): Promise<{ end: Record<string, unknown> }> => {
    const server = spawn('ip', ['netns', 'exec', tb.ns(to), 'iperf3', '-s', '-1', '-B', VM2], { stdio: 'ignore' });
    await new Promise((r) => setTimeout(r, 300));
    try {
      const { stdout } = await tb.exec(from, ['iperf3', '-c', VM2, '-J', '-t', String(seconds), ...args], (seconds + 20) * 1000);
      return JSON.parse(stdout) as { end: Record<string, unknown> };
    } finally {
      server.kill();
    }
  };
  const tcp = (await iperf([])).end as { sum_received: { bits_per_second: number } };
  const udp = (await iperf(['-u', '-b', '0', '-l', '18'])).end as { sum: { packets: number; lost_packets: number; seconds: number } };
  return {
    path,
    rttUs: Number(avg[1]) * 1000,
    tcpGbit: tcp.sum_received.bits_per_second / 1e9,
    udp64Kpps: (udp.sum.packets - udp.sum.lost_packets) / udp.sum.seconds / 1000,
  };
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
    const [proxy, h1, h2] = await Promise.all([
      tb.vnetd('proxy', 'proxy', PORT),
      tb.vnetd('h1', 'h1', PORT, ['vm1=pcap:vm1']),
      tb.vnetd('h2', 'h2', PORT, ['vm2=pcap:vm2']),
    ]);

    rows.push(await measure(tb, 'direct veth (no overlay)', 'd1', 'd2', seconds));

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
        rows.push(await measure(tb, `vnetd 1 hop, ${proto} ${mode.toLowerCase()}`, 'vm1', 'vm2', seconds));
      }
    }

    // Two hops: the hosts' default rules now point at the Proxy, which knows where each VM is.
    const [k1, k2] = [randomBytes(32).toString('hex'), randomBytes(32).toString('hex')];
    await batch(proxy, [`LINK ADD h1 TCP ACCEPT - ${k1}`, `LINK ADD h2 TCP ACCEPT - ${k2}`,
      `RULE ADD ANY ${MAC.vm1} LINK h1`, `RULE ADD ANY ${MAC.vm2} LINK h2`, `RULE ADD ANY ${MAC.bcast} LINK h1`, `RULE ADD ANY ${MAC.bcast} LINK h2`]);
    for (const [d, vm, other, k] of [[h1, 'vm1', 'h2', k1], [h2, 'vm2', 'h1', k2]] as const) {
      await batch(d, [`RULE DELETE ${MAC[vm]} NONE LINK ${other}`, `LINK DELETE ${other}`,
        `LINK ADD proxy TCP DIAL ${tb.lanAddress.get('proxy')}:${PORT} ${k}`, `RULE ADD ${MAC[vm]} NONE LINK proxy`]);
      await linkUp(d, 'proxy');
    }
    rows.push(await measure(tb, 'vnetd 2 hops via Proxy, TCP encrypt', 'vm1', 'vm2', seconds));
  } finally {
    await tb.destroy();
  }

  const base = rows[0]!;
  if (values.json) {
    process.stdout.write(JSON.stringify(rows.map((r) => ({ ...r, tcpRatio: r.tcpGbit / base.tcpGbit, addedRttUs: r.rttUs - base.rttUs })), null, 2) + '\n');
    return;
  }
  const fmt = (n: number, d: number) => n.toFixed(d);
  const header = ['path', 'RTT µs', 'added µs', 'TCP Gbit/s', 'x direct', '64B kpps', 'x direct'];
  const table = rows.map((r) => [r.path, fmt(r.rttUs, 0), r === base ? '-' : fmt(r.rttUs - base.rttUs, 0), fmt(r.tcpGbit, 3),
    fmt(r.tcpGbit / base.tcpGbit, 3), fmt(r.udp64Kpps, 1), fmt(r.udp64Kpps / base.udp64Kpps, 3)]);
  const widths = header.map((h, i) => Math.max(h.length, ...table.map((t) => t[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  process.stdout.write(`${line(header)}\n${table.map(line).join('\n')}\n`);
  process.stdout.write(`(${seconds} s per throughput point; ping: 500 echoes 2 ms apart; one iperf3 stream; VMs without offloads)\n`);
}

main().catch((e: Error) => fail(e.message));
