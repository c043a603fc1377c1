import dgram from 'node:dgram';
import { lookup } from 'node:dns/promises';
import { formatHostPort, parseHostPort, type HostPort } from '../../src/wire/hostport.js';
import { MAX_FRAME, MIN_FRAME } from '../../src/model/frame.js';
import { openError } from './interface.js';
import { NativeInterface } from './native-interface.js';
import { parseParams } from './params.js';
import { pcapBinding } from './pcap.js';

/** Socket buffers each way: room for a burst of about 1,000 full-size frames from or to the VM. */
const BUFFER_BYTES = 2 * 1024 * 1024;

/**
 * QEMU's datagram socket netdev: one Ethernet frame per UDP datagram, no
 * header. The VM side runs
 *   -netdev dgram,id=n0,local.type=inet,local.host=127.0.0.1,local.port=<vm>,
 *           remote.type=inet,remote.host=127.0.0.1,remote.port=<ours>
 * (or the older `-netdev socket,udp=127.0.0.1:<ours>,localaddr=127.0.0.1:<vm>`),
 * and vnetd binds <ours> and sends to <vm>. Datagrams from any other
 * address are counted and dropped: only the VM may inject into its own
 * interface.
 *
 * With the native addon built the socket is the addon's, read and written
 * in C, and the interface is a fast-path port like a pcap device; without
 * it (no libpcap on the machine), or with `native: false`, Node's dgram
 * socket does the same more slowly.
 */
export class QemuUdpInterface extends NativeInterface {
  protected readonly refuser = 'the socket towards QEMU';
  /** The Node socket, when the addon does not do it, and the peer's address as resolved. */
  private socket: dgram.Socket | undefined;
  private peerIp = '';

  constructor(
    name: string,
    spec: string,
    private readonly local: HostPort,
    private readonly remote: HostPort,
    private readonly native = true,
  ) {
    super(name, spec);
  }

  /** Parses `listen=HOST:PORT,peer=HOST:PORT`; `native: false` keeps the socket in Node even where the addon is built. */
  static parse(name: string, params: string, opts: { native?: boolean } = {}): QemuUdpInterface {
    const kv = parseParams('qemu-udp', params, ['listen', 'peer']);
    const endpoint = (key: string): HostPort => {
      const v = kv.get(key);
      if (v === undefined) throw new Error(`qemu-udp needs ${key}=HOST:PORT`);
      const hp = parseHostPort(v);
      if (!hp) throw new Error(`qemu-udp: ${key} '${v}' is not HOST:PORT with a port 1-65535 (for example ${key}=127.0.0.1:7001, or [::1]:7001)`);
      return hp;
    };
    return new QemuUdpInterface(name, `qemu-udp:${params}`, endpoint('listen'), endpoint('peer'), opts.native ?? true);
  }

  async open(): Promise<void> {
    const family = this.local.host.includes(':') ? 6 : 4;
    const where = `interface ${this.name} (qemu-udp listen=${formatHostPort(this.local)})`;
    const address = async (hp: HostPort, what: string): Promise<string> => {
      try {
        return (await lookup(hp.host, { family })).address;
      } catch {
        throw new Error(`${where}: cannot resolve ${what} host '${hp.host}' to an IPv${family} address`);
      }
    };
    const [host, peer] = [await address(this.local, 'listen'), await address(this.remote, 'peer')];
    this.peerIp = peer;
    const lib = this.native ? pcapBinding() : 'not wanted';
    try {
      if (typeof lib === 'string') await this.openNode(family, host, peer);
      else this.adopt(lib, (onFrames) => lib.openDatagram(host, this.local.port, peer, this.remote.port, BUFFER_BYTES, onFrames));
    } catch (e) {
      throw openError(where, e);
    }
  }

  private openNode(family: 4 | 6, host: string, peer: string): Promise<void> {
    return new Promise((resolve, reject) => {
      const s = dgram.createSocket(family === 6 ? 'udp6' : 'udp4');
      s.once('error', reject);
      s.bind(this.local.port, host, () => {
        s.off('error', reject);
        s.on('error', () => this.counters.errors++);
        s.on('message', (msg, rinfo) => {
          // A v4 peer of a dual-stack socket reports as ::ffff:a.b.c.d.
          const from = rinfo.address.startsWith('::ffff:') && !peer.includes(':') ? rinfo.address.slice(7) : rinfo.address;
          if (from !== peer || rinfo.port !== this.remote.port || msg.length < MIN_FRAME || msg.length > MAX_FRAME) {
            this.counters.errors++;
            return;
          }
          this.fromVm(msg);
        });
        s.setRecvBufferSize(BUFFER_BYTES);
        s.setSendBufferSize(BUFFER_BYTES);
        this.socket = s;
        resolve();
      });
    });
  }

  /** The port it listens on, where QEMU sends (the bed asks for any: port 0). */
  get port(): number {
    const lib = pcapBinding();
    const h = this.captureHandle;
    if (h && typeof lib !== 'string') return lib.boundPort(h);
    return this.socket?.address().port ?? this.local.port;
  }

  override send(frame: Uint8Array): boolean {
    if (this.captureHandle) return super.send(frame);
    if (!this.socket) return false;
    this.counters.txFrames++;
    this.counters.txBytes += frame.length;
    this.socket.send(frame, this.remote.port, this.peerIp, (e) => {
      if (e) this.refused(1, e.message);
    });
    return true;
  }

  override async close(): Promise<void> {
    await super.close();
    const s = this.socket;
    this.socket = undefined;
    if (s) await new Promise<void>((resolve) => s.close(() => resolve()));
  }
}
