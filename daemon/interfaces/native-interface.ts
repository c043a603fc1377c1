import { EventEmitter } from 'node:events';
import { constants } from 'node:os';
import { getSystemErrorMap } from 'node:util';
import { MIN_FRAME } from '../../src/model/frame.js';
import type { Interface } from './interface.js';

/** What every handle of the native addon (daemon/interfaces/pcap-native) offers: pcap captures and QEMU datagram sockets alike. */
export interface NativeFrames {
  /** Sends frames in order in as few system calls as it can; counts what the kernel refused. */
  sendMany(handle: object, frames: Uint8Array[]): { sent: number; sentBytes: number; failed: number; errno?: number };
  close(handle: object): void;
}

/** The kernel's words for an errno, as libuv has them. */
export function systemErrorMessage(errno: number): string {
  return getSystemErrorMap().get(-errno)?.[1] ?? `error ${errno}`;
}

/** The addon's per-frame header in a round of received frames: the length, and bit 31 when the frame was truncated (or, empty, a datagram that was not a frame). */
const FRAME_HEADER = 4;
const LENGTH_MASK = 0x7fffffff;

/**
 * An interface whose frames come and go through a handle of the native
 * addon: read in C, handed over a round at a time, sent a batch at a time,
 * and eligible for the fast path (daemon/forward/fast-path.ts), which then
 * carries the frames of cached flows without this class seeing them.
 */
export abstract class NativeInterface extends EventEmitter implements Interface {
  readonly counters = { rxFrames: 0, rxBytes: 0, txFrames: 0, txBytes: 0, errors: 0 };
  private handle: object | undefined;
  private lib: NativeFrames | undefined;
  /** The last injection error, in the kernel's words (logged when it changes). */
  lastError: string | undefined;
  private pending: Uint8Array[] = [];

  constructor(
    readonly name: string,
    readonly spec: string,
  ) {
    super();
  }

  abstract open(): Promise<void>;
  /** Who refused a frame, in the log's words ("the device"). */
  protected abstract readonly refuser: string;

  /** Adopts an open handle: from now on frames come from it and go to it. */
  protected adopt(lib: NativeFrames, open: (onFrames: (staged: Buffer) => void) => object): void {
    this.lib = lib;
    this.handle = open((staged) => this.received(staged));
  }

  private received(staged: Buffer): void {
    for (let at = 0; at + FRAME_HEADER <= staged.length; ) {
      const header = staged.readUInt32LE(at);
      const length = header & LENGTH_MASK;
      const start = at + FRAME_HEADER;
      at = start + length;
      if (header !== length || length < MIN_FRAME) {
        this.counters.errors++;
        continue;
      }
      this.fromVm(staged.subarray(start, at));
    }
  }

  /** A frame from the VM: counted, and on to the daemon. */
  protected fromVm(frame: Buffer): void {
    this.counters.rxFrames++;
    this.counters.rxBytes += frame.length;
    this.emit('frame', frame);
  }

  /**
   * Queues the frame; what is queued leaves in one system call once the
   * current task is done (a microtask: the frames of one received record
   * go together, and none waits for a later turn of the event loop).
   */
  send(frame: Uint8Array): boolean {
    if (!this.handle || !this.lib) return false;
    if (this.pending.push(frame) === 1) queueMicrotask(this.flush);
    return true;
  }

  private readonly flush = (): void => {
    const frames = this.pending;
    this.pending = [];
    if (!this.handle || !this.lib) return;
    let r: ReturnType<NativeFrames['sendMany']>;
    try {
      r = this.lib.sendMany(this.handle, frames);
    } catch {
      // Closed under us: nothing was sent, and a microtask must not throw.
      r = { sent: 0, sentBytes: 0, failed: frames.length, errno: constants.errno.EBADF };
    }
    if (r.failed) this.refused(r.failed, systemErrorMessage(r.errno ?? 0));
    this.counters.txFrames += r.sent;
    this.counters.txBytes += r.sentBytes;
  };

  /** `failed` frames the device or socket would not take, here or in the fast path: counted, and said once per reason. */
  refused(failed: number, error: string): void {
    this.counters.errors += failed;
    // Once per reason, not once per frame: a VM sending jumbo frames into a 1500-byte device would flood the log.
    if (error !== this.lastError) this.emit('note', `${this.refuser} refused ${failed === 1 ? 'a frame' : `${failed} frames`}: ${error}`);
    this.lastError = error;
  }

  /** The open handle, for the fast path and the addon's other calls; undefined while closed. */
  get captureHandle(): object | undefined {
    return this.handle;
  }

  async close(): Promise<void> {
    this.release();
  }

  /** Closes the handle; the interface may adopt another. */
  protected release(): void {
    const h = this.handle;
    this.handle = undefined;
    if (h && this.lib) this.lib.close(h);
  }
}
