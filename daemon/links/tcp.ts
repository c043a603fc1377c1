import { connect, type Socket } from 'node:net';
import { addressKey } from './address.js';
import type { Channel, DialResult, InboundPolicy, Refusal } from './channel.js';
import type { TcpFastPath, TcpTakeover } from './types.js';
import { withLength, type FramingError, LengthPrefixReader } from './framing.js';
import { handOverSocket } from './handover.js';
import { AcceptorHandshake, type DialerHandshake } from './handshake.js';
import { LENGTH_BYTES, MAX_FRAME, MAX_HANDSHAKE, MAX_RECORD, decodeHello, type Hello } from './wire.js';

/**
 * TCP links: length-prefixed records on one connection, the handshake first.
 */

/**
 * Unsent bytes beyond which data frames are dropped instead of queued: a
 * forwarder that buffers without bound behind a slow peer only adds latency
 * and memory, where dropping lets the guests' own TCP back off.
 */
const TX_QUEUE_LIMIT = 1 << 20;
/** A graceful close that the peer does not let finish is cut off after this. */
const CLOSE_GRACE_MS = 1000;

export class TcpChannel implements Channel, TcpTakeover {
  readonly headroom = LENGTH_BYTES;
  readonly maxFrame = MAX_FRAME;
  readonly batching = true;
  remote: string;
  onRecord: (record: Buffer) => boolean = () => false;
  onClose: (reason: string) => void = () => {};
  private readonly reader = new LengthPrefixReader(MAX_HANDSHAKE);
  private closed = false;
  /** Set once the fast path reads and writes the connection; `offered` while it is yet to take it. */
  private fast: TcpFastPath | null = null;
  private offered: TcpFastPath | null = null;
  private corked = false;
  private readonly uncork = (): void => {
    this.corked = false;
    this.socket.uncork();
  };

  constructor(private readonly socket: Socket) {
    this.remote = socket.remoteAddress ? addressKey(socket.remoteAddress, socket.remotePort ?? 0) : '';
    // A dialed socket learns its peer's address only once connected.
    if (!this.remote) socket.once('connect', () => (this.remote = addressKey(socket.remoteAddress ?? '', socket.remotePort ?? 0)));
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => {
      const err = this.reader.push(chunk, (r) => this.onRecord(r));
      if (err) this.fail(err);
    });
    socket.on('error', (e: NodeJS.ErrnoException) => this.fail(e.code ?? e.message));
    socket.on('close', () => this.fail('closed'));
  }

  /** After the handshake, records may be as large as a frame allows. */
  openForData(): void {
    this.reader.max = MAX_RECORD;
  }

  congested(): boolean {
    return (this.fast ? this.fast.queued() : this.socket.writableLength) > TX_QUEUE_LIMIT;
  }

  write(record: Buffer): void {
    if (this.closed) return;
    record.writeUInt32BE(record.length - LENGTH_BYTES, 0);
    if (this.fast) {
      this.fast.write(record);
      return;
    }
    // Records written in one tick (a batch, keep-alive replies, full batches
    // cut mid-burst) leave in one writev: with Nagle off, nothing else would
    // merge them.
    if (!this.corked) {
      this.corked = true;
      this.socket.cork();
      process.nextTick(this.uncork);
    }
    this.socket.write(record);
  }

  /** Handshake messages arrive bare. */
  writeMessage(message: Buffer): void {
    if (!this.closed) this.socket.write(withLength(message));
  }

  handOver(to: TcpFastPath): void {
    this.offered = to;
    handOverSocket(
      this.socket,
      this.reader,
      (r) => this.onRecord(r),
      () => !this.closed && this.offered === to,
      (fd, pending) => to.attach(fd, pending),
      () => {
        this.offered = null;
        this.fast = to;
      },
    );
  }

  failed(reason: string): void {
    this.fail(reason);
  }

  reclaim(): void {
    this.offered = null;
    this.takeBack();
  }

  /** The fast path lets go (the link is going down): what it had not sent goes first, through the socket. */
  private takeBack(): void {
    const fast = this.fast;
    if (!fast) return;
    this.fast = null;
    const unsent = fast.release();
    if (unsent.length && !this.socket.destroyed) this.socket.write(unsent);
  }

  close(farewell?: Buffer): void {
    if (this.closed) return;
    this.takeBack();
    this.closed = true;
    this.reader.stopped = true;
    if (!farewell || this.socket.destroyed || !this.socket.writable) {
      this.socket.destroy();
      return;
    }
    farewell.writeUInt32BE(farewell.length - LENGTH_BYTES, 0);
    const timer = setTimeout(() => this.socket.destroy(), CLOSE_GRACE_MS).unref();
    this.socket.end(farewell, () => {
      clearTimeout(timer);
      this.socket.destroy();
    });
  }

  /** The reason a handshake-phase failure is counted under. */
  static refusalFor(reason: string): Refusal {
    return reason === 'oversize' ? 'oversize' : reason === 'empty' ? 'malformed' : 'aborted';
  }

  private fail(reason: FramingError | string): void {
    if (this.closed) return;
    this.fast?.release();
    this.fast = null;
    this.closed = true;
    this.reader.stopped = true;
    this.socket.destroy();
    this.onClose(reason);
  }
}

/** Connects and runs the dialer's side; `done` is called once, unless cancelled first. */
export function dialTcp(o: {
  host: string;
  port: number;
  handshake: DialerHandshake;
  timeoutMs: number;
  done: (r: DialResult<TcpChannel>) => void;
}): () => void {
  const socket = connect({ host: o.host, port: o.port });
  const channel = new TcpChannel(socket);
  let settled = false;
  const settle = (r: DialResult<TcpChannel>): void => {
    if (settled) return;
    settled = true;
    clearTimeout(timer);
    if (!r.ok) channel.close();
    o.done(r);
  };
  const timer = setTimeout(
    () => settle({ ok: false, reason: 'timeout', detail: `no handshake within ${o.timeoutMs} ms` }),
    o.timeoutMs,
  ).unref();
  let connected = false;
  socket.once('connect', () => {
    connected = true;
    channel.writeMessage(o.handshake.hello);
  });
  channel.onClose = (reason) => {
    if (!connected) settle({ ok: false, reason: 'unreachable', detail: reason });
    else if (o.handshake.answered) settle({ ok: false, reason: 'refused', detail: 'peer closed after our proof' });
    else settle({ ok: false, reason: 'closed', detail: `peer closed during the handshake (${reason})` });
  };
  const handshake = (message: Buffer): void => {
    if (!o.handshake.answered) {
      const proof = o.handshake.answer(message);
      if (proof) channel.writeMessage(proof);
      else settle({ ok: false, reason: 'malformed', detail: 'peer did not send a CHALLENGE' });
      return;
    }
    const r = o.handshake.finish(message);
    if (!r.ok) {
      settle({
        ok: false,
        reason: r.reason,
        detail: r.reason === 'auth' ? 'peer failed to prove it holds the key' : 'peer did not send an ACCEPT',
      });
      return;
    }
    channel.openForData();
    settle({ ok: true, channel, keys: r.keys });
  };
  // Handshake messages are not session records: nothing here is 'authentic and new' in the link's sense.
  channel.onRecord = (message) => (handshake(message), false);
  return () => {
    settled = true;
    clearTimeout(timer);
    channel.close();
  };
}

/** The acceptor's hold on a connection whose handshake is under way. */
export interface PendingHandshake {
  /** True once a whole HELLO has arrived (a dialer sends it as soon as it is connected). */
  readonly greeted: boolean;
  /** Closes it without a word (the daemon is shutting down). */
  cancel(): void;
  /** Closes it and counts it as a refusal, to make room for a newer connection. */
  evict(): void;
}

/**
 * Runs the acceptor's side on a fresh connection. `settled` is called once,
 * when the connection either became a link's or was refused.
 */
export function acceptTcp<T>(
  socket: Socket,
  o: { policy: InboundPolicy<T>; timeoutMs: number; settled: () => void },
): PendingHandshake {
  const channel = new TcpChannel(socket);
  let hs: AcceptorHandshake | null = null;
  let ticket: T | null = null;
  let refusal: Refusal | null = null;
  let done = false;
  const finish = (): void => {
    done = true;
    clearTimeout(timer);
    o.settled();
  };
  const refuse = (reason: Refusal, hello: Hello | null): void => {
    if (done) return;
    finish();
    channel.close();
    o.policy.refused(reason, channel.remote, hello);
  };
  const timer = setTimeout(() => refuse('timeout', hs?.hello ?? null), o.timeoutMs).unref();
  channel.onClose = (reason) => refuse(TcpChannel.refusalFor(reason), hs?.hello ?? null);
  const handshake = (message: Buffer): void => {
    if (done) return;
    if (!hs) {
      const hello = decodeHello(message);
      if (!hello) return refuse('malformed', null);
      const admission = o.policy.admit(hello, 'tcp');
      ticket = admission.ticket;
      refusal = admission.refusal;
      hs = new AcceptorHandshake(message, hello, admission.key);
      channel.writeMessage(hs.challenge);
      return;
    }
    const r = hs.verify(message);
    if (!r.ok) return refuse(r.reason === 'malformed' ? 'malformed' : (refusal ?? 'auth'), hs.hello);
    if (ticket === null) return refuse(refusal ?? 'unknown-peer', hs.hello);
    finish();
    channel.writeMessage(r.accept);
    channel.openForData();
    o.policy.established(ticket, r.keys, channel);
  };
  // Handshake messages are not session records: nothing here is 'authentic and new' in the link's sense.
  channel.onRecord = (message) => (handshake(message), false);
  return {
    get greeted() {
      return hs !== null;
    },
    cancel: () => {
      if (done) return;
      finish();
      channel.close();
    },
    evict: () => refuse('evicted', hs?.hello ?? null),
  };
}
