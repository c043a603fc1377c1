import type { DirectionKeys } from './crypto.js';
import type { Hello } from './wire.js';
import type { Proto } from './types.js';

/**
 * What a transport hands the link once a handshake is done: a way to move
 * records, whatever carries them.
 */
export interface Channel {
  /** `ip:port` of the peer (a UDP peer behind a NAT may move, see `onMoved`). */
  readonly remote: string;
  /** Bytes a record must leave free at its front for the transport's header. */
  readonly headroom: number;
  /** The largest Ethernet frame this transport can carry in one record. */
  readonly maxFrame: number;
  /**
   * True: DATA records carry a batch of length-prefixed frames (TCP).
   * False: one frame per DATA record (UDP, where a lost datagram must cost one frame only).
   */
  readonly batching: boolean;
  /**
   * The largest frame a record carries across the path without IP
   * fragmentation, 0 when unknown (UDP). TCP, which cuts its stream to fit,
   * has none.
   */
  fitFrame?(): number;
  /** Authenticated-or-not records as they arrive; the session decides, and says whether the record was authentic and new. */
  onRecord: (record: Buffer) => boolean;
  /** The peer now sends from `remote`, no longer from `from` (UDP, after an authentic record from there). */
  onMoved?: (from: string) => void;
  /** The transport broke (not called after `close`). */
  onClose: (reason: string) => void;
  /** True when data should be dropped rather than queued behind a slow peer. */
  congested(): boolean;
  write(record: Buffer): void;
  /** Idempotent; `farewell` is a last record to flush first when possible. */
  close(farewell?: Buffer): void;
}

export type Refusal =
  | 'malformed'
  | 'oversize'
  | 'timeout'
  | 'aborted'
  | 'unknown-peer'
  | 'mismatch'
  | 'auth'
  | 'busy'
  /** A pending TCP handshake closed to make room for a newer connection. */
  | 'evicted';

/**
 * How a listener learns which link an inbound HELLO is for. `ticket` is the
 * manager's own handle on the link, opaque to transports.
 */
export interface Admission<T> {
  /** The link key, or a random decoy when `ticket` is null. */
  key: Buffer;
  ticket: T | null;
  /** Why it would be refused, when `ticket` is null. */
  refusal: Refusal | null;
}

export interface InboundPolicy<T> {
  admit(hello: Hello, proto: Proto): Admission<T>;
  established(ticket: T, keys: DirectionKeys, channel: Channel): void;
  refused(reason: Refusal, remote: string, hello: Hello | null): void;
}

export type DialResult<C extends Channel> =
  | { ok: true; channel: C; keys: DirectionKeys }
  | {
      ok: false;
      /** `refused`: the peer hung up (or stayed silent) after our proof: wrong key, unknown link or mode mismatch there. */
      reason: 'unreachable' | 'timeout' | 'refused' | 'auth' | 'malformed' | 'closed';
      detail: string;
    };
