import { jest } from '@jest/globals';
import dgram from 'node:dgram';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { vmEndpoints } from '../../src/remote/launch.js';
import { LocalTransport } from '../../src/remote/local.js';
import { runVnetc, runVnetcAsync, type Run } from '../support/vnetc.js';

/**
 * `infer --watch` and `adapt --watch` against real local daemons: what they
 * write at each settled change, and a collector stopped while they read
 * from it, which is an unreachable daemon like any other (VN5001 at its
 * HOST line, exit 1), not a crash.
 */

jest.setTimeout(60_000);

let dir: string;
let home: string;
const port = 33600 + Math.floor(Math.random() * 400);
const opts = () => ({ cwd: dir, env: { VNETC_HOME: home } });
const run = (...args: string[]): Run => runVnetc(args, opts());

const pidOf = (machine: string): number => (JSON.parse(fs.readFileSync(path.join(home, 'local', machine, 'launch.json'), 'utf8')) as { pid: number }).pid;

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vnetc-gone-'));
  home = path.join(dir, 'home');
  fs.writeFileSync(path.join(dir, 'two.vnet'), ['BEGIN', `  HOST vnet AT proxy ${port} lan0`, `  HOST vnet AT host1 ${port} vm0`, '  ADD', '    LINK host1 proxy', 'END', ''].join('\n'));
});
afterAll(() => {
  run('down', '--local', 'two.vnet');
  for (const m of ['proxy', 'host1']) {
    try {
      process.kill(pidOf(m), 'SIGKILL');
    } catch {
      // not running
    }
  }
  fs.rmSync(dir, { recursive: true, force: true });
});

test('infer --watch --svg redraws the picture with each settled change', async () => {
  expect(run('up', '--local', 'two.vnet').status).toBe(0);
  expect(run('infer', '--local', 'two.vnet', '--collector', 'proxy', '--rate', '20', '--window', '0.25').status).toBe(0);
  // A VM on host1 sends to another: one edge.
  const { daemon, vm } = vmEndpoints(`${await new LocalTransport(home).addressOf('host1')}:${port}`);
  const s = dgram.createSocket('udp4');
  await new Promise<void>((r) => s.bind(vm.port, vm.host, () => r()));
  const frame = Buffer.alloc(500);
  Buffer.from('020000000002020000000001', 'hex').copy(frame, 0);
  const traffic = setInterval(() => s.send(frame, daemon.port, daemon.host), 2);
  try {
    const r = await runVnetcAsync(['infer', '--local', 'two.vnet', '--watch', '--max-changes', '1', '--svg', 'watched.svg'], opts());
    expect(r.stderr).toBe('wrote watched.svg\n');
    expect(r.stdout).toContain('change 1: 2 VMs, 1 edge ');
    expect(r.status).toBe(0);
    expect(fs.readFileSync(path.join(dir, 'watched.svg'), 'utf8')).toMatch(/<svg[^>]*xmlns="http:\/\/www.w3.org\/2000\/svg"[\s\S]*02:00:00:00:00:02/);
  } finally {
    clearInterval(traffic);
    s.close();
  }
});

test.each([
  ['infer', ['infer', '--local', 'two.vnet', '--watch']],
  ['adapt', ['adapt', '--local', '-s', 'two.vnet', '--watch', '-o', 'a.vnet']],
])('%s --watch: a collector stopped while watching is named, with how to start it again', async (_name, args) => {
  expect(run('up', '--local', 'two.vnet').status).toBe(0);
  expect(run('infer', '--local', 'two.vnet', '--collector', 'proxy').status).toBe(0);
  // No traffic: the watch polls, waiting for a first settled topology that never comes.
  const watching = runVnetcAsync(args, opts());
  await new Promise((r) => setTimeout(r, 1500));
  process.kill(pidOf('proxy'), 'SIGTERM');
  const r = await watching;
  expect(r.stderr).not.toContain('internal error');
  expect(r.stderr).toContain('two.vnet:2:3: error[VN5001]: cannot reach proxy: the collector went away while vnetc read from it');
  expect(r.stderr).toContain("hint: start it again with 'vnetc up --local two.vnet', then run this command again");
  expect(r.status).toBe(1);
});
