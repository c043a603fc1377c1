/**
 * Setup times of the papers' topologies, pushed by `vnetc apply` to real
 * vnetd processes on this machine (the local transport), beside the times
 * the LCR 2004 paper reports for VNET's own tools (§4.1, Fig. 9 and 11).
 *
 *   npm run bench:apply
 *   node dist/bench/apply.js --rounds 5 --parallelism 32
 *
 * Each scenario starts its daemons empty (an `up` of a file with only HOST
 * lines, not timed), then times `vnetc apply --auto-approve` of the
 * scenario, end to end as a user runs it: process start, parse, fetching
 * live state from every daemon, plan, and one batch per daemon and phase.
 * Fast-path scenarios are applied on top of their star, as in the paper.
 *
 * Baseline, same run: `vnetc validate` of the same file (the process start
 * and front end every command pays), so apply/validate is what reaching and
 * configuring the daemons adds.
 *
 * Scale: a one-rule change on the 8-host and the 28-host star. Apply should
 * cost what the change costs, not what the network holds.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { compileText } from '../src/lang/compile.js';
import { diff } from '../src/plan/diff.js';
import { applyPlan } from '../src/remote/apply.js';
import { fetchLive } from '../src/remote/fetch.js';
import { defaultLaunch, launchWith } from '../src/remote/launch.js';
import { LocalTransport } from '../src/remote/local.js';
import { SshTransport } from '../src/remote/ssh/ssh-transport.js';
import type { Transport } from '../src/remote/transport.js';
import { packageRoot } from '../src/util/package-root.js';
import { freePort, startSshd, type Sshd } from '../test/support/sshd.js';
import { median } from './stats.js';
import { machine } from './table.js';

const ROOT = packageRoot();
const VNETC = path.join(ROOT, 'dist', 'cli', 'vnetc.js');
const SAMPLES = path.join(ROOT, 'samples');

function usage(problem: string): never {
  console.error(`bench:apply: ${problem}\nusage: node dist/bench/apply.js [--rounds N] [--parallelism N] [--only local|ssh]`);
  process.exit(2);
}

function options() {
  try {
    return parseArgs({ options: { rounds: { type: 'string', default: '3' }, parallelism: { type: 'string', default: '10' }, only: { type: 'string' } } }).values;
  } catch (e) {
    usage((e as Error).message);
  }
}
const values = options();
const count = (name: string, text: string): number => (/^[1-9]\d{0,2}$/.test(text) ? Number(text) : usage(`--${name} must be a whole number 1..999, not '${text}'`));
/** `--only local` or `--only ssh`: one half of the bench. */
const ONLY = values.only === undefined || values.only === 'local' || values.only === 'ssh' ? values.only : usage(`--only must be local or ssh, not '${values.only}'`);
const ROUNDS = count('rounds', values.rounds);
/** Daemons talked to at once, as `--parallelism` (vnetc's default is 10). */
const PARALLELISM = count('parallelism', values.parallelism);

/** vnetc, failing the bench (with its output) when the command fails. */
async function must(args: string[], cwd: string, home: string): Promise<{ ms: number; out: string }> {
  const r = await vnetc(args, cwd, home);
  if (r.code !== 0) throw new Error(`vnetc ${args.join(' ')} failed:\n${r.out}`);
  return r;
}

function vnetc(args: string[], cwd: string, home: string): Promise<{ ms: number; code: number; out: string }> {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const child = spawn(process.execPath, [VNETC, ...args], { cwd, env: { ...process.env, VNETC_HOME: home }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ ms: Number(process.hrtime.bigint() - t0) / 1e6, code: code ?? 1, out }));
  });
}

/** A sample with its daemons on `port`. */
const sample = (name: string, port: number): string => fs.readFileSync(path.join(SAMPLES, name), 'utf8').replace(/^(\s*HOST \S+ AT \S+) 5000 /gm, `$1 ${port} `);

/** The star part of a sample: its hosts, the links to the Proxy and the rules that do not use fast paths. */
function starOf(text: string): string {
  return text
    .split('\n')
    .filter((l) => {
      const w = l.trim().split(/\s+/);
      if (w[0] === 'LINK') return w.includes('proxy');
      if (w[0] === 'FORWARD' && w.length === 6) return w[5] === 'proxy' || w[1] === 'proxy';
      return true;
    })
    .join('\n');
}

const hostsOnly = (text: string): string => text.replace(/\n\s*ADD[\s\S]*?(?=\nEND)/, '');

interface Scenario {
  name: string;
  /** Seconds, LCR 2004 §4.1. */
  paper: number;
  base: (port: number) => string | undefined;
  target: (port: number) => string;
}

const SCENARIOS: Scenario[] = [
  { name: 'star among 8', paper: 0.94, base: () => undefined, target: (p) => sample('star8.vnet', p) },
  { name: 'all-to-all fast paths, 8', paper: 1.6, base: (p) => sample('star8.vnet', p), target: (p) => sample('all2all8.vnet', p) },
  { name: 'bus fast paths, 8', paper: 3.23, base: (p) => sample('star8.vnet', p), target: (p) => sample('bus8.vnet', p) },
  { name: 'star among 28', paper: 2.9, base: () => undefined, target: (p) => starOf(sample('all2all28.vnet', p)) },
  { name: 'all-to-all fast paths, 28', paper: 20.5, base: (p) => starOf(sample('all2all28.vnet', p)), target: (p) => sample('all2all28.vnet', p) },
];


/**
 * The same apply inside this process, from the file's text to the last
 * batch's reply: parse, fetch, plan, push. No process start or module
 * loading, which the paper's figures for an already-running tool exclude too.
 */
async function inProcess(text: string, transport: Transport, launchFor = defaultLaunch): Promise<number> {
  const t0 = process.hrtime.bigint();
  const desired = compileText('target.vnet', text).state!;
  const fetched = await fetchLive([...desired.hosts.values()], transport, PARALLELISM);
  try {
    if (fetched.failures.length) throw new Error(fetched.failures.map((f) => f.message).join('; '));
    const report = await applyPlan(diff(fetched.live, desired).steps, fetched, { launchFor, parallelism: PARALLELISM });
    if (!report.ok) throw new Error(report.failures.map((f) => `${f.machine}: ${f.message}`).join('; '));
  } finally {
    await fetched.close();
  }
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

async function once(s: Scenario, mode: 'cli' | 'in-process'): Promise<{ apply: number; validate: number }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vnetc-bench-apply-'));
  const home = path.join(dir, 'home');
  const port = 20000 + Math.floor(Math.random() * 20000);
  const target = s.target(port);
  fs.writeFileSync(path.join(dir, 'hosts.vnet'), hostsOnly(target));
  fs.writeFileSync(path.join(dir, 'target.vnet'), target);
  const base = s.base(port);
  try {
    await must(['up', '--local', 'hosts.vnet'], dir, home);
    if (base) {
      fs.writeFileSync(path.join(dir, 'base.vnet'), base);
      await must(['apply', '--local', '--auto-approve', 'base.vnet'], dir, home);
    }
    const apply = mode === 'cli' ? (await must(['apply', '--local', '--auto-approve', 'target.vnet'], dir, home)).ms : await inProcess(target, new LocalTransport(home));
    const validate = await must(['validate', 'target.vnet'], dir, home);
    const again = await must(['plan', '--local', 'target.vnet', '--detailed-exitcode'], dir, home);
    if (!again.out.startsWith('No changes.')) throw new Error(`after apply, plan still has changes:\n${again.out}`);
    return { apply, validate: validate.ms };
  } finally {
    await vnetc(['down', '--local', 'target.vnet'], dir, home);
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** A one-rule change on a running star: how apply scales with the change, not the network. */
async function oneRule(star: string): Promise<number> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vnetc-bench-apply-'));
  const home = path.join(dir, 'home');
  try {
    fs.writeFileSync(path.join(dir, 'star.vnet'), star);
    const extra = star.replace(/\nEND/, '\n    FORWARD host1 ANY 02:00:00:00:99:99 vmnet1\nEND');
    fs.writeFileSync(path.join(dir, 'one.vnet'), extra);
    await must(['up', '--local', 'star.vnet'], dir, home);
    const times: number[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      times.push((await must(['apply', '--local', '--auto-approve', 'one.vnet'], dir, home)).ms);
      await must(['apply', '--local', '--auto-approve', 'star.vnet'], dir, home);
    }
    return median(times);
  } finally {
    await vnetc(['down', '--local', 'star.vnet'], dir, home);
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * The same configuration time over SSH to a real sshd on loopback: every
 * machine of the file is an alias for it (each daemon on its own port), the
 * daemons are started over SSH (not timed) and reached through the SSH
 * connection, one per machine.
 *
 * Cold: no connection to reuse, so every machine costs a handshake. Warm:
 * the keepers the cold run left behind (keeper.ts, `--ssh-persist`) hold the
 * connections, and the same scenario is set up again and applied through
 * them, as a second command within the persist time would be.
 */
async function overSsh(s: Scenario, sshd: Sshd): Promise<{ cold: number; warm: number }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vnetc-bench-ssh-'));
  const portOf = new Map<string, number>();
  const vm = new Map<string, string>();
  // Distinct ports for every daemon (TCP and UDP) and VM socket (UDP): every machine is 127.0.0.1 here.
  const taken = new Set<number>();
  const port = async (): Promise<number> => {
    for (;;) {
      const p = await freePort();
      if (!taken.has(p)) return taken.add(p), p;
    }
  };
  for (const m of new Set([...s.target(0).matchAll(/^\s*HOST \S+ AT (\S+)/gm)].map((x) => x[1]!))) {
    portOf.set(m, await port());
    vm.set(m, `qemu-udp:listen=127.0.0.1:${await port()},peer=127.0.0.1:${await port()}`);
  }
  const renumber = (text: string) =>
    text.replace(/^(\s*HOST) \S+ AT (\S+) \d+ /gm, (_, head: string, m: string) => `${head} ${sshd.user} AT ${m} ${portOf.get(m)} `);
  const target = renumber(s.target(0));
  const base = s.base(0);
  fs.mkdirSync(path.join(dir, '.ssh'), { recursive: true, mode: 0o700 });
  const machines = [...portOf.keys()];
  fs.writeFileSync(path.join(dir, '.ssh', 'config'), `Host ${machines.join(' ')}\n  HostName 127.0.0.1\n  Port ${sshd.port}\n  IdentityFile ${sshd.userKey}\n`);
  fs.writeFileSync(path.join(dir, '.ssh', 'known_hosts'), `[127.0.0.1]:${sshd.port} ${sshd.hostKeyPub}\n`);
  const remoteRoot = path.join(dir, 'remote');
  const transport = (persist: boolean) =>
    new SshTransport({ local: { home: dir, authSock: undefined }, remoteRoot, listen: '127.0.0.1', ...(persist ? { persist: { dir: path.join(dir, 'kept'), idleMs: 60_000 } } : {}) });
  const plain = transport(false);
  const launch = launchWith(vm);
  const setUp = async () => {
    await inProcess(hostsOnly(target), plain, launch);
    if (base) await inProcess(renumber(base), plain, launch);
  };
  // Stops the daemons (an empty spec for the same hosts, then SHUTDOWN over each session) and forgets their state.
  const tearDown = async () => {
    const fetched = await fetchLive([...compileText('target.vnet', target).state!.hosts.values()], plain);
    await Promise.all([...fetched.reached.values()].map((r) => r.session.stop().catch(() => {})));
    await fetched.close();
    // The "remote" is this machine: a daemon that could not be reached to be stopped is killed.
    const state = path.join(remoteRoot, 'state');
    for (const m of fs.existsSync(state) ? fs.readdirSync(state) : []) {
      try {
        process.kill(Number(fs.readFileSync(path.join(state, m, 'vnetd.pid'), 'utf8')), 'SIGKILL');
      } catch {
        // not running
      }
    }
    fs.rmSync(state, { recursive: true, force: true });
  };
  const kept = transport(true);
  try {
    await setUp();
    const cold = await inProcess(target, kept, launch);
    // First, so that the keepers' handshakes and the next ones do not crowd sshd past its MaxStartups.
    await waitForKeepers(path.join(dir, 'kept'), machines.length);
    await tearDown();
    await setUp();
    const warm = await inProcess(target, transport(true), launch);
    return { cold, warm };
  } finally {
    await tearDown();
    await kept.closeKept();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** Waits (up to 10 s) until `n` connections are kept in `dir`. */
async function waitForKeepers(dir: string, n: number): Promise<void> {
  const deadline = Date.now() + 10_000;
  const count = () => (fs.existsSync(dir) ? fs.readdirSync(dir).filter((f) => f.endsWith('.pid')).length : 0);
  while (count() < n) {
    if (Date.now() > deadline) throw new Error(`only ${count()} of ${n} SSH connections were kept after 10 s`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function main(): Promise<void> {
  console.log(`vnetc apply, median of ${ROUNDS} round(s), parallelism ${PARALLELISM}; ${machine()}`);
  console.log('');
  // "Already running": the parser is built once per process (Chevrotain's grammar analysis, ~15 ms), not per apply.
  compileText('warm.vnet', sample('star8.vnet', 5000));
  let worst = Infinity;
  let worstSsh = Infinity;
  for (const mode of ONLY === 'ssh' ? [] : (['in-process', 'cli'] as const)) {
    console.log(mode === 'cli' ? '\nthe vnetc command, end to end (process start included):' : 'configuration time (parse, fetch, plan, apply; the tool already running, as in the paper):');
    console.log('scenario                     paper     vnetc apply   faster than paper   validate (same file)   apply/validate');
    for (const s of SCENARIOS) {
      const runs: { apply: number; validate: number }[] = [];
      for (let i = 0; i < ROUNDS; i++) runs.push(await once(s, mode));
      const apply = median(runs.map((r) => r.apply));
      const validate = median(runs.map((r) => r.validate));
      const speedup = (s.paper * 1000) / apply;
      if (mode === 'in-process') worst = Math.min(worst, speedup);
      console.log(
        `${s.name.padEnd(28)} ${(s.paper.toFixed(2) + ' s').padStart(7)}   ${(apply.toFixed(1) + ' ms').padStart(11)}   ${(speedup.toFixed(1) + 'x').padStart(17)}   ${(validate.toFixed(0) + ' ms').padStart(20)}   ${(apply / validate).toFixed(2).padStart(14)}x`,
      );
    }
  }
  const sshd = ONLY === 'local' ? 'not asked for (--only local)' : await startSshd();
  if (typeof sshd === 'string') console.log(`\nover SSH: skipped (${sshd})`);
  else {
    try {
      console.log('\nconfiguration time over SSH to a real sshd on loopback (one connection per machine; daemons started over SSH, not timed):');
      console.log('cold: a handshake per machine; warm: through the connections kept by the previous command (--ssh-persist)');
      console.log('scenario                     paper     SSH cold   faster than paper     SSH warm   faster than paper   cold/warm');
      for (const s of SCENARIOS) {
        const runs: { cold: number; warm: number }[] = [];
        for (let i = 0; i < ROUNDS; i++) runs.push(await overSsh(s, sshd));
        const cold = median(runs.map((r) => r.cold));
        const warm = median(runs.map((r) => r.warm));
        const x = (ms: number) => (((s.paper * 1000) / ms).toFixed(1) + 'x').padStart(17);
        worstSsh = Math.min(worstSsh, (s.paper * 1000) / warm);
        console.log(`${s.name.padEnd(28)} ${(s.paper.toFixed(2) + ' s').padStart(7)}   ${(cold.toFixed(1) + ' ms').padStart(8)}   ${x(cold)}   ${(warm.toFixed(1) + ' ms').padStart(10)}   ${x(warm)}   ${(cold / warm).toFixed(1).padStart(8)}x`);
      }
    } finally {
      await sshd.stop();
    }
  }
  if (ONLY === 'ssh') return void console.log(`\ntarget over SSH with kept connections: ${worstSsh >= 20 ? 'met' : 'NOT met'} (slowest ${worstSsh.toFixed(1)}x)`);
  console.log('');
  const small = await oneRule(sample('star8.vnet', 20000 + Math.floor(Math.random() * 20000)));
  const large = await oneRule(starOf(sample('all2all28.vnet', 20000 + Math.floor(Math.random() * 20000))));
  console.log(`one-rule change: star of 8 ${small.toFixed(0)} ms, star of 28 ${large.toFixed(0)} ms (ratio ${(large / small).toFixed(2)}x for 3.2x the daemons)`);
  const overall = Math.min(worst, worstSsh);
  const sshPart = Number.isFinite(worstSsh) ? `, over SSH with kept connections ${worstSsh.toFixed(1)}x` : ' (SSH not measured)';
  console.log(`target: every scenario's configuration time at least 20x faster than the paper: ${overall >= 20 ? 'met' : 'NOT met'} (slowest: local ${worst.toFixed(1)}x${sshPart})`);
}

main().catch((e: Error) => {
  console.error(`bench:apply: ${e.message}`);
  process.exit(1);
});
