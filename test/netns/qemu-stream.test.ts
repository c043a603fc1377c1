import { spawn, type ChildProcess } from 'node:child_process';
import { netnsUnavailable, ok, Testbed, type Daemon } from './testbed.js';

/**
 * A QEMU stream netdev whose machine vanishes without a word: vnetd must
 * notice by itself, or the VM's next connection is refused for ever (one VM
 * per interface). Two hosts on the testbed's LAN: vnetd listens on h1, the
 * stand-in for QEMU connects from h2, then h2 is unplugged.
 */

const skip = netnsUnavailable();
const suite = skip ? describe.skip : describe;
if (skip) console.warn(`qemu-stream dead-peer test skipped: ${skip}`);

/** Connects as QEMU would (`-netdev stream,server=off`), sends one frame as a 4-byte length and the frame, then says 'sent' and stays. */
const QEMU = `const s = require('net').connect(Number(process.argv[2]), process.argv[1], () => {
  const f = Buffer.alloc(60); Buffer.from('ffffffffffff0200000000a10806', 'hex').copy(f);
  const len = Buffer.alloc(4); len.writeUInt32BE(f.length); s.write(Buffer.concat([len, f]), () => console.log('sent')); });
s.on('error', () => {});`;

let tb: Testbed;
const clients: ChildProcess[] = [];

afterAll(async () => {
  for (const c of clients) c.kill('SIGKILL');
  await tb?.destroy();
});

/** A stand-in for QEMU in `host`'s namespace, once it has sent its frame. */
async function qemu(host: string, address: string, port: number): Promise<void> {
  const c = spawn('ip', ['netns', 'exec', tb.ns(host), process.execPath, '-e', QEMU, address, String(port)], { stdio: ['ignore', 'pipe', 'inherit'] });
  clients.push(c);
  await new Promise<void>((resolve, reject) => {
    c.stdout!.on('data', (b: Buffer) => /sent/.test(b.toString()) && resolve());
    c.once('exit', (code) => reject(new Error(`the QEMU stand-in in ${host} exited (${code}) before sending`)));
  });
}

const vmState = async (d: Daemon): Promise<string> => (await ok(d, 'DEVICES?')).data.find((l) => l.startsWith('vm0 '))?.match(/vm=(\w+)/)?.[1] ?? 'none';

async function until(d: Daemon, state: string, ms: number): Promise<number> {
  const start = Date.now();
  while ((await vmState(d)) !== state) {
    if (Date.now() - start > ms) throw new Error(`vm0 did not become vm=${state} within ${ms / 1000} s:\n${d.log}`);
    await new Promise((r) => setTimeout(r, 200));
  }
  return Date.now() - start;
}

suite(`qemu-stream and a vanished QEMU (${skip ?? 'root, ip'})`, () => {
  test('keepalive ends the connection of a machine that went silent, and the VM can attach again', async () => {
    tb = await Testbed.create();
    await tb.lan(['h1', 'h2']);
    const listen = tb.lanAddress.get('h1')!;
    const port = 7001;
    const d = await tb.vnetd('h1', 'h1', 5000, [`vm0=qemu-stream:listen=${listen}:${port}`]);
    await qemu('h2', listen, port);
    await until(d, 'up', 10_000);
    expect((await ok(d, 'DEVICES?')).data.find((l) => l.startsWith('vm0 '))).toMatch(/ rx=1\/60 /);

    // Unplugged: no FIN, no reset, nothing answers the probes.
    await tb.exec('h2', ['ip', 'link', 'set', 'eth0', 'down']);
    // 5 s idle, then 10 probes a second apart; the rest is a loaded machine's slack.
    await until(d, 'down', 40_000);
    expect(d.log).toMatch(/vm0: the connection failed: .*timed out; waiting for QEMU to connect again/i);

    // The VM, restarted elsewhere (here on h1 itself), attaches again rather than being refused.
    await qemu('h1', listen, port);
    await until(d, 'up', 10_000);
    expect(d.log).not.toMatch(/refused a second connection/);
  }, 90_000);
});
