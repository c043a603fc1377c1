import { jest } from '@jest/globals';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { compileText } from '../src/lang/compile.js';
import { diff } from '../src/plan/diff.js';
import { applyPlan } from '../src/remote/apply.js';
import { fetchLive } from '../src/remote/fetch.js';
import { defaultLaunch } from '../src/remote/launch.js';
import { LocalTransport } from '../src/remote/local.js';
import { argvOf } from '../src/util/process-alive.js';
import { cleanEnv, runVnetcAsync, VNETC, type Run } from './support/vnetc.js';

/**
 * Ctrl-C during `vnetc up`: no more daemons are started, and the person is
 * told which were (they keep running) and how to stop them. Real vnetd
 * processes on loopback addresses, in a scratch VNETC_HOME; every one
 * started is stopped at the end.
 */

jest.setTimeout(60_000);

let dir = '';
let home = '';
const port = 20000 + Math.floor(Math.random() * 20000);
const MACHINES = ['m1', 'm2', 'm3', 'm4'];
const SPEC = ['BEGIN', ...MACHINES.map((m) => `  HOST vnet AT ${m} ${port} vm0`), '  ADD', '    LINK m1 m2', '    LINK m3 m4', 'END', ''].join('\n');

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vnetc-up-interrupt-'));
  home = path.join(dir, 'home');
  fs.writeFileSync(path.join(dir, 'four.vnet'), SPEC);
});

/** The pid of each local daemon vnetc recorded. */
const recorded = (): Map<string, number> => {
  const out = new Map<string, number>();
  for (const m of fs.existsSync(path.join(home, 'local')) ? fs.readdirSync(path.join(home, 'local')) : []) {
    try {
      out.set(m, (JSON.parse(fs.readFileSync(path.join(home, 'local', m, 'launch.json'), 'utf8')) as { pid: number }).pid);
    } catch {
      // no record
    }
  }
  return out;
};

const alive = (pid: number): boolean => {
  try {
    return !/^State:\s*Z/m.test(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  } catch {
    return false;
  }
};

/** The machines whose daemon runs now. */
const running = (): string[] => [...recorded()].filter(([, pid]) => alive(pid)).map(([m]) => m).sort();

afterEach(() => {
  // A daemon whose start a second Ctrl-C cut short may run with a launch.json that has no pid yet: ours too if its argv names this test's directory.
  const strays = fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p)).map(Number).filter((pid) => argvOf(pid)?.some((a) => a.startsWith(dir)));
  for (const pid of new Set([...recorded().values(), ...strays])) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // not running
    }
  }
  fs.rmSync(dir, { recursive: true, force: true });
});

test('applyPlan, aborted once a daemon runs: starts no other, pushes no change, and says it was cut short', async () => {
  const desired = compileText('four.vnet', SPEC).state!;
  const fetched = await fetchLive([...desired.hosts.values()], new LocalTransport(home));
  try {
    const stop = new AbortController();
    const told: string[] = [];
    const report = await applyPlan(diff(fetched.live, desired).steps, fetched, {
      launchFor: defaultLaunch,
      parallelism: 1,
      signal: stop.signal,
      daemon: (machine, now) => {
        told.push(`${machine} ${now}`);
        if (now === 'started') stop.abort();
      },
    });
    const first = told[0]!.split(' ')[0]!;
    expect(told).toEqual([`${first} starting`, `${first} started`]);
    expect(report.interrupted).toBe(true);
    expect(report.ok).toBe(false);
    expect(report.started).toEqual([first]);
    expect(report.results.filter((r) => r.status !== 'not-attempted').map((r) => r.step.kind)).toEqual(['host']);
    expect(running()).toEqual([first]);
  } finally {
    await fetched.close();
  }
});

/** `vnetc up --local --parallelism 1 four.vnet`, its output so far, and its end. */
function upFour() {
  const child = spawn(process.execPath, [VNETC, 'up', '--local', '--parallelism', '1', 'four.vnet'], { cwd: dir, env: cleanEnv({ VNETC_HOME: home }), stdio: ['ignore', 'pipe', 'pipe'] });
  const out = { stdout: '', stderr: '' };
  child.stdout.on('data', (b: Buffer) => (out.stdout += b));
  child.stderr.on('data', (b: Buffer) => (out.stderr += b));
  const closed = new Promise<number | null>((resolve) => child.on('close', (status) => resolve(status)));
  /** Resolves once stderr matches `re` (then, not before). */
  const when = (re: RegExp) => new Promise<void>((resolve) => {
    const look = () => (re.test(out.stderr) ? (child.stderr.off('data', look), resolve()) : undefined);
    child.stderr.on('data', look);
    look();
  });
  return { child, out, closed, when };
}

test('Ctrl-C during vnetc up: it says which daemons it started, which are the ones running, and how to stop them', async () => {
  const { child, out, closed, when } = upFour();
  // Once a daemon is started (the progress line says so), and no sooner.
  await when(/^\w+: started$/m);
  child.kill('SIGINT');
  const status = await closed;
  const { stdout, stderr } = out;
  const first = /^(\w+): started$/m.exec(stderr)![1]!;
  expect(stderr).toContain('vnetc: SIGINT: starting no more daemons, then saying which were started (Ctrl-C again to stop at once)\n');
  const said = /^vnetc: interrupted: the daemons? of ([\w, ]+?) (?:was|were) started and keeps? running, without all of four\.vnet's links and rules; to stop (?:it|them): vnetc down --local four\.vnet$/m.exec(stderr);
  expect({ said: !!said, stderr }).toEqual({ said: true, stderr });
  const named = said![1]!.split(/, | and /).sort();
  expect(named).toContain(first);
  expect(named).toEqual(running());
  expect(stdout).not.toContain('Apply complete');
  expect(status).toBe(130);

  // What it says works: down stops them all.
  const down: Run = await runVnetcAsync(['down', '--local', 'four.vnet'], { cwd: dir, env: { VNETC_HOME: home } });
  expect(down.status).toBe(0);
  expect(running()).toEqual([]);
});

test('a second Ctrl-C ends vnetc up at once, saying the same: started, being started, and how to stop them', async () => {
  const { child, out, closed, when } = upFour();
  await when(/^\w+: started$/m);
  child.kill('SIGINT');
  await when(/^vnetc: SIGINT: /m);
  child.kill('SIGINT');
  const status = await closed;
  expect(out.stderr).toContain('vnetc: SIGINT again: stopping now\n');
  const said = /^vnetc: interrupted: (?:the daemons? of ([\w, ]+?) (?:was|were) started and keeps? running)?(?:; )?(?:([\w, ]+?) (?:was|were) being started and may be running too)?; to stop (?:it|them): vnetc down --local four\.vnet$/m.exec(out.stderr);
  expect({ said: !!said, stderr: out.stderr }).toEqual({ said: true, stderr: out.stderr });
  const names = (list: string | undefined) => (list ? list.split(/, | and /) : []);
  expect(names(said![1])).toContain(/^(\w+): started$/m.exec(out.stderr)![1]);
  const named = [...names(said![1]), ...names(said![2])];
  for (const m of running()) expect(named).toContain(m);
  expect(status).toBe(130);
});
