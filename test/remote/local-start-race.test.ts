import { jest } from '@jest/globals';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { argvOf, isAlive } from '../../src/util/process-alive.js';
import { runVnetcAsync } from '../support/vnetc.js';

/**
 * Two starts of one local machine at once (two `vnetc up --local` of the
 * same file) must end with one daemon, recorded in launch.json by its pid,
 * which `vnetc down` then stops: not with the record naming a second daemon
 * that lost the state directory's lock and exited. Every vnetd spawned is
 * seen at node:child_process.spawn (wrapped to call the real one), so that
 * none is left running unseen.
 */

jest.setTimeout(60_000);

const real = await import('node:child_process');
const spawned: number[] = [];
jest.unstable_mockModule('node:child_process', () => ({
  ...real,
  spawn: (...args: Parameters<typeof real.spawn>) => {
    const child = real.spawn(...args);
    if ((args[1] as string[] | undefined)?.some((a) => path.basename(a) === 'vnetd.js')) spawned.push(child.pid!);
    return child;
  },
}));
const { LocalTransport } = await import('../../src/remote/local.js');
const { defaultLaunch } = await import('../../src/remote/launch.js');
const { ReachError } = await import('../../src/remote/transport.js');

const port = 20000 + Math.floor(Math.random() * 20000);
const host = { machine: 'race.localhost', user: 'root', port, iface: 'vm0' };
let dir = '';

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vnetc-race-'));
  spawned.length = 0;
});

/** The vnetds running on `stateDir`, whoever spawned them (a vnetc process's are not seen at spawn). */
const vnetdsOn = (stateDir: string): number[] =>
  fs
    .readdirSync('/proc')
    .filter((e) => /^\d+$/.test(e))
    .map(Number)
    .filter((pid) => {
      const argv = argvOf(pid);
      return argv !== undefined && argv.some((a) => path.basename(a) === 'vnetd.js') && argv[argv.indexOf('--state-dir') + 1] === stateDir;
    });

afterEach(() => {
  for (const pid of [...spawned, ...vnetdsOn(path.join(dir, 'home', 'local', host.machine))]) if (isAlive(pid)) process.kill(pid, 'SIGKILL');
  fs.rmSync(dir, { recursive: true, force: true });
});

/** Starts the machine's daemon as `vnetc up` does, in a session of its own. */
async function start(home: string): Promise<void> {
  const transport = new LocalTransport(home);
  const session = await transport.open(host);
  try {
    await session.start(defaultLaunch(host, session));
  } finally {
    await session.close();
  }
}

const writeFile = () => fs.writeFileSync(path.join(dir, 'one.vnet'), `BEGIN\n  HOST vnet AT ${host.machine} ${port} vm0\nEND\n`);

test('two starts of one local machine at once leave one daemon, recorded by its pid, which the other start names and vnetc down stops', async () => {
  const home = path.join(dir, 'home');
  const outcomes = await Promise.allSettled([start(home), start(home)]);
  const launchFile = path.join(home, 'local', host.machine, 'launch.json');
  const recorded = (JSON.parse(fs.readFileSync(launchFile, 'utf8')) as { pid?: number }).pid;
  const running = spawned.filter(isAlive);
  expect(running).toHaveLength(1);
  expect(recorded).toBe(running[0]);

  expect(outcomes.map((o) => o.status).sort()).toEqual(['fulfilled', 'rejected']);
  const refused = (outcomes.find((o) => o.status === 'rejected') as PromiseRejectedResult).reason as Error;
  expect(refused).toBeInstanceOf(ReachError);
  expect(refused.message).toBe(`a vnetd already runs for ${host.machine} (pid ${running[0]})`);

  writeFile();
  const down = await runVnetcAsync(['down', '--local', 'one.vnet'], { cwd: dir, env: { VNETC_HOME: home } });
  expect({ status: down.status, stderr: down.stderr }).toEqual({ status: 0, stderr: '' });
  expect(down.stdout).toContain(`stopped 1 daemon (${host.machine})`);
  expect(isAlive(running[0]!)).toBe(false);
});

test('two vnetc up --local of one file at once: one starts the daemon, the other says it already runs, and vnetc down stops it', async () => {
  const home = path.join(dir, 'home');
  writeFile();
  const up = () => runVnetcAsync(['up', '--local', 'one.vnet'], { cwd: dir, env: { VNETC_HOME: home } });
  const runs = await Promise.all([up(), up()]);
  const running = vnetdsOn(path.join(home, 'local', host.machine));
  expect(running).toHaveLength(1);
  const launchFile = path.join(home, 'local', host.machine, 'launch.json');
  expect((JSON.parse(fs.readFileSync(launchFile, 'utf8')) as { pid?: number }).pid).toBe(running[0]);
  expect(runs.map((r) => r.status).sort()).toEqual([0, 1]);
  expect(runs.find((r) => r.status === 1)!.stderr).toContain(`${host.machine}: a vnetd already runs for ${host.machine} (pid ${running[0]})`);

  const down = await runVnetcAsync(['down', '--local', 'one.vnet'], { cwd: dir, env: { VNETC_HOME: home } });
  expect({ status: down.status, stderr: down.stderr }).toEqual({ status: 0, stderr: '' });
  expect(down.stdout).toContain(`stopped 1 daemon (${host.machine})`);
  expect(isAlive(running[0]!)).toBe(false);
});
