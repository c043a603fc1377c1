import { randomBytes } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { lookup } from 'node:dns';
import { EventEmitter } from 'node:events';
import { createServer, isIP, type Server, type Socket } from 'node:net';
import { isMachineName } from '../../src/model/names.js';
import { KeyedLogLimiter, LogLimiter } from '../log-limiter.js';
import { sourceOf } from './address.js';
import { parseHostPort, type HostPort } from '../../src/wire/hostport.js';
import type { Admission, Channel, DialResult, InboundPolicy, Refusal } from './channel.js';
import { LINK_KEY_BYTES, type DirectionKeys } from './crypto.js';
import { DEFAULT_BACKOFF } from './backoff.js';
import { DialerHandshake } from './handshake.js';
import { Link, type LinkHooks, type LinkTiming } from './link.js';
import { Session } from './session.js';
import { acceptTcp, dialTcp, TcpChannel, type PendingHandshake } from './tcp.js';
import type { DatagramSocket, LinkManagerOptions, LinkPath, LinkSpec, LinkStats, ListenerStats, Proto } from './types.js';
import { UdpChannel, UdpEndpoint } from './udp.js';
import type { Hello } from './wire.js';

export type { LinkManagerOptions, LinkPath, LinkSpec, LinkStats, ListenerStats } from './types.js';

/**
 * All overlay links of one daemon: one TCP listener and one UDP socket on the
 * daemon's port, a Link per configured peer, dialing and re-dialing those
 * this end dials.
 *
 * Events: 'frame' (peer, frame), 'report' (peer, VTTIF report), 'up' (peer), 'down' (peer, reason),
 * 'path' (peer, LinkPath | null: where a link's records go and under which native session, for the fast path). A
 * frame's buffer is never reused by the links, but it is often a view into a
 * larger one (a TCP chunk, a decrypted batch): a listener that keeps frames
 * for long should copy them, or each pins up to 64 KiB.
 */

/**
 * Half-done inbound TCP handshakes held at once, and from one source (an
 * IPv4 address or an IPv6 /64; several daemons behind one NAT share one).
 *
 * A connection costs its sender no more than a TCP handshake, so turning
 * newcomers away while the pool is full would let one host keep every TCP
 * link down with idle sockets. A newcomer is never the one turned away: it
 * takes the slot of the oldest pending connection of its source when that
 * source is at its bound, else of all when the pool is full; of those, first
 * one that has not sent a whole HELLO yet (a dialer sends it as soon as it
 * is connected, so this is what an idle socket looks like), else the oldest.
 * A genuine handshake, about two round trips long, is then pushed out only
 * if a bound's worth of connections arrive within them, however long idle
 * ones are held; and one source only ever pushes out its own.
 *
 * No shorter deadline for the first byte: an idle socket already holds its
 * slot only until someone needs it, and a dialer whose HELLO segment was
 * lost waits a retransmission timeout for it, seconds on a long path.
 */
const MAX_PENDING_TCP = 128;
const MAX_PENDING_PER_SOURCE = 16;
/** Socket buffers asked of the kernel (it caps them at net.core.[rw]mem_max): bursts of datagrams otherwise overflow the default. */
export const UDP_BUFFER_BYTES = 4 << 20;

const REFUSAL_COUNTER: Record<Refusal, keyof ListenerStats> = {
  malformed: 'malformed',
  oversize: 'oversize',
  timeout: 'timeouts',
  aborted: 'aborted',
  'unknown-peer': 'unknownPeer',
  mismatch: 'mismatch',
  auth: 'authFailures',
  busy: 'busy',
  evicted: 'busy',
};

export interface LinkManager {
  on(event: 'frame', listener: (peer: string, frame: Buffer) => void): this;
  on(event: 'report', listener: (peer: string, payload: Buffer) => void): this;
  on(event: 'up', listener: (peer: string) => void): this;
  on(event: 'down', listener: (peer: string, reason: string) => void): this;
  on(event: 'path', listener: (peer: string, path: LinkPath | null) => void): this;
  once(event: 'frame', listener: (peer: string, frame: Buffer) => void): this;
  once(event: 'up', listener: (peer: string) => void): this;
  once(event: 'down', listener: (peer: string, reason: string) => void): this;
}

export class LinkManager extends EventEmitter {
  private readonly links = new Map<string, Link>();
  private readonly targets = new WeakMap<Link, HostPort>();
  /** Oldest first. */
  private readonly pendingTcp = new Map<Socket, PendingTcp>();
  private readonly pendingBySource = new Map<string, number>();
  private readonly counters: ListenerStats = {
    connections: 0,
    handshakes: 0,
    malformed: 0,
    oversize: 0,
    timeouts: 0,
    aborted: 0,
    unknownPeer: 0,
    mismatch: 0,
    authFailures: 0,
    busy: 0,
    strays: 0,
  };
  private readonly self: string;
  private readonly host: string;
  private readonly wantedPort: number;
  private readonly timing: LinkTiming;
  private readonly handshakeMs: number;
  private readonly logLine: (line: string) => void;
  private readonly hooks: LinkHooks;
  private readonly policy: InboundPolicy<Link>;
  private server: Server | null = null;
  private socket: DatagramSocket | null = null;
  private readonly openUdp: (host: string, port: number) => Promise<DatagramSocket>;
  private readonly pathRoom: ((ip: string) => number) | undefined;
  private udp: UdpEndpoint<Link> | null = null;
  private boundPort = 0;
  private state: 'new' | 'starting' | 'running' | 'closed' = 'new';
  /**
   * A flood of refusals must not become a flood of log lines, nor hide
   * another reason's: each reason has its own allowance.
   */
  private readonly refusalLog = new KeyedLogLimiter<Refusal>(
    (l) => this.logLine(l),
    (reason, n) => `links: ${n} more refusal line(s) suppressed (${describe(reason)})`,
  );
  private readonly udpErrorLog = new LogLimiter((l) => this.logLine(l), (n) => `links: ${n} more udp error line(s) suppressed`);

  constructor(opts: LinkManagerOptions) {
    super();
    if (!isMachineName(opts.self)) throw new TypeError(`invalid machine name '${opts.self}'`);
    if (!Number.isInteger(opts.port) || opts.port < 0 || opts.port > 65535) throw new TypeError(`invalid port ${opts.port}`);
    this.self = opts.self;
    this.host = opts.host ?? '127.0.0.1';
    this.wantedPort = opts.port;
    const keepaliveMs = opts.keepaliveMs ?? 5000;
    this.timing = {
      keepaliveMs,
      deadMs: opts.deadMs ?? 3 * keepaliveMs,
      backoff: { ...DEFAULT_BACKOFF, ...opts.backoff },
    };
    this.handshakeMs = opts.handshakeMs ?? 5000;
    this.logLine = opts.log ?? (() => {});
    this.openUdp = opts.openUdp ?? dgramSocket;
    this.pathRoom = opts.pathRoom;
    this.hooks = {
      frame: (peer, frame) => this.emit('frame', peer, frame),
      report: (peer, payload) => this.emit('report', peer, payload),
      up: (peer) => this.emit('up', peer),
      down: (peer, reason) => this.emit('down', peer, reason),
      path: (peer, session, channel) => this.emit('path', peer, fastPath(session, channel)),
      redial: (link) => this.dial(link),
      log: this.logLine,
    };
    this.policy = {
      admit: (hello, proto) => this.admit(hello, proto),
      established: (link, keys, channel) => this.established(link, keys, channel),
      refused: (reason, remote, hello) => this.refused(reason, remote, hello),
    };
  }

  /** The port both sockets are bound to (the real one when 0 was asked for). */
  get port(): number {
    return this.boundPort;
  }

  async start(): Promise<void> {
    if (this.state !== 'new') throw new Error('LinkManager.start called twice');
    this.state = 'starting';
    // With port 0 the kernel picks TCP's port, and UDP must then get the same
    // number; on the rare clash, pick again.
    for (let attempt = 0; ; attempt++) {
      const server = createServer((s) => this.onConnection(s));
      try {
        await listen(server, this.host, this.wantedPort);
      } catch (e) {
        this.state = 'closed';
        throw e;
      }
      // Only once listening: a failure to listen is the caller's to say, once.
      server.on('error', (e) => this.logLine(`links: listener error: ${e.message}`));
      const port = (server.address() as { port: number }).port;
      let socket: DatagramSocket;
      try {
        socket = await this.openUdp(this.host, port);
      } catch (e) {
        await closeServer(server);
        if (this.wantedPort === 0 && (e as NodeJS.ErrnoException).code === 'EADDRINUSE' && attempt < 10) continue;
        this.state = 'closed';
        throw e;
      }
      if ((this.state as string) === 'closed') {
        socket.close(() => {});
        await closeServer(server);
        return;
      }
      this.server = server;
      this.socket = socket;
      this.boundPort = port;
      break;
    }
    const socket = this.socket!;
    socket.on('error', (e) => this.udpErrorLog.line(`links: udp error: ${e.message}`));
    this.udp = new UdpEndpoint<Link>(socket, {
      policy: this.policy,
      timeoutMs: this.handshakeMs,
      stray: () => this.counters.strays++,
      ...(this.pathRoom ? { pathRoom: this.pathRoom } : {}),
    });
    this.state = 'running';
    this.logLine(`links: listening on ${this.host} port ${this.boundPort} (tcp, udp)`);
    for (const link of this.links.values()) link.startDialing();
  }

  async close(): Promise<void> {
    if (this.state === 'closed') return;
    this.state = 'closed';
    for (const link of this.links.values()) link.shutdown();
    this.links.clear();
    // Each cancel settles its handshake, which forgets it (both maps) as it goes.
    for (const pending of this.pendingTcp.values()) pending.handshake.cancel();
    this.udp?.close();
    const socket = this.socket;
    const server = this.server;
    this.socket = null;
    this.server = null;
    this.udp = null;
    // After the links' farewells: a datagram sent is in the kernel already.
    if (socket) await new Promise<void>((resolve) => socket.close(() => resolve()));
    if (server) await closeServer(server);
  }

  /**
   * Configures a link. The same spec again changes nothing; a different one
   * for the same peer replaces the link (its session is closed and, if this
   * end dials, re-established). Throws TypeError on a spec that cannot work.
   */
  add(spec: LinkSpec): void {
    const target = this.check(spec);
    const current = this.links.get(spec.peer);
    if (current && sameSpec(current.spec, spec)) return;
    if (current) current.shutdown();
    const frozen: LinkSpec = { ...spec, key: Buffer.from(spec.key) };
    const link = new Link(frozen, this.hooks, this.timing);
    if (target) this.targets.set(link, target);
    this.links.set(spec.peer, link);
    if (this.state === 'running') link.startDialing();
  }

  /** Closes and forgets the link; the peer is told, so it sees the link go down at once. */
  remove(peer: string): void {
    const link = this.links.get(peer);
    if (!link) return;
    this.links.delete(peer);
    link.shutdown();
  }

  /** False (and counted as dropped) when the link is not up or cannot take the frame now. */
  send(peer: string, frame: Uint8Array): boolean {
    const link = this.links.get(peer);
    return link ? link.send(frame) : false;
  }

  /** A DATA frame the fast path opened under the link's session but could not forward itself. */
  opened(peer: string, frame: Buffer): void {
    this.links.get(peer)?.opened(frame);
  }

  /** A record of a link whose TCP connection the fast path reads, opened there. */
  received(peer: string, type: number, payload: Buffer): void {
    this.links.get(peer)?.receiveOpened(type, payload);
  }

  /** A record the fast path could not open for the link: counted (the connection fails with it). */
  refusedRecord(peer: string, reason: 'replay' | 'auth'): void {
    this.links.get(peer)?.countRefusal(reason);
  }

  /** Frames the fast path carried over the link, for its counters. */
  credit(peer: string, rxFrames: number, rxBytes: number, txFrames: number, txBytes: number, dropped: number): void {
    this.links.get(peer)?.credit(rxFrames, rxBytes, txFrames, txBytes, dropped);
  }

  /** Sends a VTTIF report; false when there is no such link or it is down. */
  report(peer: string, payload: Buffer): boolean {
    return this.links.get(peer)?.report(payload) ?? false;
  }

  has(peer: string): boolean {
    return this.links.has(peer);
  }

  /**
   * Why a UDP link dialling `address` could never send from this daemon's
   * one UDP socket, or null: a socket bound to IPv4 reaches no IPv6 address,
   * one bound to a particular IPv6 address no IPv4 one (only `::` takes
   * both). Only address literals are known now; a name resolves, in the
   * socket's family, when dialled.
   */
  udpUnreachable(address: string): string | null {
    const at = parseHostPort(address);
    const peer = at ? isIP(at.host) : 0;
    const own = isIP(this.host);
    if (peer === 0 || peer === own || (own === 6 && this.host === '::')) return null;
    return `${address} is IPv${peer}, but this daemon's UDP socket is IPv${own} (--listen ${this.host}): it can never send there; give the peer's IPv${own} address, or start vnetd with --listen :: (both families)`;
  }

  isUp(peer: string): boolean {
    return this.links.get(peer)?.isUp ?? false;
  }

  stats(): LinkStats[] {
    return [...this.links.values()].map((l) => l.stats());
  }

  listenerStats(): ListenerStats {
    return { ...this.counters };
  }

  private check(spec: LinkSpec): HostPort | null {
    if (!isMachineName(spec.peer)) throw new TypeError(`invalid peer name '${spec.peer}'`);
    if (spec.peer === this.self) throw new TypeError(`a link from '${this.self}' to itself`);
    if (spec.proto !== 'tcp' && spec.proto !== 'udp') throw new TypeError(`link ${spec.peer}: unknown transport '${String(spec.proto)}'`);
    if (spec.mode !== 'encrypt' && spec.mode !== 'auth-only') throw new TypeError(`link ${spec.peer}: unknown mode '${String(spec.mode)}'`);
    if (!Buffer.isBuffer(spec.key) || spec.key.length !== LINK_KEY_BYTES) {
      throw new TypeError(`link ${spec.peer}: the key must be ${LINK_KEY_BYTES} bytes`);
    }
    if (!spec.dial) return null;
    const target = spec.address === undefined ? null : parseHostPort(spec.address);
    if (!target) throw new TypeError(`link ${spec.peer}: a dialing end needs the peer's address as host:port`);
    return target;
  }

  private dial(link: Link): void {
    if (this.state !== 'running' || this.links.get(link.spec.peer) !== link) return;
    const { spec } = link;
    const target = this.targets.get(link)!;
    const handshake = new DialerHandshake(spec.key, { self: this.self, peer: spec.peer, proto: spec.proto, mode: spec.mode });
    const done = (r: DialResult<Channel>): void => this.dialed(link, r);
    if (spec.proto === 'tcp') {
      link.dialing(dialTcp({ host: target.host, port: target.port, handshake, timeoutMs: this.handshakeMs, done }));
      return;
    }
    // Restored from before --listen changed: say why, not the kernel's EAFNOSUPPORT, once per try.
    const unreachable = spec.address === undefined ? null : this.udpUnreachable(spec.address);
    if (unreachable) return void link.dialFailed(unreachable, false);
    let cancelled = false;
    let cancelHandshake: (() => void) | null = null;
    link.dialing(() => {
      cancelled = true;
      cancelHandshake?.();
    });
    const family = isIP(this.host) === 6 ? 0 : 4;
    resolve(target.host, family, (err, ip) => {
      if (cancelled || !this.udp) return;
      if (err || !ip) {
        link.dialFailed(`cannot resolve ${target.host}: ${err?.message ?? 'no address'}`, false);
        return;
      }
      cancelHandshake = this.udp.dial(ip, target.port, handshake, done);
    });
  }

  private dialed(link: Link, r: DialResult<Channel>): void {
    if (this.state !== 'running' || this.links.get(link.spec.peer) !== link) {
      if (r.ok) r.channel.close();
      return;
    }
    if (!r.ok) {
      const hint = r.reason === 'refused' ? `: ${this.refusalCauses(link.spec)}` : '';
      link.dialFailed(`${r.reason}: ${r.detail}${hint}`, r.reason === 'auth' || r.reason === 'refused');
      return;
    }
    link.attach(this.session(link, r.keys, r.channel, 'dialer'), r.channel);
  }

  /**
   * An acceptor refuses in silence, whatever the reason, so that a stranger
   * learns nothing; the dialer can only list what it may be, and point to
   * the log that knows.
   */
  private refusalCauses(spec: LinkSpec): string {
    return (
      `likely a wrong key, no link to accept from ${this.self} at ${spec.peer}, or a link there that is not ${spec.proto} ${spec.mode}; ` +
      `${spec.peer}'s log names the reason, on its line "links: refused '${this.self}' ..."`
    );
  }

  private session(link: Link, keys: DirectionKeys, channel: Channel, role: 'dialer' | 'acceptor'): Session {
    return new Session(keys, role, link.spec.mode, channel.headroom, link.spec.proto === 'tcp' ? 'strict' : 'window');
  }

  /**
   * Every refusal looks the same to the dialer: it gets a CHALLENGE, and its
   * proof fails against a random key. Whether the name exists here, or which
   * mode it uses, is never told to someone who has not proved the key.
   */
  private admit(hello: Hello, proto: Proto): Admission<Link> {
    const link = this.links.get(hello.from);
    let refusal: Refusal | null = null;
    if (hello.to !== this.self || !link || link.spec.dial) refusal = 'unknown-peer';
    else if (link.spec.proto !== proto || hello.proto !== proto || link.spec.mode !== hello.mode) refusal = 'mismatch';
    if (refusal || !link) return { key: randomBytes(LINK_KEY_BYTES), ticket: null, refusal };
    return { key: link.spec.key, ticket: link, refusal: null };
  }

  private established(link: Link, keys: DirectionKeys, channel: Channel): void {
    if (this.state !== 'running' || this.links.get(link.spec.peer) !== link) {
      channel.close();
      return;
    }
    this.counters.handshakes++;
    link.attach(this.session(link, keys, channel, 'acceptor'), channel);
  }

  /**
   * Counted for the daemon only, never on the link the HELLO names: anyone
   * can name a link and send a junk PROOF, and a wrong key looks no
   * different, so a link's count would say nothing about its key. The
   * dialing end counts its own refused dials, which only the peer it dials
   * (or someone on the path) can cause.
   */
  private refused(reason: Refusal, remote: string, hello: Hello | null): void {
    this.counters[REFUSAL_COUNTER[reason]]++;
    const who = hello ? `'${hello.from}' (${hello.proto}, ${hello.mode}) from ${remote}` : remote;
    this.refusalLog.line(reason, `links: refused ${who}: ${describe(reason)}`);
  }

  private onConnection(socket: Socket): void {
    if (this.state !== 'running') {
      socket.destroy();
      return;
    }
    this.counters.connections++;
    const source = sourceOf(socket.remoteAddress ?? '');
    this.makeRoom(source);
    const handshake = acceptTcp(socket, {
      policy: this.policy,
      timeoutMs: this.handshakeMs,
      settled: () => this.forgetPending(socket),
    });
    this.pendingTcp.set(socket, { source, handshake });
    this.pendingBySource.set(source, (this.pendingBySource.get(source) ?? 0) + 1);
  }

  /** Frees a slot for one more pending handshake from `source` (see MAX_PENDING_TCP). */
  private makeRoom(source: string): void {
    if ((this.pendingBySource.get(source) ?? 0) >= MAX_PENDING_PER_SOURCE) this.evictOldest((p) => p.source === source);
    else if (this.pendingTcp.size >= MAX_PENDING_TCP) this.evictOldest(() => true);
  }

  /** The oldest of `among` that has not said HELLO, else the oldest of them. */
  private evictOldest(among: (p: PendingTcp) => boolean): void {
    let victim: PendingTcp | undefined;
    for (const p of this.pendingTcp.values()) {
      if (!among(p)) continue;
      if (!p.handshake.greeted) {
        victim = p;
        break;
      }
      victim ??= p;
    }
    victim?.handshake.evict();
  }

  private forgetPending(socket: Socket): void {
    const p = this.pendingTcp.get(socket);
    if (!p) return;
    this.pendingTcp.delete(socket);
    const left = (this.pendingBySource.get(p.source) ?? 1) - 1;
    if (left > 0) this.pendingBySource.set(p.source, left);
    else this.pendingBySource.delete(p.source);
  }
}

interface PendingTcp {
  source: string;
  handshake: PendingHandshake;
}

function describe(reason: Refusal): string {
  switch (reason) {
    case 'malformed':
      return 'not a link handshake';
    case 'oversize':
      return 'length prefix over the limit';
    case 'timeout':
      return 'handshake not finished in time';
    case 'aborted':
      return 'hung up mid-handshake';
    case 'unknown-peer':
      return 'no link to accept from that name here';
    case 'mismatch':
      return 'transport or mode differs from this end';
    case 'auth':
      return 'failed to prove the link key';
    case 'busy':
      return 'too many handshakes pending';
    case 'evicted':
      return 'closed to make room for a newer connection: too many handshakes pending';
  }
}

function sameSpec(a: LinkSpec, b: LinkSpec): boolean {
  return (
    a.peer === b.peer &&
    a.proto === b.proto &&
    a.dial === b.dial &&
    a.mode === b.mode &&
    (a.address ?? null) === (b.address ?? null) &&
    a.key.equals(b.key)
  );
}

function resolve(host: string, family: 0 | 4, cb: (err: Error | null, ip: string | null) => void): void {
  if (isIP(host)) {
    cb(null, host);
    return;
  }
  lookup(host, { family }, (err, address) => cb(err, err ? null : address));
}

function listen(server: Server, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (e: Error): void => reject(e);
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve();
    });
  });
}

/** Where a link's records go, for the fast path; null when its session is not native (or it is down). */
function fastPath(session: Session | null, channel: Channel | null): LinkPath | null {
  if (!session?.handle) return null;
  if (channel instanceof UdpChannel) return { session: session.handle, ip: channel.ip, port: channel.port };
  if (channel instanceof TcpChannel) return { session: session.handle, tcp: channel };
  return null;
}

/** The daemon's UDP socket from node:dgram, when there is no fast path. */
function dgramSocket(host: string, port: number): Promise<DatagramSocket> {
  const socket = createSocket({ type: isIP(host) === 6 ? 'udp6' : 'udp4' });
  return new Promise((resolve, reject) => {
    const onError = (e: Error): void => {
      socket.close();
      reject(e);
    };
    socket.once('error', onError);
    socket.bind(port, host, () => {
      socket.off('error', onError);
      try {
        socket.setRecvBufferSize(UDP_BUFFER_BYTES);
        socket.setSendBufferSize(UDP_BUFFER_BYTES);
      } catch {
        // Some platforms refuse; the defaults still work, only burstiness suffers.
      }
      resolve(socket);
    });
  });
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}
