import { nativeAddon } from '../native-addon.js';
import { Opener, Sealer, sealCopy, type DirectionKeys } from './crypto.js';
import { ReplayWindow } from './replay.js';
import type { LinkMode } from './types.js';
import { HEADER_BYTES, TAG_BYTES, readTag } from './wire.js';

/**
 * An established session: the two directions' keys and the ordering rule of
 * its transport. TCP delivers in order, so anything but the next sequence
 * number is tampering; UDP may reorder, so a window accepts each number once.
 *
 * Two implementations make the same bytes: native (vnetd_session.c, one
 * OpenSSL context per direction, reused; node:crypto can only make a cipher
 * object per record, and that object cost about a tenth of vnetd's CPU per
 * frame) when an addon was built, node:crypto otherwise. A native session is
 * also what the pcap addon's fast path seals and opens with.
 */
export type Ordering = 'strict' | 'window';

export type OpenResult =
  | { ok: true; type: number; payload: Buffer }
  | { ok: false; reason: 'malformed' | 'auth' | 'replay' };

export type SessionImpl = 'native' | 'node';

/** The session half of vnetd's addons (daemon/links/aead-native/vnetd_session.c). */
export interface SessionBinding {
  session(txKey: Buffer, rxKey: Buffer, encrypt: boolean, tag: number, window: boolean): object;
  /** Writes the header and seals in place; the sequence number used, or -1 once they are spent. Throws if OpenSSL fails. */
  sealRecord(handle: object, type: number, record: Buffer, headroom: number, length: number): number;
  /** The record's type, deciphered in place; or -1 malformed, -2 authentic but replayed, -3 not authentic (the record unchanged). */
  openRecord(handle: object, record: Buffer): number;
}

/**
 * The binding new sessions use: the pcap addon's when it was built (its
 * fast path can then carry the session's frames), else vnetd-aead's.
 */
export function sessionBinding(): SessionBinding | null {
  return nativeAddon<SessionBinding>('vnetd-pcap') ?? nativeAddon<SessionBinding>('vnetd-aead');
}

/** The implementation new sessions use. */
export function sessionImpl(): SessionImpl {
  return sessionBinding() ? 'native' : 'node';
}

const REFUSALS = { [-1]: 'malformed', [-2]: 'replay', [-3]: 'auth' } as const;

export class Session {
  readonly tag: number;
  /** Bytes a record has before its payload: the transport's headroom, then the header. */
  readonly prefix: number;
  /** The native session, for the fast path; null with node:crypto. */
  readonly handle: object | null;
  private readonly lib: SessionBinding | null;
  private readonly sealer: Sealer | null = null;
  private readonly opener: Opener | null = null;
  private readonly window: ReplayWindow | null = null;
  private next = 0;

  constructor(
    keys: DirectionKeys,
    role: 'dialer' | 'acceptor',
    mode: LinkMode,
    private readonly headroom: number,
    ordering: Ordering,
    impl: SessionImpl = sessionImpl(),
  ) {
    const encrypt = mode === 'encrypt';
    const [tx, rx] = role === 'dialer' ? [keys.d2a, keys.a2d] : [keys.a2d, keys.d2a];
    this.tag = keys.tag;
    this.prefix = headroom + HEADER_BYTES;
    this.lib = impl === 'native' ? sessionBinding() : null;
    if (impl === 'native' && !this.lib) throw new Error('no native session support is built (vnetd-pcap or vnetd-aead)');
    if (this.lib) {
      this.handle = this.lib.session(tx, rx, encrypt, keys.tag, ordering === 'window');
    } else {
      this.handle = null;
      this.sealer = new Sealer(tx, encrypt, headroom, keys.tag);
      this.opener = new Opener(rx, encrypt);
      this.window = ordering === 'window' ? new ReplayWindow() : null;
    }
  }

  /** A record of `type` carrying `payload`; null once the sequence space is spent (re-key, never wrap). */
  seal(type: number, payload: Uint8Array): Buffer | null {
    return sealCopy(this, type, payload);
  }

  /**
   * Seals the `length` payload bytes already at `prefix` in `record`, which
   * has room for the tag after them, in place: a sender that builds its
   * payload there (the link's frame batch) saves a copy of every frame.
   */
  sealInPlace(type: number, record: Buffer, length: number): Buffer | null {
    if (this.sealer) return this.sealer.sealInPlace(type, record, length);
    if (this.lib!.sealRecord(this.handle!, type, record, this.headroom, length) < 0) return null;
    const end = this.prefix + length + TAG_BYTES;
    // A record made to measure (seal, once per frame on UDP) is returned as it is, not as a new view of itself.
    return record.length === end ? record : record.subarray(0, end);
  }

  /** Authenticates and orders a record; an encrypted one is deciphered in place natively, into a copy with node:crypto. */
  open(record: Buffer): OpenResult {
    if (this.lib) {
      const r = this.lib.openRecord(this.handle!, record);
      if (r < 0) return { ok: false, reason: REFUSALS[r as -1 | -2 | -3] };
      return { ok: true, type: r, payload: record.subarray(HEADER_BYTES, record.length - TAG_BYTES) };
    }
    const seq = Opener.peekSeq(record);
    // Another session's record (or a guess): refused before paying for authentication.
    if (seq < 0 || readTag(record) !== this.tag) return { ok: false, reason: 'malformed' };
    // Judged first, said only once authentic: a stray record with this tag and an old number is a forgery, not a replay.
    const admitted = this.window ? this.window.check(seq) : seq === this.next;
    const opened = this.opener!.open(record, seq);
    if (!opened) return { ok: false, reason: 'auth' };
    if (!admitted) return { ok: false, reason: 'replay' };
    if (this.window) this.window.mark(seq);
    else this.next++;
    return { ok: true, type: opened.type, payload: opened.payload };
  }
}
