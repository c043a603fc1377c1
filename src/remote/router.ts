import type { Host } from '../model/state.js';
import { isLocalMachine } from './local.js';
import type { Session, Transport } from './transport.js';

/**
 * Picks each machine's transport: the local one for loopback names (or for
 * every machine, with --local), SSH for the rest.
 */
export class Router implements Transport {
  constructor(
    private readonly local: Transport,
    private readonly ssh: Transport,
    private readonly allLocal = false,
  ) {}

  open(host: Host): Promise<Session> {
    return this.allLocal || isLocalMachine(host.machine) ? this.local.open(host) : this.ssh.open(host);
  }
}
