import type { EventEmitter } from 'node:events';

/**
 * A local interface the daemon captures frames from and injects frames into:
 * a VM's NIC one way or another. Emits 'frame' (Buffer) for each frame
 * received from the VM side.
 */
export interface Interface extends EventEmitter {
  readonly name: string;
  /** The kind and its parameters as written in `--iface`, for DEVICES?. */
  readonly spec: string;
  open(): Promise<void>;
  /** Injects a frame towards the VM; false if it could not be sent. */
  send(frame: Uint8Array): boolean;
  close(): Promise<void>;
  readonly counters: { rxFrames: number; rxBytes: number; txFrames: number; txBytes: number; errors: number };
}
