import dgram from 'node:dgram';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { LocalTransport } from '../src/remote/local.js';
import { vmEndpoints } from '../src/remote/launch.js';
import type { HostPort } from '../src/wire/hostport.js';
import { apply } from './apply.js';
import type { Io } from './io.js';
import { route } from './route.js';
import { fetchTargets, show } from './show.js';
import { interruptible, type Interrupt } from './interrupt.js';
import { down } from './up.js';

/**
 * `vnetc demo`: the whole workflow on this machine alone, with no SSH
 * server and no root. A Proxy and three hosts run as local daemons, each on
 * its own loopback address; a synthetic VM per host speaks QEMU's datagram
 * socket protocol to its daemon. The demo brings up the star, sends frames,
 * then plans and applies a ring of fast paths and shows that frames take
 * them. Everything it starts is stopped and removed at the end.
 */

const HOSTS = ['host1', 'host2', 'host3'];
const mac = (i: number): string => `02:00:00:00:00:0${i + 1}`;

function starSpec(port: number): string {
  const lines = ['# The demo\'s star: every host dials the Proxy (Fig. 1 of the LCR 2004 paper).', 'BEGIN', `  HOST vnet AT proxy ${port} lan0`];
  for (const h of HOSTS) lines.push(`  HOST vnet AT ${h} ${port} vm0`);
  lines.push('', '  ADD');
  for (const h of HOSTS) lines.push(`    LINK ${h} proxy`);
  HOSTS.forEach((h, i) => {
    lines.push(
      `    FORWARD ${h} NOT ${mac(i)} ff:ff:ff:ff:ff:ff vm0`,
      `    FORWARD ${h} ANY ${mac(i)} vm0`,
      `    FORWARD ${h} ${mac(i)} NONE ${h} proxy`,
      `    FORWARD proxy ANY ${mac(i)} proxy ${h}`,
      `    FORWARD proxy ANY ff:ff:ff:ff:ff:ff proxy ${h}`,
    );
  });
  lines.push('END');
  return lines.join('\n') + '\n';
}

/** The star plus a ring of direct links, with rules that send each VM's frames for its ring neighbours over them. */
function ringSpec(port: number): string {
  const star = starSpec(port).replace(/\nEND\n$/, '\n');
  const lines = [star.replace("# The demo's star", "# The demo's star with a ring of fast paths added; based on the star")];
  lines.push('    # The fast-path ring (VADAPT would choose these from inferred traffic).');
  HOSTS.forEach((h, i) => {
    const j = (i + 1) % HOSTS.length;
    lines.push(`    LINK ${h} ${HOSTS[j]}`);
  });
  HOSTS.forEach((h, i) => {
    for (const j of [(i + 1) % HOSTS.length, (i + HOSTS.length - 1) % HOSTS.length]) lines.push(`    FORWARD ${h} ${mac(i)} ${mac(j)} ${h} ${HOSTS[j]}`);
  });
  lines.push('END');
  return lines.join('\n') + '\n';
}

/** A synthetic VM: QEMU's `-netdev dgram` end of the socket, counting what it receives. */
class SyntheticVm {
  received = 0;
  private constructor(
    private readonly socket: dgram.Socket,
    private readonly daemon: HostPort,
  ) {
    socket.on('message', () => this.received++);
  }

  static async attach(overlayAddress: string): Promise<SyntheticVm> {
    const { daemon, vm } = vmEndpoints(overlayAddress);
    const socket = dgram.createSocket('udp4');
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(vm.port, vm.host, () => resolve());
    });
    return new SyntheticVm(socket, daemon);
  }

  /** Sends one Ethernet frame (an IPv4-typed payload of 64 bytes). */
  send(src: string, dst: string): void {
    const frame = Buffer.alloc(78);
    Buffer.from(dst.replace(/:/g, ''), 'hex').copy(frame, 0);
    Buffer.from(src.replace(/:/g, ''), 'hex').copy(frame, 6);
    frame.writeUInt16BE(0x0800, 12);
    this.socket.send(frame, this.daemon.port, this.daemon.host);
  }

  close(): void {
    this.socket.close();
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const stopped = new Error('stopped by a signal');

export async function demo(io: Io, args: { color: boolean | undefined; keep: boolean }): Promise<number> {
  // A first Ctrl-C skips the steps still to come and ends as usual, removing everything; a second removes it at once.
  return interruptible(io, args.keep ? 'skipping the rest of the demo (its daemons keep running)' : 'skipping the rest of the demo, then stopping its daemons and removing its directory', (stop) => run(io, args, stop));
}

async function run(io: Io, args: { color: boolean | undefined; keep: boolean }, stop: Interrupt): Promise<number> {
  const home = await mkdtemp(path.join(os.tmpdir(), 'vnetc-demo-'));
  const dio: Io = { ...io, cwd: home, env: { ...io.env, VNETC_HOME: home } };
  const say = (text: string) => io.stdout.write(`\n== ${text}\n`);
  // After a Ctrl-C no step begins (step 5 would start daemons that a second one's removal could miss); the end comes as usual.
  const step = (text: string): void => {
    if (stop.signal.aborted) throw stopped;
    say(text);
  };
  // One port for every daemon (each has its own address); random so that two demos can run at once.
  const port = 20000 + Math.floor(Math.random() * 20000);
  const reach = { local: true, parallelism: 10, acceptNewHostKeys: false, color: args.color };
  const vms: SyntheticVm[] = [];
  await writeFile(path.join(home, 'star.vnet'), starSpec(port));
  await writeFile(path.join(home, 'ring.vnet'), ringSpec(port));
  const started = Date.now();
  // Once, whoever asks first: a second Ctrl-C during step 8 must not start another `down` beside it.
  let removing: Promise<void> | undefined;
  const removeAll = (): Promise<void> =>
    (removing ??= (async () => {
      await down(dio, { file: 'ring.vnet', json: false, ...reach }).catch((e: Error) => io.stderr.write(`vnetc: error: ${e.message}\n`));
      await rm(home, { recursive: true, force: true });
    })());
  if (!args.keep) stop.atExit(removeAll);
  try {
    step(`1. vnetc apply star.vnet: start a Proxy and three hosts as local daemons (in ${home}) and bring up the star`);
    if ((await apply(dio, { file: 'star.vnet', autoApprove: true, json: false, allowBackboneDelete: false, proxy: undefined, iface: [], ...reach })) !== 0) return 1;

    const transport = new LocalTransport(home);
    for (const h of HOSTS) vms.push(await SyntheticVm.attach((await transport.open({ machine: h, user: 'vnet', port, iface: 'vm0' })).overlayAddress));
    await waitForLinks(dio, reach);

    const traffic = async (label: string) => {
      for (const vm of vms) vm.received = 0;
      for (let k = 0; k < 10; k++) {
        vms.forEach((vm, i) => vm.send(mac(i), mac((i + 1) % HOSTS.length)));
        vms[0]!.send(mac(0), 'ff:ff:ff:ff:ff:ff');
      }
      // Loopback datagrams arrive within milliseconds; wait for all of them, or give up after 3 s.
      for (let t = 0; t < 60 && vms.reduce((n, vm) => n + vm.received, 0) < 50; t++) await sleep(50);
      io.stdout.write(`${label}: each VM sent 10 frames to its ring neighbour, VM1 also 10 broadcasts; received ${vms.map((vm, i) => `VM${i + 1} ${vm.received}`).join(', ')}\n`);
    };
    step('2. Synthetic VMs attached (QEMU datagram sockets); traffic over the star');
    await traffic('star');
    step('3. vnetc show: the topology, link state and counters');
    await show(dio, { file: 'star.vnet', format: 'table', ...reach });
    step(`4. vnetc route ${mac(0)} ${mac(1)}: through the Proxy`);
    await route(dio, { src: mac(0), dst: mac(1), from: undefined, file: 'star.vnet', json: false, ...reach });

    step('5. vnetc apply ring.vnet: the plan adds a ring of fast paths and the rules that use them; nothing else changes');
    if ((await apply(dio, { file: 'ring.vnet', autoApprove: true, json: false, allowBackboneDelete: false, proxy: undefined, iface: [], ...reach })) !== 0) return 1;
    await waitForLinks(dio, reach);
    await traffic('ring');
    step(`6. vnetc route ${mac(0)} ${mac(1)}: now direct`);
    await route(dio, { src: mac(0), dst: mac(1), from: undefined, file: 'ring.vnet', json: false, ...reach });
    step('7. vnetc show: the fast-path links carry the frames');
    await show(dio, { file: 'ring.vnet', format: 'table', ...reach });
    return 0;
  } catch (e) {
    if (e !== stopped) throw e;
    return stop.status!;
  } finally {
    for (const vm of vms) vm.close();
    if (!args.keep) {
      say('8. vnetc down ring.vnet: remove what the demo made and stop its daemons');
      await removeAll();
      io.stdout.write(`\nDemo finished in ${((Date.now() - started) / 1000).toFixed(1)} s; everything it started is stopped and removed.\n`);
    } else {
      io.stdout.write(`\nThe daemons keep running: VNETC_HOME=${home} vnetc show; VNETC_HOME=${home} vnetc down --local ${path.join(home, 'ring.vnet')}\n`);
    }
  }
}

/** Links come up a moment after apply (the handshake); wait for all of them, briefly. */
async function waitForLinks(io: Io, reach: { local: boolean; parallelism: number; acceptNewHostKeys: boolean; color: boolean | undefined }): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const f = await fetchTargets(io, undefined, reach);
    const all = f ? [...f.reached.values()].flatMap((r) => r.report?.links ?? []) : [];
    await f?.close();
    if (all.length && all.every((l) => l.state === 'up')) return;
    await sleep(50);
  }
}
