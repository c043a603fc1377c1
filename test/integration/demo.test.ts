import { jest } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import { runVnetcAsync } from '../support/vnetc.js';

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
