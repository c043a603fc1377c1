import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { cleanEnv, runVnetc, runVnetcAsync, VNETC } from '../support/vnetc.js';
import { descendants } from '../support/descendants.js';

/** `vnetc patterns` as a user runs it: the built binary, daemons in its process, nothing left behind. */

test('runs a ring of 4 through local daemons and reports iterations per second and total time', async () => {
  const r = await runVnetcAsync(['patterns', '--topology', 'ring', '--vms', '4', '--hosts', '2', '--iterations', '20', '--size', '3000'], { cwd: os.tmpdir() });
  expect(r.stderr).toContain('vnetc: starting a Proxy and 2 hosts with 4 synthetic VMs');
  expect(r.status).toBe(0);
  expect(r.stdout).toMatch(/^ring of 4 VMs on 2 hosts through a Proxy star; 3000-byte messages, no compute phase\n  iterations\/s  \d+\.\d\n  total time    \d+\.\d{3} s for 20 iterations\n/);
  expect(r.stdout).toContain('messages      160 sent, 160 received; 0 iterations lost, 0 messages late');
}, 30_000);

test('more than 10 VMs, each listening for Ctrl-C, draw no warning of a listener leak', async () => {
  const r = await runVnetcAsync(['patterns', '-t', 'ring', '-n', '12', '-k', '2'], { cwd: os.tmpdir() });
  expect(r.status).toBe(0);
  expect(r.stderr).toBe('vnetc: starting a Proxy and 12 hosts with 12 synthetic VMs (in this process)\n');
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
  [['-t', 'ring', '-n', '4', '--ratio', '1', '--compute-ms', '2'], 'vnetc: error: --compute-ms and --ratio both set the compute phase (fixed, or in proportion to communication); give one'],
  [['-t', 'mesh', '-n', '4'], "vnetc: error: --topology (-t) takes one of ring, all-to-all, bus, mesh2d, mesh3d, torus2d, torus3d, hypercube, tree, reduction, not 'mesh'\n"],
  [['-t', 'ring', '-n', '4', '--link-proto', 'sctp'], "vnetc: error: --link-proto takes one of tcp, udp, not 'sctp'\n"],
  [['-t', 'torus3d', '-n', '8', '--dims', '2x4'], "vnetc: error: a torus3d takes 3 positive sizes in --dims (like 2x2x4), not '2x4'"],
  [['-n', '4'], 'vnetc: error: Missing required argument: topology'],
])('usage error %j', (args, message) => {
  const r = runVnetc(['patterns', ...args], { cwd: os.tmpdir() });
  expect(r.status).toBe(2);
  expect(r.stderr).toContain(message);
  expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
});

describe('stopped by a signal', () => {
  let tmp = '';
  beforeEach(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vnetc-patterns-signal-'));
  });
  afterEach(() => fs.rmSync(tmp, { recursive: true, force: true }));

  /** The CLI with its own TMPDIR, so that the bed's directory is the only thing in it. */
  function start(args: string[]) {
    const child = spawn(process.execPath, [VNETC, 'patterns', ...args], { env: cleanEnv({ TMPDIR: tmp }), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b));
    child.stderr.on('data', (b: Buffer) => (stderr += b));
    const exited = new Promise<{ status: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>((resolve) =>
      child.on('close', (status, signal) => resolve({ status, signal, stdout, stderr })),
    );
    return { child, exited };
  }

  /** Polls until `ok`, for at most 15 s. */
  async function until(ok: () => boolean): Promise<void> {
    for (const end = Date.now() + 15_000; !ok(); await new Promise((r) => setTimeout(r, 20))) {
      if (Date.now() > end) throw new Error('timed out');
    }
  }

  const bedDir = () => fs.readdirSync(tmp).find((f) => f.startsWith('vnetd-bed-'));
  const alive = (pid: number) => fs.existsSync(`/proc/${pid}`);

  test('Ctrl-C in a long compute phase ends the run at once, reports it, and removes the daemons and their directory', async () => {
    const { child, exited } = start(['-t', 'ring', '-n', '2', '--compute-ms', '600000', '-k', '5']);
    // Ten minutes of compute: that the run ends within the test's 30 s shows the phase was cut, with no timing assertion.
    // The daemons have committed the star (journals written) and the first compute phase is under way.
    await until(() => {
      const d = bedDir();
      return d !== undefined && fs.existsSync(path.join(tmp, d, 'host2', 'state.journal'));
    });
    await new Promise((r) => setTimeout(r, 1000));
    const kids = descendants(child.pid!);
    child.kill('SIGINT');
    const r = await exited;
    expect(r.stderr).toContain('vnetc: SIGINT: ending the run with the current iteration, then removing the daemons and their directory (Ctrl-C again to stop at once)');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/for 1 iteration \(stopped early\)/);
    expect(fs.readdirSync(tmp)).toEqual([]);
    expect(kids.filter(alive)).toEqual([]);
  }, 30_000);

  test.each([
    ['SIGINT', 130],
    ['SIGTERM', 143],
  ] as const)('a second %s does not wait for the run to end, yet still removes everything, then exits %i', async (signal, status) => {
    // 32 hosts take a while to start: both signals arrive before they are up.
    const { child, exited } = start(['-t', 'ring', '-n', '32', '-k', '1000']);
    await until(() => bedDir() !== undefined);
    child.kill(signal);
    await new Promise((r) => setTimeout(r, 50));
    child.kill(signal);
    const r = await exited;
    expect(r.stderr).toContain(`vnetc: ${signal} again: stopping now, once what it started is removed`);
    expect([r.status, r.signal]).toEqual([status, null]);
    expect(r.stdout).toBe('');
    expect(fs.readdirSync(tmp)).toEqual([]);
  }, 30_000);
});
