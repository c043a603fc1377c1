import { randomBytes, randomInt } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Mailbox, runRank, summarize, type PatternResult } from '../src/patterns/bsp.js';
import { Pacer } from '../src/patterns/pacer.js';
import { starLines } from '../src/patterns/star.js';
import { attachRank, noiseFrame, SyntheticHost, vmMac } from '../src/patterns/synthetic.js';
import { pattern, type Kind } from '../src/patterns/topology.js';
import { isChange, parseCommand } from '../src/wire/control.js';
import { formatHostPort } from '../src/wire/hostport.js';
import { QemuUdpInterface } from './interfaces/qemu-udp.js';
import { Vnetd } from './vnetd-core.js';

/** What a test needs to name the bed's VMs and size noise against an edge: rank → MAC, message → frame bytes. */
export { messageFrameBytes, vmMac } from '../src/patterns/synthetic.js';

/**
 * A whole overlay in one process, for tests, benchmarks and `vnetc
 * patterns`: a Proxy and H hosts as Vnetd objects on loopback, every host
 * linked to the Proxy (the star of Fig. 1), N synthetic VMs placed round-robin
 * on the hosts, and the forwarding rules of Fig. 2 so that every VM reaches
 * every other (unicast through the Proxy, broadcast to all). No root, no
 * processes; `close()` stops and removes everything, and so does a failed start.
 */

export interface BedOptions {
  /** Number of VMs, ranks 0..vms-1. */
  vms: number;
  /** Number of hosts (default: one per VM, as in the papers' runs). */
  hosts?: number;
  /**
   * Put each host's VMs behind one interface (one socket, like VMs on one
   * host bridge); frames between VMs of the same host then never reach vnetd.
   * By default each VM has its own interface, as each QEMU has its own netdev,
   * so vnetd sees every frame.
   */
  sharedInterface?: boolean;
  /** The star's links (default TCP, encrypted). */
  linkProto?: 'tcp' | 'udp';
  linkMode?: 'encrypt' | 'auth-only';
  /** Daemon log lines (default: kept, and shown only if the start fails). */
  log?: (line: string) => void;
}

export interface BedVm {
  rank: number;
  mac: string;
  /** The machine whose daemon the VM is attached to. */
  host: string;
  /** The daemon interface it is attached through. */
  iface: string;
}

export interface RunOptions {
  topology: Kind;
  /** Grid sizes for meshes and tori (default: the most nearly square or cubic). */
  dims?: number[];
  /** Message size in bytes (default 4096). */
  size?: number;
  /** Default 100. */
  iterations?: number;
  /** A fixed compute phase per iteration (default 0 ms); or `ratio`, a compute/communicate ratio (see BspOptions.compute). */
  computeMs?: number;
  ratio?: number;
  /** How long a rank waits for its partners' messages before it gives the iteration up (default 2000 ms). */
  timeoutMs?: number;
  /** Ends the run with the current iteration (a waiting compute phase is cut short). */
  signal?: AbortSignal;
}

export interface NoisePair {
  from: number;
  to: number;
  /** Ethernet bytes per second, as vnetd counts them. */
  bytesPerS: number;
}

export interface Noise {
  /** Stops the noise; what was sent. */
  stop(): { frames: number; bytes: number };
}

export interface Bed {
  /** 'proxy', 'host1' … 'hostH'. */
  readonly daemons: Map<string, Vnetd>;
  readonly vms: readonly BedVm[];
  /** The temporary directory holding the daemons' state; removed by close(). */
  readonly dir: string;
  /** Runs the workload on all the bed's VMs; may be called again (one run at a time). */
  run(opts: RunOptions): Promise<PatternResult>;
  /**
   * Sends background traffic (frames of the patterns EtherType, kind noise,
   * which VMs ignore) between VM pairs until stopped or the bed is closed.
   */
  noise(pairs: readonly NoisePair[]): Noise;
  close(): Promise<void>;
}

const NOISE_TICK_MS = 10;

export async function startBed(opts: BedOptions): Promise<Bed> {
  const n = opts.vms;
  const h = opts.hosts ?? n;
  if (!Number.isInteger(n) || n < 2 || n > 0xffff) throw new RangeError(`a bed needs 2 to 65535 VMs (got ${n})`);
  if (!Number.isInteger(h) || h < 1 || h > n) throw new RangeError(`a bed of ${n} VMs takes 1 to ${n} hosts (got ${h})`);
  const logLines: string[] = [];
  const log = opts.log ?? ((l: string) => void (logLines.length < 200 && logLines.push(l)));
  const dir = await mkdtemp(path.join(os.tmpdir(), 'vnetd-bed-'));
  const daemons = new Map<string, Vnetd>();
  const started: Vnetd[] = [];
  const synthetic: SyntheticHost[] = [];
  const noises = new Set<NodeJS.Timeout>();
  // One closing, however often asked: a second caller (vnetc patterns on a second Ctrl-C) must not remove the directory while the daemons still write to it.
  let closing: Promise<void> | undefined;
  const close = (): Promise<void> =>
    (closing ??= (async () => {
      for (const t of noises) clearInterval(t);
      noises.clear();
      for (const d of started.splice(0)) await d.stop().catch((e: Error) => log(`${d.machine}: stop: ${e.message}`));
      for (const s of synthetic.splice(0)) await s.close();
      await rm(dir, { recursive: true, force: true });
    })());

  try {
    const hosts = Array.from({ length: h }, (_, i) => `host${i + 1}`);
    const vms: BedVm[] = Array.from({ length: n }, (_, rank) => ({
      rank,
      mac: vmMac(rank),
      host: hosts[rank % h]!,
      iface: opts.sharedInterface ? 'vm0' : `vm${rank}`,
    }));
    const hostOf = new Map<string, SyntheticHost>(); // "host/iface"
    const ifacesOf = new Map<string, QemuUdpInterface[]>();
    for (const host of hosts) {
      const mine = vms.filter((v) => v.host === host);
      const groups = opts.sharedInterface ? [mine] : mine.map((v) => [v]);
      const ifaces: QemuUdpInterface[] = [];
      for (const group of groups) {
        const s = await SyntheticHost.open(group.map((v) => v.mac));
        synthetic.push(s);
        const iface = group[0]!.iface;
        const listen = { host: '127.0.0.1', port: 0 };
        ifaces.push(new QemuUdpInterface(iface, `qemu-udp:listen=127.0.0.1:0,peer=${formatHostPort(s.address)}`, listen, s.address));
        hostOf.set(`${host}/${iface}`, s);
      }
      ifacesOf.set(host, ifaces);
    }

    const start = async (machine: string, interfaces: QemuUdpInterface[]): Promise<Vnetd> => {
      const d = new Vnetd({ machine, port: 0, listen: '127.0.0.1', stateDir: path.join(dir, machine), interfaces, log: (l) => log(`${machine}: ${l}`) });
      await d.start().catch(async (e: Error) => {
        await d.stop().catch(() => undefined);
        throw e;
      });
      started.push(d);
      daemons.set(machine, d);
      return d;
    };
    const proxy = await start('proxy', []);
    for (const host of hosts) {
      await start(host, ifacesOf.get(host)!);
      for (const iface of ifacesOf.get(host)!) hostOf.get(`${host}/${iface.name}`)!.connect({ host: '127.0.0.1', port: iface.port });
    }

    const lines = starLines(vms, {
      proxyAddress: `127.0.0.1:${proxy.links.port}`,
      proto: opts.linkProto ?? 'tcp',
      mode: opts.linkMode ?? 'encrypt',
      key: () => randomBytes(32).toString('hex'),
    });
    for (const [machine, batch] of lines) await commit(daemons.get(machine)!, batch);
    await waitUntil('the star links to come up', () => hosts.every((x) => proxy.links.isUp(x) && daemons.get(x)!.links.isUp('proxy')));

    const pacer = new Pacer();
    let running = false;
    return {
      daemons,
      vms,
      dir,
      close,
      async run(r: RunOptions): Promise<PatternResult> {
        if (running) throw new Error('a run is already going on this bed');
        const p = pattern(r.topology, n, r.dims);
        running = true;
        // Every rank listens for the stop (twice while it computes): so many listeners are no leak, and Node would warn past 10 on the caller's signal.
        const stop = new AbortController();
        setMaxListeners(2 * n + 1, stop.signal);
        const relay = () => stop.abort();
        if (r.signal?.aborted) stop.abort();
        r.signal?.addEventListener('abort', relay, { once: true });
        try {
          const run = randomInt(1, 0xffffffff);
          const macs = vms.map((v) => v.mac);
          const results = await Promise.all(
            vms.map((v) => {
              const mailbox = new Mailbox(v.rank, run);
              const sender = attachRank(hostOf.get(`${v.host}/${v.iface}`)!, mailbox, macs, pacer);
              return runRank(p.script[v.rank]!, mailbox, sender, {
                iterations: r.iterations ?? 100,
                size: r.size ?? 4096,
                compute: r.ratio !== undefined ? { ratio: r.ratio } : { ms: r.computeMs ?? 0 },
                computeMode: 'sleep',
                timeoutMs: r.timeoutMs ?? 2000,
                signal: stop.signal,
              });
            }),
          );
          return summarize(r.topology, results);
        } finally {
          r.signal?.removeEventListener('abort', relay);
          running = false;
        }
      },
      noise(pairs: readonly NoisePair[]): Noise {
        const sent = { frames: 0, bytes: 0 };
        const state = pairs.map((p) => {
          const from = vms[p.from];
          const to = vms[p.to];
          if (!from || !to || p.from === p.to) throw new RangeError(`noise between VMs ${p.from} and ${p.to}: give two different ranks of 0..${n - 1}`);
          // About 100 frames a second, within Ethernet's bounds.
          const frame = noiseFrame(from.mac, to.mac, Math.min(1514, Math.max(60, Math.round(p.bytesPerS / 100))));
          return { host: hostOf.get(`${from.host}/${from.iface}`)!, frame, rate: p.bytesPerS, credit: 0 };
        });
        let last = performance.now();
        const timer = setInterval(() => {
          const now = performance.now();
          for (const s of state) {
            s.credit += (s.rate * (now - last)) / 1000;
            for (; s.credit >= s.frame.length; s.credit -= s.frame.length) {
              s.host.send(s.frame);
              sent.frames++;
              sent.bytes += s.frame.length;
            }
          }
          last = now;
        }, NOISE_TICK_MS);
        noises.add(timer);
        return {
          stop() {
            clearInterval(timer);
            noises.delete(timer);
            return { ...sent };
          },
        };
      },
    };
  } catch (e) {
    await close();
    if (!opts.log && logLines.length) (e as Error).message += `\ndaemon log:\n${logLines.join('\n')}`;
    throw e;
  }
}

async function commit(d: Vnetd, lines: string[]): Promise<void> {
  const changes = lines.map((l) => parseCommand(l)).filter(isChange);
  const r = await d.commit(changes);
  if (!r.ok) {
    const why = r.fatal?.message ?? r.errors.map((e, i) => (e ? `${lines[i]}: ${e.message}` : '')).filter(Boolean).join('; ');
    throw new Error(`${d.machine}: the bed's configuration was refused: ${why}`);
  }
}

async function waitUntil(what: string, ok: () => boolean, ms = 15_000): Promise<void> {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out after ${ms / 1000} s waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

