import { randomBytes } from 'node:crypto';
import type ssh2 from 'ssh2';
import { ReachError } from '../transport.js';
import { deadline } from '../../util/timer.js';
import type { DaemonBundle } from './bundle.js';
import { commandBounds, ending, run, seconds, type ExecResult } from './exec.js';
import { chain, DISCARD, EXIT, INSTALL, MKDIRS, PROBE, shScript, type Chain } from './scripts.js';
import path from 'node:path';

/**
 * Finding or installing vnetd on a machine. A vnetd on the SSH user's PATH
 * is used when it is this very version; otherwise this build's daemon is
 * uploaded over SFTP (once per build; later runs find it) and run with the
 * machine's own Node.
 */

export interface Probe {
  home: string;
  /** `node --version`, e.g. v20.19.0, when node is on the PATH. */
  node: string | undefined;
  /** `vnetd --version` when vnetd is on the PATH. */
  vnetd: string | undefined;
  installed: boolean;
  /** Whether flock(1) is on the PATH: every vnetd needs it to start (daemon/state-lock.ts). */
  flock: boolean;
}

export const MIN_NODE = [20, 19] as const;

/** Where on a machine vnetc reads and writes, and as whom: what a refusal to use a directory there is said with. */
export interface Place {
  machine: string;
  /** The SSH user. */
  user: string;
  /** The login shell's bound, under which each short command's own time is added (see commandBounds). */
  shellMs: number;
}

/** What the installing commands' own work may take beyond starting a shell: running `node --version` and `vnetd --version`, removing a tree. */
const WORK = { probe: 20_000, discard: 10_000, install: 10_000 } as const;

/**
 * How long an upload's transfer may take: a few megabytes, so an hour is
 * for a link that hardly moves. Past it the upload gives up and never moves
 * its scratch directory into place, which is what lets a later upload take
 * a day-old scratch directory for abandoned (scripts.ts, SWEEP).
 */
export const UPLOAD_MS = 60 * 60_000;

/** The directories an install relies on: the cache's chain, then the install dir itself. */
export const installChain = (cacheChain: Chain, installDir: string): Chain => ({ ...cacheChain, dirs: [...cacheChain.dirs, installDir] });

export async function probe(client: ssh2.Client, place: Place, guarded: Chain, installDir: string): Promise<Probe> {
  const { machine } = place;
  const r = await run(client, shScript(PROBE, [...chain(guarded), installDir]), commandBounds(machine, place.shellMs, 'looking for node and vnetd', WORK.probe));
  if (r.code === EXIT.unsafe) throw unsafeError(place, r);
  if (r.code === EXIT.noHome) throw new ReachError(machine, `the SSH user on ${machine} has no usable home directory`, 'create it, or set a remote root that is an absolute path');
  if (r.code !== 0) throw new ReachError(machine, `cannot run commands on ${machine} (${ending(r)}): ${firstLine(r.stderr)}`, 'check that the account has a POSIX shell (sh) and is not restricted to a forced command');
  const v: Record<string, string> = {};
  for (const line of r.stdout.split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0) v[line.slice(0, eq)] = line.slice(eq + 1).trim();
  }
  if (!v.home) throw new ReachError(machine, `unexpected answer from ${machine}'s shell: ${firstLine(r.stdout) || '(nothing)'}`, 'check that the login shell prints nothing of its own for non-interactive commands');
  return { home: v.home, node: v.node, vnetd: v.vnetd, installed: v.installed === 'yes', flock: v.flock === 'yes' };
}

/** Whether `node --version` output is new enough for vnetd. */
export function nodeIsRecent(version: string): boolean {
  const m = /^v(\d+)\.(\d+)\./.exec(version);
  if (!m) return false;
  const [maj, min] = [Number(m[1]), Number(m[2])];
  return maj > MIN_NODE[0] || (maj === MIN_NODE[0] && min >= MIN_NODE[1]);
}

export function requireNode(p: Probe, machine: string): void {
  const need = `Node ${MIN_NODE.join('.')} or later`;
  if (!p.node) throw new ReachError(machine, `node is not installed on ${machine} (vnetd needs ${need})`, `install ${need} there (e.g. from nodejs.org or NodeSource), or install vnetd on the SSH user's PATH`);
  if (!nodeIsRecent(p.node)) throw new ReachError(machine, `node on ${machine} is ${p.node}; vnetd needs ${need}`, `upgrade Node there (the PATH of a non-interactive SSH session is what counts)`);
}

export function requireFlock(p: Probe, machine: string): void {
  if (!p.flock) throw new ReachError(machine, `flock is not installed on ${machine} (vnetd locks its state directory with it)`, `install util-linux (or BusyBox) there, with flock on the SSH user's PATH (that of a non-interactive SSH session)`);
}

/** Uploads the bundle into `installDir` (atomically: into a scratch directory, then renamed). */
export async function upload(client: ssh2.Client, place: Place, cacheChain: Chain, bundle: DaemonBundle, installDir: string, uploadMs = UPLOAD_MS): Promise<void> {
  // Unique per upload: sessions of one command upload in parallel, and machines may share a home (NFS).
  const { machine, shellMs } = place;
  const scratch = `${installDir}.tmp-${process.pid}-${randomBytes(6).toString('hex')}`;
  const dirs = new Set<string>();
  for (const f of bundle.files.keys()) dirs.add(path.posix.dirname(path.posix.join(scratch, f)));
  const mk = await run(client, shScript(MKDIRS, [...chain(cacheChain), path.posix.dirname(installDir), ...dirs]), commandBounds(machine, shellMs, 'creating the upload directory'));
  if (mk.code === EXIT.unsafe) throw unsafeError(place, mk);
  try {
    if (mk.code !== 0) throw new ReachError(machine, `cannot create ${scratch} on ${machine}: ${firstLine(mk.stderr)}`, 'check the disk and permissions there, or choose another remote root');
    await transfer(client, machine, bundle, scratch, uploadMs);
  } catch (e) {
    // Else a half-done upload stays there for good: its name is unique, nobody would reuse it.
    await run(client, shScript(DISCARD, [scratch]), commandBounds(machine, shellMs, 'removing a failed upload', WORK.discard)).catch(() => undefined);
    throw e;
  }
  // INSTALL removes the scratch directory itself when it cannot move it.
  const mv = await run(client, shScript(INSTALL, [scratch, installDir]), commandBounds(machine, shellMs, 'moving the upload into place', WORK.install));
  if (mv.code !== 0) throw new ReachError(machine, `cannot install vnetd into ${installDir} on ${machine}: ${firstLine(mv.stderr) || ending(mv)}`, `check the permissions and the disk there; remove ${installDir} there if it is not a complete vnetd`);
}

/** Writes the bundle's files into `scratch` over SFTP, within `ms`. */
async function transfer(client: ssh2.Client, machine: string, bundle: DaemonBundle, scratch: string, ms: number): Promise<void> {
  const sftp = await new Promise<ssh2.SFTPWrapper>((resolve, reject) => client.sftp((e, s) => (e ? reject(e) : resolve(s)))).catch((e: Error) => {
    throw new ReachError(machine, `cannot open SFTP on ${machine} to upload vnetd: ${e.message}`, 'enable the sftp subsystem in its sshd_config, or install vnetd on its PATH');
  });
  const writes = [...bundle.files].map(
    ([rel, data]) =>
      new Promise<void>((resolve, reject) =>
        sftp.writeFile(path.posix.join(scratch, rel), data, { mode: 0o644 }, (e) => (e ? reject(new ReachError(machine, `uploading ${rel} to ${machine} failed: ${e.message}`, 'check the disk and permissions there')) : resolve())),
      ),
  );
  try {
    await deadline(Promise.all(writes), ms, () => new ReachError(machine, `uploading vnetd to ${machine} did not finish within ${minutes(ms)}`, 'check the connection to it, and run the command again (the upload starts afresh)'));
  } finally {
    // The writes still under way end with the channel.
    sftp.end();
  }
}

const minutes = (ms: number): string => (ms >= 60_000 ? `${Math.round(ms / 60_000)} min` : `${seconds(ms)} s`);

export function unsafeError({ machine, user }: Pick<Place, 'machine' | 'user'>, r: ExecResult): ReachError {
  const lines = r.stdout.split('\n');
  const at = lines.find((l) => l.startsWith('unsafe='))?.slice('unsafe='.length) ?? '(unknown)';
  const [mode = '?', , uid = '?'] = (lines.find((l) => /^[-a-zA-Z][-rwxsStTl.+@]{9}/.test(l)) ?? '').split(/\s+/);
  const kind = mode.startsWith('d') ? 'directory' : mode.startsWith('l') ? 'symlink' : 'file';
  return new ReachError(
    machine,
    `${at} on ${machine} is a ${kind} owned by uid ${uid} with mode ${mode}: another user could plant the daemon vnetc runs or redirect what it writes, so vnetc will not use it`,
    kind === 'directory'
      ? `make it ${user}'s own and closed to others (chown ${user} ${at} && chmod go-w ${at}), or set a remote root of ${user}'s own (VNETC_REMOTE_ROOT)`
      : `remove it (rm ${at}) if ${user} did not put it there on purpose, or set a remote root of ${user}'s own (VNETC_REMOTE_ROOT)`,
  );
}

const MAX_QUOTED_LINE = 300;

/** What a remote command said first, as a message quotes it: one line, and not a megabyte of it. */
export const firstLine = (s: string): string => {
  const line = s.trim().split('\n')[0] ?? '';
  return line.length > MAX_QUOTED_LINE ? `${line.slice(0, MAX_QUOTED_LINE - 1)}…` : line;
};
