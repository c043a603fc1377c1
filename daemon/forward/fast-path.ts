import { EventEmitter } from 'node:events';
import { isIP } from 'node:net';
import { getSystemErrorName } from 'node:util';
import { readMac48 } from '../../src/model/mac48.js';
import type { Interface } from '../interfaces/interface.js';
import { NativeInterface, systemErrorMessage } from '../interfaces/native-interface.js';
import { pcapBinding } from '../interfaces/pcap.js';
import type { QemuStreamInterface } from '../interfaces/qemu-stream.js';
import { UDP_BUFFER_BYTES, type LinkManager } from '../links/manager.js';
import type { DatagramSocket, LinkPath, TcpTakeover } from '../links/types.js';
import { MAX_FRAME, MAX_RECORD } from '../links/wire.js';
import type { Decision } from './rule-index.js';
import type { ForwardingTable } from './table.js';

/**
 * The JavaScript half of vnetd's fast path (the C half is
 * daemon/interfaces/pcap-native/fastpath.c, which says why it exists). The
 * forwarding table decides every flow's first frame, as always; when the
 * frame came in on a fast-path port (a pcap interface or a QEMU datagram
 * socket; a QEMU stream's connection, once handed over; a UDP link with a
 * native session; a TCP link with one, once its channel handed the
 * connection over) and every port it went out on is one too, the flow is
 * cached in C, and its later frames never reach JavaScript. Every change to
 * the table flushes the cache, exactly as it flushes the table's own.
 *
 * What the fast path carries is counted in C, per flow and per port, in two
 * arrays shared with this class, and folded into the table's rule and port
 * counters, the interfaces' and links' counters and VTTIF's sampler when
 * anything reads them (`drain`): the numbers an operator sees are the same
 * with the fast path as without it.
 */

/** The C half, as the pcap addon exports it. */
interface FastPathBinding {
  datapath(flowCounts: Float64Array, portCounts: Float64Array, onUp: (staged: Buffer) => void): object;
  attachCapture(dp: object, port: number, capture: object): void;
  setLink(dp: object, port: number, session: object, ip: string, udpPort: number): void;
  clearPort(dp: object, port: number): void;
  learn(dp: object, ingress: number, src: number, dst: number, egress: readonly number[]): number;
  flush(dp: object): void;
  udpOpen(dp: object, host: string, port: number, bufferBytes: number): number;
  udpSend(dp: object, datagram: Buffer, ip: string, port: number): number;
  udpQueued(dp: object): number;
  udpClose(dp: object): void;
  udpGso(dp: object): { on: boolean; sends: number; datagrams: number };
  tcpAttach(dp: object, port: number, session: object, fd: number, pending: Buffer): void;
  streamAttach(dp: object, port: number, fd: number, pending: Buffer): void;
  tcpWrite(dp: object, port: number, bytes: Buffer): boolean;
  tcpQueued(dp: object, port: number): number;
  tcpRelease(dp: object, port: number): Buffer;
  /** The numbers of fastpath.c's layout: the shared counts, the upcall entries, the wire's limits. */
  layout: Layout;
}

/**
 * fastpath.c's side of what the two halves share, read from the addon
 * rather than written out here again: `portFields` numbers per port in the
 * shared counts (rx frames, rx bytes, tx frames, tx bytes, tx errors, the
 * errno of the last refused frame); at most `maxOut` egress ports a flow;
 * an upcall entry's `upHeader`-byte header (u32le length, u8 kind, u8
 * extra, u16le port; a datagram's sender follows as text) and its kinds;
 * why a handed-over connection failed; and the wire's limits, which must
 * be wire.ts's.
 */
interface Layout {
  portFields: number;
  maxOut: number;
  upHeader: number;
  upRaw: number;
  upOpened: number;
  upRecord: number;
  upFailed: number;
  failedReplay: number;
  failedAuth: number;
  failedFraming: number;
  failedBatch: number;
  maxFrame: number;
  maxRecord: number;
}

/** Flows the C cache holds (four-way sets, like the table's own cache). */
const FLOWS = 16384;
/** Port ids at or above this are never fast-path ports (a daemon names far fewer). */
const MAX_PORTS = 1024;
const EMPTY = Buffer.alloc(0);

/** What a fast-path port's own counters are: an interface's or a link's (`errno`: why the last of `errors` was refused, when a device said). */
export type PortSink = (rxFrames: number, rxBytes: number, txFrames: number, txBytes: number, errors: number, errno: number) => void;

export interface FastPathHooks {
  /** Frames of a pair that entered from a local interface, for VTTIF. */
  sampled(src: number, dst: number, frames: number, bytes: number): void;
}

interface Flow {
  ingress: number;
  src: number;
  dst: number;
  decision: Decision;
  /** Entered from a local interface: VTTIF counts it. */
  fromInterface: boolean;
  /** The table's change count when it was decided. */
  change: number;
}

export class FastPath {
  private readonly flowCounts = new Float64Array(2 * FLOWS);
  private readonly portCounts: Float64Array;
  private readonly layout: Layout;
  private readonly dp: object;
  private readonly flows: (Flow | undefined)[] = new Array<Flow | undefined>(FLOWS).fill(undefined);
  /** The slots `flows` holds since the last flush: what `drain` reads, rather than all FLOWS of them on every query and rule change. */
  private readonly used: number[] = [];
  /** Per port id: its counters' owner while it is a fast-path port; ports also keep theirs after, until drained. */
  private readonly sinks = new Map<number, PortSink>();
  private readonly native = new Uint8Array(MAX_PORTS);
  private readonly interfaces = new Uint8Array(MAX_PORTS);
  /** Connections (TCP links', QEMU streams') by port, from the moment they are offered until they are given back. */
  private readonly tcp = new Map<number, TcpTakeover>();
  /** QEMU stream interfaces by port: the frames C read from them and did not forward go to them. */
  private readonly streams = new Map<number, QemuStreamInterface>();
  private socket: FastPathSocket | null = null;
  private links: LinkManager | null = null;
  private flushQueued = false;
  /** Flows to cache once this turn's link batches have left (see `learn`), and the table's changes so far, which void them. */
  private toLearn: Flow[] = [];
  private changes = 0;
  /** Frames the fast path forwarded, as folded so far. */
  private carried = 0;

  /** The fast path, or null when the pcap addon is not built. */
  static create(table: ForwardingTable, hooks: FastPathHooks): FastPath | null {
    const lib = pcapBinding();
    return typeof lib === 'string' ? null : new FastPath(lib as unknown as FastPathBinding, table, hooks);
  }

  private constructor(
    private readonly lib: FastPathBinding,
    private readonly table: ForwardingTable,
    private readonly hooks: FastPathHooks,
  ) {
    const layout = (this.layout = lib.layout);
    // An addon built from other sources than this file would misread every count and upcall: refuse it now.
    if (layout.maxFrame !== MAX_FRAME || layout.maxRecord !== MAX_RECORD) {
      throw new Error(`vnetd-pcap was built for frames of ${layout.maxFrame} bytes and records of ${layout.maxRecord}, vnetd uses ${MAX_FRAME} and ${MAX_RECORD}: run \`npm rebuild vnetd-pcap\``);
    }
    this.portCounts = new Float64Array(layout.portFields * MAX_PORTS);
    this.dp = lib.datapath(this.flowCounts, this.portCounts, (staged) => this.received(staged));
  }

  /**
   * Carries the frames of `links` (made with `openUdp`): each link joins the
   * fast path when its session is up (unless `skip` says it must stay in
   * JavaScript), and what the C half opens for a link goes back to it.
   */
  serve(links: LinkManager, skip: (peer: string) => boolean = () => false): void {
    this.links = links;
    links.on('path', (peer, path) => {
      if (skip(peer)) return;
      this.setLink(this.table.portId({ kind: 'link', to: peer }), path, (rf, rb, tf, tb, dropped) => links.credit(peer, rf, rb, tf, tb, dropped));
    });
  }

  /** The peer a link port leads to ('' for another port, which no link has). */
  private peerOf(port: number): string {
    const dest = this.table.port(port)?.dest;
    return dest?.kind === 'link' ? dest.to : '';
  }

  /** The interface's frames (a pcap device's, a QEMU socket's) go through the fast path as port `port`. */
  attachInterface(port: number, iface: NativeInterface): void {
    const capture = iface.captureHandle;
    if (port >= MAX_PORTS || !capture) return;
    this.lib.attachCapture(this.dp, port, capture);
    this.native[port] = 1;
    this.interfaces[port] = 1;
    this.sinks.set(port, interfaceSink(iface, (errors, errno) => iface.refused(errors, systemErrorMessage(errno))));
  }

  /** The interface's handle is gone (its device went away): frames for it stay in JavaScript until attachInterface again. */
  detachInterface(port: number): void {
    if (port >= MAX_PORTS || !this.native[port]) return;
    this.native[port] = 0;
    this.lib.clearPort(this.dp, port);
  }

  /**
   * A QEMU stream interface: whenever a VM is connected, its connection is
   * read and written in C as port `port`, like a TCP link's without sealing.
   */
  attachStream(port: number, iface: QemuStreamInterface): void {
    if (port >= MAX_PORTS) return;
    this.streams.set(port, iface);
    this.interfaces[port] = 1;
    this.sinks.set(port, interfaceSink(iface, (errors) => (iface.counters.errors += errors)));
    iface.offerConnections((conn) => this.offer(port, conn, null));
  }

  /**
   * A link's records now go by `path` under its session: to a UDP peer's
   * address at once, over a TCP connection once it is handed over. null: the
   * link is down, and a handed-over connection goes back to its channel.
   */
  private setLink(port: number, path: LinkPath | null, sink: PortSink): void {
    if (port >= MAX_PORTS) return;
    this.sinks.set(port, sink);
    if (path && 'ip' in path) {
      this.offer(port, null, null);
      this.lib.setLink(this.dp, port, path.session, path.ip, path.port);
      this.native[port] = 1;
      return;
    }
    this.offer(port, path?.tcp ?? null, path?.session ?? null);
  }

  /**
   * Port `port` is now `conn`, once it is handed over: a TCP link's, its
   * records sealed under `session`, or a QEMU stream's (`session` null).
   * Whatever the port was before leaves the fast path first, and a
   * handed-over connection goes back to its owner.
   */
  private offer(port: number, conn: TcpTakeover | null, session: object | null): void {
    this.native[port] = 0;
    const offered = this.tcp.get(port);
    this.tcp.delete(port);
    if (offered) offered.reclaim();
    this.lib.clearPort(this.dp, port);
    if (!conn) return;
    const { lib, dp } = this;
    let state: 'offered' | 'attached' | 'released' = 'offered';
    this.tcp.set(port, conn);
    conn.handOver({
      attach: (fd, pending) => {
        if (state !== 'offered') return;
        if (session) lib.tcpAttach(dp, port, session, fd, pending);
        else lib.streamAttach(dp, port, fd, pending);
        state = 'attached';
        this.native[port] = 1;
      },
      write: (bytes) => state === 'attached' && lib.tcpWrite(dp, port, bytes),
      queued: () => (state === 'attached' ? lib.tcpQueued(dp, port) : 0),
      release: () => {
        const was = state;
        state = 'released';
        if (this.tcp.get(port) === conn) {
          this.tcp.delete(port);
          this.native[port] = 0;
        }
        return was === 'attached' ? lib.tcpRelease(dp, port) : EMPTY;
      },
    });
  }

  /**
   * After the table routed a frame from `ingress` by `decision`: caches its
   * flow, at the end of this event-loop turn, when every port involved is a
   * fast-path port. Group destinations (ARP, broadcast) are left to
   * JavaScript: VTTIF learns hosts from them.
   */
  learn(ingress: number, frame: Uint8Array, decision: Decision): void {
    if (!this.eligible(ingress, decision.ports) || frame[0]! & 1) return;
    const src = readMac48(frame, 6);
    const dst = readMac48(frame, 0);
    // A burst's first frames all come here before the flow is cached: one entry is enough.
    const last = this.toLearn[this.toLearn.length - 1];
    if (last && last.ingress === ingress && last.src === src && last.dst === dst) return;
    // Cached on the turn's setImmediate, after the link batches this turn's frames went into
    // (link.ts seals them there): a later frame of the flow, forwarded in C at once, would
    // otherwise overtake them.
    if (this.toLearn.push({ ingress, src, dst, decision, fromInterface: this.interfaces[ingress] === 1, change: this.changes }) === 1) setImmediate(this.cacheLearned);
  }

  private eligible(ingress: number, ports: readonly number[]): boolean {
    if (!this.native[ingress] || ports.length === 0 || ports.length > this.layout.maxOut) return false;
    for (const id of ports) if (!this.native[id]) return false;
    return true;
  }

  private readonly cacheLearned = (): void => {
    const flows = this.toLearn;
    this.toLearn = [];
    for (const flow of flows) {
      // Decided by a table that has changed since, or through a port that has left the fast path.
      if (flow.change !== this.changes || !this.eligible(flow.ingress, flow.decision.ports)) continue;
      const slot = this.lib.learn(this.dp, flow.ingress, flow.src, flow.dst, flow.decision.ports);
      if (slot < 0) continue;
      if (this.flows[slot]) this.fold(slot);
      else this.used.push(slot);
      this.flows[slot] = flow;
    }
  };

  /** Folds what the fast path counted into the table, interfaces, links and VTTIF. */
  drain(): void {
    for (const slot of this.used) this.fold(slot);
    const pc = this.portCounts;
    const fields = this.layout.portFields;
    for (const [port, sink] of this.sinks) {
      const o = port * fields;
      if (pc[o] === 0 && pc[o + 2] === 0 && pc[o + 4] === 0) continue;
      sink(pc[o]!, pc[o + 1]!, pc[o + 2]!, pc[o + 3]!, pc[o + 4]!, pc[o + 5]!);
      pc.fill(0, o, o + fields);
    }
  }

  /**
   * For STATS? (which drains first): frames carried, ports on the fast path
   * now, and whether UDP links' datagrams leave in segmented sends (1; 0 when
   * the kernel cannot, and they leave one by one), with how many such sends
   * carried how many datagrams.
   */
  stats(): { frames: number; ports: number; 'udp-gso': number; 'udp-gso-sends': number; 'udp-gso-datagrams': number } {
    let ports = 0;
    for (const on of this.native) ports += on;
    const gso = this.lib.udpGso(this.dp);
    return { frames: this.carried, ports, 'udp-gso': gso.on ? 1 : 0, 'udp-gso-sends': gso.sends, 'udp-gso-datagrams': gso.datagrams };
  }

  /**
   * The table changed: every cached flow goes, once the current task is done
   * (a batch of 10,000 rule changes flushes once, not 10,000 times). No frame
   * reaches the C half before then: it runs from libuv's poll, after every microtask.
   */
  tableChanged(): void {
    this.changes++;
    if (this.flushQueued) return;
    this.flushQueued = true;
    queueMicrotask(this.flush);
  }

  /** Every cached flow goes, after its counts are folded. */
  private readonly flush = (): void => {
    this.flushQueued = false;
    this.drain();
    this.lib.flush(this.dp);
    for (const slot of this.used) this.flows[slot] = undefined;
    this.used.length = 0;
  };

  private fold(slot: number): void {
    const frames = this.flowCounts[2 * slot]!;
    if (frames === 0) return;
    const bytes = this.flowCounts[2 * slot + 1]!;
    this.flowCounts[2 * slot] = 0;
    this.flowCounts[2 * slot + 1] = 0;
    this.carried += frames;
    const f = this.flows[slot]!;
    this.table.credit(f.ingress, f.decision, frames, bytes);
    if (f.fromInterface) this.hooks.sampled(f.src, f.dst, frames, bytes);
  }

  /** What the C half did not forward, one buffer per poll callback. */
  private received(staged: Buffer): void {
    const L = this.layout;
    for (let at = 0; at + L.upHeader <= staged.length; ) {
      const length = staged.readUInt32LE(at);
      const kind = staged[at + 4]!;
      const extra = staged[at + 5]!;
      const port = staged.readUInt16LE(at + 6);
      const start = at + L.upHeader + (kind === L.upRaw ? extra : 0);
      const data = staged.subarray(start, start + length);
      at = start + length;
      if (kind === L.upRaw) this.socket?.emit('message', data, { address: staged.toString('latin1', start - extra, start), port });
      else if (kind === L.upOpened) this.opened(port, data);
      else if (kind === L.upRecord) this.links?.received(this.peerOf(port), extra, data);
      else if (kind === L.upFailed) {
        if (extra === L.failedReplay) this.links?.refusedRecord(this.peerOf(port), 'replay');
        else if (extra === L.failedAuth || extra === L.failedBatch) this.links?.refusedRecord(this.peerOf(port), 'auth');
        this.tcp.get(port)?.failed(data.toString('utf8'), extra === L.failedFraming);
      }
    }
  }

  /** A frame C read and did not forward: a QEMU stream's goes to its interface, a link's to its link. */
  private opened(port: number, frame: Buffer): void {
    const stream = this.streams.get(port);
    if (stream) stream.frameFromVm(frame);
    else this.links?.opened(this.peerOf(port), frame);
  }

  /** The daemon's UDP socket, owned by the C half so that it can take the records of fast-path links (for LinkManagerOptions.openUdp). */
  readonly openUdp = async (host: string, port: number): Promise<DatagramSocket> => (this.socket = new FastPathSocket(this.lib, this.dp, host, port));
}

/** A local interface's counters as a fast-path port's sink; frames it could not take go to `refused`. */
function interfaceSink(iface: Interface, refused: (errors: number, errno: number) => void): PortSink {
  return (rf, rb, tf, tb, errors, errno) => {
    const c = iface.counters;
    c.rxFrames += rf;
    c.rxBytes += rb;
    c.txFrames += tf;
    c.txBytes += tb;
    if (errors) refused(errors, errno);
  };
}

/** The fast path's UDP socket as UDP links see it: what node:dgram's would give them, less what the C half kept (FastPath.received emits its 'message's). */
class FastPathSocket extends EventEmitter implements DatagramSocket {
  private readonly bound: { address: string; family: string; port: number };

  constructor(
    private readonly lib: FastPathBinding,
    private readonly dp: object,
    host: string,
    port: number,
  ) {
    super();
    const actual = lib.udpOpen(dp, host, port, UDP_BUFFER_BYTES);
    this.bound = { address: host, family: isIP(host) === 6 ? 'IPv6' : 'IPv4', port: actual };
  }

  /** A datagram the kernel will not queue now is dropped, as a congested link drops. */
  send(datagram: Buffer, port: number, ip: string, sent?: (e: Error | null) => void): void {
    const errno = this.lib.udpSend(this.dp, datagram, ip, port);
    // Worded as node:dgram words it, so a link's log reads the same with the fast path or without.
    sent?.(errno === 0 ? null : new Error(`send ${getSystemErrorName(-errno)} ${ip}:${port}`));
  }

  getSendQueueSize(): number {
    return this.lib.udpQueued(this.dp);
  }

  address(): { address: string; family: string; port: number } {
    return this.bound;
  }

  close(callback: () => void): void {
    this.lib.udpClose(this.dp);
    setImmediate(callback);
  }
}
