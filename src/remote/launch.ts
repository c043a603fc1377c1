import type { Host } from '../model/state.js';
import { formatHostPort, parseHostPort, type HostPort } from '../wire/hostport.js';
import type { DaemonLaunch, Session } from './transport.js';

/**
 * How a daemon that vnetc starts opens the interface its HOST line names.
 *
 * On a remote host, that interface is a real one (eth0, a tap, a bridge)
 * and vnetd captures it with pcap. On this machine (the local transport,
 * no root), VMs attach through QEMU's datagram socket netdev instead: the
 * daemon of a machine at loopback address A and port P listens for its VM
 * on A:P+1 and sends to the VM at A:P+2. `vmEndpoints` says so for a host.
 */
export function defaultLaunch(host: Host, session: Session): DaemonLaunch {
  return launchWith(new Map())(host, session);
}

/**
 * The default, except for machines given their own interface spec
 * (`--iface MACHINE=KIND:PARAMS`, say a QEMU socket on a remote host).
 */
export const launchWith =
  (specs: ReadonlyMap<string, string>) =>
  (host: Host, session: Session): DaemonLaunch => {
    const own = specs.get(host.machine);
    return own === undefined ? defaultOf(host, session) : { host, ifaces: [`${host.iface}=${own}`] };
  };

function defaultOf(host: Host, session: Session): DaemonLaunch {
  if (session.kind === 'local') {
    const { daemon, vm } = vmEndpoints(session.overlayAddress);
    return { host, ifaces: [`${host.iface}=qemu-udp:listen=${formatHostPort(daemon)},peer=${formatHostPort(vm)}`] };
  }
  return { host, ifaces: [`${host.iface}=pcap:${host.iface}`] };
}

/** Where a local daemon at `address:port` and its VM exchange frames. */
export function vmEndpoints(overlayAddress: string): { daemon: HostPort; vm: HostPort } {
  const at = parseHostPort(overlayAddress);
  if (!at) throw new Error(`'${overlayAddress}' is not host:port`);
  const { host, port } = at;
  if (port > 65533) throw new Error(`a local daemon's VM sockets take its port + 1 and + 2; ${port} is too high (use 65533 or lower)`);
  return { daemon: { host, port: port + 1 }, vm: { host, port: port + 2 } };
}
