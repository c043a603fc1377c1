import { readFileSync } from 'node:fs';
import { MAX_FRAME } from '../frame.js';
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

/**
 * A Linux network interface (eth, veth, tap, bridge) opened through libpcap
 * in promiscuous mode: frames it receives go to the forwarding table, frames
 * for it are injected. Only inbound frames are captured (PCAP_D_IN), so what
 * the daemon injects, and what the host itself sends out, never comes back
 * in. An optional BPF filter narrows what is captured further.
 */
export class PcapInterface extends NativeInterface {
  protected readonly refuser = 'the device';

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

  async open(): Promise<void> {
    const lib = pcapBinding();
    if (typeof lib === 'string') throw new Error(`interface ${this.name}: ${lib}`);
    try {
      this.adopt(lib, (onFrames) => lib.open(this.device, this.filter ?? null, MAX_FRAME, BUFFER_BYTES, onFrames));
    } catch (e) {
      throw new Error(`interface ${this.name} (pcap ${(e as Error).message})`);
    }
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
