import { EventEmitter } from 'node:events';
import type { Interface } from '../interfaces/interface.js';
import type { FrameSink } from '../vnetd-core.js';

/**
 * An interface whose frames, both ways, are also written to a capture file:
 * what the VM sent as it arrives, what vnetd sends the VM as it leaves. The
 * daemon sees the wrapped interface and nothing else changes.
 */
export class CapturingInterface extends EventEmitter implements Interface {
  constructor(
    private readonly inner: Interface,
    private readonly writer: FrameSink,
  ) {
    super();
    inner.on('frame', (frame: Buffer) => {
      writer.write(frame);
      this.emit('frame', frame);
    });
    inner.on('note', (line: string) => this.emit('note', line));
    inner.on('device', (present: boolean) => this.emit('device', present));
  }

  get name(): string {
    return this.inner.name;
  }

  get spec(): string {
    return this.inner.spec;
  }

  get counters(): Interface['counters'] {
    return this.inner.counters;
  }

  get connected(): boolean | undefined {
    return this.inner.connected;
  }

  get present(): boolean | undefined {
    return this.inner.present;
  }

  open(): Promise<void> {
    return this.inner.open();
  }

  send(frame: Uint8Array): boolean {
    const sent = this.inner.send(frame);
    if (sent) this.writer.write(frame);
    return sent;
  }

  /** The writer is the daemon's to close: it opened it. */
  close(): Promise<void> {
    return this.inner.close();
  }
}
