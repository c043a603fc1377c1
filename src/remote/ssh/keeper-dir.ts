import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { lstatSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { packageRoot } from '../../util/package-root.js';
import { ControlClient, daemonPatience } from '../control-client.js';
import { daemonFailures } from '../transport.js';
import type { SshHostConfig } from './config.js';
import { argvOf, isAlive } from '../../util/process-alive.js';
import { modeText, strangerIn } from '../../util/strangers.js';
import { KEPT_OPEN_MS, pidPath, readPid, readPidFile, socketPath, type KeeperJob, type KeptSpec } from './keeper.js';

/**
 * Where keepers (keeper.ts) leave their sockets: `$VNETC_HOME/ssh/`, a
 * directory only its owner may enter. A socket there is named by a digest
 * of everything that selects the connection, so a command whose settings
 * differ in any of them (user, host name, port, the jump chain, the keys and
 * known_hosts files, the config file, the remote root, the machine) never
 * finds another's connection.
 */

/** The built entry point (also when this module runs from src/, under tests), as the local transport runs the built vnetd. */
const KEEPER = path.join(packageRoot(), 'dist', 'src', 'remote', 'ssh', 'keeper-main.js');
/**
 * How long a kept connection may take to bring the daemon's greeting before
 * the command connects itself: the keeper's bound on opening the channel,
 * so that its `ERR E_CHANNEL` is read rather than given up on, then the
 * daemon's greeting.
 */
const GREETING_MS = KEPT_OPEN_MS + 2000;
/** sun_path is 108 bytes on Linux, including the NUL. */
const MAX_SOCKET_PATH = 107;

export interface ConnectionChoice {
  machine: string;
  hops: readonly SshHostConfig[];
  target: SshHostConfig;
  configFile: string | undefined;
  remoteRoot: string | undefined;
}

export class KeeperDir {
  /** Why keepers are not used, once found out (a directory someone else can enter, a path too long): they are then silently skipped. */
  private unusable: string | undefined;
  private checked = false;

  constructor(readonly dir: string) {}

  keyOf(c: ConnectionChoice): string {
    const who = (h: SshHostConfig) => [h.user, h.hostname, h.port, h.hostKeyAlias ?? '', h.identityFiles, h.identitiesOnly, h.agentSocket ?? '', h.userKnownHostsFiles, h.globalKnownHostsFiles];
    const what = JSON.stringify([c.machine, c.configFile ?? '', c.remoteRoot ?? '', c.hops.map(who), who(c.target)]);
    return createHash('sha256').update(what).digest('hex').slice(0, 24);
  }

  /**
   * Makes sure the directory exists, is ours and is closed to others; false
   * (keepers unused) when it is not. A socket in a directory others can
   * write to could be theirs.
   */
  usable(): boolean {
    if (this.checked) return this.unusable === undefined;
    this.checked = true;
    if (socketPath(this.dir, 'x'.repeat(24)).length > MAX_SOCKET_PATH) {
      this.unusable = `${this.dir} is too long a path for Unix sockets`;
      return false;
    }
    try {
      mkdirSync(this.dir, { recursive: true, mode: 0o700 });
      const st = lstatSync(this.dir);
      const who = st.isDirectory() ? strangerIn(st, 0o077) : undefined;
      if (!st.isDirectory()) this.unusable = `${this.dir} is not a directory`;
      else if (who && 'owner' in who) this.unusable = `${this.dir} belongs to uid ${who.owner}, not to us`;
      else if (who) this.unusable = `${this.dir} is open to other users (mode ${modeText(who.mode)}); chmod 700 it`;
    } catch (e) {
      this.unusable = (e as Error).message;
    }
    return this.unusable === undefined;
  }

  /**
   * A control connection through the keeper of `key`, or undefined when
   * there is none, it is dead (its files are removed), the host keys it
   * verified are no longer `trusted` (known_hosts changed since: it is
   * stopped, and a fresh connection says why), it cannot open a channel to
   * the daemon (`ERR E_CHANNEL`: it is stopped, so that the command's fresh
   * connection is kept instead), or the daemon behind it does not answer as
   * `machine`.
   */
  async connect(key: string, machine: string, trusted: (hostKeys: Buffer[]) => boolean): Promise<ControlClient | undefined> {
    if (!this.usable()) return undefined;
    const sock = socketPath(this.dir, key);
    if (!ownSocket(sock)) return undefined;
    const record = readPidFile(pidPath(this.dir, key));
    if (!record || !trusted(record.hostKeys)) {
      await this.stop(key);
      return undefined;
    }
    let c: ControlClient;
    try {
      const failures = daemonFailures(machine, `vnetd on ${machine}`, 'vnetd.log in its state directory there', 'vnetd.pid beside it');
      c = await ControlClient.connect(sock, {
        ...daemonPatience(failures),
        // A keeper whose connection hangs (the machine went away unannounced) must not hold the command up: it connects itself instead.
        greetingMs: GREETING_MS,
        error: (greeting, ms) => (greeting ? new Error('no greeting through the keeper') : failures.error(greeting, ms)),
      });
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      // Refused: the keeper died and left its socket.
      if (code === 'ECONNREFUSED') this.remove(key);
      return undefined;
    }
    const greeting = await c.greeting;
    if (!greeting.ok && greeting.code === 'E_CHANNEL') {
      // Its connection opens no channel to the daemon: the command's own connection is kept in its place.
      c.close();
      await this.stop(key);
      return undefined;
    }
    if (!greeting.text.endsWith(` machine ${machine}`)) {
      c.close();
      return undefined;
    }
    return c;
  }

  /** Whether a keeper holds `key` (its process is alive). */
  holds(key: string): boolean {
    const pid = readPid(pidPath(this.dir, key));
    return pid !== undefined && this.isKeeper(pid);
  }

  /** Starts one detached keeper for these connections. */
  spawn(kept: KeptSpec[], opts: { home: string; idleMs: number; timeoutMs: number }): void {
    if (!kept.length || !this.usable()) return;
    const job: KeeperJob = { dir: this.dir, home: opts.home, idleMs: opts.idleMs, timeoutMs: opts.timeoutMs, kept };
    const file = path.join(this.dir, `job-${process.pid}-${randomBytes(4).toString('hex')}.json`);
    writeFileSync(file, JSON.stringify(job), { mode: 0o600 });
    try {
      const child = spawn(process.execPath, [KEEPER, file], { detached: true, stdio: 'ignore', cwd: '/' });
      child.on('error', () => rmSync(file, { force: true }));
      child.unref();
    } catch {
      rmSync(file, { force: true });
    }
  }

  /** Stops the keeper holding `key` (and so every connection that process keeps). */
  async stop(key: string): Promise<void> {
    const pid = readPid(pidPath(this.dir, key));
    this.remove(key);
    if (pid !== undefined) await this.terminate([pid]);
  }

  /** Stops every keeper (connecting ones too); resolves how many there were. */
  async stopAll(): Promise<number> {
    let names: string[];
    try {
      names = readdirSync(this.dir);
    } catch {
      return 0;
    }
    const pids = new Set<number>();
    for (const n of names) {
      // Keepers still connecting have no pid file yet, only their proc- entry.
      if (n.startsWith('proc-')) pids.add(Number(n.slice('proc-'.length)));
      if (!n.endsWith('.pid')) continue;
      const pid = readPid(path.join(this.dir, n));
      if (pid !== undefined) pids.add(pid);
      this.remove(n.slice(0, -'.pid'.length));
    }
    const n = await this.terminate([...pids]);
    // Entries of keepers killed without their goodbye.
    for (const f of names) if (f.startsWith('proc-')) rmSync(path.join(this.dir, f), { force: true });
    return n;
  }

  private remove(key: string): void {
    rmSync(socketPath(this.dir, key), { force: true });
    rmSync(pidPath(this.dir, key), { force: true });
  }

  /** SIGTERM to the pids that are keepers of this directory (a pid file may be stale and the pid reused); waits up to 5 s for them to go. */
  private async terminate(pids: number[]): Promise<number> {
    const ours = pids.filter((p) => this.isKeeper(p));
    for (const p of ours) signal(p, 'SIGTERM');
    const deadline = Date.now() + 5000;
    while (ours.some(isAlive) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    for (const p of ours.filter(isAlive)) signal(p, 'SIGKILL');
    return ours.length;
  }

  /** A keeper's argv is `node …/keeper-main.js <dir>/job-….json`. */
  private isKeeper(pid: number): boolean {
    const argv = argvOf(pid);
    return argv?.[1] === KEEPER && (argv[2] ?? '').startsWith(this.dir + path.sep);
  }
}

/** A socket file owned by us, with no access for others. */
function ownSocket(p: string): boolean {
  try {
    const st = lstatSync(p);
    return st.isSocket() && !strangerIn(st, 0o077);
  } catch {
    return false;
  }
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // gone already
  }
}
