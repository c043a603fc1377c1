import fs from 'node:fs';
import { LogLimiter } from '../log-limiter.js';
import { notRegular, whereWritten } from './capture-paths.js';
import { namesOpenFile } from '../../src/util/same-file.js';

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

/** Opening a capture file never waits: see PcapWriter.openRegular. */
const WRITE_NOW = fs.constants.O_WRONLY | fs.constants.O_NONBLOCK;

/** Past this much unwritten data a slow disk costs captured frames (counted), never the daemon's memory. */
export const MAX_PENDING_BYTES = 16 * 1024 * 1024;

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

/**
 * Appends frames to a capture file as they cross an interface or a link.
 *
 * Nothing is touched when it is made: the daemon opens its captures only
 * once it holds its state directory and its ports (claim, then begin), so a
 * second daemon that cannot start leaves a running one's capture whole.
 * Frames that cross before that are held, within the same bound as a slow
 * disk's backlog, and written first.
 */
export class PcapWriter {
  readonly counters = { frames: 0, dropped: 0, errors: 0 };
  private fd: number | null = null;
  private out: fs.WriteStream | null = null;
  /**
   * The file claim() created (through a dangling symbolic link, the link's
   * target), until it is begun: a start that fails takes back what it made.
   */
  private created: string | null = null;
  private held: Buffer[] = [];
  private heldBytes = 0;
  /** Bytes handed to the file's stream, header included. */
  private queued = 0;
  /**
   * Where each record handed to the stream ends in the file, oldest first,
   * until the disk has taken it: when a write fails, the frames whose
   * records it did not take whole are not in the file, and are not counted
   * as if they were.
   */
  private ends: number[] = [];
  /** The first of `ends` the disk has not passed: an index, not shift(), which moves a backlog's many thousand entries every frame. */
  private endsHead = 0;
  /** Where the last record the disk has passed ends: what a failed write cuts the file back to. */
  private wholeEnd = FILE_HEADER_BYTES;
  /** Whether the last frame was left out for the backlog: a spell of them is said once, when it starts. */
  private behind = false;
  private readonly behindLog: LogLimiter;
  private readonly origin = Date.now() - performance.now();

  constructor(
    readonly file: string,
    /**
     * The daemon's log: told once when the file can no longer be written (a
     * full disk; the capture ends there, the daemon goes on), and when frames
     * start being left out for a disk that fell behind (at most once a minute).
     */
    private readonly log: (message: string) => void = () => {},
  ) {
    this.behindLog = new LogLimiter(log, (n) => `capture ${file}: ${n} more spell(s) of frames left out`, 1, 60_000);
  }

  /**
   * Opens the file, creating it owner-only (a capture holds whatever the
   * VMs said), but does not empty it yet: if another capture of the same
   * daemon cannot be opened, this one is left as it was. Throws why not.
   */
  claim(): void {
    this.fd = this.openRegular();
    // The mode given to open applies to a new file only; one that exists is
    // made owner-only here, or not written.
    try {
      if ((fs.fstatSync(this.fd).mode & 0o777) !== 0o600) fs.fchmodSync(this.fd, 0o600);
    } catch (e) {
      this.abandon();
      throw new Error(`cannot make the capture file ${this.file} owner-only (--capture), and it would hold what the VMs said: ${(e as Error).message}; remove it or name another`);
    }
  }

  /**
   * Opens the file for writing, without waiting: the command line refused
   * anything but a regular file, and what has taken its place since is
   * refused here rather than waited on (a FIFO with no reader would hold
   * the daemon up for ever). O_NONBLOCK changes nothing for a regular file.
   */
  private openRegular(): number {
    let target: string;
    try {
      target = whereWritten(this.file);
    } catch (e) {
      throw this.cannot((e as Error).message);
    }
    const fd = this.create(target) ?? this.openExisting(target);
    const st = fs.fstatSync(fd);
    if (st.isFile()) return fd;
    fs.closeSync(fd);
    throw this.cannot(notRegular(st));
  }

  /** Creates the file where writing it lands, noting that it did; null when a file is there already. */
  private create(target: string): number | null {
    try {
      // O_EXCL: only a file this call made is this writer's to take back.
      const fd = fs.openSync(target, WRITE_NOW | fs.constants.O_CREAT | fs.constants.O_EXCL, 0o600);
      this.created = target;
      return fd;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EEXIST') return null;
      throw this.cannot((e as Error).message);
    }
  }

  private openExisting(target: string): number {
    try {
      return fs.openSync(target, WRITE_NOW);
    } catch (e) {
      // ENXIO: a FIFO that no one reads, said as what it is.
      const st = (e as NodeJS.ErrnoException).code === 'ENXIO' ? fs.statSync(target, { throwIfNoEntry: false }) : undefined;
      throw this.cannot(st ? notRegular(st) : (e as Error).message);
    }
  }

  private cannot(why: string): Error {
    return new Error(`cannot write the capture file ${this.file} (--capture): ${why}`);
  }

  /**
   * Closes a file claimed and never begun; one that claim() created is
   * removed, if its name still leads to it (a symbolic link that led there
   * was not made by vnetd, and stays).
   */
  private abandon(): void {
    if (this.fd === null) return;
    try {
      if (this.created !== null && namesOpenFile(this.fd, this.created)) fs.rmSync(this.created, { force: true });
    } finally {
      this.closeFd();
      this.created = null;
    }
  }

  /** Empties the claimed file and writes the header, then what was held. */
  begin(): void {
    if (this.fd === null) this.claim();
    const fd = this.fd!;
    // Begun, the file is the capture: it stays, whoever made it.
    this.created = null;
    fs.ftruncateSync(fd, 0);
    // Not closed for us on an error: the file is cut back to its last whole record first, then destroy() closes it.
    const out = fs.createWriteStream('', { fd, autoClose: false });
    out.on('error', (e) => {
      this.cutBack(fd, this.lose(out.bytesWritten));
      this.fd = null;
      out.destroy();
      if (this.counters.errors++ === 0) this.log(`capture ${this.file}: ${e.message}; no more frames are written to it`);
    });
    out.write(fileHeader());
    this.queued = FILE_HEADER_BYTES;
    this.out = out;
    for (const r of this.held) this.append(r);
    this.held = [];
  }

  write(frame: Uint8Array): void {
    if (this.out?.destroyed) {
      this.counters.dropped++;
      return;
    }
    if ((this.out ? this.out.writableLength : this.heldBytes) > MAX_PENDING_BYTES) {
      this.counters.dropped++;
      if (!this.behind) this.behindLog.line(`capture ${this.file}: the disk is ${MAX_PENDING_BYTES >> 20} MiB behind; frames are left out of the file until it catches up (capture-dropped in DEVICES? and LINKS? counts them)`);
      this.behind = true;
      return;
    }
    this.behind = false;
    const r = record(frame, this.origin + performance.now());
    if (this.out) this.append(r);
    else {
      this.held.push(r);
      this.heldBytes += r.length;
    }
    this.counters.frames++;
  }

  /** Hands a record to the stream; the ends the disk has passed are forgotten on the way. */
  private append(r: Buffer): void {
    const out = this.out!;
    const ends = this.ends;
    while (this.endsHead < ends.length && ends[this.endsHead]! <= out.bytesWritten) this.wholeEnd = ends[this.endsHead++]!;
    if (this.endsHead > 1024 && this.endsHead * 2 > ends.length) {
      this.ends = ends.slice(this.endsHead);
      this.endsHead = 0;
    }
    this.queued += r.length;
    this.ends.push(this.queued);
    out.write(r);
  }

  /** After a failed write, whose error is counted: the frames it cost are left out of the file, not captured. Returns where the last whole record ends (0 if not even the header is whole). */
  private lose(written: number): number {
    let lost = 0;
    let whole = this.wholeEnd;
    for (let i = this.endsHead; i < this.ends.length; i++) {
      if (this.ends[i]! > written) lost++;
      else whole = this.ends[i]!;
    }
    this.counters.frames -= lost;
    this.counters.dropped += lost;
    this.ends = [];
    this.endsHead = 0;
    return written < FILE_HEADER_BYTES ? 0 : whole;
  }

  /**
   * Ends a file whose write failed at its last whole record: a record cut
   * short by a full disk makes tcpdump -r stop with an error ("truncated
   * dump file"). Shrinking needs no space; if even that fails, the file is
   * as the disk left it.
   */
  private cutBack(fd: number, whole: number): void {
    try {
      fs.ftruncateSync(fd, whole);
    } catch {
      // The error that ended the capture is the one logged.
    }
  }

  private closeFd(): void {
    if (this.fd === null) return;
    fs.closeSync(this.fd);
    this.fd = null;
  }

  /** Ends the file; one never begun (its daemon did not start) is closed untouched, or removed if claim() created it. */
  close(): Promise<void> {
    const out = this.out;
    if (out)
      return new Promise((resolve) =>
        out.end(() => {
          this.closeFd();
          resolve();
        }),
      );
    this.abandon();
    this.held = [];
    return Promise.resolve();
  }
}
