import type { Proto } from '../../src/model/state.js';
import type { LinkMode } from '../../src/wire/control.js';

/**
 * The links layer's public types: what the control plane hands a daemon about
 * each overlay link, and what an operator reads back.
 */

/** `auth-only` leaves frames readable on the wire but still authenticated (the control protocol's word). */
export type { LinkMode, Proto };

export interface LinkSpec {
  /** The peer's machine name, as in .vnet files; it names the link on this daemon. */
  peer: string;
  proto: Proto;
  /** True: this end connects. False: it waits for the peer to connect. */
  dial: boolean;
  /**
   * `host:port` (or `[v6]:port`) of the peer's daemon; required when dialing.
   * An accepting end ignores it: it answers wherever the proven peer came
   * from, so a dialer behind NAT still works.
   */
  address?: string;
  /** 32 bytes, the same at both ends; never leaves the daemon. */
  key: Buffer;
  mode: LinkMode;
}

/**
 * `connecting`: a dialing end between attempts or mid-handshake.
 * `down`: an accepting end with no session (it waits for the peer).
 */
export type LinkState = 'up' | 'connecting' | 'down';

export interface LinkStats {
  peer: string;
  proto: Proto;
  mode: LinkMode;
  dial: boolean;
  state: LinkState;
  /** `ip:port` of the peer while up. */
  remote: string | null;
  /** Smoothed keep-alive round trip (RFC 6298 SRTT), null until the first reply. */
  rttMs: number | null;
  /** Ethernet frames and their bytes (without link overhead). */
  txFrames: number;
  txBytes: number;
  rxFrames: number;
  rxBytes: number;
  /** Frames `send` could not send: link not up, frame too large, or the socket backed up. */
  dropped: number;
  /** Handshakes on this link where one side failed to prove it holds the key. */
  authFailures: number;
  /** Records on an established session that failed authentication or were malformed. */
  rejected: number;
  /** Records on an established session carrying a sequence number already seen (or too old). */
  replayed: number;
  /** Sessions established after the first one. */
  reconnects: number;
  /** Times a UDP peer was followed to a new address (NAT rebinding) within a session. */
  moves: number;
  /** Why the link last went down or the last dial failed. */
  lastError: string | null;
}

/**
 * Inbound traffic refused before it could be tied to a link; an operator's
 * view of who knocks on the port.
 */
export interface ListenerStats {
  /** TCP connections accepted at the socket level. */
  connections: number;
  /** Inbound handshakes completed (TCP and UDP). */
  handshakes: number;
  /** Bytes that are not a handshake message. */
  malformed: number;
  /** A TCP length prefix over the bound for the current phase. */
  oversize: number;
  /** A handshake not finished in time, including connections that never speak. */
  timeouts: number;
  /** The peer hung up mid-handshake. */
  aborted: number;
  /** A proof from a name with no link to accept here (unknown, or ours to dial, or meant for another daemon). */
  unknownPeer: number;
  /** A known peer whose transport or mode differs from ours. */
  mismatch: number;
  /** A known peer that failed to prove it holds the key. */
  authFailures: number;
  /** UDP HELLOs over the CHALLENGE rate, and pending TCP handshakes closed to make room for newer connections. */
  busy: number;
  /** UDP datagrams that belong to no session or handshake. */
  strays: number;
}

export interface BackoffOptions {
  /** First delay after a failure. */
  initialMs: number;
  /** Ceiling of the delay. */
  maxMs: number;
  /** Growth per failed attempt. */
  factor: number;
  /** Fraction of each delay that is randomised (0: none, 1: anywhere in [0, delay]). */
  jitter: number;
}

export interface LinkManagerOptions {
  /** This daemon's machine name: what it tells acceptors, and what dialers must address. */
  self: string;
  /** Listen address for both sockets; default 127.0.0.1. */
  host?: string;
  /** The daemon's port (TCP and UDP); 0 picks a free one, then `port` tells it. */
  port: number;
  /** Keep-alive period; default 5000. */
  keepaliveMs?: number;
  /** Silence after which a peer is declared dead; default 3 keep-alive periods. */
  deadMs?: number;
  /** Deadline for a whole handshake, connect included; default 5000. */
  handshakeMs?: number;
  backoff?: Partial<BackoffOptions>;
  log?: (line: string) => void;
  /**
   * Opens the daemon's UDP socket (bound to host:port, throwing an Error
   * with `code` such as EADDRINUSE); the default is a node:dgram socket.
   * vnetd passes its fast path's socket (daemon/forward/fast-path.ts).
   */
  openUdp?: (host: string, port: number) => Promise<DatagramSocket>;
  /**
   * The largest UDP payload that reaches an address unfragmented (the MTU of
   * the kernel's route there less the IP and UDP headers), 0 when unknown:
   * UDP links clamp the MSS of TCP SYNs they carry to fit it (mss.ts). vnetd
   * passes the pcap addon's; without it nothing is clamped, and full-size
   * frames cross fragmented.
   */
  pathRoom?: (ip: string) => number;
}

/** What UDP links need of a datagram socket: node:dgram's Socket has it, and so has the fast path's. */
export interface DatagramSocket {
  on(event: 'message', listener: (msg: Buffer, rinfo: { address: string; port: number }) => void): this;
  on(event: 'error', listener: (e: Error) => void): this;
  /** `sent`, when given, hears whether the kernel took the datagram (null) or why not, as node:dgram's callback does. */
  send(datagram: Buffer, port: number, ip: string, sent?: (e: Error | null) => void): void;
  getSendQueueSize(): number;
  address(): { address: string; family: string; port: number };
  close(callback: () => void): void;
}

/**
 * Where a link's records go and under which native session, for the fast
 * path: a UDP peer's address, or a TCP connection the fast path may take
 * over. null while the link is down, or when its session is not native.
 */
export type LinkPath = { session: object } & ({ ip: string; port: number } | { tcp: TcpTakeover });

/** A TCP link's connection, as the fast path takes it over: from then on it reads and writes the socket. */
export interface TcpTakeover {
  /**
   * Hands the socket over as soon as nothing is left unsent and nothing
   * half-read is in flight (a later turn): `attach` gets its descriptor and
   * the bytes of a record JavaScript had begun to read. Nothing happens if
   * the channel closes first.
   */
  handOver(to: TcpFastPath): void;
  /** The fast path failed the connection (`garbage`: what came was not a record, or not a frame): the channel closes as if its socket had. */
  failed(reason: string, garbage: boolean): void;
  /** The fast path gives the connection back (the link is going down); what it had not sent goes first. */
  reclaim(): void;
}

/** The fast path's side of a handed-over connection. */
export interface TcpFastPath {
  attach(fd: number, pending: Buffer): void;
  /** Sends after everything sent before; false once the connection has failed. */
  write(bytes: Buffer): boolean;
  queued(): number;
  /** Gives the connection back: the bytes the kernel has not taken yet, to send first (empty the second time). */
  release(): Buffer;
}
