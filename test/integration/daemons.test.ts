import { spawn } from 'node:child_process';
import { freePort } from '../support/sshd.js';
import { randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ok, startVnetd, stopVnetd, VNETD, waitFor, type SpawnedVnetd } from '../support/vnetd-process.js';

/**
 * Three real vnetd processes on loopback (a Proxy and two hosts), each with
 * a QEMU-style UDP interface whose other end is a "VM" socket here. Frames
 * go in at one VM and must come out at the other; link counters say which
 * way they went.
 */

const MAC = { vm1: '02:00:00:00:00:01', vm2: '02:00:00:00:00:02', bcast: 'ff:ff:ff:ff:ff:ff' };

interface Node extends SpawnedVnetd {
  ifacePort: number;
  vm: dgram.Socket | undefined;
  vmPort: number;
  received: Buffer[];
}

const frame = (dst: string, src: string, payload: string): Buffer =>
  Buffer.concat([Buffer.from(dst.replace(/:/g, ''), 'hex'), Buffer.from(src.replace(/:/g, ''), 'hex'), Buffer.from([0x88, 0xb5]), Buffer.from(payload)]);

let base: string;
const nodes: Record<string, Node> = {};

async function startDaemon(n: Node): Promise<void> {
  await startVnetd(n, ['--iface', `vm0=qemu-udp:listen=127.0.0.1:${n.ifacePort},peer=127.0.0.1:${n.vmPort}`]);
}

/** The counters of one link, as LINKS? reports them. */
async function link(n: Node, peer: string): Promise<{ state: string; tx: number; rx: number }> {
  const r = await ok(n, 'LINKS?');
  const line = r.data.find((l) => l.startsWith(peer + ' '));
  if (!line) throw new Error(`${n.machine} has no link to ${peer}: ${r.data.join('; ')}`);
  const [, , , , , state] = line.split(' ');
  return { state: state!, tx: Number(/ tx=(\d+)\//.exec(line)![1]), rx: Number(/ rx=(\d+)\//.exec(line)![1]) };
}

const linkUp = (n: Node, peer: string) => waitFor(`${n.machine}–${peer} up`, async () => ((await link(n, peer)).state === 'up' ? true : undefined));

async function sendAndExpect(from: Node, to: Node, f: Buffer): Promise<void> {
  const before = to.received.length;
  from.vm!.send(f, from.ifacePort, '127.0.0.1');
  await waitFor(`the frame at ${to.machine}'s VM`, () => (to.received.slice(before).some((b) => b.equals(f)) ? true : undefined));
}

beforeAll(async () => {
  base = fs.mkdtempSync(path.join(os.tmpdir(), 'vnetd-it-'));
  for (const machine of ['proxy', 'h1', 'h2']) {
    const n: Node = { machine, port: await freePort(), dir: path.join(base, machine), ifacePort: await freePort(), vm: undefined, vmPort: 0, proc: undefined, ctl: undefined, received: [], log: '' };
    const vm = dgram.createSocket('udp4');
    await new Promise<void>((r) => vm.bind(0, '127.0.0.1', () => r()));
    vm.on('message', (m) => n.received.push(m));
    n.vm = vm;
    n.vmPort = vm.address().port;
    nodes[machine] = n;
  }
  await Promise.all(Object.values(nodes).map(startDaemon));
}, 30_000);

afterAll(async () => {
  for (const n of Object.values(nodes)) {
    await stopVnetd(n);
    n.vm?.close();
  }
  fs.rmSync(base, { recursive: true, force: true });
});

const key = () => randomBytes(32).toString('hex');

describe('three daemons on loopback', () => {
  test('the Proxy star carries unicast and broadcast between VMs on different hosts', async () => {
    const { proxy, h1, h2 } = nodes as Record<string, Node>;
    const k1 = key();
    const k2 = key();
    // Both hosts dial the Proxy (they are the ones behind NAT in Fig. 1).
    for (const [n, lines] of [
      [proxy!, [`LINK ADD h1 TCP ACCEPT - ${k1}`, `LINK ADD h2 UDP ACCEPT - ${k2}`,
        `RULE ADD ANY ${MAC.vm1} LINK h1`, `RULE ADD ANY ${MAC.vm2} LINK h2`, `RULE ADD ANY ${MAC.bcast} LINK h1`, `RULE ADD ANY ${MAC.bcast} LINK h2`]],
      [h1!, [`LINK ADD proxy TCP DIAL 127.0.0.1:${proxy!.port} ${k1}`,
        `RULE ADD NOT ${MAC.vm1} ${MAC.bcast} IFACE vm0`, `RULE ADD ANY ${MAC.vm1} IFACE vm0`, `RULE ADD ${MAC.vm1} NONE LINK proxy`]],
      [h2!, [`LINK ADD proxy UDP DIAL 127.0.0.1:${proxy!.port} ${k2}`,
        `RULE ADD NOT ${MAC.vm2} ${MAC.bcast} IFACE vm0`, `RULE ADD ANY ${MAC.vm2} IFACE vm0`, `RULE ADD ${MAC.vm2} NONE LINK proxy`]],
    ] as const) {
      const r = await n.ctl!.request('BATCH');
      expect(r.ok).toBe(true);
      for (const l of lines) await ok(n, l);
      expect(await n.ctl!.request('COMMIT')).toMatchObject({ ok: true });
    }
    await linkUp(h1!, 'proxy');
    await linkUp(h2!, 'proxy');

    await sendAndExpect(h1!, h2!, frame(MAC.vm2, MAC.vm1, 'unicast over the star'));
    await sendAndExpect(h2!, h1!, frame(MAC.vm1, MAC.vm2, 'and back'));
    // An ARP-like broadcast from vm1 reaches vm2, and does not come back to vm1.
    const before = h1!.received.length;
    await sendAndExpect(h1!, h2!, frame(MAC.bcast, MAC.vm1, 'who-has'));
    expect(h1!.received.length).toBe(before);
    expect((await link(proxy!, 'h1')).rx).toBeGreaterThanOrEqual(2);
    expect((await link(proxy!, 'h2')).tx).toBeGreaterThanOrEqual(2);
  }, 30_000);

  test('after a fast path is added, the same traffic crosses it and not the Proxy', async () => {
    const { proxy, h1, h2 } = nodes as Record<string, Node>;
    const k = key();
    expect(await h2!.ctl!.batch([])).toMatchObject({ ok: true });
    await ok(h2!, 'BATCH');
    await ok(h2!, `LINK ADD h1 TCP ACCEPT - ${k}`);
    await ok(h2!, `RULE ADD ${MAC.vm2} ${MAC.vm1} LINK h1`);
    await ok(h2!, 'COMMIT');
    await ok(h1!, 'BATCH');
    await ok(h1!, `LINK ADD h2 TCP DIAL 127.0.0.1:${h2!.port} ${k}`);
    await ok(h1!, `RULE ADD ${MAC.vm1} ${MAC.vm2} LINK h2`);
    await ok(h1!, 'COMMIT');
    await linkUp(h1!, 'h2');

    const viaProxy = (await link(proxy!, 'h1')).rx;
    const direct = (await link(h1!, 'h2')).tx;
    await sendAndExpect(h1!, h2!, frame(MAC.vm2, MAC.vm1, 'fast path'));
    await sendAndExpect(h2!, h1!, frame(MAC.vm1, MAC.vm2, 'fast path back'));
    expect((await link(h1!, 'h2')).tx).toBe(direct + 1);
    expect((await link(h1!, 'h2')).rx).toBeGreaterThanOrEqual(1);
    expect((await link(proxy!, 'h1')).rx).toBe(viaProxy);
    // The rule counters say the same.
    const rules = await ok(h1!, 'RULES?');
    expect(rules.data).toContain(`${MAC.vm1} ${MAC.vm2} LINK h2 packets=1 bytes=${frame(MAC.vm2, MAC.vm1, 'fast path').length}`);
  }, 30_000);

  test('kill -9 mid-traffic: the restarted daemon has its rules and links back, and traffic flows again', async () => {
    const { h1, h2 } = nodes as Record<string, Node>;
    const rulesBefore = (await ok(h2!, 'RULES?')).data.map((l) => l.replace(/ packets=.*/, '')).sort();
    const linksBefore = (await ok(h2!, 'LINKS?')).data.map((l) => l.split(' ').slice(0, 5).join(' ')).sort();
    // Traffic in flight while the daemon dies.
    const burst = setInterval(() => h1!.vm!.send(frame(MAC.vm2, MAC.vm1, 'during the crash'), h1!.ifacePort, '127.0.0.1'), 2);
    await new Promise((r) => setTimeout(r, 50));
    await stopVnetd(h2!, 'SIGKILL');
    await new Promise((r) => setTimeout(r, 50));
    clearInterval(burst);

    await startDaemon(h2!);
    expect((await ok(h2!, 'RULES?')).data.map((l) => l.replace(/ packets=.*/, '')).sort()).toEqual(rulesBefore);
    expect((await ok(h2!, 'LINKS?')).data.map((l) => l.split(' ').slice(0, 5).join(' ')).sort()).toEqual(linksBefore);
    await linkUp(h2!, 'proxy');
    await linkUp(h1!, 'h2');
    await sendAndExpect(h1!, h2!, frame(MAC.vm2, MAC.vm1, 'after the restart'));
    await sendAndExpect(h2!, h1!, frame(MAC.vm1, MAC.vm2, 'and back after the restart'));
  }, 40_000);

  test('a hang-up (SIGHUP), even once its log has no reader, does not stop a daemon: it says so while it can, and serves on', async () => {
    const n = nodes.h2!;
    n.proc!.kill('SIGHUP');
    await waitFor('the SIGHUP log line', () => (n.log.includes('SIGHUP: ignored') ? true : undefined));
    // The terminal is gone: writing the log now fails (EPIPE).
    n.proc!.stderr!.destroy();
    n.proc!.kill('SIGHUP');
    await new Promise((r) => setTimeout(r, 300));
    expect(n.proc!.exitCode).toBeNull();
    expect(n.proc!.signalCode).toBeNull();
    expect((await ok(n, 'INFO?')).data).toContain('machine h2');
    // Its next start gets a fresh log reader.
    await stopVnetd(n);
    n.log = '';
    await startDaemon(n);
    await linkUp(n, 'proxy');
  });

  test('a second daemon on the same state directory is refused, and the first keeps serving', async () => {
    const { h1 } = nodes as Record<string, Node>;
    const other = spawn(process.execPath, [VNETD, '--machine', 'h1', '--port', String(await freePort()), '--listen', '127.0.0.1', '--state-dir', h1!.dir], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    other.stderr!.on('data', (b: Buffer) => (err += b));
    const code = await new Promise<number | null>((r) => other.once('exit', r));
    expect(code).toBe(1);
    expect(err).toContain('another vnetd is running with state directory');
    expect((await ok(h1!, 'HELLO')).text).toContain('machine h1');
  }, 20_000);

  test('VTTIF: hosts report over their links, the Proxy infers who talks to whom and where each VM is; settings survive a restart', async () => {
    const { proxy, h1, h2 } = nodes as Record<string, Node>;
    for (const n of [proxy!, h1!, h2!]) {
      expect((await ok(n, 'VTTIF collector=proxy update-hz=20 window-s=0.5 threshold=0.2')).text).toBe('vttif collector=proxy sampling=on sample-every=1 update-hz=20 window-s=0.5 threshold=0.2');
    }
    expect(await h1!.ctl!.request('INFER?')).toMatchObject({ ok: false, code: 'E_STATE', text: 'this daemon reports to collector proxy; ask that one' });
    expect(await h1!.ctl!.request('VTTIF window-s=0.01')).toMatchObject({ ok: false, code: 'E_REJECTED', text: expect.stringContaining('at least one update interval') });

    // vm1 and vm2 exchange frames (over the fast path, so the Proxy sees none of the data: only the reports).
    const traffic = setInterval(() => {
      h1!.vm!.send(frame(MAC.vm2, MAC.vm1, 'x'.repeat(1000)), h1!.ifacePort, '127.0.0.1');
      h2!.vm!.send(frame(MAC.vm1, MAC.vm2, 'y'.repeat(500)), h2!.ifacePort, '127.0.0.1');
    }, 5);
    try {
      const inferred = await waitFor('a settled inference on the Proxy', async () => {
        const r = await ok(proxy!, 'INFER?');
        return r.data.some((l) => l.startsWith('state settled changes=1 ')) ? r.data : undefined;
      });
      expect(inferred).toContain(`host ${MAC.vm1} h1`);
      expect(inferred).toContain(`host ${MAC.vm2} h2`);
      expect(inferred).toContain('params update-hz=20 window-s=0.5 threshold=0.2');
      expect(inferred.filter((l) => l.startsWith('edge '))).toEqual([expect.stringMatching(new RegExp(`^edge ${MAC.vm1} ${MAC.vm2} intensity=1 bytes-per-s=\\d+`))]);
      expect(inferred.filter((l) => l.startsWith('reporter ')).map((l) => l.split(' ')[1])).toEqual(['h1', 'h2', 'proxy']);
      const status = (await ok(h1!, 'VTTIF?')).data;
      expect(status).toContain('role reporter');
      expect(status).toContain(`hosted ${MAC.vm1} age-s=` + status.find((l) => l.startsWith('hosted'))!.split('age-s=')[1]);
      expect(Number(status.find((l) => l.startsWith('reports-sent '))!.split(' ')[1])).toBeGreaterThan(0);
    } finally {
      clearInterval(traffic);
    }
    await stopVnetd(h1!);
    await startDaemon(h1!);
    expect((await ok(h1!, 'VTTIF?')).data.slice(0, 6)).toEqual(['collector proxy', 'sampling on', 'sample-every 1', 'update-hz 20', 'window-s 0.5', 'threshold 0.2']);
  }, 30_000);
});
