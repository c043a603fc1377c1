import { answers } from '../src/util/unix-socket.js';
import { checkStateDir } from './state-dir.js';
import { mkdir, readdir, rm, rmdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { version } from '../src/version.js';
import { clipWord } from '../src/wire/clip-word.js';
import { captureWords, formatLinkLine, formatRule, WireError, type Change, type LinkConfig } from '../src/wire/control.js';
import { Config } from './config.js';
import { ControlServer, type CommitResult, type ControlTarget, type QueryOp } from './control.js';
import { CapturingInterface } from './capture/capturing-interface.js';
import { FastPath } from './forward/fast-path.js';
import { ForwardingTable } from './forward/table.js';
import type { Interface } from './interfaces/interface.js';
import { NativeInterface } from './interfaces/native-interface.js';
import { QemuStreamInterface } from './interfaces/qemu-stream.js';
import { listCapturable, pcapBinding } from './interfaces/pcap.js';
import { LinkManager, type LinkSpec } from './links/manager.js';
import { MOVE_ASIDE, StateError, StateStore, type SavedState } from './store.js';
import { lockFile, lockStateDir, type StateLock } from './state-lock.js';
import { applySettingWords, DEFAULT_SETTINGS, formatSettings, settingsProblem } from '../src/vttif/params.js';
import { VttifAgent } from './vttif/agent.js';

export interface VnetdOptions {
  machine: string;
  /** The overlay port (TCP and UDP), from the machine's HOST line. */
  port: number;
  /** Address to listen on for overlay links. */
  listen: string;
  stateDir: string;
  interfaces: Interface[];
  log: (line: string) => void;
  /** Called when a client sends SHUTDOWN; the default stops this object (the process goes on). */
  onShutdown?: () => void;
  /** Link timing, for tests. */
  links?: { keepaliveMs?: number };
  /** Per interface name, where to write the frames crossing it, both ways (`--capture NAME=FILE`). */
  ifaceCaptures?: Map<string, FrameSink>;
  /** Per peer machine, where to write the frames the link to it carries, both ways (`--capture link:PEER=FILE`). */
  linkCaptures?: Map<string, FrameSink>;
  /**
   * Forward the frames of known flows between pcap interfaces and links in
   * C, without JavaScript (daemon/forward/fast-path.ts); default true, used
   * when the pcap addon is built.
   */
  fastPath?: boolean;
}

/** Where captured frames go: a .pcap file (daemon/capture/pcap-file.ts). */
export interface FrameSink {
  readonly file: string;
  /** Frames in the file (or on their way to it), left out (the disk too far behind; lost to a write error, or after one), and write errors. */
  readonly counters: { frames: number; dropped: number; errors: number };
  /** Opens the file without emptying it; throws why it cannot be written. */
  claim(): void;
  /** Empties it and starts writing: what was written before comes first. */
  begin(): void;
  write(frame: Uint8Array): void;
  close(): Promise<void>;
}

/** Where the control socket lives: in the state directory, owner only. */
export const controlSocketPath = (stateDir: string): string => path.join(stateDir, 'vnetd.sock');

/**
 * One vnetd: its configuration (persisted), its forwarding table, its
 * overlay links and local interfaces, and the control server that changes
 * them. Frames flow interface/link → table → link/interface; configuration
 * flows control → Config (checked, applied) → store (durable, or the batch
 * is taken back) → table and links.
 */
export class Vnetd implements ControlTarget {
  readonly version = version();
  readonly table = new ForwardingTable();
  readonly links: LinkManager;
  private readonly config: Config;
  private readonly store: StateStore;
  private readonly control: ControlServer;
  private readonly ifaces = new Map<string, { iface: Interface; port: number }>();
  /** Commits run one at a time: each one's check, write and effect see the last one's result. */
  private commits: Promise<unknown> = Promise.resolve();
  private configTimeMs: number | null = null;
  private lastCommitMs: number | null = null;
  private maxCommitMs = 0;
  private forwardErrors = 0;
  private readonly startedAt = Date.now();
  private readonly vttif: VttifAgent;
  private readonly linkCaptures: Map<string, FrameSink>;
  private readonly ifaceCaptures: Map<string, FrameSink>;
  /** opts.interfaces, a captured one wrapped so that its frames also reach its file. */
  private readonly interfaces: Interface[];
  private readonly fast: FastPath | null;
  /** Set once the captures have begun: only then are they summed up at stop. */
  private capturing = false;
  /** This daemon's claim on its state directory, from start until stop. */
  private lock: StateLock | null = null;

  constructor(private readonly opts: VnetdOptions) {
    this.store = new StateStore(opts.stateDir);
    this.linkCaptures = opts.linkCaptures ?? new Map();
    this.ifaceCaptures = opts.ifaceCaptures ?? new Map();
    this.interfaces = opts.interfaces.map((i) => {
      const sink = this.ifaceCaptures.get(i.name);
      return sink ? new CapturingInterface(i, sink) : i;
    });
    this.config = new Config(opts.machine, new Set(this.interfaces.map((i) => i.name)));
    const pcap = pcapBinding();
    this.fast =
      opts.fastPath === false
        ? null
        : FastPath.create(this.table, { sampled: (src, dst, frames, bytes) => this.vttif.sampler?.count(src, dst, frames, bytes) });
    if (this.fast) this.table.onChange = () => this.fast!.tableChanged();
    this.links = new LinkManager({
      self: opts.machine,
      host: opts.listen,
      port: opts.port,
      log: opts.log,
      ...(opts.links?.keepaliveMs ? { keepaliveMs: opts.links.keepaliveMs } : {}),
      ...(this.fast ? { openUdp: this.fast.openUdp } : {}),
      ...(typeof pcap === 'object' ? { pathRoom: pcap.pathRoom } : {}),
    });
    // A link being captured (--capture link:PEER) must see every frame, so it stays off the fast path.
    this.fast?.serve(this.links, (peer) => this.linkCaptures.has(peer));
    this.control = new ControlServer(this, opts.log);
    this.vttif = new VttifAgent({
      machine: opts.machine,
      send: (peer, payload) => this.links.report(peer, payload),
      log: opts.log,
      beforeReport: () => this.fast?.drain(),
    });
  }

  get machine(): string {
    return this.opts.machine;
  }

  /** Restores saved state, opens interfaces and links, then starts taking commands. */
  async start(): Promise<void> {
    const { opts } = this;
    const existing = await stat(opts.stateDir).catch(() => undefined);
    if (existing && !existing.isDirectory()) throw new StateError(`the state directory ${opts.stateDir} is not a directory; name another (--state-dir)`);
    // The first directory this start made, if it made any: a start that fails takes them back.
    const made = await mkdir(opts.stateDir, { recursive: true, mode: 0o700 });
    let lock: StateLock | undefined;
    try {
      await checkStateDir(opts.stateDir);
      await this.store.checkWritable();
      lock = await lockStateDir(opts.stateDir);
      const sock = controlSocketPath(opts.stateDir);
      await this.clearSocket(sock);
      this.lock = lock;
      await this.bringUp(sock);
    } catch (e) {
      // What did open closes again: a daemon that could not start holds no port, socket or file.
      await this.close().catch(() => {});
      if (made !== undefined) await this.unmake(path.resolve(made), lock).catch(() => {});
      else if (this.lock) await this.unlock();
      // Not past clearSocket (or unmake gave up midway): the socket, if any, is another daemon's.
      lock?.release();
      this.lock = null;
      throw e;
    }
  }

  /**
   * A start that failed in a state directory it made (`made` down to the
   * state directory) leaves nothing there: while it holds the lock, nobody
   * else has written in it, so what is in it is this start's own, and goes
   * with the directories. A name it does not know means someone else put
   * it there: then everything stays as it is. Without the lock it removes
   * nothing but directories left empty.
   */
  private async unmake(made: string, lock: StateLock | undefined): Promise<void> {
    const dir = path.resolve(this.opts.stateDir);
    if (lock) {
      // The socket is ours only once clearSocket has passed (this.lock is set); before, it is a daemon's that answered.
      const ours = new Set([lockFile(dir), this.store.file, this.store.journalFile, ...(this.lock ? [controlSocketPath(dir)] : [])].map((f) => path.basename(f)));
      const names = await readdir(dir);
      if (names.some((n) => !ours.has(n))) return lock.release();
      for (const n of names) if (n !== path.basename(lockFile(dir))) await rm(path.join(dir, n), { force: true });
      lock.discard();
    }
    // rmdir removes a directory only when it is empty: what anyone else put in one keeps it.
    for (let d = dir; ; d = path.dirname(d)) {
      try {
        await rmdir(d);
      } catch {
        return;
      }
      if (d === made) return;
    }
  }

  /**
   * With the lock held, a socket file is a killed daemon's, and goes; unless
   * it answers: a vnetd from before the lock, which takes none, and keeps it.
   */
  private async clearSocket(sock: string): Promise<void> {
    if (await answers(sock)) throw new Error(`another vnetd is running with state directory ${this.opts.stateDir}`);
    await rm(sock, { force: true });
  }

  /** All of start() past the check that no other daemon holds the state directory. */
  private async bringUp(sock: string): Promise<void> {
    const { opts } = this;
    const saved = await this.store.load();
    if (saved && saved.machine !== opts.machine) {
      throw new Error(`${this.store.file} belongs to machine '${clipWord(saved.machine)}', not '${opts.machine}'; use another --state-dir`);
    }

    for (const iface of this.interfaces) {
      iface.on('note', (line: string) => opts.log(`iface ${iface.name}: ${line}`));
      await iface.open();
      const dest = { kind: 'interface', iface: iface.name } as const;
      const port = this.table.portId(dest);
      iface.on('frame', (frame: Buffer) => {
        this.vttif.sampler?.sent(frame);
        this.forward(port, frame);
      });
      // A capture file (--capture) must see every frame: a wrapped interface stays off the fast path.
      const native = iface instanceof NativeInterface ? iface : null;
      // A device that is not there (a VM's tap, before or after the VM) is down, as a link that is not up.
      const setPresent = (present: boolean): void => {
        if (present) {
          this.table.attach(dest);
          if (native) this.fast?.attachInterface(port, native);
        } else {
          this.table.detach(dest);
          if (native) this.fast?.detachInterface(port);
        }
      };
      setPresent(iface.present !== false);
      if (this.fast && iface instanceof QemuStreamInterface) this.fast.attachStream(port, iface);
      iface.on('device', setPresent);
      this.ifaces.set(iface.name, { iface, port });
    }

    this.links.on('frame', (peer: string, frame: Buffer) => {
      if (this.linkCaptures.size) this.linkCaptures.get(peer)?.write(frame);
      this.forward(this.table.portId({ kind: 'link', to: peer }), frame);
    });
    this.links.on('report', (peer: string, payload: Buffer) => this.vttif.received(peer, payload));
    this.links.on('up', (peer: string) => {
      this.table.attach({ kind: 'link', to: peer });
      opts.log(`link ${peer} up`);
    });
    this.links.on('down', (peer: string) => {
      this.table.detach({ kind: 'link', to: peer });
      opts.log(`link ${peer} down`);
    });
    await this.links.start();

    this.vttif.configure(saved?.vttif ? applySettingWords(DEFAULT_SETTINGS, saved.vttif.split(' ')) : DEFAULT_SETTINGS);
    if (saved) {
      for (const note of saved.notes) opts.log(note);
      // The snapshot as a batch of additions, then the journal's batches: each was checked when it was committed.
      const changes: Change[] = [
        ...saved.links.map((link): Change => ({ op: 'link-add', link })),
        ...saved.rules.map((rule): Change => ({ op: 'rule-add', rule })),
        ...saved.journal,
      ];
      const r = this.config.apply(changes);
      if (!r.ok) {
        const at = r.errors.findIndex((x) => x);
        const [nLinks, nRules] = [saved.links.length, saved.rules.length];
        const where =
          at < nLinks ? `${this.store.file}: links[${at}]`
          : at < nLinks + nRules ? `${this.store.file}: rules[${at - nLinks}]`
          : `${this.store.journalFile}: record ${saved.journalRecords[at - nLinks - nRules]}`;
        throw new StateError(`${where} does not apply to this daemon (${r.errors[at]!.message}); ${MOVE_ASIDE}`);
      }
      this.configTimeMs = saved.configTimeMs;
      this.effect(changes);
      opts.log(
        `restored ${this.config.links.size} links and ${this.config.rules.size} rules from ${this.store.file}` +
          (saved.journal.length ? ` and ${saved.journal.length} journaled changes` : ''),
      );
    }

    // Before the first client: its commit is then an append and a sync, like
    // every later one. libpcap is loaded already (links read their paths'
    // MTUs through it), so its first DEVICES? does not pay for that either.
    await this.store.prepare(this.saved());
    await this.control.listen(sock);
    // Only a daemon that holds its state directory, ports and socket touches
    // its capture files: one that cannot start must not empty a running
    // one's. Each is claimed before any is emptied, so a capture that cannot
    // be written leaves the others as they were. Frames that crossed an
    // interface meanwhile were held and come first.
    const sinks = this.captures();
    for (const { sink } of sinks) sink.claim();
    for (const { sink } of sinks) sink.begin();
    this.capturing = true;
    opts.log(`vnetd ${this.version}: ${opts.machine} on ${opts.listen}:${this.links.port ?? opts.port}, control ${sock}`);
  }

  async stop(): Promise<void> {
    await this.close();
    await this.unlock();
  }

  /** Everything stop does but give up the state directory. */
  private async close(): Promise<void> {
    this.vttif.stop();
    await this.control.close();
    // A commit in flight may queue a compaction behind itself: wait until the queue stops growing, before what it touches is closed.
    for (let queued = this.commits; ; queued = this.commits) {
      await queued;
      if (queued === this.commits) break;
    }
    await this.links.close();
    for (const { iface } of this.ifaces.values()) await iface.close();
    // Captures are the daemon's, begun or not (a start that failed leaves them untouched).
    for (const { sink } of this.captures()) await sink.close();
    // The last word on each capture: whether the file holds every frame.
    if (this.capturing) {
      for (const { what, sink } of this.captures()) {
        const c = sink.counters;
        this.opts.log(
          `capture of ${what} in ${sink.file}: ${c.frames} frame${c.frames === 1 ? '' : 's'}` +
            (c.dropped ? `, ${c.dropped} left out` : '') +
            (c.errors ? `, ${c.errors} write error(s): the file ends early` : '') +
            (c.dropped || c.errors ? ' (incomplete)' : ''),
        );
      }
      this.capturing = false;
    }
    await this.store.close();
  }

  /** Gives up the state directory: its socket, then the lock. */
  private async unlock(): Promise<void> {
    if (!this.lock) return;
    await rm(controlSocketPath(this.opts.stateDir), { force: true });
    // Last: the next daemon may bind its socket as soon as it has the lock.
    this.lock.release();
    this.lock = null;
  }

  /** Every capture, interfaces' then links', named as the log names them. */
  private captures(): { what: string; sink: FrameSink }[] {
    return [
      ...[...this.ifaceCaptures].map(([name, sink]) => ({ what: `iface ${name}`, sink })),
      ...[...this.linkCaptures].map(([peer, sink]) => ({ what: `link ${peer}`, sink })),
    ];
  }

  private forward(ingress: number, frame: Buffer): void {
    try {
      const decision = this.table.route(ingress, frame);
      if (!decision) return;
      for (const id of decision.ports) {
        const dest = this.table.port(id)!.dest;
        if (dest.kind === 'link') {
          if (this.links.send(dest.to, frame) && this.linkCaptures.size) this.linkCaptures.get(dest.to)?.write(frame);
        }
        else this.ifaces.get(dest.iface)?.iface.send(frame);
      }
      this.fast?.learn(ingress, frame, decision);
    } catch (e) {
      // A frame must never take the daemon down; count it and carry on.
      this.forwardErrors++;
      if (this.forwardErrors <= 10) this.opts.log(`forward: ${(e as Error).message}`);
    }
  }

  commit(changes: readonly Change[]): Promise<CommitResult> {
    return this.serially(() => this.commitNow(changes));
  }

  private async commitNow(changes: readonly Change[]): Promise<CommitResult> {
    const t0 = performance.now();
    // New links only: saved state is restored as it was (the remedy for a link whose address this daemon cannot reach is to change the link or --listen, and a daemon that would not start helps with neither).
    const r = this.config.apply(changes, (c) => {
      const why = c.op === 'link-add' && c.link.proto === 'udp' && c.link.address !== undefined ? this.links.udpUnreachable(c.link.address) : null;
      if (why) throw new WireError('E_ADDRESS', why);
    });
    if (!r.ok) return { ok: false, errors: r.errors };
    // Applied but not yet durable: until the append returns, only LINKS? can
    // see it (the table and links change after), and a failed append takes it back.
    try {
      await this.store.append({ changes }, () => this.saved());
    } catch (e) {
      this.config.undo(r.applied);
      const err = new WireError('E_PERSIST', `cannot save the state (${(e as Error).message}); nothing applied`);
      return { ok: false, errors: changes.map(() => undefined), fatal: err };
    }
    this.effect(changes);
    const ms = performance.now() - t0;
    this.lastCommitMs = ms;
    this.maxCommitMs = Math.max(this.maxCommitMs, ms);
    this.compactLater();
    return { ok: true, ms };
  }

  /**
   * Folds the journal into a new snapshot after the commit that grew it has
   * been answered: the client waits for its own batch only, and the next
   * commit queues behind the compaction. A failed one leaves the journal,
   * which is still whole, and is tried again after a later commit.
   */
  private compactLater(): void {
    if (!this.store.wantsCompaction) return;
    this.commits = this.commits.then(() =>
      this.store.compact(this.saved()).catch((e: Error) => this.opts.log(`state: compaction failed, the journal keeps growing: ${e.message}`)),
    );
  }

  /** Makes links and table match changes that were just applied to the configuration and saved. */
  private effect(changes: readonly Change[]): void {
    const peers = new Set<string>();
    for (const c of changes) {
      if (c.op === 'link-add') peers.add(c.link.peer);
      else if (c.op === 'link-delete') peers.add(c.peer);
    }
    for (const peer of peers) {
      const link = this.config.links.get(peer);
      if (link) {
        this.links.add(linkSpec(link));
      } else {
        this.links.remove(peer);
        this.table.detach({ kind: 'link', to: peer });
      }
    }
    for (const c of changes) {
      if (c.op === 'rule-add') this.table.add({ machine: this.machine, ...c.rule });
      else if (c.op === 'rule-delete') this.table.delete({ machine: this.machine, ...c.rule });
    }
  }

  private saved(): SavedState {
    return {
      machine: this.machine,
      links: [...this.config.links.values()],
      rules: [...this.config.rules.values()],
      configTimeMs: this.configTimeMs,
      vttif: formatSettings(this.vttif.current),
    };
  }

  async setConfigTime(ms: number): Promise<void> {
    await this.serially(async () => {
      const before = this.configTimeMs;
      this.configTimeMs = ms;
      try {
        await this.persist(() => this.store.append({ configTimeMs: ms }, () => this.saved()));
      } catch (e) {
        this.configTimeMs = before;
        throw e;
      }
    });
  }

  setVttif(words: readonly string[]): Promise<string> {
    return this.serially(async () => {
      let next;
      try {
        next = applySettingWords(this.vttif.current, words);
      } catch (e) {
        // Callers in this process (the bed, the benches) pass words the control parser has not seen.
        throw new WireError('E_SYNTAX', (e as Error).message);
      }
      const problem = settingsProblem(next);
      if (problem) throw new WireError('E_REJECTED', problem);
      const text = formatSettings(next);
      await this.persist(() => this.store.append({ vttif: text }, () => ({ ...this.saved(), vttif: text })));
      this.vttif.configure(next);
      return `vttif ${text}`;
    });
  }

  /** Runs `f` after every change queued before it: each one's check, write and effect see the last one's result. */
  private serially<T>(f: () => Promise<T>): Promise<T> {
    const run = this.commits.then(f);
    this.commits = run.catch(() => {});
    return run;
  }

  /** A store write whose failure the client hears as E_PERSIST, as for a commit. */
  private async persist(write: () => Promise<void>): Promise<void> {
    try {
      await write();
    } catch (e) {
      throw new WireError('E_PERSIST', `cannot save the state (${(e as Error).message}); nothing applied`);
    }
  }

  shutdown(): void {
    if (this.opts.onShutdown) this.opts.onShutdown();
    else void this.stop();
  }

  *query(op: QueryOp): Iterable<string> {
    this.fast?.drain();
    switch (op) {
      case 'info?':
        yield `machine ${this.opts.machine}`;
        yield `version ${this.version}`;
        yield `port ${this.links.port ?? this.opts.port}`;
        yield `listen ${this.opts.listen}`;
        yield `pid ${process.pid}`;
        yield `uptime-s ${Math.round((Date.now() - this.startedAt) / 1000)}`;
        return;
      case 'devices?':
        for (const { iface } of this.ifaces.values()) {
          const c = iface.counters;
          const vm = iface.connected === undefined ? '' : ` vm=${iface.connected ? 'up' : 'down'}`;
          const device = iface.present === undefined ? '' : ` device=${iface.present ? 'open' : 'missing'}`;
          const capture = this.ifaceCaptures.get(iface.name);
          yield `${iface.name} ${iface.spec} rx=${c.rxFrames}/${c.rxBytes} tx=${c.txFrames}/${c.txBytes} errors=${c.errors}${capture ? captureWords(capture.counters) : ''}${vm}${device}`;
        }
        // What else could be opened here; '(' cannot start an interface name, so a reader tells the two apart.
        for (const d of listCapturable()) yield `(can open) pcap:${d.name} ${d.description}`;
        return;
      case 'links?': {
        const stats = new Map(this.links.stats().map((s) => [s.peer, s]));
        for (const l of this.config.links.values()) {
          const s = stats.get(l.peer);
          const capture = this.linkCaptures.get(l.peer);
          yield formatLinkLine({
            link: l,
            state: s?.state ?? 'down',
            rttMs: s?.rttMs ?? undefined,
            counters: s
              ? { 'tx-frames': s.txFrames, 'tx-bytes': s.txBytes, 'rx-frames': s.rxFrames, 'rx-bytes': s.rxBytes, 'auth-failures': s.authFailures, reconnects: s.reconnects, moves: s.moves,
                dropped: s.dropped, rejected: s.rejected, replayed: s.replayed }
              : {},
            ...(capture ? { capture: capture.counters } : {}),
          });
        }
        return;
      }
      case 'rules?':
        for (const r of this.table.rules()) yield `${formatRule(r.rule)} packets=${r.packets} bytes=${r.bytes}`;
        return;
      case 'stats?': {
        const flat = function* (prefix: string, o: object): Generator<string> {
          for (const [k, v] of Object.entries(o)) {
            if (typeof v === 'number') yield `${prefix}${k} ${v}`;
            else if (v && typeof v === 'object') yield* flat(`${prefix}${k}.`, v as object);
          }
        };
        yield* flat('', this.table.stats());
        yield* flat('listener.', this.links.listenerStats());
        yield `forward-errors ${this.forwardErrors}`;
        if (this.fast) yield* flat('fast-path.', this.fast.stats());
        return;
      }
      case 'vttif?':
        yield* this.vttif.status();
        return;
      case 'infer?':
        yield* this.vttif.inference();
        return;
      case 'configtime?':
        yield `bound-ms ${this.configTimeMs ?? '-'}`;
        yield `last-commit-ms ${this.lastCommitMs?.toFixed(3) ?? '-'}`;
        yield `max-commit-ms ${this.maxCommitMs.toFixed(3)}`;
        return;
    }
  }
}

function linkSpec(l: LinkConfig): LinkSpec {
  return {
    peer: l.peer,
    proto: l.proto,
    dial: l.dial,
    ...(l.address === undefined ? {} : { address: l.address }),
    key: Buffer.from(l.key, 'hex'),
    mode: l.mode,
  };
}

