import { countErrors, diagnostic, type Diagnostic, type Span } from '../src/diag/diagnostic.js';
import { Msg, Verbatim } from '../src/diag/messages.js';
import { SourceFile } from '../src/diag/source.js';
import { compileSource, parseSource } from '../src/lang/compile.js';
import { deltaBase } from '../src/lang/delta.js';
import { liveFromState, type Live } from '../src/model/live.js';
import { statSync } from 'node:fs';
import { userInfo } from 'node:os';
import { join, resolve } from 'node:path';
import type { Host, State } from '../src/model/state.js';
import { fingerprint } from '../src/plan/fingerprint.js';
import { fetchLive, type Fetched } from '../src/remote/fetch.js';
import { LocalTransport, vnetcHome, type LocalLaunch } from '../src/remote/local.js';
import { Router } from '../src/remote/router.js';
import { KeeperDir } from '../src/remote/ssh/keeper-dir.js';
import { shQuote } from '../src/remote/ssh/quote.js';
import { SshTransport } from '../src/remote/ssh/ssh-transport.js';
import { BrokenReply, type ReachError, type Transport } from '../src/remote/transport.js';
import { InputError } from '../src/util/input-error.js';
import { MAX_TIMER_MS } from '../src/util/timer.js';
import { describeIoError, load, STDIN, UsageError, type Io } from './io.js';

/**
 * What plan, apply, show and route start from: the desired state (a .vnet
 * file, or a saved plan evaluated on the live state it names) and the live
 * state, fetched from the daemons the file names, or read from a file with
 * --state for offline review.
 */

/** How to reach daemons: the flags every command that talks to them shares. */
export interface ReachArgs {
  state?: string | undefined;
  local: boolean;
  parallelism: number;
  sshConfig?: string | undefined;
  acceptNewHostKeys: boolean;
  /** Seconds to keep SSH connections for later commands; undefined: VNETC_SSH_PERSIST, else 60. */
  sshPersist?: number | undefined;
}

const DEFAULT_PERSIST_S = 60;

/** Seconds SSH connections are kept: the flag, else VNETC_SSH_PERSIST, else 60. */
function persistSeconds(io: Io, args: ReachArgs): number {
  const env = io.env.VNETC_SSH_PERSIST;
  const [value, from] = args.sshPersist !== undefined ? [args.sshPersist, '--ssh-persist'] : env !== undefined && env !== '' ? [Number(env), 'VNETC_SSH_PERSIST'] : [DEFAULT_PERSIST_S, ''];
  if (!Number.isFinite(value) || value < 0 || value * 1000 > MAX_TIMER_MS) {
    throw new UsageError(`${from} must be a number of seconds from 0 to ${Math.floor(MAX_TIMER_MS / 1000)} (about 24.8 days), not ${from === '--ssh-persist' ? args.sshPersist : env}`);
  }
  return value;
}

export interface Prepared {
  file: SourceFile;
  desired: State;
  live: Live;
  /** Where live state came from, for messages and saved plans. */
  liveSource: string;
  fingerprint: string;
  /** Sessions to every daemon the file names, when live state was fetched. */
  fetched: Fetched | undefined;
}

function checkReach(args: ReachArgs): void {
  if (!Number.isInteger(args.parallelism) || args.parallelism < 1) throw new UsageError(`--parallelism must be a whole number of at least 1, not ${args.parallelism}`);
}

export function transportFor(io: Io, args: ReachArgs): { transport: Transport; local: LocalTransport } {
  checkReach(args);
  checkHome(io);
  // Checked here, once, rather than blamed on each HOST line the file would be read for.
  if (args.sshConfig !== undefined) {
    let info;
    try {
      info = statSync(resolve(io.cwd, args.sshConfig));
    } catch (e) {
      throw new UsageError(`cannot read --ssh-config (-F) '${args.sshConfig}': ${describeIoError(e)}`);
    }
    if (info.isDirectory()) throw new UsageError(`--ssh-config (-F) '${args.sshConfig}' is a directory; name an ssh_config file`);
  }
  const local = new LocalTransport(vnetcHome(io.env), (line) => io.stderr.write(`vnetc: ${line}\n`));
  const ssh = new SshTransport({
    acceptNewHostKeys: args.acceptNewHostKeys,
    persist: { dir: keeperDir(io), idleMs: persistSeconds(io, args) * 1000 },
    passphrase: { env: io.env },
    say: (line) => io.stderr.write(`vnetc: ${line}\n`),
    // A relative IdentityFile (or known hosts file) is the command's directory's, as for ssh.
    local: { cwd: io.cwd },
    ...(io.env.VNETC_REMOTE_ROOT ? { remoteRoot: io.env.VNETC_REMOTE_ROOT } : {}),
    ...(args.sshConfig === undefined ? {} : { configFile: resolve(io.cwd, args.sshConfig) }),
  });
  return { transport: new Router(local, ssh, args.local), local };
}

/** Local daemons and kept SSH connections live under the vnetc home: a file there would fail every daemon alike. */
function checkHome(io: Io): void {
  const home = vnetcHome(io.env);
  const info = statSync(home, { throwIfNoEntry: false });
  if (info && !info.isDirectory()) {
    throw new UsageError(`${io.env.VNETC_HOME ? 'VNETC_HOME' : "vnetc's home"} '${home}' is not a directory: point VNETC_HOME at a directory (vnetc creates it if it is missing)`);
  }
}

/** Where keepers of kept SSH connections leave their sockets. */
const keeperDir = (io: Io): string => join(vnetcHome(io.env), 'ssh');

/** `vnetc ssh-close`: stops every keeper, so no SSH connection stays open. */
export async function sshClose(io: Io): Promise<number> {
  const n = await new KeeperDir(keeperDir(io)).stopAll();
  io.stdout.write(n ? `Closed the SSH connections of ${n} keeper${n === 1 ? '' : 's'}.\n` : 'No SSH connections were kept.\n');
  return 0;
}

/** The HOST lines of a file by machine, for pointing at them (parsed again only when something went wrong). */
function hostSpans(file: SourceFile): Map<string, Span> {
  return new Map((parseSource(file).program?.hosts ?? []).map((h) => [h.machine.text, { start: h.start, end: h.end }]));
}

/** Machines that could not be reached (VN5001), or whose connection broke mid-reply (VN5003), each reported against its HOST line. */
export function unreachable(file: SourceFile, failures: readonly ReachError[]): Diagnostic[] {
  const spans = failures.length ? hostSpans(file) : new Map<string, Span>();
  return failures.map((f) => {
    // Reached, then cut off mid-reply: not "cannot reach".
    const [msg, said] = f instanceof BrokenReply ? [Msg.ReplyBroke, f.detail] : [Msg.Unreachable, f.message];
    return diagnostic(msg, file, spans.get(f.machine), [f.machine, new Verbatim(said)], f.hint ? { hint: f.hint } : {});
  });
}

/**
 * The `vnetc up` that starts the daemons of `file` again (or the `vnetc
 * down` that stops them), with the flags that chose how they were reached:
 * a hint without --local would send a person over SSH to machines that
 * only exist on this one.
 */
export function upCommand(file: string | undefined, args: ReachArgs, command: 'up' | 'down' = 'up'): string {
  const words = ['vnetc', command];
  // Without a file the daemons are the local ones, whatever --local said.
  if (args.local || file === undefined) words.push('--local');
  if (args.sshConfig !== undefined) words.push('-F', shellWord(args.sshConfig));
  words.push(file === undefined ? 'FILE.vnet' : shellWord(file));
  return words.join(' ');
}

/** A word as a POSIX shell reads it back: bare when it can be, for a hint a person reads, else quoted as every remote word is. */
const shellWord = (w: string): string => (/^[\w@%+=:,./-]+$/.test(w) ? w : shQuote(w));

/** Fetches the live state of the machines a compiled file names; reports unreachable ones against their HOST lines. */
export async function fetchFor(io: Io, file: SourceFile, hosts: readonly Host[], args: ReachArgs, diags: Diagnostic[]): Promise<Fetched | undefined> {
  const { transport } = transportFor(io, args);
  const fetched = await fetchLive(hosts, transport, args.parallelism);
  diags.push(...unreachable(file, fetched.failures));
  if (fetched.failures.length) {
    await fetched.close();
    return undefined;
  }
  return fetched;
}

export async function prepare(io: Io, path: string, args: ReachArgs, diags: Diagnostic[]): Promise<Prepared | undefined> {
  checkReach(args);
  if (path === STDIN && args.state === STDIN) throw new UsageError('standard input (-) can be read only once: give the desired state or --state as a file');
  let liveState: State | undefined;
  let liveSource = 'the daemons';
  if (args.state !== undefined) {
    const loaded = await load(io, args.state);
    if (!loaded.ok) return void diags.push(...loaded.diagnostics);
    if (deltaBase(loaded.file.text) !== undefined) return void diags.push(diagnostic(Msg.PlanAsLiveState, loaded.file, undefined));
    const compiled = compileSource(loaded.file);
    diags.push(...compiled.diagnostics);
    if (countErrors(compiled.diagnostics) || !compiled.state) return undefined;
    liveState = compiled.state;
    liveSource = loaded.file.name;
  }

  const loaded = await load(io, path);
  if (!loaded.ok) return void diags.push(...loaded.diagnostics);
  const file = loaded.file;
  const base = deltaBase(file.text);

  let fetched: Fetched | undefined;
  if (liveState === undefined) {
    // Which daemons to ask comes from the file's HOST lines (a saved plan lists them all too).
    const first = compileSource(file);
    if (countErrors(first.diagnostics) || !first.state) return void diags.push(...first.diagnostics);
    if (base === undefined) diags.push(...first.diagnostics);
    fetched = await fetchFor(io, file, [...first.state.hosts.values()], args, diags);
    if (!fetched) return undefined;
    liveState = fetched.live.state;
    if (base === undefined) {
      const live = fetched.live;
      return { file, desired: first.state, live, liveSource, fingerprint: fingerprint(live), fetched };
    }
  }
  const live = fetched ? fetched.live : liveFromState(liveState);
  const fp = fingerprint(live);
  if (base !== undefined && base !== fp) {
    const eol = file.text.indexOf('\n');
    diags.push(diagnostic(Msg.StalePlan, file, { start: 0, end: eol < 0 ? file.text.length : eol }, [short(base), short(fp)]));
    await fetched?.close();
    return undefined;
  }
  const compiled = compileSource(file, base === undefined ? {} : { base: live.state });
  diags.push(...compiled.diagnostics);
  if (countErrors(compiled.diagnostics) || !compiled.state) {
    await fetched?.close();
    return undefined;
  }
  return { file, desired: compiled.state, live, liveSource, fingerprint: fp, fetched };
}

/** Enough of a fingerprint to tell two apart at a glance. */
const short = (fp: string): string => fp.slice(0, 'sha256:'.length + 16);

/**
 * The daemons a command without a spec looks at: the file's, or else every
 * daemon the local transport has started on this machine.
 */
export async function targets(io: Io, path: string | undefined, args: ReachArgs, diags: Diagnostic[]): Promise<{ file: SourceFile | undefined; hosts: Host[] } | undefined> {
  if (path !== undefined) {
    const loaded = await load(io, path);
    if (!loaded.ok) return void diags.push(...loaded.diagnostics);
    const compiled = compileSource(loaded.file);
    diags.push(...compiled.diagnostics);
    if (countErrors(compiled.diagnostics) || !compiled.state) return undefined;
    return { file: loaded.file, hosts: [...compiled.state.hosts.values()] };
  }
  const { local } = transportFor(io, args);
  const hosts: Host[] = [];
  for (const m of await local.machines()) {
    let l: LocalLaunch | undefined;
    try {
      l = await local.launched(m);
    } catch (e) {
      if (!(e instanceof InputError)) throw e;
      // One damaged record must not hide the other daemons.
      const file = join(local.dirOf(m), 'launch.json');
      const reason = e.message.startsWith(file) ? e.message.slice(file.length).replace(/^:\s*/, '') : e.message;
      diags.push(diagnostic(Msg.DamagedLaunch, new SourceFile(file, ''), undefined, [m, new Verbatim(reason)], { hint: local.damagedHint(m) }));
      continue;
    }
    if (!l) continue;
    const iface = l.ifaces[0]?.split('=')[0] ?? 'none';
    hosts.push({ machine: l.machine, user: userInfo().username, port: l.port, iface });
  }
  if (!hosts.length && diags.length) return undefined;
  if (!hosts.length) throw new UsageError(`no local daemons under ${local.root}; name a .vnet file to look at its daemons`);
  return { file: undefined, hosts };
}
