import dgram from 'node:dgram';
import { macToNumber, readMac48, writeMac48 } from '../model/mac48.js';
import type { HostPort } from '../wire/hostport.js';
import { Mailbox, type MessageSender } from './bsp.js';
import { fragmentCount, fragmentData, HEADER_BYTES, KIND_FRAGMENT, KIND_NOISE, MAX_FRAGMENTS, readHeader, writeHeader } from './message.js';
import type { Pacer } from './pacer.js';

/**
 * Synthetic VMs that speak QEMU's datagram socket protocol (one Ethernet
 * frame per UDP datagram, what `-netdev dgram` sends) to a vnetd qemu-udp
 * interface. A SyntheticHost is one such socket with one VM behind it (as
 * QEMU gives each VM its own netdev), or several, like VMs on one host
 * bridge: frames between them are delivered here and never reach vnetd,
 * frames from vnetd go to the VM their destination MAC names (a broadcast
 * to each).
 */

/** IEEE 802 "local experimental" EtherType: no stack on the way interprets it. */
export const PATTERNS_ETHERTYPE = 0x88b5;
const ETH_HEADER = 14;
/** The payload of a standard Ethernet frame. */
const MTU = 1500;
/** Shorter frames are padded, as a NIC would. */
const MIN_ETH_FRAME = 60;
/** Message bytes one frame carries. */
export const FRAME_ROOM = MTU - HEADER_BYTES;

/** VM `rank`'s MAC: locally administered, unicast, 02:50:00:00:HH:LL (ranks sort as their MACs do). */
export function vmMac(rank: number): string {
  if (!Number.isInteger(rank) || rank < 0 || rank > 0xffff) throw new RangeError(`rank ${rank} is out of 0..65535`);
  return `02:50:00:00:${(rank >> 8).toString(16).padStart(2, '0')}:${(rank & 0xff).toString(16).padStart(2, '0')}`;
}

/** A MAC's six bytes (checked: a bad one throws RangeError naming it). */
function macBytes(mac: string): Buffer {
  const b = Buffer.alloc(6);
  writeMac48(b, 0, macToNumber(mac));
  return b;
}

export type FrameHandler = (frame: Buffer) => void;

export class SyntheticHost {
  /** By MAC as a 48-bit number: a frame's addresses are read as numbers, with no string per frame. */
  private readonly handlers = new Map<number, FrameHandler>();
  private daemon: HostPort | undefined;
  private closed = false;
  /** Frames from elsewhere than the daemon's interface (dropped, as vnetd drops strays). */
  strays = 0;

  private constructor(
    private readonly socket: dgram.Socket,
    readonly macs: readonly string[],
  ) {
    for (const m of macs) this.handlers.set(macToNumber(m), () => {});
    socket.on('message', (msg, rinfo) => {
      if (!this.daemon || rinfo.port !== this.daemon.port || msg.length < ETH_HEADER) {
        this.strays++;
        return;
      }
      this.deliver(msg, undefined);
    });
    socket.on('error', () => this.strays++);
  }

  /** Binds the VMs' end of the socket on `address` (a free port); the daemon's interface names it as its peer. */
  static async open(macs: readonly string[], address = '127.0.0.1'): Promise<SyntheticHost> {
    const socket = dgram.createSocket({ type: address.includes(':') ? 'udp6' : 'udp4', recvBufferSize: 4 << 20, sendBufferSize: 4 << 20 });
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(0, address, () => {
        socket.off('error', reject);
        resolve();
      });
    });
    return new SyntheticHost(socket, macs);
  }

  /** This end's address, for the daemon's `peer=`. */
  get address(): HostPort {
    const a = this.socket.address();
    return { host: a.address, port: a.port };
  }

  /** Where the daemon's interface listens: frames go there, and only frames from there are taken. */
  connect(daemon: HostPort): void {
    this.daemon = daemon;
  }

  /** Routes frames addressed to `mac` (a VM of this host) to `handler`. */
  on(mac: string, handler: FrameHandler): void {
    const k = macToNumber(mac);
    if (!this.handlers.has(k)) throw new Error(`${mac} is not a VM of this host`);
    this.handlers.set(k, handler);
  }

  /** A frame from one of this host's VMs: to a VM here directly, to the daemon otherwise (a broadcast both ways). */
  send(frame: Buffer): void {
    // A run still draining its pacer when the host closes: its frames have nowhere to go.
    if (this.closed) return;
    const group = (frame[0]! & 1) === 1;
    const local = !group && this.handlers.has(readMac48(frame, 0));
    if (group || local) setImmediate(() => this.deliver(frame, readMac48(frame, 6)));
    if (!local && this.daemon) this.socket.send(frame, this.daemon.port, this.daemon.host, () => {});
  }

  private deliver(frame: Buffer, from: number | undefined): void {
    if ((frame[0]! & 1) === 0) {
      this.handlers.get(readMac48(frame, 0))?.(frame);
      return;
    }
    for (const [k, h] of this.handlers) if (k !== from) h(frame);
  }

  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.closed = true;
    return new Promise((resolve) => this.socket.close(() => resolve()));
  }
}

/** An Ethernet frame carrying one pattern fragment (or a noise frame) with `data` bytes of padding. */
function patternFrame(dst: Buffer, src: Buffer, fill: (buf: Buffer, at: number) => void, data: number): Buffer {
  const frame = Buffer.alloc(Math.max(MIN_ETH_FRAME, ETH_HEADER + HEADER_BYTES + data));
  dst.copy(frame, 0);
  src.copy(frame, 6);
  frame.writeUInt16BE(PATTERNS_ETHERTYPE, 12);
  fill(frame, ETH_HEADER);
  return frame;
}

/**
 * The patterns transport of one synthetic VM: messages leave as Ethernet
 * frames to the partner's MAC; frames of this run addressed to this rank
 * feed its mailbox.
 */
export function attachRank(host: SyntheticHost, mailbox: Mailbox, macs: readonly string[], pacer: Pacer): MessageSender {
  const me = macs[mailbox.rank]!;
  const src = macBytes(me);
  const dsts = macs.map(macBytes);
  host.on(me, (frame) => {
    if (frame.length < ETH_HEADER + HEADER_BYTES || frame.readUInt16BE(12) !== PATTERNS_ETHERTYPE) return;
    const f = readHeader(frame, ETH_HEADER);
    if (f && f.kind === KIND_FRAGMENT && f.run === mailbox.run && f.dst === mailbox.rank) mailbox.fragment(f);
  });
  return {
    send(to, iteration, size) {
      const count = fragmentCount(size, FRAME_ROOM);
      if (count > MAX_FRAGMENTS) throw new RangeError(`a message of ${size} bytes needs more than ${MAX_FRAGMENTS} frames`);
      const header = { kind: KIND_FRAGMENT, run: mailbox.run, src: mailbox.rank, dst: to, iteration, count, size };
      const sends = Array.from({ length: count }, (_, index) => () => {
        host.send(patternFrame(dsts[to]!, src, (b, at) => writeHeader(b, at, { ...header, index }), fragmentData(size, FRAME_ROOM, index)));
      });
      return pacer.run(sends);
    },
  };
}

/** One noise frame from `from` to `to` of `bytes` bytes in all (at least the header's worth). */
export function noiseFrame(from: string, to: string, bytes: number): Buffer {
  const data = Math.max(0, Math.min(MTU, bytes - ETH_HEADER) - HEADER_BYTES);
  return patternFrame(
    macBytes(to),
    macBytes(from),
    (b, at) => writeHeader(b, at, { kind: KIND_NOISE, run: 0, src: 0, dst: 0, iteration: 0, index: 0, count: 1, size: data }),
    data,
  );
}

/** The Ethernet bytes one message of `size` bytes takes on the wire, as vnetd counts them. */
export function messageFrameBytes(size: number): number {
  const count = fragmentCount(size, FRAME_ROOM);
  let bytes = 0;
  for (let i = 0; i < count; i++) bytes += Math.max(MIN_ETH_FRAME, ETH_HEADER + HEADER_BYTES + fragmentData(size, FRAME_ROOM, i));
  return bytes;
}
