import { EventEmitter } from 'node:events';
import type { Interface } from '../daemon/interfaces/interface.js';

/**
 * A local interface whose VM is this process: `inject` is the VM sending a
 * frame to the daemon, `delivered` is the VM receiving one. No socket, no
 * copy, so what it measures is the daemon's own code. For the benchmark
 * and for tests; a daemon never opens one from the command line.
 */
export class MemoryInterface extends EventEmitter implements Interface {
  readonly counters = { rxFrames: 0, rxBytes: 0, txFrames: 0, txBytes: 0, errors: 0 };
  private opened = false;

  constructor(
    readonly name: string,
    /** Called for each frame the daemon sends towards the VM. */
    public delivered: (frame: Uint8Array) => void = () => {},
  ) {
    super();
  }

  get spec(): string {
    return 'memory';
  }

  open(): Promise<void> {
    this.opened = true;
    return Promise.resolve();
  }

  /** The VM sends `frame`; the daemon forwards it before this returns. */
  inject(frame: Buffer): void {
    this.counters.rxFrames++;
    this.counters.rxBytes += frame.length;
    this.emit('frame', frame);
  }

  send(frame: Uint8Array): boolean {
    if (!this.opened) return false;
    this.counters.txFrames++;
    this.counters.txBytes += frame.length;
    this.delivered(frame);
    return true;
  }

  close(): Promise<void> {
    this.opened = false;
    return Promise.resolve();
  }
}

/** A minimal Ethernet frame of `bytes` bytes from `src` to `dst` (48-bit numbers), of the local experimental EtherType. */
export function ethernet(dst: number, src: number, bytes: number): Buffer {
  const f = Buffer.alloc(bytes);
  f.writeUIntBE(dst, 0, 6);
  f.writeUIntBE(src, 6, 6);
  f.writeUInt16BE(0x88b5, 12);
  return f;
}
