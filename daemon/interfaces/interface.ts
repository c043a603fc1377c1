import type { EventEmitter } from 'node:events';

/**
 * A local interface the daemon captures frames from and injects frames into:
 * a VM's NIC one way or another. Emits 'frame' (Buffer) for each frame
 * received from the VM side, and 'note' (string) when the VM's connection
 * changes state (a line for the daemon's log).
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
  /** Whether the VM is connected, for kinds that have a connection (QEMU's stream netdev); undefined for the others. */
  readonly connected?: boolean;
  /** Whether its device is there and open, for kinds on a device (pcap), which emit 'device' (present: boolean) when that changes; undefined for the others. */
  readonly present?: boolean;
}

/** Why an interface could not open, said with which one (`where`), and in words for the commonest cause. */
export function openError(where: string, e: unknown): Error {
  const code = (e as NodeJS.ErrnoException).code;
  return new Error(`${where}: ${code === 'EADDRINUSE' ? 'the address is in use (another daemon or VM on this port?)' : (e as Error).message}`);
}
