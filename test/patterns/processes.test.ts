import dgram from 'node:dgram';
import { runProcesses, type ProcessRank } from '../../src/patterns/processes.js';

/** The process driver and rank-main on loopback (the namespace test runs the same inside VMs, as root). */

async function freeUdpPorts(n: number): Promise<{ ports: number[]; hold: dgram.Socket[] }> {
  const hold = await Promise.all(
    Array.from({ length: n }, () => new Promise<dgram.Socket>((resolve) => {
      const s = dgram.createSocket('udp4');
      s.bind(0, '127.0.0.1', () => resolve(s));
    })),
  );
  return { ports: hold.map((s) => s.address().port), hold };
}
const release = (hold: dgram.Socket[]) => Promise.all(hold.map((s) => new Promise<void>((r) => s.close(() => r()))));

const bsp = { iterations: 10, size: 3000, compute: { ms: 1 }, computeMode: 'busy' as const, timeoutMs: 3000 };

test('three rank processes run an all-to-all and report every message', async () => {
  const { ports, hold } = await freeUdpPorts(3);
  await release(hold);
  const ranks: ProcessRank[] = ports.map((port) => ({ prefix: [], address: { host: '127.0.0.1', port } }));
  const r = await runProcesses(ranks, { topology: 'all-to-all', bsp });
  expect(r).toMatchObject({ vms: 3, iterations: 10, lost: 0, late: 0, messagesSent: 60, messagesReceived: 60 });
  expect(r.ranks.every((x) => x.computeMs >= 10)).toBe(true);
}, 30_000);

test('a rank that cannot bind its address fails the run with its reason, and the others are stopped', async () => {
  const { ports, hold } = await freeUdpPorts(3);
  await release(hold.slice(0, 2)); // rank 2's port stays taken
  try {
    const ranks: ProcessRank[] = ports.map((port) => ({ prefix: [], address: { host: '127.0.0.1', port } }));
    await expect(runProcesses(ranks, { topology: 'ring', bsp })).rejects.toThrow(/^rank 2 exited 2 before reporting: rank-main: rank 2: cannot open its socket: .*EADDRINUSE/);
  } finally {
    await release(hold.slice(2));
  }
  // The other ranks are gone: their addresses can be bound again.
  await release(await Promise.all(ports.slice(0, 2).map((port) => new Promise<dgram.Socket>((resolve, reject) => {
    const s = dgram.createSocket('udp4');
    s.once('error', reject);
    s.bind(port, '127.0.0.1', () => resolve(s));
  }))));
}, 30_000);
