import { isMachineName, isUserName } from '../../model/names.js';
import type { Host } from '../../model/state.js';
import { ReachError, type Session, type Transport } from '../transport.js';
import { daemonBundle, type DaemonBundle } from './bundle.js';
import { SshConfigError } from './config-file.js';
import { configSources, localContext, SshConfig, type LocalContext, type SshHostConfig } from './config.js';
import { connectChain, hostKeyLookup } from './connect.js';
import { verifyHostKey } from './known-hosts.js';
import { KeeperDir } from './keeper-dir.js';
import type { ControlRoute, KeptSpec } from './keeper.js';
import { KeptSession } from './kept-session.js';
import { passphraseAsker, type PassphraseEnv } from './passphrase.js';
import { KeyUnlocker } from './unlock.js';
import { SshSession, whereTo } from './session.js';

export interface SshTransportOptions {
  /** Like `ssh -F file`: read only this file (not ~/.ssh/config, not /etc/ssh/ssh_config). */
  configFile?: string;
  /** Like StrictHostKeyChecking=accept-new: record unknown host keys instead of refusing them. Changed keys are always refused. */
  acceptNewHostKeys?: boolean;
  /** On each machine, where daemon state and uploads go (absolute, or relative to the SSH user's home); see layout.ts. */
  remoteRoot?: string;
  /** `--listen` address for daemons this transport starts (default: vnetd's, all addresses). */
  listen?: string;
  /** Bound on reaching and logging in to each hop, unless ConnectTimeout says otherwise (default 10 s). */
  connectTimeoutMs?: number;
  /** Resolves host names to addresses (default: the system's resolver; tests inject their own). */
  resolve?: (hostname: string) => Promise<string>;
  /** This side's home, user and agent socket; defaults from the process (tests give their own). */
  local?: Partial<LocalContext>;
  /**
   * Keep each connection open this long after the command, unused, in a
   * keeper process whose socket is in this directory (like OpenSSH's
   * ControlPersist; see keeper.ts); later commands use it instead of a new
   * handshake. Without a directory, or with 0 ms, nothing is kept.
   */
  persist?: { dir: string; idleMs: number };
  /**
   * Where a protected key's passphrase is asked, as ssh(1) would: the
   * environment that says whether SSH_ASKPASS may be used (default: the
   * process's) and the terminal (default /dev/tty).
   */
  passphrase?: { env?: PassphraseEnv; terminal?: string };
  /** One-line notices for the person running the command (a wrong passphrase, a connection not kept); default: stderr. */
  say?: (line: string) => void;
}

/**
 * Reaching daemons over SSH, the way `ssh` would: ssh_config and
 * known_hosts honoured, keys from the agent and identity files. The .vnet
 * HOST line's user is the SSH user (like `ssh -l`, it wins over a User in
 * ssh_config); its port is the daemon's, the SSH port comes from ssh_config
 * (default 22). See docs/SSH.md.
 */
export class SshTransport implements Transport {
  private readonly config: SshConfig;
  private readonly local: LocalContext;
  private bundleCache: DaemonBundle | undefined;
  /** Read from dist/ once per transport, and only when a session needs it. */
  private readonly bundle = () => (this.bundleCache ??= daemonBundle());
  readonly keepers: KeeperDir | undefined;
  /** Connections to hand to one keeper, gathered while sessions close. */
  private handOffs: KeptSpec[] = [];
  private spawning: Promise<void> | undefined;
  private readonly unlocker: KeyUnlocker;
  private readonly say: (line: string) => void;
  private saidNotKept = false;
  private readonly said = new Set<string>();
  /** A notice that every machine of the command would give (the same agent socket, dead) is given once. */
  private readonly sayOnce = (line: string) => {
    if (this.said.has(line)) return;
    this.said.add(line);
    this.say(line);
  };

  constructor(private readonly opts: SshTransportOptions = {}) {
    this.local = localContext(opts.local);
    this.say = opts.say ?? ((line) => void process.stderr.write(`vnetc: ${line}\n`));
    this.config = new SshConfig(configSources(this.local.home, opts.configFile), this.local, this.say);
    this.keepers = opts.persist && opts.persist.idleMs > 0 ? new KeeperDir(opts.persist.dir) : undefined;
    this.unlocker = new KeyUnlocker(passphraseAsker(opts.passphrase?.env ?? process.env, opts.passphrase?.terminal), this.say);
  }

  async open(host: Host): Promise<Session> {
    const { machine } = host;
    if (!isMachineName(machine)) throw new ReachError(machine, `'${machine}' is not a machine name`, 'machine names are letters, digits, . _ -');
    if (!isUserName(host.user)) throw new ReachError(machine, `'${host.user}' is not a user name`, 'user names are letters, digits, . _ - and do not start with -');
    let target: SshHostConfig;
    let hops: SshHostConfig[];
    try {
      target = this.config.lookup(machine, { user: host.user });
      // A hop's own settings come from its own Host entries; the target's ProxyJump list is the whole path.
      hops = target.proxyJump.map((j) => ({ ...this.config.lookup(j.name, { ...(j.user ? { user: j.user } : {}), ...(j.port ? { port: j.port } : {}) }), proxyJump: [] }));
    } catch (e) {
      if (e instanceof SshConfigError) throw new ReachError(machine, `ssh config: ${e.message}`, 'fix that line (ssh_config(5) describes the format)');
      throw e;
    }
    const keepers = this.keepers;
    const key = keepers?.keyOf({ machine, hops, target, configFile: this.opts.configFile, remoteRoot: this.opts.remoteRoot });
    const fresh = () => this.connect(host, hops, target, key);
    if (keepers && key) {
      // The keys the keeper verified must still be the ones known_hosts has: a key since removed or changed ends the reuse.
      const chain = [...hops, target];
      const trusted = (keys: Buffer[]) =>
        keys.length === chain.length &&
        chain.every((cfg, i) => {
          const { files, keyName } = hostKeyLookup(cfg);
          return verifyHostKey(files, keyName, keys[i]!).status === 'known';
        });
      const kept = await keepers.connect(key, machine, trusted);
      if (kept) {
        const { overlayAddress, describe } = whereTo(host, target, hops.map((h) => h.alias));
        return new KeptSession(host, overlayAddress, `${describe} (kept)`, kept, () => keepers.connect(key, machine, trusted), fresh);
      }
    }
    return fresh();
  }

  private async connect(host: Host, hops: SshHostConfig[], target: SshHostConfig, key: string | undefined): Promise<SshSession> {
    const { machine } = host;
    const unlocked: string[] = [];
    const clients = await connectChain(hops, target, {
      machine,
      acceptNew: this.opts.acceptNewHostKeys ?? false,
      timeoutMs: this.timeoutMs,
      home: this.local.home,
      unlocker: this.unlocker,
      onUnlockedKey: (k) => unlocked.push(k),
      say: this.sayOnce,
      ...(this.opts.resolve ? { resolve: this.opts.resolve } : {}),
    });
    const keepers = this.keepers;
    // A keeper logs in again on its own, and is never handed a passphrase (nor a decrypted key): a connection that needed one is not kept.
    if (keepers && unlocked.length && !this.saidNotKept) {
      this.saidNotKept = true;
      this.say(`SSH connections that log in with a passphrase-protected key file (${unlocked.join(', ')}) are not kept after the command; add the key to ssh-agent (ssh-add) to have them kept`);
    }
    return new SshSession(host, clients, target, hops.map((h) => h.alias), {
      remoteRoot: this.opts.remoteRoot,
      listen: this.opts.listen,
      timeoutMs: target.connectTimeoutMs ?? this.timeoutMs,
      bundle: this.bundle,
      ...(keepers && key && !unlocked.length
        ? {
            handOff: (route: ControlRoute) => (keepers.holds(key) ? Promise.resolve() : this.handOff({ key, machine, hops, target, route })),
            stopped: () => keepers.stop(key),
          }
        : {}),
    });
  }

  private get timeoutMs(): number {
    return this.opts.connectTimeoutMs ?? 10_000;
  }

  /** Gathers the connections of sessions closing together, and starts one keeper for all of them. */
  private handOff(spec: KeptSpec): Promise<void> {
    this.handOffs.push(spec);
    return (this.spawning ??= new Promise<void>((resolve) =>
      setImmediate(() => {
        const kept = this.handOffs.splice(0);
        this.spawning = undefined;
        this.keepers!.spawn(kept, { home: this.local.home, idleMs: this.opts.persist!.idleMs, timeoutMs: this.timeoutMs });
        resolve();
      }),
    ));
  }

  /** Stops every keeper of this transport's directory; resolves how many ran. */
  closeKept(): Promise<number> {
    return this.keepers ? this.keepers.stopAll() : Promise.resolve(0);
  }
}
