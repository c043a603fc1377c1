import { readFileSync } from 'node:fs';
import { MAX_FRAME } from '../../src/model/frame.js';
import { nativeAddon } from '../native-addon.js';
import { NativeInterface, type NativeFrames } from './native-interface.js';

/** The native binding (daemon/interfaces/pcap-native), as vnetd uses it. */
interface PcapBinding extends NativeFrames {
  /** `onFrames` gets each capture round's frames in one buffer: per frame a u32le header (length, bit 31: truncated), then the frame. */
  open(device: string, filter: string | null, snaplen: number, bufferBytes: number, onFrames: (staged: Buffer) => void): object;
  /** A UDP socket bound to host:port that exchanges one frame per datagram with peerIp:peerPort (QEMU's datagram netdev); frames come as open()'s do, datagrams from anyone else as empty truncated entries. */
  openDatagram(host: string, port: number, peerIp: string, peerPort: number, bufferBytes: number, onFrames: (staged: Buffer) => void): object;
  /** The port an openDatagram() socket is bound to. */
  boundPort(handle: object): number;
  /** Whether a pcap handle's device is still there (always, for a datagram socket); see vnetd_pcap.c. */
  attached(handle: object): boolean;
  stats(handle: object): { received: number; dropped: number; ifDropped: number };
  devices(): { name: string; description: string; loopback: boolean; up: boolean; running: boolean }[];
  /** The largest UDP payload that reaches `ip` unfragmented (its route's MTU less the headers), 0 with no route: UDP links clamp TCP's MSS to it, as the fast path batches by it. */
  pathRoom(ip: string): number;
}

const NOT_INSTALLED =
  'pcap support is not installed: install libpcap-dev (Debian) and run `npm rebuild vnetd-pcap` in vnetd\'s directory; qemu-udp and qemu-stream interfaces work without it';

/** The binding, or why there is none. Loaded on first use: vnetd without libpcap still runs QEMU interfaces. */
export function pcapBinding(): PcapBinding | string {
  return nativeAddon<PcapBinding>('vnetd-pcap') ?? NOT_INSTALLED;
}

/** Kernel socket buffer for captured frames: room for a burst of about 2,500 full-size frames. */
const BUFFER_BYTES = 4 * 1024 * 1024;
/** How often a pcap interface checks that its device is still there, and, while it is not, tries to open it again. */
export const DEVICE_CHECK_MS = 1000;

/**
 * A Linux network interface (eth, veth, tap, bridge) opened through libpcap
 * in promiscuous mode: frames it receives go to the forwarding table, frames
 * for it are injected. Only inbound frames are captured (PCAP_D_IN), so what
 * the daemon injects, and what the host itself sends out, never comes back
 * in. An optional BPF filter narrows what is captured further.
 *
 * A VM's device comes and goes with the VM (QEMU makes its tap as it starts
 * and removes it as it exits), and the daemon outlives both, as Open
 * vSwitch's ports outlive theirs: a device that is missing when vnetd starts,
 * or goes away later, is looked for every DEVICE_CHECK_MS and captured again
 * once a device of that name is there. A device renamed is gone too, as Open
 * vSwitch drops a port's device renamed away: the interface is the name it
 * was given, not the device that once had it. Meanwhile the interface is down for
 * the forwarding table, as a link is, and emits 'device' (present: boolean)
 * when that changes.
 */
export class PcapInterface extends NativeInterface {
  protected readonly refuser = 'the device';
  private check: NodeJS.Timeout | undefined;
  /** The last reason logged for not capturing the device: the same one is not logged again every check. */
  private refusal: string | undefined;

  constructor(
    name: string,
    spec: string,
    readonly device: string,
    readonly filter: string | undefined,
  ) {
    super(name, spec);
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

  /** Whether the device is there and captured: false while vnetd waits for it to appear. */
  get present(): boolean {
    return this.captureHandle !== undefined;
  }

  async open(): Promise<void> {
    const lib = pcapBinding();
    if (typeof lib === 'string') throw new Error(`interface ${this.name}: ${lib}`);
    try {
      this.capture(lib);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENODEV') this.emit('note', `device ${this.device} does not exist (yet): frames for it are dropped until it does (DEVICES? lists the devices this machine has)`);
      else if (code === 'ENETDOWN') this.unable(e);
      // Any other refusal (no permission, not Ethernet, a bad filter) is the configuration's, and stops the start.
      else throw new Error(`interface ${this.name} (pcap ${(e as Error).message})`);
    }
    this.check = setInterval(() => this.recheck(lib), DEVICE_CHECK_MS).unref();
  }

  private capture(lib: PcapBinding): void {
    this.adopt(lib, (onFrames) => lib.open(this.device, this.filter ?? null, MAX_FRAME, BUFFER_BYTES, onFrames));
  }

  private recheck(lib: PcapBinding): void {
    const h = this.captureHandle;
    if (h) {
      if (lib.attached(h)) return;
      this.release();
      this.emit('note', `device ${this.device} is gone (its VM stopped, or the device was deleted or renamed): frames for it are dropped until a device of that name is back`);
      this.emit('device', false);
      return;
    }
    try {
      this.capture(lib);
    } catch (e) {
      this.unable(e);
      return;
    }
    this.refusal = undefined;
    this.emit('note', `device ${this.device} is there: capturing it`);
    this.emit('device', true);
  }

  /** Says why the device cannot be captured yet, once per reason; that it does not exist was said when that became so. */
  private unable(e: unknown): void {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENODEV') return void (this.refusal = undefined);
    const why =
      code === 'ENETDOWN'
        ? `device ${this.device} is not up: frames for it are dropped until it is`
        : `device ${this.device} is there, but cannot be captured: ${(e as Error).message}`;
    if (why !== this.refusal) this.emit('note', why);
    this.refusal = why;
  }

  override async close(): Promise<void> {
    clearInterval(this.check);
    await super.close();
  }

  /** What libpcap counted: frames the kernel passed the filter, and those it dropped for want of buffer. */
  kernelStats(): { received: number; dropped: number; ifDropped: number } | undefined {
    const lib = pcapBinding();
    const h = this.captureHandle;
    return h && typeof lib !== 'string' ? lib.stats(h) : undefined;
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
