/**
 * The ports a frame can enter or leave by: overlay links (named by the peer
 * machine) and local interfaces. Each gets a small integer id the first time
 * it is named, by a rule or by the daemon, and keeps it for the life of the
 * table, so rules, cached results and counters can hold ids instead of names
 * and a link that drops and comes back keeps its counters.
 */
import { destinationKey, type Destination } from '../../src/model/state.js';

export interface PortInfo {
  readonly id: number;
  readonly dest: Destination;
  /** Up: attached by the daemon (link connected, interface open). */
  readonly up: boolean;
  readonly rxPackets: number;
  readonly rxBytes: number;
  /** Frames the table handed to this port to send. */
  readonly txPackets: number;
  readonly txBytes: number;
}

export class Port implements PortInfo {
  up = false;
  rxPackets = 0;
  rxBytes = 0;
  txPackets = 0;
  txBytes = 0;
  constructor(
    readonly id: number,
    readonly dest: Destination,
  ) {}
}

export class PortRegistry {
  /** By id; ids are dense, so the data path indexes an array. */
  readonly list: Port[] = [];
  private readonly byKey = new Map<string, Port>();

  /** The port for `dest`, registered (down) if new. */
  intern(dest: Destination): Port {
    const key = destinationKey(dest);
    let port = this.byKey.get(key);
    if (port === undefined) {
      // Copied so a caller mutating its object cannot rename a port.
      const own: Destination = dest.kind === 'link' ? { kind: 'link', to: dest.to } : { kind: 'interface', iface: dest.iface };
      port = new Port(this.list.length, own);
      this.list.push(port);
      this.byKey.set(key, port);
    }
    return port;
  }

  find(dest: Destination): Port | undefined {
    return this.byKey.get(destinationKey(dest));
  }
}
