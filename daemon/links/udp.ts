import type { RemoteInfo, Socket as UdpSocket } from 'node:dgram';
import { isIP } from 'node:net';
import { addressKey } from './address.js';
import type { Channel, DialResult, InboundPolicy, Refusal } from './channel.js';
import { AcceptorHandshake, type DialerHandshake } from './handshake.js';
import { ACCEPT, CHALLENGE, DATA, HELLO, PROOF, UDP_MAX_FRAME, decodeHello } from './wire.js';

/**
 * UDP links: every link of a daemon shares its one UDP socket, one record per
 * datagram. Sessions are told apart by the peer's address; handshakes are
 * retransmitted by the dialer, and the acceptor answers repeats from memory,
 * so a lost datagram costs a retransmission, never a wrong state.
 */

/** Bytes waiting in the socket's send queue beyond which data is dropped. */
const TX_QUEUE_LIMIT = 1 << 20;
/** Half-done inbound handshakes held at once; more are refused until some finish or expire. */
const MAX_PENDING = 256;

export class UdpChannel implements Channel {
  readonly headroom = 0;
  readonly maxFrame = UDP_MAX_FRAME;
  readonly batching = false;
  onRecord: (record: Buffer) => void = () => {};
  onClose: (reason: string) => void = () => {};
  private closed = false;

  constructor(
    private readonly endpoint: UdpEndpoint<unknown>,
    readonly remote: string,
    private readonly ip: string,
    private readonly port: number,
  ) {}

  congested(): boolean {
    return this.endpoint.congested();
  }

  write(record: Buffer): void {
    if (!this.closed) this.endpoint.transmit(record, this.ip, this.port);
  }

  close(farewell?: Buffer): void {
    if (this.closed) return;
    if (farewell) this.write(farewell);
    this.closed = true;
    this.endpoint.forget(this);
  }

  /** Another session now owns this address. */
  supersede(): void {
    if (this.closed) return;
    this.closed = true;
    this.onClose('replaced by a newer session from the same address');
  }
}

interface Inbound<T> {
  hs: AcceptorHandshake;
  ticket: T | null;
  refusal: Refusal | null;
  hello: Buffer;
  timer: NodeJS.Timeout;
  /** Once accepted: the PROOF and our ACCEPT, to answer a retransmitted PROOF. */
  proof: Buffer | null;
  accept: Buffer | null;
}

interface Outbound {
  hs: DialerHandshake;
  current: Buffer;
  done: (r: DialResult<UdpChannel>) => void;
  retransmit: NodeJS.Timeout;
  deadline: NodeJS.Timeout;
}

export class UdpEndpoint<T> {
  private readonly channels = new Map<string, UdpChannel>();
  private readonly inbound = new Map<string, Inbound<T>>();
  private readonly outbound = new Map<string, Outbound>();
  private readonly v6: boolean;
  private closed = false;

  constructor(
    private readonly socket: UdpSocket,
    private readonly o: {
      policy: InboundPolicy<T>;
      timeoutMs: number;
      /** A datagram that belongs to nothing. */
      stray: () => void;
    },
  ) {
    this.v6 = socket.address().family === 'IPv6';
    socket.on('message', (msg, rinfo) => this.receive(msg, rinfo));
  }

  congested(): boolean {
    return this.socket.getSendQueueSize() > TX_QUEUE_LIMIT;
  }

  transmit(datagram: Buffer, ip: string, port: number): void {
    // A closed dgram socket throws on send; a late timer must not take the daemon down.
    if (!this.closed) this.socket.send(datagram, port, ip);
  }

  forget(channel: UdpChannel): void {
    if (this.channels.get(channel.remote) === channel) this.channels.delete(channel.remote);
  }

  /** Runs the dialer's side towards `ip:port`; `done` is called once, unless cancelled first. */
  dial(ip: string, port: number, hs: DialerHandshake, done: (r: DialResult<UdpChannel>) => void): () => void {
    const sendIp = this.v6 && isIP(ip) === 4 ? `::ffff:${ip}` : ip;
    const key = addressKey(ip, port);
    this.cancelOutbound(key);
    const every = Math.max(20, Math.min(1000, Math.floor(this.o.timeoutMs / 5)));
    const out: Outbound = {
      hs,
      current: hs.hello,
      done,
      retransmit: setInterval(() => this.transmit(out.current, sendIp, port), every).unref(),
      deadline: setTimeout(() => {
        this.cancelOutbound(key);
        done(
          hs.answered
            ? { ok: false, reason: 'refused', detail: 'peer did not accept our proof' }
            : { ok: false, reason: 'timeout', detail: `no answer within ${this.o.timeoutMs} ms` },
        );
      }, this.o.timeoutMs).unref(),
    };
    this.outbound.set(key, out);
    this.transmit(hs.hello, sendIp, port);
    return () => {
      if (this.outbound.get(key) === out) this.cancelOutbound(key);
    };
  }

  close(): void {
    this.closed = true;
    for (const key of [...this.outbound.keys()]) this.cancelOutbound(key);
    for (const entry of this.inbound.values()) clearTimeout(entry.timer);
    this.inbound.clear();
    this.channels.clear();
  }

  private cancelOutbound(key: string): void {
    const out = this.outbound.get(key);
    if (!out) return;
    clearInterval(out.retransmit);
    clearTimeout(out.deadline);
    this.outbound.delete(key);
  }

  private receive(msg: Buffer, rinfo: RemoteInfo): void {
    const key = addressKey(rinfo.address, rinfo.port);
    const type = msg.length > 0 ? msg[0]! : -1;
    if (type >= DATA) {
      const channel = this.channels.get(key);
      if (channel) channel.onRecord(msg);
      else this.o.stray();
      return;
    }
    switch (type) {
      case HELLO:
        return this.onHello(key, msg, rinfo);
      case PROOF:
        return this.onProof(key, msg, rinfo);
      case CHALLENGE:
      case ACCEPT:
        return this.onAnswer(key, type, msg, rinfo);
      default:
        this.o.stray();
    }
  }

  private onHello(key: string, msg: Buffer, rinfo: RemoteInfo): void {
    const existing = this.inbound.get(key);
    if (existing?.hello.equals(msg)) {
      if (!existing.accept) this.transmit(existing.hs.challenge, rinfo.address, rinfo.port);
      return;
    }
    const hello = decodeHello(msg);
    if (!hello) return this.o.policy.refused('malformed', key, null, null);
    if (existing) {
      clearTimeout(existing.timer);
      this.inbound.delete(key);
    }
    if (this.inbound.size >= MAX_PENDING) return this.o.policy.refused('busy', key, hello, null);
    const admission = this.o.policy.admit(hello, 'udp');
    const hs = new AcceptorHandshake(msg, hello, admission.key);
    const entry: Inbound<T> = {
      hs,
      ticket: admission.ticket,
      refusal: admission.refusal,
      hello: Buffer.from(msg),
      proof: null,
      accept: null,
      timer: setTimeout(() => {
        if (this.inbound.get(key) !== entry) return;
        this.inbound.delete(key);
        if (!entry.accept) this.o.policy.refused('timeout', key, hello, entry.ticket);
      }, this.o.timeoutMs).unref(),
    };
    this.inbound.set(key, entry);
    this.transmit(hs.challenge, rinfo.address, rinfo.port);
  }

  private onProof(key: string, msg: Buffer, rinfo: RemoteInfo): void {
    const entry = this.inbound.get(key);
    if (!entry) return this.o.stray();
    if (entry.accept) {
      if (entry.proof?.equals(msg)) this.transmit(entry.accept, rinfo.address, rinfo.port);
      else this.o.stray();
      return;
    }
    const r = entry.hs.verify(msg);
    const hello = entry.hs.hello;
    if (!r.ok || entry.ticket === null) {
      clearTimeout(entry.timer);
      this.inbound.delete(key);
      const reason: Refusal = !r.ok && r.reason === 'malformed' ? 'malformed' : (entry.refusal ?? 'auth');
      return this.o.policy.refused(reason, key, hello, entry.ticket);
    }
    entry.proof = Buffer.from(msg);
    entry.accept = r.accept;
    this.transmit(r.accept, rinfo.address, rinfo.port);
    const channel = new UdpChannel(this as UdpEndpoint<unknown>, key, rinfo.address, rinfo.port);
    const old = this.channels.get(key);
    this.channels.set(key, channel);
    this.o.policy.established(entry.ticket, r.keys, channel);
    old?.supersede();
  }

  private onAnswer(key: string, type: number, msg: Buffer, rinfo: RemoteInfo): void {
    const out = this.outbound.get(key);
    if (!out) return this.o.stray();
    if (type === CHALLENGE) {
      const proof = out.hs.answer(msg);
      // A CHALLENGE that does not fit (a stale or forged one) is ignored:
      // the real one may still come.
      if (!proof) return this.o.stray();
      out.current = proof;
      this.transmit(proof, rinfo.address, rinfo.port);
      return;
    }
    if (!out.hs.answered) return this.o.stray();
    const r = out.hs.finish(msg);
    if (!r.ok) return this.o.stray();
    this.cancelOutbound(key);
    const channel = new UdpChannel(this as UdpEndpoint<unknown>, key, rinfo.address, rinfo.port);
    const old = this.channels.get(key);
    this.channels.set(key, channel);
    out.done({ ok: true, channel, keys: r.keys });
    old?.supersede();
  }
}
