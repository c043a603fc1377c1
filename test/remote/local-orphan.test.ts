import { jest } from '@jest/globals';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { isAlive } from '../../src/util/process-alive.js';
import { runVnetcAsync } from '../support/vnetc.js';

/**
 * A vnetc killed between spawning a local daemon and recording its pid must
 * not leave a daemon that later commands cannot find. start() is watched at
 * its spawn (node:child_process.spawn, wrapped to call the real one): what
 * launch.json holds at that instant is what such a kill leaves, with a real
 * vnetd running; `vnetc down` must then find that daemon, say so, and stop it.
 */

jest.setTimeout(60_000);

const real = await import('node:child_process');
/** launch.json as it stood when each vnetd was spawned (undefined: there was none). */
const atSpawn: (string | undefined)[] = [];
let launchFile = '';
jest.unstable_mockModule('node:child_process', () => ({
  ...real,
  spawn: (...args: Parameters<typeof real.spawn>) => {
    // start() also runs flock(1) to keep starts apart: only the daemon's spawn counts.
    if ((args[1] as string[] | undefined)?.some((a) => path.basename(a) === 'vnetd.js')) atSpawn.push(fs.existsSync(launchFile) ? fs.readFileSync(launchFile, 'utf8') : undefined);
    return real.spawn(...args);
  },
}));
const { LocalTransport } = await import('../../src/remote/local.js');
const { defaultLaunch } = await import('../../src/remote/launch.js');

const port = 20000 + Math.floor(Math.random() * 20000);
const host = { machine: 'orphan.localhost', user: 'root', port, iface: 'vm0' };
let dir = '';
let pid: number | undefined;

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vnetc-orphan-'));
  atSpawn.length = 0;
});

afterEach(() => {
  if (pid !== undefined && isAlive(pid)) process.kill(pid, 'SIGKILL');
  pid = undefined;
  fs.rmSync(dir, { recursive: true, force: true });
});

/** Starts the machine's daemon as `vnetc up` does, and leaves what a vnetc killed just after the spawn would: its pid, and launch.json as it was then. */
async function startCutShort(home: string): Promise<number> {
  const transport = new LocalTransport(home);
  launchFile = path.join(transport.dirOf(host.machine), 'launch.json');
  const session = await transport.open(host);
  try {
    await session.start(defaultLaunch(host, session));
    pid = (JSON.parse(fs.readFileSync(launchFile, 'utf8')) as { pid: number }).pid;
  } finally {
    await session.close();
  }
  expect(isAlive(pid)).toBe(true);
  expect(atSpawn).toHaveLength(1);
  const left = atSpawn[0];
  expect(left).toBeDefined();
  const record = JSON.parse(left!) as Record<string, unknown>;
  expect(record).toMatchObject({ machine: host.machine, port });
  expect(record.pid).toBeUndefined();
  fs.writeFileSync(launchFile, left!);
  fs.writeFileSync(path.join(dir, 'one.vnet'), `BEGIN\n  HOST vnet AT ${host.machine} ${port} vm0\nEND\n`);
  return pid;
}

const adopted = (pid: number) => `vnetc: the daemon of ${host.machine} (pid ${pid}) was started by a vnetc that stopped before recording it; it is now recorded in ${launchFile}, and vnetc treats it as its own\n`;

test('a vnetc killed between spawning a local daemon and recording its pid leaves a record by which vnetc down finds, adopts and stops it', async () => {
  const home = path.join(dir, 'home');
  const daemon = await startCutShort(home);
  const down = await runVnetcAsync(['down', '--local', 'one.vnet'], { cwd: dir, env: { VNETC_HOME: home } });
  expect({ status: down.status, stderr: down.stderr }).toEqual({ status: 0, stderr: adopted(daemon) });
  expect(down.stdout).toContain(`stopped 1 daemon (${host.machine})`);
  expect(isAlive(daemon)).toBe(false);
});

test('vnetc up adopts such a daemon rather than starting another, and records its pid', async () => {
  const home = path.join(dir, 'home');
  const daemon = await startCutShort(home);
  const up = await runVnetcAsync(['up', '--local', 'one.vnet'], { cwd: dir, env: { VNETC_HOME: home } });
  expect({ status: up.status, stderr: up.stderr }).toEqual({ status: 0, stderr: adopted(daemon) });
  expect((JSON.parse(fs.readFileSync(launchFile, 'utf8')) as { pid: number }).pid).toBe(daemon);
  expect(isAlive(daemon)).toBe(true);
});
