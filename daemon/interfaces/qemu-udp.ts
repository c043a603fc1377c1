import dgram from 'node:dgram';
import { EventEmitter } from 'node:events';
import { parseHostPort, type HostPort } from '../../src/wire/hostport.js';
import { MAX_FRAME, MIN_FRAME } from '../frame.js';
import type { Interface } from './interface.js';
import { parseParams } from './params.js';

/**
 * QEMU's datagram socket netdev: one Ethernet frame per UDP datagram, no
 * header. The VM side runs
 *   -netdev dgram,id=n0,local.type=inet,local.host=127.0.0.1,local.port=<vm>,
 *           remote.type=inet,remote.host=127.0.0.1,remote.port=<ours>
 * (or the older `-netdev socket,udp=127.0.0.1:<ours>,localaddr=127.0.0.1:<vm>`),
 * and vnetd binds <ours> and sends to <vm>. Datagrams from any other
 * address are ignored: only the VM may inject into its own interface.
 */
export class QemuUdpInterface extends EventEmitter implements Interface {
  readonly counters = { rxFrames: 0, rxBytes: 0, txFrames: 0, txBytes: 0, errors: 0 };
  private socket: dgram.Socket | undefined;

  constructor(
    readonly name: string,
    readonly spec: string,
    private readonly local: HostPort,
    private readonly remote: HostPort,
  ) {
    super();
  }

  /** Parses `listen=HOST:PORT,peer=HOST:PORT`. */
  static parse(name: string, params: string): QemuUdpInterface {
    const kv = parseParams('qemu-udp', params, ['listen', 'peer']);
    const endpoint = (key: string): HostPort => {
      const v = kv.get(key);
      const hp = v === undefined ? null : parseHostPort(v);
      if (!hp) throw new Error(`qemu-udp needs ${key}=HOST:PORT`);
      return hp;
    };
    return new QemuUdpInterface(name, `qemu-udp:${params}`, endpoint('listen'), endpoint('peer'));
  }

  open(): Promise<void> {
    return new Promise((resolve, reject) => {
      const s = dgram.createSocket(this.local.host.includes(':') ? 'udp6' : 'udp4');
      s.once('error', reject);
      s.bind(this.local.port, this.local.host, () => {
        s.off('error', reject);
        s.on('error', () => this.counters.errors++);
        s.on('message', (msg, rinfo) => {
          if (rinfo.port !== this.remote.port || msg.length < MIN_FRAME || msg.length > MAX_FRAME) {
            this.counters.errors++;
            return;
          }
          this.counters.rxFrames++;
          this.counters.rxBytes += msg.length;
          this.emit('frame', msg);
        });
        this.socket = s;
        resolve();
      });
    });
  }

  /** The port actually bound (the spec may say 0 in tests). */
  get port(): number {
    return this.socket?.address().port ?? this.local.port;
  }

  send(frame: Uint8Array): boolean {
    if (!this.socket) return false;
    this.counters.txFrames++;
    this.counters.txBytes += frame.length;
    this.socket.send(frame, this.remote.port, this.remote.host, (e) => {
      if (e) this.counters.errors++;
    });
    return true;
  }

  close(): Promise<void> {
    const s = this.socket;
    this.socket = undefined;
    return new Promise((resolve) => (s ? s.close(() => resolve()) : resolve()));
  }
}
