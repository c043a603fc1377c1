import { randomBytes } from 'node:crypto';
import { macEqual, proofMac, sessionKeys, transcriptHash, type DirectionKeys } from './crypto.js';
import type { LinkMode, Proto } from './types.js';
import {
  ACCEPT,
  CHALLENGE,
  NONCE_BYTES,
  PROOF,
  decodeFixed,
  encodeFixed,
  encodeHello,
  type Hello,
} from './wire.js';

/**
 * The link handshake as pure message logic, the same over TCP and UDP:
 *
 *   dialer   → HELLO      version, transport, mode, dialer name, acceptor name, nonce_d
 *   acceptor → CHALLENGE  nonce_a
 *   dialer   → PROOF      HMAC(key, "dialer" label ‖ H)
 *   acceptor → ACCEPT     HMAC(key, "acceptor" label ‖ H)
 *
 * with H the hash of HELLO and CHALLENGE. The dialer proves first, so an
 * acceptor says nothing about its key to someone who has not proved theirs;
 * each side's own fresh nonce makes a recorded session useless to replay.
 */

export type HandshakeFailure = 'malformed' | 'auth';

export class DialerHandshake {
  readonly hello: Buffer;
  private challenge: Buffer | null = null;
  private transcript: Buffer | null = null;
  private proof: Buffer | null = null;

  constructor(
    private readonly key: Buffer,
    p: { self: string; peer: string; proto: Proto; mode: LinkMode },
  ) {
    this.hello = encodeHello({ proto: p.proto, mode: p.mode, nonce: randomBytes(NONCE_BYTES), from: p.self, to: p.peer });
  }

  /**
   * The PROOF for a CHALLENGE; the same PROOF again for a repeated CHALLENGE
   * (a datagram retransmitted), and null for anything else.
   */
  answer(message: Buffer): Buffer | null {
    if (this.challenge) return this.challenge.equals(message) ? this.proof : null;
    if (!decodeFixed(CHALLENGE, message)) return null;
    this.challenge = Buffer.from(message);
    this.transcript = transcriptHash(this.hello, this.challenge);
    this.proof = encodeFixed(PROOF, proofMac(this.key, 'dialer', this.transcript));
    return this.proof;
  }

  get answered(): boolean {
    return this.transcript !== null;
  }

  finish(message: Buffer): { ok: true; keys: DirectionKeys } | { ok: false; reason: HandshakeFailure } {
    const mac = decodeFixed(ACCEPT, message);
    if (!mac || !this.transcript) return { ok: false, reason: 'malformed' };
    if (!macEqual(mac, proofMac(this.key, 'acceptor', this.transcript))) return { ok: false, reason: 'auth' };
    return { ok: true, keys: sessionKeys(this.key, this.transcript) };
  }
}

export class AcceptorHandshake {
  readonly challenge: Buffer;
  private readonly transcript: Buffer;

  /**
   * `key` is the link's key, or a random one when the HELLO names no link we
   * accept: the dialer then sees exactly what a wrong key would show it.
   */
  constructor(
    helloMessage: Buffer,
    readonly hello: Hello,
    private readonly key: Buffer,
    /** Fresh random bytes, or (UDP) the stateless cookie the CHALLENGE carried. */
    nonce: Buffer = randomBytes(NONCE_BYTES),
  ) {
    this.challenge = encodeFixed(CHALLENGE, nonce);
    this.transcript = transcriptHash(helloMessage, this.challenge);
  }

  verify(message: Buffer): { ok: true; keys: DirectionKeys; accept: Buffer } | { ok: false; reason: HandshakeFailure } {
    const mac = decodeFixed(PROOF, message);
    if (!mac) return { ok: false, reason: 'malformed' };
    if (!macEqual(mac, proofMac(this.key, 'dialer', this.transcript))) return { ok: false, reason: 'auth' };
    return {
      ok: true,
      keys: sessionKeys(this.key, this.transcript),
      accept: encodeFixed(ACCEPT, proofMac(this.key, 'acceptor', this.transcript)),
    };
  }
}
