import { isIP } from 'node:net';
import type ssh2 from 'ssh2';
import type { Host } from '../../model/state.js';
import { isInterfaceName, isMachineName } from '../../model/names.js';
import { ControlClient, daemonPatience, type Patience } from '../control-client.js';
import { alreadyRuns, daemonFailures, ReachError, type DaemonLaunch, type Session } from '../transport.js';
import type { DaemonBundle } from './bundle.js';
import { commandBounds, ending, execChannel, openBound, run, type RunBounds } from './exec.js';
import { forwardToSocket } from './forward.js';
import type { ControlRoute } from './keeper.js';
import { firstLine, installChain, probe, requireFlock, requireNode, unsafeError, upload, type Place, type Probe } from './install.js';
import { installDirOf, needsHome, remoteLayout, type RemoteLayout } from './layout.js';
import { chain, CONTROL, EXIT, HOME, START, STOP, shScript } from './scripts.js';

export interface SessionSettings {
  /** Remote root for state and uploads (see layout.ts); default: the SSH user's home. */
  remoteRoot: string | undefined;
  /** `--listen` for daemons this session starts; default: vnetd's own (all addresses). */
  listen: string | undefined;
  /** This build's daemon, for upload (read once per transport). */
  bundle: () => DaemonBundle;
  /** The target's connect bound (ConnectTimeout): also each channel's to open, and a login shell's to get going. */
  timeoutMs: number;
  /** Given, on close, how the daemon was reached, so a keeper can hold the connection for later commands; resolves once it is asked for. */
  handOff?: (route: ControlRoute) => Promise<void>;
  /** Called once the daemon is stopped: a keeper for it has nothing left to serve. */
  stopped?: () => Promise<void>;
}

/** How a session names where it went: the overlay address other daemons dial, and `ssh user@host:port via …` for messages. */
export function whereTo(host: Host, target: { hostname: string; port: number; user: string }, via: readonly string[]): { overlayAddress: string; describe: string } {
  const h = isIP(target.hostname) === 6 ? `[${target.hostname}]` : target.hostname;
  return { overlayAddress: `${h}:${host.port}`, describe: `ssh ${target.user}@${h}:${target.port}${via.length ? ` via ${via.join(',')}` : ''}` };
}

/**
 * One machine over one SSH connection (plus its jump hosts'): every control
 * stream, start, stop and upload is a channel on it.
 */
export class SshSession implements Session {
  readonly kind = 'ssh' as const;
  readonly machine: string;
  readonly overlayAddress: string;
  readonly describe: string;
  private readonly place: Place;
  private closing: Promise<void> | undefined;
  private probed: Promise<{ probe: Probe; layout: RemoteLayout }> | undefined;
  private laidOut: Promise<RemoteLayout> | undefined;
  /** How the daemon's control socket was last reached, for a keeper to do the same. */
  private route: ControlRoute | undefined;

  constructor(
    host: Host,
    /** Jump hosts first, the machine's own connection last. */
    private readonly clients: ssh2.Client[],
    target: { hostname: string; port: number; user: string },
    via: string[],
    private readonly settings: SessionSettings,
  ) {
    this.machine = host.machine;
    this.place = { machine: host.machine, user: target.user, shellMs: settings.timeoutMs };
    ({ overlayAddress: this.overlayAddress, describe: this.describe } = whereTo(host, target, via));
  }

  private get client(): ssh2.Client {
    return this.clients[this.clients.length - 1]!;
  }

  private bounds(what: string, workMs = 0): RunBounds {
    return commandBounds(this.machine, this.settings.timeoutMs, what, workMs);
  }

  private bundle(): DaemonBundle {
    try {
      return this.settings.bundle();
    } catch (e) {
      throw new ReachError(this.machine, `cannot prepare vnetd for upload: ${(e as Error).message}`, 'run npm run build in vnetc\'s directory');
    }
  }

  /**
   * Where things are there. With an absolute remote root, nothing needs
   * asking; otherwise the home directory is (a shell, no node): that is all
   * reaching a running daemon needs.
   */
  private layout(): Promise<RemoteLayout> {
    this.laidOut ??= (async () => {
      if (!needsHome(this.settings.remoteRoot)) return remoteLayout('/', this.machine, this.settings.remoteRoot);
      const r = await run(this.client, shScript(HOME, []), this.bounds('asking for the home directory'));
      if (r.code === EXIT.noHome) throw new ReachError(this.machine, `the SSH user on ${this.machine} has no usable home directory`, 'create it, or set a remote root that is an absolute path');
      const home = r.stdout.trim();
      if (r.code !== 0 || !home.startsWith('/')) {
        throw new ReachError(this.machine, `cannot run commands on ${this.machine} (exit ${r.code}): ${firstLine(r.stderr) || firstLine(r.stdout)}`, 'check that the account has a POSIX shell (sh), prints nothing of its own, and is not restricted to a forced command');
      }
      return remoteLayout(home, this.machine, this.settings.remoteRoot);
    })();
    return this.laidOut;
  }

  /** What the machine has to run vnetd with (node, a vnetd on the PATH, our upload): asked only to run or start vnetd. */
  private where(): Promise<{ probe: Probe; layout: RemoteLayout }> {
    this.probed ??= (async () => {
      const layout = await this.layout();
      const installDir = installDirOf(layout, this.bundle().id);
      // The state chain too: its daemon's pid and log are written there, and its socket is trusted.
      const guarded = { dirs: [...new Set([...layout.stateChain.dirs, ...installChain(layout.cacheChain, installDir).dirs])], root: layout.stateChain.root };
      return { probe: await probe(this.client, this.place, guarded, installDir), layout };
    })();
    return this.probed;
  }

  /**
   * How to run vnetd there: the one on the PATH if it is this version, else
   * this build's (uploaded if need be). To start a daemon (not for `vnetd
   * ctl`) flock must be there too: said before anything is uploaded.
   */
  private async vnetd(use: 'start' | 'ctl'): Promise<string[]> {
    const { probe: p, layout } = await this.where();
    const b = this.bundle();
    const onPath = p.vnetd === b.version;
    if (!onPath) requireNode(p, this.machine);
    if (use === 'start') requireFlock(p, this.machine);
    if (onPath) return ['vnetd'];
    if (!p.installed) {
      await upload(this.client, this.place, layout.cacheChain, b, installDirOf(layout, b.id));
      p.installed = true;
    }
    return ['node', `${installDirOf(layout, b.id)}/${b.entry}`];
  }

  control(): Promise<ControlClient | undefined> {
    return this.reach('talking to the daemon', () => this.connectControl());
  }

  start(launch: DaemonLaunch): Promise<void> {
    return this.reach('starting the daemon', () => this.startDaemon(launch));
  }

  stop(): Promise<void> {
    return this.reach('stopping the daemon', () => this.stopDaemon());
  }

  /** A connection lost midway (the machine rebooted, a network cut) is a ReachError like any other. */
  private async reach<T>(what: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (e) {
      if (e instanceof ReachError) throw e;
      throw new ReachError(this.machine, `the SSH connection to ${this.machine} failed while ${what}: ${(e as Error).message}`, 'check that the machine is still up, and run the command again');
    }
  }

  private async connectControl(): Promise<ControlClient | undefined> {
    // Straight to the socket when sshd allows stream-local forwarding: no process to start there.
    const layout = await this.layout();
    const ms = this.settings.timeoutMs;
    const direct = await forwardToSocket(this.client, layout.socket, openBound(this.machine, ms, `a channel to ${layout.socket}`));
    if (direct) {
      const c = new ControlClient(direct, this.patience(layout));
      try {
        await c.greeting;
        this.route = { socket: layout.socket };
        return c;
      } catch (e) {
        c.close();
        // Silence from a socket that accepted is the daemon's, whichever way it is reached.
        if (e instanceof ReachError) throw e;
      }
    }
    const { probe: p } = await this.where();
    // Otherwise (forwarding refused, e.g. by `restrict` in authorized_keys, or no socket), through `vnetd ctl`.
    if (p.vnetd !== this.bundle().version && !p.installed) {
      // No socket, no daemon: asked before uploading a vnetd to run `ctl` with.
      const sock = await run(this.client, shScript('[ -S "$1" ]', [layout.socket]), this.bounds('looking for the control socket'));
      if (sock.code !== 0) return undefined;
    }
    const argv = [...(await this.vnetd('ctl')), 'ctl', '--state-dir', layout.stateDir];
    const command = shScript(CONTROL, [layout.socket, ...argv]);
    const { ch, ended } = await execChannel(this.client, command, openBound(this.machine, this.settings.timeoutMs));
    let stderr = '';
    ch.stderr.setEncoding('utf8');
    ch.stderr.on('data', (s: string) => void (stderr.length < 4096 && (stderr += s)));
    const client = new ControlClient(ch, this.patience(layout));
    try {
      await client.greeting;
      this.route = { exec: command };
      return client;
    } catch (e) {
      // `vnetd ctl` there waits on the silent daemon, so its channel may not close.
      if (e instanceof ReachError) throw e;
      const end = await ended;
      // A socket left behind by a daemon that was killed: nothing runs there.
      if (end.code === EXIT.noSocket || /no vnetd is running/.test(stderr)) return undefined;
      throw new ReachError(this.machine, `vnetd on ${this.machine} did not answer on its control socket ${layout.socket}: ${firstLine(stderr) || ending(end)}`, `look at ${layout.logFile} there`);
    }
  }

  /** A daemon that accepts and then says nothing (suspended, wedged) is named, not waited on for ever; SSH's keepalives see only the machine. */
  private patience(layout: RemoteLayout): Patience {
    return daemonPatience(daemonFailures(this.machine, `vnetd on ${this.machine}`, `${layout.logFile} there`, `${layout.pidFile} there`));
  }

  private async startDaemon(launch: DaemonLaunch): Promise<void> {
    const { host, ifaces } = launch;
    // Checked here as well as by the parser: these words become a remote argv.
    if (!isMachineName(host.machine)) throw new ReachError(this.machine, `'${host.machine}' is not a machine name; not starting a daemon for it`);
    for (const spec of ifaces) {
      const name = spec.slice(0, spec.indexOf('='));
      if (!isInterfaceName(name)) throw new ReachError(this.machine, `'${spec}' does not start with an interface name; not starting a daemon with it`, 'interface names are letters, digits, . _ - (at most 15)');
    }
    const vnetd = await this.vnetd('start');
    const { layout } = await this.where();
    const argv = [...vnetd, '--machine', host.machine, '--port', String(host.port), ...(this.settings.listen ? ['--listen', this.settings.listen] : []), '--state-dir', layout.stateDir];
    for (const spec of ifaces) argv.push('--iface', spec);
    // START waits up to 30 s for the socket itself.
    const r = await run(this.client, shScript(START, [...chain(layout.stateChain), layout.stateDir, layout.logFile, layout.pidFile, layout.socket, ...argv]), this.bounds('starting vnetd', 35_000));
    switch (r.code) {
      case 0:
        break;
      case EXIT.unsafe:
        throw unsafeError(this.place, r);
      case EXIT.running:
        throw alreadyRuns(this.machine, r.stdout.trim());
      case EXIT.exited: {
        // An uploaded daemon has no pcap addon (it is native code, built where vnetd is installed): say what works instead.
        const pcap = ifaces.some((spec) => spec.includes('=pcap:'));
        const hint = pcap ? `its log is ${layout.logFile} there; pcap needs vnetd installed there with its pcap addon, or give --iface ${host.machine}=qemu-udp:… or qemu-stream:…` : `its log is ${layout.logFile} there`;
        throw new ReachError(this.machine, `vnetd on ${this.machine} exited at start: ${lastError(r.stdout) || 'no message'}`, hint);
      }
      case EXIT.startTimeout:
        throw new ReachError(this.machine, `vnetd on ${this.machine} did not open its control socket within 30 s`, `its log is ${layout.logFile} there`);
      default:
        throw new ReachError(this.machine, `cannot start vnetd on ${this.machine} (exit ${r.code}): ${firstLine(r.stderr)}`, `check ${layout.stateDir} there`);
    }
    const c = await this.connectControl();
    if (!c) throw new ReachError(this.machine, `vnetd on ${this.machine} started but its control socket does not answer`, `its log is ${layout.logFile} there`);
    c.close();
  }

  private async stopDaemon(): Promise<void> {
    const layout = await this.layout();
    // STOP waits up to 10 s for the daemon to exit.
    const r = await run(this.client, shScript(STOP, [layout.stateDir, layout.pidFile, layout.socket]), this.bounds('stopping vnetd', 15_000));
    if (r.code === 0) {
      // Nothing for a keeper to serve any more.
      this.route = undefined;
      return void (await this.settings.stopped?.());
    }
    if (r.code === EXIT.foreign) {
      // A socket without a pid file: a daemon vnetc did not start, or one that was killed and left its socket.
      const c = await this.connectControl();
      if (!c) return;
      c.close();
      throw new ReachError(this.machine, `the vnetd for ${this.machine} was not started by vnetc (no ${layout.pidFile}); not stopping it`, 'stop it there the way it was started');
    }
    if (r.code === EXIT.stopTimeout) throw new ReachError(this.machine, `vnetd on ${this.machine} did not exit within 10 s of SIGTERM`, `look at ${layout.logFile} there`);
    throw new ReachError(this.machine, `cannot stop vnetd on ${this.machine} (exit ${r.code}): ${firstLine(r.stderr)}`);
  }

  close(): Promise<void> {
    return (this.closing ??= this.closeAll());
  }

  private async closeAll(): Promise<void> {
    if (this.route && this.settings.handOff) await this.settings.handOff(this.route);
    await Promise.all(
      [...this.clients].reverse().map(
        (c) =>
          new Promise<void>((resolve) => {
            c.once('close', () => resolve());
            c.end();
          }),
      ),
    );
  }
}

/** The log's last error line (vnetd follows it with a usage hint), else its last line. */
function lastError(log: string): string {
  const lines = log.trim().split('\n');
  return [...lines].reverse().find((l) => /error/i.test(l)) ?? lines.pop() ?? '';
}
