import type { Interface } from './interface.js';
import { pcapBinding, PcapInterface } from './pcap.js';
import { QemuStreamInterface } from './qemu-stream.js';
import { QemuUdpInterface } from './qemu-udp.js';

const KINDS = 'qemu-udp, qemu-stream, pcap';

/** Builds an interface from `--iface NAME=KIND:PARAMS`. */
export function interfaceFromSpec(arg: string): Interface {
  const m = /^([A-Za-z0-9][A-Za-z0-9._-]{0,14})=([a-z0-9-]+):(.*)$/.exec(arg);
  if (!m) throw new Error(`'${arg}' is not NAME=KIND:PARAMS (for example vm0=qemu-udp:listen=127.0.0.1:7001,peer=127.0.0.1:7000)`);
  const [, name, kind, params] = m;
  switch (kind) {
    case 'qemu-udp':
      return QemuUdpInterface.parse(name!, params!);
    case 'qemu-stream':
      return QemuStreamInterface.parse(name!, params!);
    case 'pcap': {
      const lib = pcapBinding();
      if (typeof lib === 'string') throw new Error(`${name}: ${lib}`);
      return PcapInterface.parse(name!, params!);
    }
    default:
      throw new Error(`unknown interface kind '${kind}' (known: ${KINDS})`);
  }
}
