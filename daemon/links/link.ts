import { performance } from 'node:perf_hooks';
import { backoffDelay } from './backoff.js';
import type { Channel } from './channel.js';
import { clampMss } from './mss.js';
import type { Session } from './session.js';
import type { BackoffOptions, LinkSpec, LinkState, LinkStats } from './types.js';
import { BATCH_ENTRY_OVERHEAD, CLOSE, DATA, PING, PONG, REPORT, TAG_BYTES, TCP_MAX_PAYLOAD } from './wire.js';

/**
 * One configured link at runtime: its session when up, its keep-alives and
 * RTT, its retry schedule when it dials, and its counters. Transports bring
 * it sessions; the manager owns the sockets.
 */

export interface LinkHooks {
  frame(peer: string, frame: Buffer): void;
  /** A VTTIF report from the peer (authenticated, not yet decoded). */
  report(peer: string, payload: Buffer): void;
  up(peer: string): void;
  down(peer: string, reason: string): void;
  /** The link's session and channel changed (up, replaced, moved), or it has none (down). */
  path(peer: string, session: Session | null, channel: Channel | null): void;
  /** Start a dial attempt for this link. */
  redial(link: Link): void;
  log(line: string): void;
}

export interface LinkTiming {
  keepaliveMs: number;
  deadMs: number;
  backoff: BackoffOptions;
}

const EMPTY = Buffer.alloc(0);
/** A batch starts small and grows with the traffic, so idle links cost little memory. */
const BATCH_INITIAL = 4096;

export class Link {
  private state: LinkState;
  private session: Session | null = null;
  private channel: Channel | null = null;
  private srtt: number | null = null;
  private lastRx = 0;
  private upAt = 0;
  private everUp = false;
  private attempts = 0;
  private retryTimer: NodeJS.Timeout | null = null;
  private keepTimer: NodeJS.Timeout | null = null;
  private cancelDial: (() => void) | null = null;
  private closed = false;
  private txFrames = 0;
  private txBytes = 0;
  private rxFrames = 0;
  private rxBytes = 0;
  private dropped = 0;
  private rejected = 0;
  private replayed = 0;
  private reconnects = 0;
  private moves = 0;
  authFailures = 0;
  private refusedOnce = false;
  private lastError: string | null = null;
  private batch: Buffer | null = null;
  private batchFill = 0;
  /** Payload room the next batch starts with. */
  private batchSize = BATCH_INITIAL;
  private flushQueued = false;
  private readonly flushQueuedBatch = (): void => {
    this.flushQueued = false;
    this.flush();
  };

  constructor(
    readonly spec: LinkSpec,
    private readonly hooks: LinkHooks,
    private readonly timing: LinkTiming,
  ) {
    this.state = spec.dial ? 'connecting' : 'down';
  }

  get isUp(): boolean {
    return this.session !== null;
  }

  send(frame: Uint8Array): boolean {
    const session = this.session;
    const channel = this.channel;
    if (!session || !channel || frame.length > channel.maxFrame || channel.congested()) {
      this.dropped++;
      return false;
    }
    if (channel.batching) {
      if (!this.enqueue(session, frame)) {
        this.dropped++;
        return false;
      }
    } else {
      const record = session.seal(DATA, this.fitted(frame));
      if (!record) {
        this.dropped++;
        this.lost('sequence numbers used up; re-keying with a new handshake');
        return false;
      }
      channel.write(record);
    }
    this.txFrames++;
    this.txBytes += frame.length;
    return true;
  }

  /**
   * Adds a frame to the batch sealed at the end of this event-loop turn
   * (setImmediate: after every event the poll phase delivered, so frames
   * that arrived together leave together, and a lone frame waits for nothing).
   * The batch is built where the record's payload goes, and sealed there.
   */
  private enqueue(session: Session, frame: Uint8Array): boolean {
    const need = BATCH_ENTRY_OVERHEAD + frame.length;
    if (this.batchFill + need > TCP_MAX_PAYLOAD) {
      this.flush();
      if (!this.session) return false;
    }
    const prefix = session.prefix;
    let batch = this.batch;
    if (!batch || batch.length < prefix + this.batchFill + need + TAG_BYTES) {
      let size = batch ? batch.length - prefix - TAG_BYTES : this.batchSize;
      while (size < this.batchFill + need) size *= 2;
      const grown = Buffer.allocUnsafe(prefix + Math.min(size, TCP_MAX_PAYLOAD) + TAG_BYTES);
      if (batch) batch.copy(grown, prefix, prefix, prefix + this.batchFill);
      batch = this.batch = grown;
    }
    const at = prefix + this.batchFill;
    batch.writeUInt16BE(frame.length, at);
    batch.set(frame, at + BATCH_ENTRY_OVERHEAD);
    this.batchFill += need;
    if (!this.flushQueued) {
      this.flushQueued = true;
      setImmediate(this.flushQueuedBatch);
    }
    return true;
  }

  private flush(): void {
    const { session, channel, batch } = this;
    if (this.batchFill === 0 || !session || !channel || !batch) return;
    const fill = this.batchFill;
    // The sealed batch goes to the socket, which may hold on to it: the next one is a new buffer.
    this.batch = null;
    this.batchFill = 0;
    // Sized for the larger of this turn's traffic and half what the last was sized for: a burst
    // that grows a batch copies what it holds, and bursts come in trains.
    this.batchSize = Math.max(BATCH_INITIAL, Math.min(Math.max(2 * fill, this.batchSize >> 1), TCP_MAX_PAYLOAD));
    let record: Buffer | null;
    try {
      record = session.sealInPlace(DATA, batch, fill);
    } catch (e) {
      // Runs from setImmediate: nothing above would catch it, and the daemon must outlive a failing cipher.
      this.lost(`cannot seal a record (${(e as Error).message})`);
      return;
    }
    if (record) channel.write(record);
    else this.lost('sequence numbers used up; re-keying with a new handshake');
  }

  /** A dial attempt is under way; `cancel` stops it if the link goes away first. */
  dialing(cancel: () => void): void {
    this.cancelDial = cancel;
    this.state = 'connecting';
  }

  dialFailed(reason: string, auth: boolean): void {
    this.cancelDial = null;
    if (this.closed) return;
    // A new link's first refusal is not counted: apply configures both ends at once, and a peer that has
    // not got its end yet refuses just as a wrong key is refused. The log and lastError say it all the same.
    if (auth) {
      if (this.everUp || this.refusedOnce) this.authFailures++;
      this.refusedOnce = true;
    }
    if (this.lastError !== reason) this.hooks.log(`link ${this.spec.peer}: dial failed: ${reason}`);
    this.lastError = reason;
    this.scheduleRetry();
  }

  /**
   * A handshake finished. A session that arrives while another is up replaces
   * it quietly (the peer re-dialed before we noticed the old one die).
   */
  attach(session: Session, channel: Channel): void {
    this.cancelDial = null;
    if (this.closed) {
      channel.close();
      return;
    }
    const replacing = this.channel;
    if (replacing) {
      replacing.onClose = () => {};
      replacing.close();
    }
    this.session = session;
    this.channel = channel;
    if (this.everUp) this.reconnects++;
    this.everUp = true;
    this.state = 'up';
    this.lastRx = this.upAt = performance.now();
    channel.onRecord = (record) => this.receive(record);
    channel.onMoved = (from) => {
      this.moves++;
      this.hooks.log(`link ${this.spec.peer}: peer moved from ${from} to ${channel.remote}`);
      if (this.channel === channel) this.hooks.path(this.spec.peer, session, channel);
    };
    channel.onClose = (reason) => {
      if (this.channel === channel) this.lost(reason === 'closed' ? 'connection closed' : reason);
    };
    if (this.keepTimer) clearInterval(this.keepTimer);
    this.keepTimer = setInterval(() => this.keepalive(), this.timing.keepaliveMs).unref();
    this.ping();
    this.hooks.log(`link ${this.spec.peer}: ${replacing ? 'session replaced' : 'up'} (${this.spec.proto} ${channel.remote}, ${this.spec.mode})`);
    this.hooks.path(this.spec.peer, session, channel);
    if (!replacing) this.hooks.up(this.spec.peer);
  }

  /** Removed or the manager closes: say goodbye, so the peer need not wait for a timeout. */
  shutdown(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.cancelDial?.();
    this.cancelDial = null;
    this.flush();
    const { session, channel } = this;
    if (!session || !channel) return;
    this.detach();
    channel.close(session.seal(CLOSE, EMPTY) ?? undefined);
    this.state = 'down';
    this.hooks.down(this.spec.peer, 'removed');
  }

  stats(): LinkStats {
    return {
      peer: this.spec.peer,
      proto: this.spec.proto,
      mode: this.spec.mode,
      dial: this.spec.dial,
      state: this.state,
      remote: this.channel?.remote ?? null,
      rttMs: this.srtt === null ? null : Math.round(this.srtt * 1000) / 1000,
      txFrames: this.txFrames,
      txBytes: this.txBytes,
      rxFrames: this.rxFrames,
      rxBytes: this.rxBytes,
      dropped: this.dropped,
      authFailures: this.authFailures,
      rejected: this.rejected,
      replayed: this.replayed,
      reconnects: this.reconnects,
      moves: this.moves,
      lastError: this.lastError,
    };
  }

  /** For the manager's first dial, which needs no delay. */
  startDialing(): void {
    if (!this.closed && this.spec.dial && !this.session && !this.cancelDial && !this.retryTimer) this.hooks.redial(this);
  }

  /** True when the record was authentic and new (what lets a UDP peer move to another address). */
  private receive(record: Buffer): boolean {
    const session = this.session;
    if (!session) return false;
    const r = session.open(record);
    if (!r.ok) {
      this.countRefusal(r.reason === 'replay' ? 'replay' : 'auth');
      // On TCP nothing can arrive out of order or twice unless someone
      // tampered with the stream, and a stream cannot be resynchronised.
      if (this.spec.proto === 'tcp') this.lost(r.reason === 'replay' ? 'record out of sequence' : 'record failed authentication');
      return false;
    }
    this.lastRx = performance.now();
    this.handle(session, r.type, r.payload);
    return true;
  }

  /** A record of this link that the fast path opened (it reads the link's TCP connection). */
  receiveOpened(type: number, payload: Buffer): void {
    const session = this.session;
    if (!session) return;
    this.lastRx = performance.now();
    this.handle(session, type, payload);
  }

  /** A record that did not open, here or in the fast path. */
  countRefusal(reason: 'replay' | 'auth'): void {
    if (reason === 'replay') this.replayed++;
    else this.rejected++;
  }

  private handle(session: Session, type: number, payload: Buffer): void {
    switch (type) {
      case DATA:
        if (this.channel?.batching) this.unbatch(session, payload);
        else this.deliver(payload);
        break;
      case PING:
        this.control(PONG, payload);
        break;
      case PONG:
        if (payload.length === 8) this.sample(this.lastRx - payload.readDoubleBE(0));
        break;
      case CLOSE:
        this.lost('peer closed the link');
        break;
      case REPORT:
        this.hooks.report(this.spec.peer, payload);
        break;
      default:
      // Authentic but unknown: a newer peer's extension, harmless to skip.
    }
  }

  /** A DATA frame the fast path opened under this link's session (and found no cached flow for). */
  opened(frame: Buffer): void {
    if (!this.session) return;
    this.lastRx = performance.now();
    this.deliver(frame);
  }

  /** Frames the fast path carried over this link, counted as if the link had. */
  credit(rxFrames: number, rxBytes: number, txFrames: number, txBytes: number, dropped: number): void {
    this.rxFrames += rxFrames;
    this.rxBytes += rxBytes;
    this.txFrames += txFrames;
    this.txBytes += txBytes;
    this.dropped += dropped;
  }

  private deliver(frame: Buffer): void {
    this.rxFrames++;
    this.rxBytes += frame.length;
    this.hooks.frame(this.spec.peer, this.fitted(frame));
  }

  /**
   * On a UDP link, a TCP SYN with its MSS clamped to what the path carries
   * unfragmented (mss.ts). Both ways: the SYN-ACK that comes in sets what our
   * side's VM sends, and only this end knows its own route's MTU.
   */
  private fitted<T extends Uint8Array>(frame: T): T | Buffer {
    const channel = this.channel;
    return channel?.fitFrame ? clampMss(frame, channel) : frame;
  }

  private unbatch(session: Session, payload: Buffer): void {
    // Checked whole before any frame goes out: a bad batch is the peer's bug
    // (it was authenticated), and half of one is no better than none.
    let o = 0;
    while (o + BATCH_ENTRY_OVERHEAD <= payload.length) o += BATCH_ENTRY_OVERHEAD + payload.readUInt16BE(o);
    if (o !== payload.length) {
      this.rejected++;
      this.lost('malformed frame batch from the peer');
      return;
    }
    // A listener may remove the link mid-batch; the rest then has nowhere to go.
    for (o = 0; o < payload.length && this.session === session; ) {
      const len = payload.readUInt16BE(o);
      o += BATCH_ENTRY_OVERHEAD;
      this.deliver(payload.subarray(o, o + len));
      o += len;
    }
  }

  /** RFC 6298's smoothing, so one slow reply does not swing what adaptation reads. */
  private sample(ms: number): void {
    if (!(ms >= 0 && ms < 600_000)) return;
    this.srtt = this.srtt === null ? ms : this.srtt + (ms - this.srtt) / 8;
  }

  private keepalive(): void {
    if (!this.session) return;
    const silent = performance.now() - this.lastRx;
    if (silent > this.timing.deadMs) this.lost(`peer silent for ${Math.round(silent)} ms`);
    else this.ping();
  }

  private ping(): void {
    const stamp = Buffer.allocUnsafe(8);
    stamp.writeDoubleBE(performance.now(), 0);
    this.control(PING, stamp);
  }

  /**
   * Sends a VTTIF report in a record of its own; false when the link is down.
   * Reports are small and few (at most 20 a second), so like keep-alives they
   * skip the frame batch.
   */
  report(payload: Buffer): boolean {
    if (!this.session || !this.channel) return false;
    this.control(REPORT, payload);
    return true;
  }

  /** Keep-alives bypass congestion: they are what tells a slow peer from a dead one. */
  private control(type: number, payload: Buffer): void {
    if (!this.session || !this.channel) return;
    const record = this.session.seal(type, payload);
    if (record) this.channel.write(record);
    else this.lost('sequence numbers used up; re-keying with a new handshake');
  }

  private detach(): void {
    if (this.session) this.hooks.path(this.spec.peer, null, null);
    if (this.keepTimer) clearInterval(this.keepTimer);
    this.keepTimer = null;
    if (this.channel) this.channel.onClose = () => {};
    this.batch = null;
    this.batchFill = 0;
    this.session = null;
    this.channel = null;
  }

  private lost(reason: string): void {
    const channel = this.channel;
    if (!channel) return;
    this.detach();
    channel.close();
    this.lastError = reason;
    this.state = this.spec.dial ? 'connecting' : 'down';
    this.hooks.log(`link ${this.spec.peer}: down (${reason})`);
    this.hooks.down(this.spec.peer, reason);
    if (!this.spec.dial || this.closed) return;
    // Only a link that held for a while earns a fresh start; one that breaks
    // right after each handshake keeps backing off.
    if (performance.now() - this.upAt >= 2 * this.timing.keepaliveMs) this.attempts = 0;
    this.scheduleRetry();
  }

  private scheduleRetry(): void {
    if (this.closed || this.retryTimer) return;
    this.state = 'connecting';
    const delay = backoffDelay(this.attempts++, this.timing.backoff);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      if (!this.closed && !this.session) this.hooks.redial(this);
    }, delay).unref();
  }
}
