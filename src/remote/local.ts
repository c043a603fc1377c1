import { answers } from '../util/unix-socket.js';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, constants, openSync } from 'node:fs';
import { mkdir, open, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Host } from '../model/state.js';
import { InputError, parseJsonFile } from '../util/input-error.js';
import { JsonReader } from '../util/json-reader.js';
import { packageRoot } from '../util/package-root.js';
import { flockNow } from '../util/flock.js';
import { argvOf, isAlive } from '../util/process-alive.js';
import { modeText, strangerIn, type Stranger } from '../util/strangers.js';
import { parseFields } from '../wire/control.js';
import { ControlClient, daemonPatience, type Patience } from './control-client.js';
import { alreadyRuns, daemonFailures, ReachError, type DaemonLaunch, type Session, type Transport } from './transport.js';

/**
 * The local transport: daemons on this machine, started and reached
 * without SSH. This is the embedded default (the demo, the tests, a laptop
 * lab). Each machine gets its own loopback address, so every daemon can use
 * the port its HOST line gives (5000 for all of them, as in the papers'
 * files) and links between them are real sockets between distinct
 * addresses. Linux routes all of 127.0.0.0/8 to the loopback interface, so
 * this needs no root and no configuration.
 *
 * Layout under the vnetc home (VNETC_HOME, else $XDG_STATE_HOME/vnetc, else
 * ~/.local/state/vnetc): `local/<machine>/` is the daemon's state directory
 * (its control socket, state, log) and `local/<machine>/launch.json` what it
 * was started with. That record is written before the daemon is spawned and
 * gets its pid after: a vnetc killed in between leaves a record without a
 * pid, never a daemon without a record, and the next vnetc that finds that
 * daemon running there records its pid (adopt). vnetc talks to the socket
 * it finds there, sends it link keys and stops the process it names, so
 * `local/`, each machine's directory and its socket must be the user's
 * alone (checkedPlace).
 */

export function vnetcHome(env: NodeJS.ProcessEnv = process.env): string {
  if (env.VNETC_HOME) return path.resolve(env.VNETC_HOME);
  const state = env.XDG_STATE_HOME || path.join(os.homedir(), '.local', 'state');
  return path.join(state, 'vnetc');
}

/** Machine names the local transport takes without being told: loopback literals, `localhost` and `*.localhost` (RFC 6761). */
export function isLocalMachine(machine: string): boolean {
  return machine === 'localhost' || machine.endsWith('.localhost') || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(machine);
}

/** What a local daemon was started with. */
export interface LocalLaunch {
  machine: string;
  address: string;
  port: number;
  ifaces: string[];
  /** Absent while start() has yet to spawn the daemon, or was stopped before it could record the pid. */
  pid?: number;
}

/** A launch.json, field by field, as start() writes it for `machine`. */
function readLaunch(file: string, text: string, machine: string): LocalLaunch {
  const expected = 'the JSON object vnetc writes when it starts a daemon (machine, address, port, ifaces, pid)';
  const root = parseJsonFile(file, text, expected);
  if (typeof root !== 'object' || root === null || Array.isArray(root)) throw new InputError(`${file}: not a launch record; expected ${expected}`);
  const o = root as Record<string, unknown>;
  const r = new JsonReader(file);
  const named = r.string(o.machine, 'machine');
  if (named !== machine) r.fail('machine', `'${machine}' (the name of its directory)`, named);
  const address = r.string(o.address, 'address');
  if (!/^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(address)) r.fail('address', 'a loopback address (127.x.y.z)', address);
  const port = r.integer(o.port, 'port', 1, 65535);
  const ifaces = r.array(o.ifaces, 'ifaces').map((v, i) => r.string(v, `ifaces[${i}]`));
  if (o.pid === undefined) return { machine: named, address, port, ifaces };
  return { machine: named, address, port, ifaces, pid: r.integer(o.pid, 'pid', 1) };
}

/** The built daemon of this package. */
const vnetdScript = (): string => path.join(packageRoot(), 'dist', 'daemon', 'vnetd.js');

const STARTUP_MS = 15_000;
/** How long a daemon told to SHUTDOWN has to exit before it is killed. */
const STOP_MS = 10_000;

/** Whether `pid` runs the vnetd script with `dir` as its state directory (Linux's /proc; elsewhere it cannot be told, so no). */
function isVnetdOn(pid: number, dir: string): boolean {
  const argv = argvOf(pid);
  if (!argv) return false;
  const at = argv.indexOf('--state-dir');
  return argv.some((a) => path.basename(a) === 'vnetd.js') && at > 0 && argv[at + 1] === dir;
}

export class LocalTransport implements Transport {
  readonly root: string;

  /** `say` tells the person what vnetc did on its own (adopting a daemon an interrupted start left unrecorded). */
  constructor(
    home: string = vnetcHome(),
    readonly say: (line: string) => void = () => {},
  ) {
    this.root = path.join(home, 'local');
  }

  /** launch.json is 0600: it names a pid vnetc may kill. */
  async record(launch: LocalLaunch): Promise<void> {
    await writeFile(path.join(this.dirOf(launch.machine), 'launch.json'), JSON.stringify(launch, null, 2) + '\n', { mode: 0o600 });
  }

  dirOf(machine: string): string {
    return path.join(this.root, machine);
  }

  /**
   * What the machine's daemon was started with; undefined when it never was.
   * A record start() did not write as it stands (edited, truncated, another
   * version's) is an InputError that names the file and the field.
   */
  async launched(machine: string): Promise<LocalLaunch | undefined> {
    const file = path.join(this.dirOf(machine), 'launch.json');
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch {
      return undefined;
    }
    return readLaunch(file, text, machine);
  }

  /** What to do about a damaged launch.json: the daemon, if any, is out of vnetc's reach. */
  damagedHint(machine: string): string {
    return `if no daemon of ${machine} runs any more, remove ${this.dirOf(machine)}; otherwise stop it (its process is vnetd --machine ${machine}) and then remove it`;
  }

  /** Machines that have a local state directory. */
  async machines(): Promise<string[]> {
    return (await readdir(this.root).catch(() => [] as string[])).sort();
  }

  /**
   * The machine's loopback address: a loopback literal is its own address,
   * `localhost` is 127.0.0.1, and any other name gets one derived from its
   * hash (stable from run to run), moved on if another local machine holds it.
   */
  async addressOf(machine: string): Promise<string> {
    if (/^127\./.test(machine)) return machine;
    if (machine === 'localhost') return '127.0.0.1';
    let mine: LocalLaunch | undefined;
    try {
      mine = await this.launched(machine);
    } catch (e) {
      if (!(e instanceof InputError)) throw e;
      throw new ReachError(machine, e.message, this.damagedHint(machine));
    }
    if (mine) return mine.address;
    const taken = new Set<string>();
    for (const m of await this.machines()) {
      // Another machine's damaged record claims no address anyone can trust; show reports it.
      const l = m === machine ? undefined : await this.launched(m).catch(() => undefined);
      if (l) taken.add(l.address);
    }
    const h = createHash('sha256').update(machine).digest();
    // 127.1.0.1 – 127.254.255.254: clear of 127.0.0.x, which other software uses.
    for (let i = 0; ; i++) {
      const n = (h.readUInt32BE(0) + i) % (254 * 256 * 254);
      const a = `127.${1 + Math.floor(n / (256 * 254))}.${Math.floor(n / 254) % 256}.${1 + (n % 254)}`;
      if (!taken.has(a)) return a;
    }
  }

  /**
   * Refuses `local/`, the machine's directory or its socket when another
   * user owns it or may write to it: a socket there could be anyone's
   * daemon, which would be sent link keys and could name a pid to kill.
   * Missing ones pass (start() makes them 0700).
   */
  async checkPlace(machine: string): Promise<void> {
    const dir = this.dirOf(machine);
    const places: [string, string][] = [
      [this.root, 'the local state directory'],
      [dir, `the state directory of ${machine}`],
      [path.join(dir, 'vnetd.sock'), `the control socket of ${machine}`],
    ];
    for (const [p, what] of places) {
      const st = await stat(p).catch((e: NodeJS.ErrnoException) => {
        // Missing, or under a file where a directory should be: nothing there to trust, and connecting says why.
        if (e.code === 'ENOENT' || e.code === 'ENOTDIR') return undefined;
        throw new ReachError(machine, `cannot look at ${what}, ${p}: ${e.message}`, `check that vnetc can use ${this.root} (VNETC_HOME sets where it is)`);
      });
      const who = st && strangerIn(st);
      if (who) throw this.refusal(machine, what, p, who);
    }
  }

  private refusal(machine: string, what: string, p: string, who: Stranger): ReachError {
    const away = `or point VNETC_HOME at a directory only you can write to (vnetc makes ${this.root} 0700 when it creates it)`;
    if ('owner' in who) {
      return new ReachError(machine, `${what}, ${p}, belongs to uid ${who.owner}, not to you (uid ${who.me}), so what answers there may not be your daemon`, `remove it if it is left over, ${away}`);
    }
    return new ReachError(machine, `${what}, ${p}, is mode ${modeText(who.mode)}, so others can write to it and stand in for your daemon`, `chmod go-w ${p}, ${away}`);
  }

  async open(host: Host): Promise<Session> {
    return new LocalSession(this, host, await this.addressOf(host.machine));
  }
}

class LocalSession implements Session {
  readonly kind = 'local' as const;
  readonly overlayAddress: string;
  readonly describe: string;
  private readonly dir: string;
  private client: ControlClient | undefined;
  /** Set while start() runs: the daemon it polls for is its own, whose pid it records. */
  private starting = false;
  /** The pid each connected daemon reports, asked once: adopt, a refused start and stop all want it. */
  private readonly pids = new WeakMap<ControlClient, Promise<number>>();

  private reportedPid(c: ControlClient): Promise<number> {
    let pid = this.pids.get(c);
    if (!pid) this.pids.set(c, (pid = c.request('INFO?').then((r) => Number(parseFields(r.data).get('pid')))));
    return pid;
  }

  constructor(
    private readonly transport: LocalTransport,
    private readonly host: Host,
    private readonly address: string,
  ) {
    this.dir = transport.dirOf(host.machine);
    this.overlayAddress = `${address}:${host.port}`;
    this.describe = `local ${address}`;
  }

  get machine(): string {
    return this.host.machine;
  }

  async control(): Promise<ControlClient | undefined> {
    if (this.client) return this.client;
    await this.transport.checkPlace(this.machine);
    return this.connect();
  }

  /** control() once the place is checked: start() checks it once, then polls here. */
  private async connect(): Promise<ControlClient | undefined> {
    if (this.client) return this.client;
    let c: ControlClient;
    try {
      c = await ControlClient.connect(path.join(this.dir, 'vnetd.sock'), this.patience());
    } catch (e) {
      if (e instanceof ReachError) throw e;
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ECONNREFUSED') return undefined;
      throw new ReachError(this.machine, `cannot reach the local daemon of ${this.machine}: ${(e as Error).message}`, `it runs on this machine, with its socket and state in ${this.dir}: check that vnetc can use that directory (VNETC_HOME sets where it is)`);
    }
    const said = (await c.greeting).text;
    if (!said.endsWith(` machine ${this.machine}`)) {
      c.close();
      throw new ReachError(this.machine, `the daemon in ${this.dir} says '${said}', not machine ${this.machine}`, `remove ${this.dir} if it is left over`);
    }
    this.client = c;
    await this.adopt(c);
    return c;
  }

  /**
   * A daemon that answers where launch.json has no pid was spawned by a vnetc
   * stopped before it recorded the pid (or by start() now, which records it
   * itself). Its pid is taken from the daemon only when /proc shows that
   * process running vnetd on this state directory, which the directory's
   * lock lets only one do; otherwise the record stays without one, and stop()
   * asks it to exit but never signals it.
   */
  private async adopt(c: ControlClient): Promise<void> {
    if (this.starting) return;
    const launch = await this.transport.launched(this.machine).catch(() => undefined);
    if (!launch || launch.pid !== undefined) return;
    const said = await this.reportedPid(c);
    if (!Number.isInteger(said) || !isVnetdOn(said, this.dir)) return;
    await this.transport.record({ ...launch, pid: said });
    this.transport.say(`the daemon of ${this.machine} (pid ${said}) was started by a vnetc that stopped before recording it; it is now recorded in ${path.join(this.dir, 'launch.json')}, and vnetc treats it as its own`);
  }

  /** A daemon that accepts and then says nothing (stopped, wedged) is named, not waited on for ever. */
  private patience(): Patience {
    const log = path.join(this.dir, 'vnetd.log');
    return daemonPatience(daemonFailures(this.machine, `the local daemon of ${this.machine}`, log, path.join(this.dir, 'launch.json')));
  }

  /**
   * Two starts of one machine at once (two `vnetc up` of the same file)
   * would each write launch.json and spawn a daemon; the second daemon loses
   * the state directory's lock and exits, and the record may be left naming
   * it while the first runs unrecorded. So a start holds `start.lock` in the
   * machine's directory from before it looks for a running daemon until its
   * own answers or fails: the later start then finds that one and says so.
   */
  async start(launch: DaemonLaunch): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    // Before anything is written there or started: the poll below would take a stranger's socket for the daemon.
    await this.transport.checkPlace(this.machine);
    const unlock = await this.lockStart();
    try {
      await this.refuseRunning();
      this.starting = true;
      await this.spawnDaemon(launch);
    } finally {
      this.starting = false;
      unlock();
    }
  }

  /** Waits for any other start of this machine to end, then holds off the next until the returned function is called. */
  private async lockStart(): Promise<() => void> {
    const file = path.join(this.dir, 'start.lock');
    let fd: number;
    try {
      fd = openSync(file, constants.O_RDONLY | constants.O_CREAT | constants.O_NOFOLLOW, 0o600);
    } catch (e) {
      throw new ReachError(this.machine, `cannot open ${file}, which keeps two starts of ${this.machine} apart: ${(e as Error).message}`, `check that vnetc can use ${this.dir} (VNETC_HOME sets where it is)`);
    }
    const unlock = () => closeSync(fd);
    // The other start holds it until its daemon answers or STARTUP_MS runs out, and a little beyond.
    const deadline = Date.now() + STARTUP_MS + 5_000;
    try {
      while (await flockNow(fd, file, 'vnetc keeps two starts of one local daemon apart')) {
        if (Date.now() > deadline) {
          throw new ReachError(this.machine, `another vnetc has been starting the daemon of ${this.machine} for over ${(STARTUP_MS + 5_000) / 1000} s (it holds ${file})`, `see ${path.join(this.dir, 'vnetd.log')}; run the command again once that vnetc has finished`);
        }
        await new Promise((r) => setTimeout(r, 50));
      }
    } catch (e) {
      unlock();
      if (e instanceof ReachError) throw e;
      throw new ReachError(this.machine, `cannot start the daemon of ${this.machine}: ${(e as Error).message}`);
    }
    return unlock;
  }

  /** A daemon that already runs here (started by another vnetc just before, or answering still) is not started again. */
  private async refuseRunning(): Promise<void> {
    const c = await this.connect();
    if (c) throw alreadyRuns(this.machine, await this.reportedPid(c));
    // One whose vnetc was killed before it answered: it holds the state directory, so another would only exit.
    const recorded = (await this.transport.launched(this.machine).catch(() => undefined))?.pid;
    if (recorded !== undefined && isVnetdOn(recorded, this.dir)) throw alreadyRuns(this.machine, recorded);
  }

  private async spawnDaemon(launch: DaemonLaunch): Promise<void> {
    const logPath = path.join(this.dir, 'vnetd.log');
    const record: LocalLaunch = { machine: launch.host.machine, address: this.address, port: launch.host.port, ifaces: [...launch.ifaces] };
    // Before the spawn: whatever stops vnetc from here on, a daemon it started has a record that later commands find.
    await this.transport.record(record);
    const log = await open(logPath, 'a', 0o600);
    const args = [
      vnetdScript(),
      '--machine', launch.host.machine,
      '--port', String(launch.host.port),
      '--listen', this.address,
      '--state-dir', this.dir,
      ...launch.ifaces.flatMap((i) => ['--iface', i]),
    ];
    // Detached, in its own session, so it outlives the command that started it (as `up` means).
    const child = spawn(process.execPath, args, { detached: true, stdio: ['ignore', log.fd, log.fd] });
    await log.close();
    let exited: number | null | undefined;
    child.once('exit', (code) => (exited = code));
    child.unref();
    await this.transport.record({ ...record, pid: child.pid! });
    const deadline = Date.now() + STARTUP_MS;
    for (;;) {
      if (exited !== undefined) {
        const tail = (await readFile(logPath, 'utf8').catch(() => '')).trim().split('\n').slice(-3).join('\n');
        throw new ReachError(this.machine, `the daemon of ${this.machine} exited on start (code ${exited}):\n${tail}`, `see ${logPath}`);
      }
      if (await this.connect().catch(() => undefined)) return;
      if (Date.now() > deadline) {
        throw new ReachError(this.machine, `the daemon of ${this.machine} did not answer within ${STARTUP_MS / 1000} s`, `see ${logPath}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  async stop(): Promise<void> {
    const c = await this.control();
    if (!c) return;
    const said = await this.reportedPid(c);
    const pid = await this.ownPid(said);
    await c.request('SHUTDOWN').catch(() => undefined);
    this.client = undefined;
    if (pid !== undefined) return this.exited(pid);
    await this.socketGone(said);
  }

  /**
   * The pid a daemon reported, if it is the vnetd that start() launched
   * here: the one launch.json records, running vnetd on this state
   * directory. Anything else (a pid reused since, a record or a reply that
   * lies) is never signalled.
   */
  private async ownPid(said: number): Promise<number | undefined> {
    const launch = await this.transport.launched(this.machine).catch(() => undefined);
    if (!launch || launch.pid !== said) return undefined;
    return isVnetdOn(said, this.dir) ? said : undefined;
  }

  /** Waits for the daemon's own process to exit, and kills it if SHUTDOWN did not stop it. */
  private async exited(pid: number): Promise<void> {
    const deadline = Date.now() + STOP_MS;
    while (isAlive(pid)) {
      if (Date.now() > deadline) {
        process.kill(pid, 'SIGKILL');
        break;
      }
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  /** Without a pid to trust, a daemon has stopped when its socket no longer answers. */
  private async socketGone(said: number): Promise<void> {
    const sock = path.join(this.dir, 'vnetd.sock');
    const deadline = Date.now() + STOP_MS;
    while (await answers(sock)) {
      if (Date.now() > deadline) {
        throw new ReachError(
          this.machine,
          `the daemon of ${this.machine} did not stop within ${STOP_MS / 1000} s, and vnetc does not kill it: the pid it gives (${said}) is not that of the vnetd recorded in ${path.join(this.dir, 'launch.json')}`,
          `stop the process that listens on ${sock} yourself, then run the command again`,
        );
      }
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  async close(): Promise<void> {
    this.client?.close();
    this.client = undefined;
  }
}

