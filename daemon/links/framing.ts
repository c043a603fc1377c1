import { LENGTH_BYTES } from './wire.js';

/**
 * Splits a TCP byte stream into length-prefixed records. A record that
 * arrives whole inside one chunk is handed on as a view of that chunk (no
 * copy); a record split across chunks is assembled in a buffer of exactly its
 * size, so a peer that trickles one byte at a time costs O(n), not O(n²), and
 * at most one record's worth of memory.
 */
export type FramingError = 'oversize' | 'empty';

export class LengthPrefixReader {
  /** Set by the owner when it stops caring, even mid-chunk. */
  stopped = false;
  private readonly head = Buffer.alloc(LENGTH_BYTES);
  private headFill = 0;
  private body: Buffer | null = null;
  private bodyFill = 0;

  /** `max` may change between records (handshake, then session). */
  constructor(public max: number) {}

  push(chunk: Buffer, deliver: (record: Buffer) => void): FramingError | null {
    const n = chunk.length;
    let off = 0;
    while (off < n && !this.stopped) {
      if (this.body === null) {
        let len: number;
        if (this.headFill === 0 && n - off >= LENGTH_BYTES) {
          len = chunk.readUInt32BE(off);
          off += LENGTH_BYTES;
        } else {
          const take = Math.min(LENGTH_BYTES - this.headFill, n - off);
          chunk.copy(this.head, this.headFill, off, off + take);
          this.headFill += take;
          off += take;
          if (this.headFill < LENGTH_BYTES) break;
          this.headFill = 0;
          len = this.head.readUInt32BE(0);
        }
        if (len === 0) return 'empty';
        if (len > this.max) return 'oversize';
        if (n - off >= len) {
          deliver(chunk.subarray(off, off + len));
          off += len;
          continue;
        }
        this.body = Buffer.allocUnsafe(len);
        this.bodyFill = 0;
      }
      const body = this.body;
      const take = Math.min(body.length - this.bodyFill, n - off);
      chunk.copy(body, this.bodyFill, off, off + take);
      this.bodyFill += take;
      off += take;
      if (this.bodyFill === body.length) {
        this.body = null;
        deliver(body);
      }
    }
    return null;
  }

  /** What is held of a record not yet complete, length prefix included, as it arrived; the reader starts afresh. */
  takePartial(): Buffer {
    let out: Buffer;
    if (this.body) {
      out = Buffer.allocUnsafe(LENGTH_BYTES + this.bodyFill);
      out.writeUInt32BE(this.body.length, 0);
      this.body.copy(out, LENGTH_BYTES, 0, this.bodyFill);
    } else {
      out = Buffer.from(this.head.subarray(0, this.headFill));
    }
    this.body = null;
    this.bodyFill = 0;
    this.headFill = 0;
    return out;
  }
}

/**
 * Prefixes a bare message: a link's handshake traffic, which is rare enough
 * to copy, or a frame for QEMU's stream netdev, whose framing is the same.
 */
export function withLength(message: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(LENGTH_BYTES + message.length);
  out.writeUInt32BE(message.length, 0);
  out.set(message, LENGTH_BYTES);
  return out;
}
