import dgram from 'node:dgram';

/** A synthetic VM: a UDP socket on loopback that a daemon's qemu-udp interface talks to, keeping what it receives. */
export interface SyntheticVm {
  sock: dgram.Socket;
  got: Buffer[];
}

export async function syntheticVm(): Promise<SyntheticVm> {
  const sock = dgram.createSocket('udp4');
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
  const got: Buffer[] = [];
  sock.on('message', (m) => got.push(m));
  return { sock, got };
}
