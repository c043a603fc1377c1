import { EventEmitter } from 'node:events';
import { readFileSync } from 'node:fs';
import { constants } from 'node:os';
import { getSystemErrorMap } from 'node:util';
import { MAX_FRAME, MIN_FRAME } from '../frame.js';
import { nativeAddon } from '../native-addon.js';
import type { Interface } from './interface.js';

/** The native binding (daemon/interfaces/pcap-native), as vnetd uses it. */
interface PcapBinding {
  /** `onFrames` gets each capture round's frames in one buffer: per frame a u32le header (length, bit 31: truncated), then the frame. */
  open(device: string, filter: string | null, snaplen: number, bufferBytes: number, onFrames: (staged: Buffer) => void): object;
  /** Sends frames in order in as few system calls as it can; counts what the kernel refused. */
  sendMany(handle: object, frames: Uint8Array[]): { sent: number; sentBytes: number; failed: number; errno?: number };
  stats(handle: object): { received: number; dropped: number; ifDropped: number };
  close(handle: object): void;
  devices(): { name: string; description: string; loopback: boolean; up: boolean; running: boolean }[];
  /** The largest UDP payload that reaches `ip` unfragmented (its route's MTU less the headers), 0 with no route: UDP links clamp TCP's MSS to it, as the fast path batches by it. */
  pathRoom(ip: string): number;
}

/** The kernel's words for an errno, as libuv has them. */
export function systemErrorMessage(errno: number): string {
  return getSystemErrorMap().get(-errno)?.[1] ?? `error ${errno}`;
}

const NOT_INSTALLED =
  'pcap support is not installed: install libpcap-dev (Debian) and run `npm rebuild vnetd-pcap` in vnetd\'s directory; qemu-udp and qemu-stream interfaces work without it';

/** The binding, or why there is none. Loaded on first use: vnetd without libpcap still runs QEMU interfaces. */
export function pcapBinding(): PcapBinding | string {
  return nativeAddon<PcapBinding>('vnetd-pcap') ?? NOT_INSTALLED;
}

/** The binding's per-frame header in a round of captured frames: the length, and bit 31 when the frame was truncated. */
const FRAME_HEADER = 4;
const LENGTH_MASK = 0x7fffffff;

/** Kernel socket buffer for captured frames: room for a burst of about 2,500 full-size frames. */
const BUFFER_BYTES = 4 * 1024 * 1024;

/**
 * A Linux network interface (eth, veth, tap, bridge) opened through libpcap
 * in promiscuous mode: frames it receives go to the forwarding table, frames
 * for it are injected. Only inbound frames are captured (PCAP_D_IN), so what
 * the daemon injects, and what the host itself sends out, never comes back
 * in. An optional BPF filter narrows what is captured further.
 */
export class PcapInterface extends EventEmitter implements Interface {
  readonly counters = { rxFrames: 0, rxBytes: 0, txFrames: 0, txBytes: 0, errors: 0 };
  private handle: object | undefined;
  private lib: PcapBinding | undefined;
  /** The last injection error, in the kernel's words (logged when it changes). */
  lastError: string | undefined;
  private pending: Uint8Array[] = [];

  constructor(
    readonly name: string,
    readonly spec: string,
    readonly device: string,
    readonly filter: string | undefined,
  ) {
    super();
  }

  /** Parses `DEVICE[,filter=BPF]`; the filter is the rest of the text, commas and all. */
  static parse(name: string, params: string): PcapInterface {
    const comma = params.indexOf(',');
    const device = comma === -1 ? params : params.slice(0, comma);
    const rest = comma === -1 ? '' : params.slice(comma + 1);
    if (!/^[A-Za-z0-9][A-Za-z0-9._@:-]{0,14}$/.test(device)) {
      throw new Error(`pcap: '${device}' is not a network interface name (for example pcap:eth0 or pcap:veth1,filter=not port 22)`);
    }
    let filter: string | undefined;
    if (rest !== '') {
      if (!rest.startsWith('filter=')) throw new Error(`pcap: after the device only filter=BPF may follow, not '${rest}'`);
      filter = rest.slice('filter='.length);
      if (filter.trim() === '') throw new Error('pcap: filter= is empty; leave it out to capture everything inbound');
    }
    return new PcapInterface(name, `pcap:${params}`, device, filter);
  }

  async open(): Promise<void> {
    const lib = pcapBinding();
    if (typeof lib === 'string') throw new Error(`interface ${this.name}: ${lib}`);
    this.lib = lib;
    try {
      this.handle = lib.open(this.device, this.filter ?? null, MAX_FRAME, BUFFER_BYTES, (staged) => this.received(staged));
    } catch (e) {
      throw new Error(`interface ${this.name} (pcap ${(e as Error).message})`);
    }
  }

  private received(staged: Buffer): void {
    for (let at = 0; at + FRAME_HEADER <= staged.length; ) {
      const header = staged.readUInt32LE(at);
      const length = header & LENGTH_MASK;
      const start = at + FRAME_HEADER;
      at = start + length;
      if (header !== length || length < MIN_FRAME) {
        this.counters.errors++;
        continue;
      }
      this.counters.rxFrames++;
      this.counters.rxBytes += length;
      this.emit('frame', staged.subarray(start, at));
    }
  }

  /**
   * Queues the frame; what is queued leaves in one system call once the
   * current task is done (a microtask: the frames of one received record
   * go together, and none waits for a later turn of the event loop).
   */
  send(frame: Uint8Array): boolean {
    if (!this.handle || !this.lib) return false;
    if (this.pending.push(frame) === 1) queueMicrotask(this.flush);
    return true;
  }

  private readonly flush = (): void => {
    const frames = this.pending;
    this.pending = [];
    if (!this.handle || !this.lib) return;
    let r: ReturnType<PcapBinding['sendMany']>;
    try {
      r = this.lib.sendMany(this.handle, frames);
    } catch {
      // Closed under us: nothing was sent, and a microtask must not throw.
      r = { sent: 0, sentBytes: 0, failed: frames.length, errno: constants.errno.EBADF };
    }
    if (r.failed) this.refused(r.failed, systemErrorMessage(r.errno ?? 0));
    this.counters.txFrames += r.sent;
    this.counters.txBytes += r.sentBytes;
  };

  /** `failed` frames the device would not take, here or in the fast path: counted, and said once per reason. */
  refused(failed: number, error: string): void {
    this.counters.errors += failed;
    // Once per reason, not once per frame: a VM sending jumbo frames into a 1500-byte device would flood the log.
    if (error !== this.lastError) this.emit('note', `the device refused ${failed === 1 ? 'a frame' : `${failed} frames`}: ${error}`);
    this.lastError = error;
  }

  /** The open capture, for the fast path (daemon/forward/fast-path.ts); undefined while closed. */
  get captureHandle(): object | undefined {
    return this.handle;
  }

  /** What libpcap counted: frames the kernel passed the filter, and those it dropped for want of buffer. */
  kernelStats(): { received: number; dropped: number; ifDropped: number } | undefined {
    return this.handle && this.lib ? this.lib.stats(this.handle) : undefined;
  }

  async close(): Promise<void> {
    const h = this.handle;
    this.handle = undefined;
    if (h && this.lib) this.lib.close(h);
  }
}

/** ARPHRD_ETHER: the devices whose frames are Ethernet frames, which is all vnetd carries. */
const ETHERNET = '1';

/**
 * The devices a pcap interface can open on this machine: Ethernet-framed
 * Linux interfaces libpcap can see (not lo, not pseudo-devices such as
 * `any` or `nflog`). Empty when pcap support is not installed.
 */
export function listCapturable(): { name: string; description: string }[] {
  const lib = pcapBinding();
  if (typeof lib === 'string') return [];
  const out: { name: string; description: string }[] = [];
  for (const d of lib.devices()) {
    let type: string;
    try {
      type = readFileSync(`/sys/class/net/${d.name}/type`, 'utf8').trim();
    } catch {
      continue;
    }
    if (type !== ETHERNET || d.loopback) continue;
    const state = d.up ? (d.running ? 'up' : 'up, no carrier') : 'down';
    out.push({ name: d.name, description: d.description ? `${d.description} (${state})` : state });
  }
  return out;
}
