import os from 'node:os';
import { runVnetc, runVnetcAsync } from '../support/vnetc.js';

/** `vnetc patterns` as a user runs it: the built binary, daemons in its process, nothing left behind. */

test('runs a ring of 4 through local daemons and reports iterations per second and total time', async () => {
  const r = await runVnetcAsync(['patterns', '--topology', 'ring', '--vms', '4', '--hosts', '2', '--iterations', '20', '--size', '3000'], { cwd: os.tmpdir() });
  expect(r.stderr).toContain('vnetc: starting a Proxy and 2 hosts with 4 synthetic VMs');
  expect(r.status).toBe(0);
  expect(r.stdout).toMatch(/^ring of 4 VMs on 2 hosts through a Proxy star; 3000-byte messages, no compute phase\n  iterations\/s  \d+\.\d\n  total time    \d+\.\d{3} s for 20 iterations\n/);
  expect(r.stdout).toContain('messages      160 sent, 160 received; 0 iterations lost, 0 messages late');
}, 30_000);

test('--json gives the result with the true edges, and a ratio sets the compute phase', async () => {
  const r = await runVnetcAsync(['patterns', '-t', 'mesh2d', '-n', '6', '--dims', '3x2', '-k', '8', '--ratio', '0.5', '--json'], { cwd: os.tmpdir() });
  expect(r.status).toBe(0);
  const j = JSON.parse(r.stdout);
  expect(j).toMatchObject({ topology: 'mesh2d', vms: 6, hosts: 6, iterations: 8, lost: 0, dims: [3, 2], stopped: false });
  expect(j.edges).toEqual([[0, 1], [0, 3], [1, 2], [1, 4], [2, 5], [3, 4], [4, 5]]);
  expect(j.computeS).toBeGreaterThan(0);
  expect(j.iterationsPerS).toBeGreaterThan(0);
}, 30_000);

test.each([
  [['-t', 'hypercube', '-n', '12'], 'vnetc: error: a hypercube needs a power of two VMs; 12 is not (try 8 or 16)'],
  [['-t', 'ring', '-n', '4', '--hosts', '5'], 'vnetc: error: --hosts takes a whole number from 1 to 4, not 5'],
  [['-t', 'ring', '-n', '4', '--size', '-1'], 'vnetc: error: --size takes a whole number from 0 to'],
  [['-t', 'ring', '-n', '4', '--ratio', '1', '--compute-ms', '2'], 'vnetc: error: Arguments compute-ms and ratio are mutually exclusive'],
  [['-t', 'mesh', '-n', '4'], 'vnetc: error: Invalid values:'],
  [['-t', 'torus3d', '-n', '8', '--dims', '2x4'], "vnetc: error: a torus3d takes 3 positive sizes in --dims (like 2x2x4), not '2x4'"],
  [['-n', '4'], 'vnetc: error: Missing required argument: topology'],
])('usage error %j', (args, message) => {
  const r = runVnetc(['patterns', ...args], { cwd: os.tmpdir() });
  expect(r.status).toBe(2);
  expect(r.stderr).toContain(message);
  expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
});
