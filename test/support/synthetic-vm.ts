import dgram from 'node:dgram';
import net from 'node:net';
import { MAX_FRAME } from '../../src/model/frame.js';
import { withLength } from '../../daemon/links/framing.js';
import { messages } from './link-peer.js';

/** A synthetic VM: a UDP socket on loopback (QEMU's datagram netdev) that a daemon's qemu-udp interface talks to, keeping what it receives. */
export interface SyntheticVm {
  sock: dgram.Socket;
  port: number;
  got: Buffer[];
}

export async function syntheticVm(host = '127.0.0.1'): Promise<SyntheticVm> {
  const sock = dgram.createSocket(host.includes(':') ? 'udp6' : 'udp4');
  const got: Buffer[] = [];
  sock.on('message', (m) => got.push(m));
  await new Promise<void>((r) => sock.bind(0, host, () => r()));
  return { sock, port: sock.address().port, got };
}

/* QEMU's stream netdev, played by a plain socket: 4-byte big-endian length, then the frame. */

/** A frame as QEMU's stream netdev writes it. */
export const prefixed = withLength;

/** Connects to a TCP port on loopback, or to a Unix socket path, as QEMU's connecting side does. */
export function connect(to: string | number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = typeof to === 'number' ? net.connect(to, '127.0.0.1') : net.connect(to);
    s.once('error', reject);
    s.once('connect', () => resolve(s));
  });
}

/** Everything the "VM" receives on a stream, split back into frames. */
export function collect(s: net.Socket): Buffer[] {
  const got: Buffer[] = [];
  messages(s, (f) => got.push(f), MAX_FRAME);
  return got;
}
