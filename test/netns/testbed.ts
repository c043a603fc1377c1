import { execFile, execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { isAlive } from '../../src/util/process-alive.js';
import { batch, ok, startVnetd, stopVnetd, type RunningVnetd } from '../support/vnetd-process.js';

/**
 * A testbed of network namespaces for tests and benchmarks: "hosts" on a
 * shared LAN (a bridge in a namespace of its own, each host's eth0 on it,
 * optionally shaped with tc netem), "VMs" attached to their host through a
 * veth pair whose host end vnetd opens with pcap, and one vnetd per host.
 *
 * Every namespace is named `vnt<pid>x<random>-<role>`: the pid lets a later
 * run find and remove what a killed run left behind (sweepStale), the random
 * part keeps concurrent runs apart. destroy() removes everything created,
 * including processes still running inside the namespaces.
 */

const run = promisify(execFile);

/** Receives one TCP stream on port 9000 and prints its length and SHA-256 when it ends. */
const SINK = `const net = require('net'), h = require('crypto').createHash('sha256'); let n = 0;
net.createServer((s) => { s.on('data', (d) => { h.update(d); n += d.length; });
  s.on('end', () => { console.log(n + ' ' + h.digest('hex')); process.exit(0); }); })
  .listen(9000, process.argv[1], () => console.log('ready'));`;
/** Sends random bytes at a steady pace (so that a cut can land mid-transfer) and prints length and SHA-256. */
const SOURCE = `const net = require('net'), c = require('crypto'), h = c.createHash('sha256'); let n = 0;
const total = Number(process.argv[2]);
const s = net.connect(9000, process.argv[1], () => { const t = setInterval(() => {
  if (n >= total) { clearInterval(t); s.end(); console.log(n + ' ' + h.digest('hex')); return; }
  const b = c.randomBytes(16384); h.update(b); n += b.length; s.write(b); }, 5); });`;

const NAME = /^vnt(\d+)x[0-9a-z]+-/;

/** Why namespaces cannot be used here, or null when they can. */
export function netnsUnavailable(): string | null {
  if (process.platform !== 'linux') return 'network namespaces are Linux only';
  if (process.getuid?.() !== 0) return 'creating network namespaces needs root (CI runs as root)';
  try {
    execFileSync('ip', ['-V'], { stdio: 'ignore' });
  } catch {
    return "the 'ip' command is missing (apt-get install iproute2)";
  }
  const probe = `vnt${process.pid}xprobe-ok`;
  try {
    execFileSync('ip', ['netns', 'add', probe], { stdio: 'pipe' });
    execFileSync('ip', ['netns', 'del', probe], { stdio: 'pipe' });
  } catch (e) {
    return `cannot create a network namespace here: ${String((e as { stderr?: Buffer }).stderr ?? e).trim()}`;
  }
  return null;
}


async function removeNamespace(ns: string): Promise<void> {
  const pids = await run('ip', ['netns', 'pids', ns]).then((r) => r.stdout.split(/\s+/).filter(Boolean).map(Number), () => []);
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }
  await run('ip', ['netns', 'del', ns]).catch(() => undefined);
}

/** Removes the namespaces of testbeds whose process is gone (a run that was killed). */
export async function sweepStale(): Promise<string[]> {
  const { stdout } = await run('ip', ['netns', 'list']);
  const stale = stdout
    .split('\n')
    .map((l) => l.split(' ')[0]!)
    .filter((n) => {
      const m = NAME.exec(n);
      return m !== null && Number(m[1]) !== process.pid && !isAlive(Number(m[1]));
    });
  for (const ns of stale) await removeNamespace(ns);
  return stale;
}

/* One spawner for the testbed and the loopback tests alike; the testbed runs it under `ip netns exec`. */
export { batch, ok, startVnetd, stopVnetd };
export type Daemon = RunningVnetd;

/** The daemon's link to `peer`: its state, and frames sent and received. */
export async function link(d: Daemon, peer: string): Promise<{ state: string; tx: number; rx: number }> {
  const line = (await ok(d, 'LINKS?')).data.find((l) => l.startsWith(peer + ' '));
  if (!line) throw new Error(`${d.machine} has no link to ${peer}`);
  return { state: line.split(' ')[5]!, tx: Number(/ tx=(\d+)\//.exec(line)![1]), rx: Number(/ rx=(\d+)\//.exec(line)![1]) };
}

/** Waits until the daemon's link to `peer` is up (15 s at most). */
export async function linkUp(d: Daemon, peer: string): Promise<void> {
  const end = Date.now() + 15_000;
  while ((await link(d, peer)).state !== 'up') {
    if (Date.now() > end) throw new Error(`link ${d.machine}–${peer} did not come up:\n${d.log}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export class Testbed {
  readonly prefix = `vnt${process.pid}x${randomBytes(3).toString('hex')}`;
  readonly dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vnetd-testbed-'));
  private readonly namespaces: string[] = [];
  private readonly daemons: Daemon[] = [];
  private readonly rootLinks: string[] = [];
  /** Each host's address on the LAN. */
  readonly lanAddress = new Map<string, string>();

  static async create(): Promise<Testbed> {
    await sweepStale();
    return new Testbed();
  }

  ns(role: string): string {
    return `${this.prefix}-${role}`;
  }

  /** Runs a command inside a namespace (argv, never a shell line). */
  exec(role: string, argv: string[], timeoutMs = 30_000): Promise<{ stdout: string; stderr: string }> {
    return run('ip', ['netns', 'exec', this.ns(role), ...argv], { timeout: timeoutMs });
  }

  /**
   * Echo requests from a namespace until `count` replies have come or a deadline passes: how many were sent and
   * how many came back, and ping's output. The deadline (-w) is what makes a slow reply count: with -W instead,
   * once one reply has come ping waits for the rest only twice the slowest round trip or one interval, so on a
   * loaded machine a reply held up for 10 ms was counted lost. With -w, ping goes on sending one per interval
   * while replies are missing, so a test that counts frames counts `sent`, not `count`.
   */
  async ping(role: string, to: string, count: number, opts: { interval?: number; size?: number; dontFragment?: boolean; quiet?: boolean } = {}): Promise<{ sent: number; received: number; out: string }> {
    const interval = opts.interval ?? 0.01;
    const argv = ['ping', '-c', String(count), '-i', String(interval), '-w', String(Math.ceil(count * interval) + 2)];
    if (opts.size !== undefined) argv.push('-s', String(opts.size));
    if (opts.dontFragment) argv.push('-M', 'do');
    if (opts.quiet) argv.push('-q');
    // ping exits 1 when replies are missing: the counts say so.
    const out = await this.exec(role, [...argv, to]).then((r) => r.stdout, (e: { stdout?: string; message?: string }) => e.stdout ?? e.message ?? '');
    const m = /(\d+) packets transmitted, (\d+) received/.exec(out);
    if (!m) throw new Error(`ping from ${role} to ${to} printed no summary:\n${out}`);
    return { sent: Number(m[1]), received: Number(m[2]), out };
  }

  private ip(args: string[]): Promise<unknown> {
    return run('ip', args);
  }

  async namespace(role: string): Promise<string> {
    const ns = this.ns(role);
    await this.ip(['netns', 'add', ns]);
    this.namespaces.push(ns);
    await this.ip(['-n', ns, 'link', 'set', 'lo', 'up']);
    // IPv6 chatter (router solicitations, MLD) would add frames the counters do not expect.
    await this.exec(role, ['sysctl', '-qw', 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1']);
    return ns;
  }

  /**
   * Hosts on one LAN (10.200.0.0/24, in the order given), joined by a bridge in namespace `lan`. With `v6`,
   * the hosts' LAN addresses (what `lanAddress` holds, and vnetd listens on) are fd00:200::1/64 and on instead.
   */
  async lan(hosts: string[], opts: { v6?: boolean } = {}): Promise<void> {
    const lan = await this.namespace('lan');
    await this.ip(['-n', lan, 'link', 'add', 'br0', 'type', 'bridge']);
    await this.ip(['-n', lan, 'link', 'set', 'br0', 'up']);
    for (const [i, host] of hosts.entries()) {
      const ns = await this.namespace(host);
      const port = `p${i}`;
      await this.ip(['-n', lan, 'link', 'add', port, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns]);
      await this.ip(['-n', lan, 'link', 'set', port, 'master', 'br0', 'up']);
      const addr = opts.v6 ? `fd00:200::${i + 1}` : `10.200.0.${i + 1}`;
      if (opts.v6) {
        // IPv6 on the LAN device only, so that the VMs' counters still see none of its chatter; no duplicate address detection to wait for.
        await this.exec(host, ['sysctl', '-qw', 'net.ipv6.conf.eth0.disable_ipv6=0']);
        await this.ip(['-n', ns, 'addr', 'add', `${addr}/64`, 'dev', 'eth0', 'nodad']);
      } else {
        await this.ip(['-n', ns, 'addr', 'add', `${addr}/24`, 'dev', 'eth0']);
      }
      await this.ip(['-n', ns, 'link', 'set', 'eth0', 'up']);
      this.lanAddress.set(host, addr);
    }
  }

  /** Delays (and optionally rate-limits) what a host sends on the LAN. */
  async shape(host: string, netem: { delayMs: number; rateMbit?: number }): Promise<void> {
    const args = ['qdisc', 'replace', 'dev', 'eth0', 'root', 'netem', 'delay', `${netem.delayMs}ms`];
    if (netem.rateMbit) args.push('rate', `${netem.rateMbit}mbit`);
    await this.exec(host, ['tc', ...args]).catch((e: { stderr?: string }) => {
      const why = /qdisc kind is unknown/.test(e.stderr ?? '') ? 'this kernel has no netem (modprobe sch_netem)' : String(e.stderr ?? e).trim();
      throw new Error(`cannot shape ${host}'s link: ${why}`);
    });
  }

  /**
   * Caps what a host sends on the LAN at `kbit` with tbf, which every kernel
   * has (netem is a module some lack): beyond the rate, frames queue for up
   * to `queueMs`, then drop. An idle link is not slowed (the bucket starts
   * full); a loaded one is.
   */
  async limit(host: string, kbit: number, queueMs = 200): Promise<void> {
    await this.exec(host, ['tc', 'qdisc', 'replace', 'dev', 'eth0', 'root', 'tbf', 'rate', `${kbit}kbit`, 'burst', '1600', 'latency', `${queueMs}ms`]);
  }

  /** Takes away shaping from a host's LAN side. */
  async unshape(host: string): Promise<void> {
    await this.exec(host, ['tc', 'qdisc', 'del', 'dev', 'eth0', 'root']);
  }

  /**
   * A VM namespace with eth0 (the given MAC and address in 10.201.0.0/24),
   * attached to `host` through a veth pair whose host end is named `iface`.
   */
  async vm(host: string, vm: string, iface: string, mac: string, addr: string): Promise<void> {
    await this.namespace(vm);
    await this.plug(host, vm, iface, mac, addr);
  }

  /** Joins VM namespace `vm` to `host` through a new veth pair, host end `iface`: what QEMU does with its tap as the VM starts. */
  async plug(host: string, vm: string, iface: string, mac: string, addr: string): Promise<void> {
    const ns = this.ns(vm);
    await this.ip(['-n', this.ns(host), 'link', 'add', iface, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns]);
    await this.ip(['-n', this.ns(host), 'link', 'set', iface, 'up']);
    await this.ip(['-n', ns, 'link', 'set', 'eth0', 'address', mac]);
    await this.ip(['-n', ns, 'addr', 'add', `${addr}/24`, 'dev', 'eth0']);
    await this.ip(['-n', ns, 'link', 'set', 'eth0', 'up']);
    // A veth hands pcap what the VM's stack handed it: 64 KiB TSO/GSO segments
    // with checksums left to "hardware". Real NICs (and QEMU) put finished
    // frames on the wire, so the VM does its own checksums and segmentation.
    await this.exec(vm, ['ethtool', '-K', 'eth0', 'tx', 'off', 'tso', 'off', 'gso', 'off']);
  }

  /** Removes the veth pair whose host end is `iface`: what QEMU does with its tap as the VM stops. */
  async unplug(host: string, iface: string): Promise<void> {
    await this.ip(['-n', this.ns(host), 'link', 'del', iface]);
  }

  /** Two VM namespaces joined by nothing but a veth pair: the physical limit, for benchmarks. */
  async vmPair(a: { vm: string; mac: string; addr: string }, b: { vm: string; mac: string; addr: string }): Promise<void> {
    const [na, nb] = [await this.namespace(a.vm), await this.namespace(b.vm)];
    await this.ip(['-n', na, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', nb]);
    for (const [ns, end] of [[na, a], [nb, b]] as const) {
      await this.ip(['-n', ns, 'link', 'set', 'eth0', 'address', end.mac]);
      await this.ip(['-n', ns, 'addr', 'add', `${end.addr}/24`, 'dev', 'eth0']);
      await this.ip(['-n', ns, 'link', 'set', 'eth0', 'up']);
      await run('ip', ['netns', 'exec', ns, 'ethtool', '-K', 'eth0', 'tx', 'off', 'tso', 'off', 'gso', 'off']);
    }
  }

  /**
   * A veth pair with one end in this process's own namespace (so an
   * in-process pcap interface can open it) and `eth0` in namespace `role`.
   * The root end is removed with the namespace.
   */
  async rootVeth(role: string): Promise<string> {
    const ns = await this.namespace(role);
    const name = `${this.prefix.slice(-6)}${this.rootLinks.length}`;
    await this.ip(['link', 'add', name, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns]);
    this.rootLinks.push(name);
    await run('sysctl', ['-qw', `net.ipv6.conf.${name}.disable_ipv6=1`]);
    await this.ip(['link', 'set', name, 'up']);
    await this.ip(['-n', ns, 'link', 'set', 'eth0', 'up']);
    return name;
  }

  /**
   * A bridge in this process's own namespace with one port, a veth whose
   * other end is `eth0` in namespace `role`: the bridge's name. The bridge
   * is removed by destroy(), the port with the namespace.
   */
  async rootBridge(role: string): Promise<string> {
    const bridge = `${this.prefix.slice(-6)}b${this.rootLinks.length}`;
    await this.ip(['link', 'add', bridge, 'type', 'bridge']);
    this.rootLinks.push(bridge);
    await run('sysctl', ['-qw', `net.ipv6.conf.${bridge}.disable_ipv6=1`]);
    await this.ip(['link', 'set', await this.rootVeth(role), 'master', bridge]);
    await this.ip(['link', 'set', bridge, 'up']);
    return bridge;
  }

  /** A tap device in this process's own namespace, up, for QEMU's tap backend to attach to: its name. Removed by destroy(). */
  async rootTap(): Promise<string> {
    const tap = `${this.prefix.slice(-6)}t${this.rootLinks.length}`;
    await this.ip(['tuntap', 'add', 'dev', tap, 'mode', 'tap']);
    this.rootLinks.push(tap);
    await run('sysctl', ['-qw', `net.ipv6.conf.${tap}.disable_ipv6=1`]);
    await this.ip(['link', 'set', tap, 'up']);
    return tap;
  }

  /**
   * Starts sending `bytes` random bytes over TCP from namespace `from` to
   * `toIp` (an address of namespace `to`), 16 KiB every 5 ms; once the
   * receiver listens it returns, with what each end printed when done:
   * "LENGTH SHA256". Each end is killed after 45 s.
   */
  async transfer(from: string, to: string, toIp: string, bytes: number): Promise<{ done: Promise<{ sent: string; got: string }> }> {
    const inNs = (role: string, script: string, args: string[]) => {
      const p = spawn('ip', ['netns', 'exec', this.ns(role), process.execPath, '-e', script, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      p.stdout!.on('data', (b: Buffer) => (out += b));
      p.stderr!.on('data', (b: Buffer) => (out += b));
      const done = new Promise<string>((resolve, reject) => {
        const t = setTimeout(() => (p.kill('SIGKILL'), reject(new Error(`${role} did not finish: ${out}`))), 45_000);
        p.once('exit', () => (clearTimeout(t), resolve(out.trim())));
      });
      return { out: () => out, done };
    };
    const sink = inNs(to, SINK, [toIp]);
    while (!sink.out().includes('ready')) await new Promise((r) => setTimeout(r, 20));
    const source = inNs(from, SOURCE, [toIp, String(bytes)]);
    return { done: Promise.all([source.done, sink.done]).then(([sent, got]) => ({ sent, got: got.replace('ready', '').trim() })) };
  }

  /** The kernel's IPv4 counters in a namespace (/proc/net/snmp's `Ip:` lines: FragCreates, ReasmReqds, ...). */
  async ipCounters(role: string): Promise<Record<string, number>> {
    const { stdout } = await this.exec(role, ['cat', '/proc/net/snmp']);
    const [names, values] = stdout.split('\n').filter((l) => l.startsWith('Ip: ')).map((l) => l.trim().split(/\s+/).slice(1));
    return Object.fromEntries(names!.map((n, i) => [n, Number(values![i])]));
  }

  /** The kernel's IPv6 counters in a namespace (/proc/net/snmp6, a name and a number a line: Ip6FragCreates, ...). */
  async ip6Counters(role: string): Promise<Record<string, number>> {
    const { stdout } = await this.exec(role, ['cat', '/proc/net/snmp6']);
    return Object.fromEntries(stdout.trim().split('\n').map((l) => l.trim().split(/\s+/)).map(([n, v]) => [n!, Number(v)]));
  }

  /** Frames and bytes an interface in a namespace has received and sent, as the kernel counts them. */
  async linkStats(role: string, dev: string): Promise<{ rx: number; tx: number }> {
    const { stdout } = await run('ip', ['-n', this.ns(role), '-s', '-j', 'link', 'show', 'dev', dev]);
    const s = (JSON.parse(stdout) as { stats64: { rx: { packets: number }; tx: { packets: number } } }[])[0]!.stats64;
    return { rx: s.rx.packets, tx: s.tx.packets };
  }

  /** Starts vnetd inside a host's namespace (with `flags` besides its own) and connects to its control socket. */
  async vnetd(host: string, machine: string, port: number, ifaces: string[] = [], flags: string[] = []): Promise<Daemon> {
    const d = await startVnetd({ machine, port, dir: path.join(this.dir, machine), log: '' }, [...ifaces.flatMap((i) => ['--iface', i]), ...flags], {
      prefix: ['ip', 'netns', 'exec', this.ns(host)],
      listen: this.lanAddress.get(host) ?? '0.0.0.0',
    });
    this.daemons.push(d);
    return d;
  }

  /** Removes everything: daemons, processes left in the namespaces, the namespaces (and their links), state dirs. */
  async destroy(): Promise<void> {
    for (const d of this.daemons) await stopVnetd(d);
    for (const ns of this.namespaces.reverse()) await removeNamespace(ns);
    for (const l of this.rootLinks) await this.ip(['link', 'del', l]).catch(() => undefined);
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}
