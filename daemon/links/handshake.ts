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

/**
 * CHALLENGEs a dialer answers in one attempt. Over UDP anyone can send one
 * from the acceptor's address, faster than the acceptor; answering only the
 * first would let a forged one abort the dial. Each gets its PROOF, and an
 * ACCEPT for any of them completes; a few leave room for the real one
 * behind a forgery without letting a flood cost more than a few HMACs.
 */
export const MAX_CHALLENGES = 4;

interface Answered {
  challenge: Buffer;
  transcript: Buffer;
  proof: Buffer;
}

export class DialerHandshake {
  readonly hello: Buffer;
  private readonly answers: Answered[] = [];

  constructor(
    private readonly key: Buffer,
    p: { self: string; peer: string; proto: Proto; mode: LinkMode },
  ) {
    this.hello = encodeHello({ proto: p.proto, mode: p.mode, nonce: randomBytes(NONCE_BYTES), from: p.self, to: p.peer });
  }

  /**
   * The PROOF for a CHALLENGE: the same one again for a repeated CHALLENGE
   * (a datagram retransmitted), a new one for each other CHALLENGE up to
   * MAX_CHALLENGES, and null for anything else.
   */
  answer(message: Buffer): Buffer | null {
    const seen = this.answers.find((a) => a.challenge.equals(message));
    if (seen) return seen.proof;
    if (this.answers.length >= MAX_CHALLENGES || !decodeFixed(CHALLENGE, message)) return null;
    const challenge = Buffer.from(message);
    const transcript = transcriptHash(this.hello, challenge);
    const proof = encodeFixed(PROOF, proofMac(this.key, 'dialer', transcript));
    this.answers.push({ challenge, transcript, proof });
    return proof;
  }

  /** How many distinct CHALLENGEs have been answered (0: none yet). */
  get answered(): number {
    return this.answers.length;
  }

  /** An ACCEPT that is valid for any CHALLENGE answered: the session's keys come from that one's transcript. */
  finish(message: Buffer): { ok: true; keys: DirectionKeys } | { ok: false; reason: HandshakeFailure } {
    const mac = decodeFixed(ACCEPT, message);
    if (!mac || !this.answered) return { ok: false, reason: 'malformed' };
    const match = this.answers.find((a) => macEqual(mac, proofMac(this.key, 'acceptor', a.transcript)));
    if (!match) return { ok: false, reason: 'auth' };
    return { ok: true, keys: sessionKeys(this.key, match.transcript) };
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
