import {
  createCipheriv,
  createDecipheriv,
  createHash,
  createHmac,
  createSecretKey,
  hkdfSync,
  timingSafeEqual,
  type KeyObject,
} from 'node:crypto';
import { HEADER_BYTES, RECORD_OVERHEAD, SEQ_LIMIT, TAG_BYTES, readSeq, writeHeader } from './wire.js';

/**
 * Key schedule and record protection. ChaCha20-Poly1305 rather than AES-GCM:
 * on this path both cost about the same in Node (the per-call overhead
 * dominates), and ChaCha is constant-time on CPUs without AES instructions.
 */
const AEAD = 'chacha20-poly1305';

export const LINK_KEY_BYTES = 32;

const DIALER_LABEL = Buffer.from('vnet-link/1 dialer proof', 'ascii');
const ACCEPTOR_LABEL = Buffer.from('vnet-link/1 acceptor proof', 'ascii');
const SESSION_INFO = Buffer.from('vnet-link/1 session keys', 'ascii');

/** Binds everything both sides said before proving: names, transport, mode, both nonces. */
export function transcriptHash(hello: Buffer, challenge: Buffer): Buffer {
  const len = Buffer.allocUnsafe(2);
  len.writeUInt16BE(hello.length);
  return createHash('sha256').update(len).update(hello).update(challenge).digest();
}

/** Distinct labels, so an acceptor's proof can never be reflected back as a dialer's. */
export function proofMac(linkKey: Buffer, role: 'dialer' | 'acceptor', transcript: Buffer): Buffer {
  return createHmac('sha256', linkKey)
    .update(role === 'dialer' ? DIALER_LABEL : ACCEPTOR_LABEL)
    .update(transcript)
    .digest();
}

export function macEqual(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

export interface DirectionKeys {
  /** Dialer to acceptor. */
  d2a: Buffer;
  /** Acceptor to dialer. */
  a2d: Buffer;
  /**
   * 16 bits every record of the session carries, so a UDP receiver can tell
   * which session a record from an unknown address claims to belong to (a
   * peer behind a NAT that rebound) without trying every session's key.
   */
  tag: number;
}

/**
 * Fresh keys per session and per direction: both nonces are in the
 * transcript, so neither side can be made to reuse a key, and each direction
 * can count its sequence numbers from zero without colliding with the other.
 */
export function sessionKeys(linkKey: Buffer, transcript: Buffer): DirectionKeys {
  const okm = Buffer.from(hkdfSync('sha256', linkKey, transcript, SESSION_INFO, 66));
  return { d2a: okm.subarray(0, 32), a2d: okm.subarray(32, 64), tag: okm.readUInt16BE(64) };
}

/** `0x00000000 ‖ u64(seq)`: the sequence number alone, since one key serves one direction of one session. Written into `nonce` (12 bytes), which each sealer and opener keeps rather than allocate one per record. */
export function nonceFor(nonce: Buffer, seq: number): Buffer {
  nonce.writeUInt32BE(0, 0);
  nonce.writeUInt16BE(0, 4);
  nonce.writeUIntBE(seq, 6, 6);
  return nonce;
}

/**
 * One direction's sending half. The nonce is the sequence number, which
 * only ever grows, so no nonce repeats under the key.
 */
export class Sealer {
  private seq = 0;
  private readonly key: KeyObject;
  private readonly nonce = Buffer.alloc(12);

  constructor(
    key: Buffer,
    private readonly encrypt: boolean,
    /** Bytes left free at the front of every record, for the transport's own header. */
    private readonly headroom: number,
    private readonly tag: number,
  ) {
    this.key = createSecretKey(key);
  }

  get sent(): number {
    return this.seq;
  }

  /** Bytes a record has before its payload: the transport's headroom, then the header. */
  get prefix(): number {
    return this.headroom + HEADER_BYTES;
  }

  /**
   * Seals the `length` payload bytes already at `prefix` in `record`, which
   * has room for the tag after them, in place: a sender that builds its
   * payload there (the link's frame batch) saves a copy of every frame.
   * null once the sequence space is spent: the session must be re-keyed, never wrapped.
   */
  sealInPlace(type: number, record: Buffer, length: number): Buffer | null {
    if (this.seq >= SEQ_LIMIT) return null;
    const h = this.headroom;
    const body = h + HEADER_BYTES;
    const end = body + length;
    const seq = this.seq++;
    writeHeader(record, h, type, this.tag, seq);
    const c = createCipheriv(AEAD, this.key, nonceFor(this.nonce, seq), { authTagLength: TAG_BYTES });
    if (this.encrypt) {
      c.setAAD(record.subarray(h, body), { plaintextLength: length });
      c.update(record.subarray(body, end)).copy(record, body);
    } else {
      c.setAAD(record.subarray(h, end), { plaintextLength: 0 });
    }
    c.final();
    c.getAuthTag().copy(record, end);
    // A record made to measure (seal, once per frame on UDP) is returned as it is, not as a new view of itself.
    return record.length === end + TAG_BYTES ? record : record.subarray(0, end + TAG_BYTES);
  }
}

export interface Opened {
  type: number;
  seq: number;
  payload: Buffer;
}

/** What seals a record in place, at its `prefix`: a Sealer, or a session. */
export interface InPlaceSealer {
  readonly prefix: number;
  sealInPlace(type: number, record: Buffer, length: number): Buffer | null;
}

/** A record of `type` carrying a copy of `payload`, made to measure for `s`. */
export function sealCopy(s: InPlaceSealer, type: number, payload: Uint8Array): Buffer | null {
  const record = Buffer.allocUnsafe(s.prefix + payload.length + TAG_BYTES);
  record.set(payload, s.prefix);
  return s.sealInPlace(type, record, payload.length);
}

/** One direction's receiving half; it authenticates, and leaves ordering to the caller. */
export class Opener {
  private readonly key: KeyObject;
  private readonly nonce = Buffer.alloc(12);

  constructor(
    key: Buffer,
    private readonly encrypt: boolean,
  ) {
    this.key = createSecretKey(key);
  }

  /** The sequence number a record claims, before paying for authentication; -1 if unusable. */
  static peekSeq(record: Buffer): number {
    return record.length < RECORD_OVERHEAD ? -1 : readSeq(record);
  }

  /** null when the record is not authentic under this key. */
  open(record: Buffer, seq: number): Opened | null {
    const end = record.length - TAG_BYTES;
    if (end < HEADER_BYTES) return null;
    const d = createDecipheriv(AEAD, this.key, nonceFor(this.nonce, seq), { authTagLength: TAG_BYTES });
    d.setAuthTag(record.subarray(end));
    let payload: Buffer;
    try {
      if (this.encrypt) {
        d.setAAD(record.subarray(0, HEADER_BYTES), { plaintextLength: end - HEADER_BYTES });
        payload = d.update(record.subarray(HEADER_BYTES, end));
      } else {
        d.setAAD(record.subarray(0, end), { plaintextLength: 0 });
        payload = record.subarray(HEADER_BYTES, end);
      }
      d.final();
    } catch {
      return null;
    }
    return { type: record[0]!, seq, payload };
  }
}
