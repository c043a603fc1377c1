import { createHmac, randomBytes } from 'node:crypto';
import { isIP } from 'node:net';
import { performance } from 'node:perf_hooks';
import { addressKey } from './address.js';
import type { Channel, DialResult, InboundPolicy, Refusal } from './channel.js';
import type { DatagramSocket } from './types.js';
import { macEqual } from './crypto.js';
import { AcceptorHandshake, type DialerHandshake } from './handshake.js';
import {
  ACCEPT,
  CHALLENGE,
  DATA,
  HELLO,
  MAC_MESSAGE_BYTES,
  MAX_HANDSHAKE,
  NONCE_BYTES,
  PROOF,
  RECORD_OVERHEAD,
  UDP_MAX_FRAME,
  decodeHello,
  encodeFixed,
  readTag,
} from './wire.js';

/**
 * UDP links: every link of a daemon shares its one UDP socket, one record per
 * datagram. Sessions are found by the peer's address, and by the session
 * tag in every record when the address is new (a NAT rebound): the peer is
 * followed there once a record from it authenticates, never before.
 *
 * The acceptor keeps no state for a handshake until the dialer has proved
 * the key: its CHALLENGE nonce is a cookie (an HMAC under a secret of this
 * daemon over the time, the sender's address and its HELLO), and the dialer's
 * PROOF carries the cookie and the HELLO back. A flood of spoofed HELLOs
 * thus costs one local HMAC each, capped per second, and no memory; only a
 * sender that receives our datagrams gets as far as the link key.
 */

/** Bytes waiting in the socket's send queue beyond which data is dropped. */
const TX_QUEUE_LIMIT = 1 << 20;
/** How long the room a path has, read from the kernel, is used before it is read again. */
const FIT_TTL_MS = 1000;
/** CHALLENGEs sent per second at most; HELLOs beyond are refused as busy. */
const MAX_CHALLENGES_PER_SEC = 10_000;
/** Handshakes remembered after their PROOF (to answer a retransmitted one, and to refuse a replayed one). */
const MAX_DONE = 4096;

export class UdpChannel implements Channel {
  readonly headroom = 0;
  readonly maxFrame = UDP_MAX_FRAME;
  readonly batching = false;
  onRecord: (record: Buffer) => boolean = () => false;
  onClose: (reason: string) => void = () => {};
  onMoved: (from: string) => void = () => {};
  closed = false;
  private fit = { frame: 0, ip: '', at: -Infinity };

  constructor(
    private readonly endpoint: UdpEndpoint<unknown>,
    public remote: string,
    /** The peer's address and port now (they change when it moves). */
    public ip: string,
    public port: number,
    readonly tag: number,
  ) {}

  congested(): boolean {
    return this.endpoint.congested();
  }

  fitFrame(): number {
    const now = performance.now();
    if (this.fit.ip !== this.ip || now - this.fit.at >= FIT_TTL_MS) {
      this.fit = { frame: Math.max(0, this.endpoint.pathRoom(this.ip) - RECORD_OVERHEAD), ip: this.ip, at: now };
    }
    return this.fit.frame;
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
    this.endpoint.forget(this);
    this.onClose('replaced by a newer session from the same address');
  }

  /**
   * A record from an address no session owns, whose tag names this session.
   * It is opened as if the peer were there (so a PONG goes back there); if
   * it is authentic and new the peer has moved, else nothing changes.
   */
  tryFrom(record: Buffer, remote: string, ip: string, port: number): boolean {
    const was = { remote: this.remote, ip: this.ip, port: this.port };
    this.remote = remote;
    this.ip = ip;
    this.port = port;
    if (this.onRecord(record)) {
      this.endpoint.moved(this, was.remote);
      if (!this.closed) this.onMoved(was.remote);
      return true;
    }
    this.remote = was.remote;
    this.ip = was.ip;
    this.port = was.port;
    return false;
  }
}

interface Outbound {
  hs: DialerHandshake;
  /** What is retransmitted: the HELLO, then the PROOF for each CHALLENGE answered (any may be the real one). */
  current: Buffer[];
  done: (r: DialResult<UdpChannel>) => void;
  retransmit: NodeJS.Timeout;
  deadline: NodeJS.Timeout;
  /** Why the kernel would not send the last handshake datagram, if it would not: said when the dial gives up, rather than mere silence. */
  sendError?: string;
}

/** A handshake whose PROOF was checked: its ACCEPT if it passed, null if refused. */
interface Done {
  proof: Buffer;
  accept: Buffer | null;
  at: number;
}

type Rinfo = { address: string; port: number };

export class UdpEndpoint<T> {
  private readonly channels = new Map<string, UdpChannel>();
  private readonly byTag = new Map<number, Set<UdpChannel>>();
  private readonly outbound = new Map<string, Outbound>();
  /** By transcript hash, oldest first. */
  private readonly done = new Map<string, Done>();
  private readonly cookieSecret = randomBytes(32);
  private readonly v6: boolean;
  private budget = { start: 0, used: 0 };
  private closed = false;

  constructor(
    private readonly socket: DatagramSocket,
    private readonly o: {
      policy: InboundPolicy<T>;
      timeoutMs: number;
      /** A datagram that belongs to nothing. */
      stray: () => void;
      /** LinkManagerOptions.pathRoom. */
      pathRoom?: (ip: string) => number;
    },
  ) {
    this.v6 = socket.address().family === 'IPv6';
    socket.on('message', (msg, rinfo) => this.receive(msg, rinfo));
  }

  congested(): boolean {
    return this.socket.getSendQueueSize() > TX_QUEUE_LIMIT;
  }

  pathRoom(ip: string): number {
    return this.o.pathRoom?.(ip) ?? 0;
  }

  transmit(datagram: Buffer, ip: string, port: number, failed?: (e: Error) => void): void {
    // A closed dgram socket throws on send; a late timer must not take the daemon down.
    if (!this.closed) this.socket.send(datagram, port, ip, failed && ((e: Error | null) => e && failed(e)));
  }

  forget(channel: UdpChannel): void {
    if (this.channels.get(channel.remote) === channel) this.channels.delete(channel.remote);
    const set = this.byTag.get(channel.tag);
    if (set?.delete(channel) && set.size === 0) this.byTag.delete(channel.tag);
  }

  /** `channel` proved its peer is now at `channel.remote`, no longer at `from`. */
  moved(channel: UdpChannel, from: string): void {
    if (this.channels.get(from) === channel) this.channels.delete(from);
    if (channel.closed) return;
    this.channels.get(channel.remote)?.supersede();
    this.channels.set(channel.remote, channel);
  }

  /** Runs the dialer's side towards `ip:port`; `done` is called once, unless cancelled first. */
  dial(ip: string, port: number, hs: DialerHandshake, done: (r: DialResult<UdpChannel>) => void): () => void {
    const sendIp = this.v6 && isIP(ip) === 4 ? `::ffff:${ip}` : ip;
    const key = addressKey(ip, port);
    this.cancelOutbound(key);
    const every = Math.max(20, Math.min(1000, Math.floor(this.o.timeoutMs / 5)));
    const failed = (e: Error) => (out.sendError = `cannot send to ${key}: ${e.message}`);
    const out: Outbound = {
      hs,
      current: [hs.hello],
      done,
      retransmit: setInterval(() => {
        for (const datagram of out.current) this.transmit(datagram, sendIp, port, failed);
      }, every).unref(),
      deadline: setTimeout(() => {
        this.cancelOutbound(key);
        done(
          hs.answered ? { ok: false, reason: 'refused', detail: 'peer did not accept our proof' }
          : out.sendError ? { ok: false, reason: 'unreachable', detail: out.sendError }
          : { ok: false, reason: 'timeout', detail: `no answer within ${this.o.timeoutMs} ms` },
        );
      }, this.o.timeoutMs).unref(),
    };
    this.outbound.set(key, out);
    this.transmit(hs.hello, sendIp, port, failed);
    return () => {
      if (this.outbound.get(key) === out) this.cancelOutbound(key);
    };
  }

  close(): void {
    this.closed = true;
    for (const key of [...this.outbound.keys()]) this.cancelOutbound(key);
    this.done.clear();
    this.channels.clear();
    this.byTag.clear();
  }

  private cancelOutbound(key: string): void {
    const out = this.outbound.get(key);
    if (!out) return;
    clearInterval(out.retransmit);
    clearTimeout(out.deadline);
    this.outbound.delete(key);
  }

  private receive(msg: Buffer, rinfo: Rinfo): void {
    const key = addressKey(rinfo.address, rinfo.port);
    const type = msg.length > 0 ? msg[0]! : -1;
    if (type >= DATA) {
      const channel = this.channels.get(key);
      if (channel) channel.onRecord(msg);
      else if (!this.follow(msg, key, rinfo)) this.o.stray();
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

  /** A session record from an unknown address: the session its tag names, if the record proves it. */
  private follow(msg: Buffer, key: string, rinfo: Rinfo): boolean {
    if (msg.length < RECORD_OVERHEAD) return false;
    const candidates = this.byTag.get(readTag(msg));
    if (!candidates) return false;
    for (const channel of [...candidates]) if (channel.tryFrom(msg, key, rinfo.address, rinfo.port)) return true;
    return false;
  }

  /** The CHALLENGE nonce for a HELLO from `remote` in time slot `slot`: computable again, never stored. */
  private cookie(slot: number, remote: string, hello: Buffer): Buffer {
    const s = Buffer.allocUnsafe(8);
    s.writeDoubleBE(slot);
    return createHmac('sha256', this.cookieSecret).update(s).update(remote).update('\0').update(hello).digest();
  }

  private slot(): number {
    return Math.floor(performance.now() / this.o.timeoutMs);
  }

  private onHello(key: string, msg: Buffer, rinfo: Rinfo): void {
    const hello = decodeHello(msg);
    if (!hello) return this.o.policy.refused('malformed', key, null);
    const now = performance.now();
    if (now - this.budget.start >= 1000) this.budget = { start: now, used: 0 };
    if (this.budget.used++ >= MAX_CHALLENGES_PER_SEC) return this.o.policy.refused('busy', key, hello);
    this.transmit(encodeFixed(CHALLENGE, this.cookie(this.slot(), key, msg)), rinfo.address, rinfo.port);
  }

  /** PROOF ‖ the CHALLENGE nonce ‖ the HELLO: everything the acceptor needs, since it kept nothing. */
  private onProof(key: string, msg: Buffer, rinfo: Rinfo): void {
    const split = splitUdpProof(msg);
    if (!split) return this.o.policy.refused('malformed', key, null);
    const { proof, nonce, helloMessage } = split;
    // Only a sender that got our CHALLENGE at this address gets further, and
    // only within one or two time slots of it.
    const slot = this.slot();
    if (!macEqual(nonce, this.cookie(slot, key, helloMessage)) && !macEqual(nonce, this.cookie(slot - 1, key, helloMessage))) {
      return this.o.stray();
    }
    const hello = decodeHello(helloMessage);
    if (!hello) return this.o.policy.refused('malformed', key, null);
    // The cookie is a MAC over this HELLO and this address, so it names the handshake.
    const id = nonce.toString('base64');
    const seen = this.done.get(id);
    if (seen) {
      // A retransmitted PROOF (our ACCEPT was lost) gets the same ACCEPT; it never opens a second session.
      if (seen.accept && seen.proof.equals(proof)) this.transmit(seen.accept, rinfo.address, rinfo.port);
      else this.o.stray();
      return;
    }
    const admission = this.o.policy.admit(hello, 'udp');
    const r = new AcceptorHandshake(helloMessage, hello, admission.key, nonce).verify(proof);
    this.remember(id, { proof: Buffer.from(proof), accept: r.ok && admission.ticket !== null ? r.accept : null, at: performance.now() });
    if (!r.ok || admission.ticket === null) {
      const reason: Refusal = !r.ok && r.reason === 'malformed' ? 'malformed' : (admission.refusal ?? 'auth');
      return this.o.policy.refused(reason, key, hello);
    }
    this.transmit(r.accept, rinfo.address, rinfo.port);
    this.o.policy.established(admission.ticket, r.keys, this.open(key, rinfo, r.keys.tag));
  }

  /** Bounded in age (the cookie's lifetime, after which a replay fails the cookie anyway) and in count. */
  private remember(id: string, d: Done): void {
    const horizon = d.at - 3 * this.o.timeoutMs;
    for (const [k, v] of this.done) {
      if (v.at >= horizon && this.done.size < MAX_DONE) break;
      this.done.delete(k);
    }
    this.done.set(id, d);
  }

  private open(key: string, rinfo: Rinfo, tag: number): UdpChannel {
    const channel = new UdpChannel(this as UdpEndpoint<unknown>, key, rinfo.address, rinfo.port, tag);
    const old = this.channels.get(key);
    this.channels.set(key, channel);
    let set = this.byTag.get(tag);
    if (!set) this.byTag.set(tag, (set = new Set()));
    set.add(channel);
    old?.supersede();
    return channel;
  }

  private onAnswer(key: string, type: number, msg: Buffer, rinfo: Rinfo): void {
    const out = this.outbound.get(key);
    if (!out) return this.o.stray();
    if (type === CHALLENGE) {
      const before = out.hs.answered;
      const proof = out.hs.answer(msg);
      // Beyond the few a dial answers, or not a CHALLENGE at all: ignored, the real one may have come already.
      if (!proof) return this.o.stray();
      const datagram = Buffer.concat([proof, msg.subarray(1), out.hs.hello]);
      // A new CHALLENGE's answer joins what is retransmitted (the first in place of the HELLO); a repeated one's is there already.
      if (out.hs.answered > before) {
        if (before === 0) out.current = [];
        out.current.push(datagram);
      }
      this.transmit(datagram, rinfo.address, rinfo.port);
      return;
    }
    if (!out.hs.answered) return this.o.stray();
    const r = out.hs.finish(msg);
    if (!r.ok) return this.o.stray();
    this.cancelOutbound(key);
    out.done({ ok: true, channel: this.open(key, rinfo, r.keys.tag), keys: r.keys });
  }
}

function splitUdpProof(msg: Buffer): { proof: Buffer; nonce: Buffer; helloMessage: Buffer } | null {
  if (msg.length < MAC_MESSAGE_BYTES + NONCE_BYTES + 1 || msg.length > MAC_MESSAGE_BYTES + NONCE_BYTES + MAX_HANDSHAKE) return null;
  return {
    proof: msg.subarray(0, MAC_MESSAGE_BYTES),
    nonce: msg.subarray(MAC_MESSAGE_BYTES, MAC_MESSAGE_BYTES + NONCE_BYTES),
    helloMessage: msg.subarray(MAC_MESSAGE_BYTES + NONCE_BYTES),
  };
}
