import type { Host } from '../../model/state.js';
import type { ControlClient } from '../control-client.js';
import type { DaemonLaunch, Session } from '../transport.js';
import type { SshSession } from './session.js';

/**
 * A machine reached through a keeper's socket (keeper.ts): the control
 * stream costs no SSH handshake. Starting or stopping the daemon needs a
 * shell there, so those open a fresh SSH session, once, when asked.
 */
export class KeptSession implements Session {
  readonly kind = 'ssh' as const;
  readonly machine: string;
  private first: ControlClient | undefined;
  private opened: ControlClient[] = [];
  private ssh: Promise<SshSession> | undefined;

  constructor(
    host: Host,
    readonly overlayAddress: string,
    readonly describe: string,
    client: ControlClient,
    /** Another control connection through the keeper, or undefined when it has gone. */
    private readonly again: () => Promise<ControlClient | undefined>,
    private readonly fresh: () => Promise<SshSession>,
  ) {
    this.machine = host.machine;
    this.first = client;
    this.opened.push(client);
  }

  private session(): Promise<SshSession> {
    return (this.ssh ??= this.fresh());
  }

  async control(): Promise<ControlClient | undefined> {
    const c = this.first ?? (await this.again());
    this.first = undefined;
    if (c) {
      this.opened.push(c);
      return c;
    }
    return (await this.session()).control();
  }

  async start(launch: DaemonLaunch): Promise<void> {
    return (await this.session()).start(launch);
  }

  async stop(): Promise<void> {
    return (await this.session()).stop();
  }

  async close(): Promise<void> {
    for (const c of this.opened.splice(0)) c.close();
    const s = this.ssh;
    if (s) await (await s.catch(() => undefined))?.close();
  }
}
