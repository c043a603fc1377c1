import fs from 'node:fs';

/**
 * Classic libpcap capture files (the format tcpdump -w writes and Wireshark
 * opens): a 24-byte file header, then per frame a 16-byte record header and
 * the frame. Little-endian, microsecond timestamps, LINKTYPE_ETHERNET.
 */
export const PCAP_MAGIC = 0xa1b2c3d4;
export const LINKTYPE_ETHERNET = 1;
export const SNAPLEN = 65535;
export const FILE_HEADER_BYTES = 24;
export const RECORD_HEADER_BYTES = 16;

/** Past this much unwritten data a slow disk costs captured frames (counted), never the daemon's memory. */
const MAX_PENDING_BYTES = 16 * 1024 * 1024;

export function fileHeader(): Buffer {
  const h = Buffer.alloc(FILE_HEADER_BYTES);
  h.writeUInt32LE(PCAP_MAGIC, 0);
  h.writeUInt16LE(2, 4); // version 2.4
  h.writeUInt16LE(4, 6);
  h.writeInt32LE(0, 8); // timestamps are UTC
  h.writeUInt32LE(0, 12);
  h.writeUInt32LE(SNAPLEN, 16);
  h.writeUInt32LE(LINKTYPE_ETHERNET, 20);
  return h;
}

/** One record, frame copied in: callers hand us views of buffers they may reuse. */
export function record(frame: Uint8Array, whenMs: number): Buffer {
  const caplen = Math.min(frame.length, SNAPLEN);
  const r = Buffer.allocUnsafe(RECORD_HEADER_BYTES + caplen);
  const sec = Math.floor(whenMs / 1000);
  r.writeUInt32LE(sec >>> 0, 0);
  r.writeUInt32LE(Math.floor((whenMs - sec * 1000) * 1000), 4);
  r.writeUInt32LE(caplen, 8);
  r.writeUInt32LE(frame.length, 12);
  r.set(frame.subarray(0, caplen), RECORD_HEADER_BYTES);
  return r;
}

/** Appends frames to a capture file as they cross an interface. */
export class PcapWriter {
  readonly counters = { frames: 0, dropped: 0, errors: 0 };
  private readonly out: fs.WriteStream;
  private readonly origin = Date.now() - performance.now();

  /**
   * Opens (creates or truncates) the file now, synchronously, so that a path
   * that cannot be written is refused at start-up. Owner-only: a capture
   * holds whatever the VMs said.
   */
  constructor(
    readonly file: string,
    /** Told once when the file can no longer be written (a full disk): the capture ends there, the daemon goes on. */
    failed: (message: string) => void = () => {},
  ) {
    const fd = fs.openSync(file, 'w', 0o600);
    this.out = fs.createWriteStream('', { fd });
    this.out.on('error', (e) => {
      if (this.counters.errors++ === 0) failed(`capture ${file}: ${e.message}; no more frames are written to it`);
    });
    this.out.write(fileHeader());
  }

  write(frame: Uint8Array): void {
    if (this.out.writableLength > MAX_PENDING_BYTES || this.out.destroyed) {
      this.counters.dropped++;
      return;
    }
    this.out.write(record(frame, this.origin + performance.now()));
    this.counters.frames++;
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.out.end(() => resolve()));
  }
}
