import { jest } from '@jest/globals';
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import { cleanEnv, runVnetcAsync, VNETC } from '../support/vnetc.js';

jest.setTimeout(60_000);

/** The README's first command: the whole workflow on this machine, no SSH server, no root. */
test('vnetc demo brings up the star, applies a fast-path ring that frames then take, and cleans up', async () => {
  const before = new Set(fs.readdirSync(os.tmpdir()).filter((f) => f.startsWith('vnetc-demo-')));
  const r = await runVnetcAsync(['demo'], { cwd: os.tmpdir() });
  expect(r.stderr).not.toMatch(/error|failed/i);
  expect(r.status).toBe(0);
  // Over the star, every frame crosses the Proxy; with the ring, the route is one hop shorter.
  expect(r.stdout).toMatch(/star: .*received VM1 10, VM2 20, VM3 20/);
  expect(r.stdout).toContain('3. host2 (over the link from proxy)');
  expect(r.stdout).toMatch(/now direct\nRoute of a frame 02:00:00:00:00:01 → 02:00:00:00:00:02:\n {2}1\. host1 \(from interface vm0\)\n {7}FORWARD host1 02:00:00:00:00:01 02:00:00:00:00:02 host1 host2 {2}priority 12\n {2}2\. host2/);
  expect(r.stdout).toMatch(/ring: .*received VM1 10, VM2 20, VM3 20/);
  // The direct link carried VM1's frames for VM2: the counters say so.
  expect(r.stdout).toMatch(/link {2}host2 TCP dial up.* tx 10\/780/);
  expect(r.stdout).toContain('Plan: 9 to add, 0 to replace, 0 to delete.');
  expect(r.stdout).toMatch(/stopped 4 daemons \(host1, host2, host3, proxy\)/);
  // Nothing left behind: no daemon of the demo, no scratch directory.
  const left = fs.readdirSync(os.tmpdir()).filter((f) => f.startsWith('vnetc-demo-') && !before.has(f));
  expect(left).toEqual([]);
  const procs = execFileSync('ps', ['-eo', 'args'], { encoding: 'utf8' }).split('\n').filter((l) => l.includes('vnetc-demo-'));
  expect(procs).toEqual([]);
});

test.each([1, 2])('Ctrl-C (%d times) during the demo: its daemons are stopped and its directory removed before it exits 130', async (times) => {
  const before = new Set(fs.readdirSync(os.tmpdir()).filter((f) => f.startsWith('vnetc-demo-')));
  const child = spawn(process.execPath, [VNETC, 'demo'], { cwd: os.tmpdir(), env: cleanEnv(), stdio: 'pipe' });
  let stdout = '';
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d));
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  // Once the star is up (its daemons are running), interrupt.
  await new Promise<void>((r) => child.stdout.on('data', (d: Buffer) => ((stdout += d), stdout.includes('== 2.') && r())));
  child.kill('SIGINT');
  if (times === 2) {
    // Signals of one kind do not queue: the second is sent once the first has been taken.
    while (!stderr.includes('SIGINT')) await new Promise((r) => setTimeout(r, 5));
    child.kill('SIGINT');
  }
  expect(await exited).toBe(130);
  expect(stderr).toContain('vnetc: SIGINT: skipping the rest of the demo, then stopping its daemons and removing its directory (Ctrl-C again to stop at once)');
  if (times === 1) expect(stdout).toContain('== 8. vnetc down ring.vnet');
  expect(stdout).not.toContain('== 5.');
  expect(fs.readdirSync(os.tmpdir()).filter((f) => f.startsWith('vnetc-demo-') && !before.has(f))).toEqual([]);
  const procs = execFileSync('ps', ['-eo', 'args'], { encoding: 'utf8' }).split('\n').filter((l) => l.includes('vnetc-demo-'));
  expect(procs).toEqual([]);
});
