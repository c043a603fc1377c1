import { isMachineName } from '../../src/model/names.js';
import type { LinkMode, Proto } from './types.js';
import { MAX_FRAME } from '../../src/model/frame.js';

/**
 * Byte layouts of everything a link puts on the wire. PROTOCOL.md ("Overlay links: wire format") is the
 * reference; this file and that one must say the same thing.
 */

/** 2: session records carry the session tag; UDP PROOFs carry the cookie and the HELLO. */
export const LINK_VERSION = 2;

// Record types. Handshake messages are below 0x10 and travel in the clear;
// session records start at 0x10 and are always authenticated.
export const HELLO = 0x01;
export const CHALLENGE = 0x02;
export const PROOF = 0x03;
export const ACCEPT = 0x04;
export const DATA = 0x10;
export const PING = 0x11;
export const PONG = 0x12;
export const CLOSE = 0x13;
/** A VTTIF report for the collector (src/wire/vttif-report.ts). */
export const REPORT = 0x14;

export const NONCE_BYTES = 32;
export const MAC_BYTES = 32;
/** type (1) + session tag (2) + sequence number (6). */
export const HEADER_BYTES = 9;
export const TAG_OFFSET = 1;
export const SEQ_OFFSET = 3;
export const TAG_BYTES = 16;
export const RECORD_OVERHEAD = HEADER_BYTES + TAG_BYTES;
/** TCP length prefix. Four bytes so that absurd lengths are visible, and refused, at once. */
export const LENGTH_BYTES = 4;

export { MAX_FRAME } from '../../src/model/frame.js';
/** Each frame in a TCP DATA record carries its own two-byte length. */
export const BATCH_ENTRY_OVERHEAD = 2;
/**
 * A TCP DATA record holds as many frames as fit here; one largest frame
 * always does. Batching is what makes TCP links fast: in Node the fixed cost
 * of an AEAD call dwarfs the per-byte cost, so sealing the frames of one
 * event-loop turn together pays it once.
 */
export const TCP_MAX_PAYLOAD = MAX_FRAME + BATCH_ENTRY_OVERHEAD;
export const MAX_RECORD = TCP_MAX_PAYLOAD + RECORD_OVERHEAD;
/** The largest UDP payload over IPv4; it caps UDP frames a little below MAX_FRAME. */
export const UDP_MAX_RECORD = 65507;
export const UDP_MAX_FRAME = UDP_MAX_RECORD - RECORD_OVERHEAD;

const MAX_NAME = 253;
const HELLO_FIXED = 3 + NONCE_BYTES + 2;
/** No handshake message is longer than a HELLO with two maximal names. */
export const MAX_HANDSHAKE = HELLO_FIXED + 2 * MAX_NAME;
export const CHALLENGE_BYTES = 1 + NONCE_BYTES;
export const MAC_MESSAGE_BYTES = 1 + MAC_BYTES;

const FLAG_UDP = 0x01;
const FLAG_AUTH_ONLY = 0x02;

/**
 * Sequence numbers stop well short of 2^64 so they stay exact in a JS number;
 * a session that reaches the limit is re-keyed by a new handshake.
 */
export const SEQ_LIMIT = 2 ** 48;

export interface Hello {
  proto: Proto;
  mode: LinkMode;
  nonce: Buffer;
  /** The dialer's machine name: which link this is, at the acceptor. */
  from: string;
  /** The acceptor's machine name, so a handshake meant for one daemon cannot be used on another. */
  to: string;
}

export function encodeHello(h: Hello): Buffer {
  const from = Buffer.from(h.from, 'ascii');
  const to = Buffer.from(h.to, 'ascii');
  const out = Buffer.allocUnsafe(HELLO_FIXED + from.length + to.length);
  let o = 0;
  out[o++] = HELLO;
  out[o++] = LINK_VERSION;
  out[o++] = (h.proto === 'udp' ? FLAG_UDP : 0) | (h.mode === 'auth-only' ? FLAG_AUTH_ONLY : 0);
  o += h.nonce.copy(out, o);
  out[o++] = from.length;
  o += from.copy(out, o);
  out[o++] = to.length;
  to.copy(out, o);
  return out;
}

/** Strict: any deviation (version, unknown flag, bad name, trailing byte) is malformed. */
export function decodeHello(b: Buffer): Hello | null {
  if (b.length < HELLO_FIXED || b.length > MAX_HANDSHAKE) return null;
  if (b[0] !== HELLO || b[1] !== LINK_VERSION) return null;
  const flags = b[2]!;
  if ((flags & ~(FLAG_UDP | FLAG_AUTH_ONLY)) !== 0) return null;
  let o = 3;
  const nonce = Buffer.from(b.subarray(o, o + NONCE_BYTES));
  o += NONCE_BYTES;
  const fromLen = b[o++]!;
  if (o + fromLen + 1 > b.length) return null;
  const from = b.toString('latin1', o, o + fromLen);
  o += fromLen;
  const toLen = b[o++]!;
  if (o + toLen !== b.length) return null;
  const to = b.toString('latin1', o, o + toLen);
  if (!isMachineName(from) || !isMachineName(to)) return null;
  return {
    proto: flags & FLAG_UDP ? 'udp' : 'tcp',
    mode: flags & FLAG_AUTH_ONLY ? 'auth-only' : 'encrypt',
    nonce,
    from,
    to,
  };
}

/** CHALLENGE, PROOF and ACCEPT are a type byte and 32 bytes. */
export function encodeFixed(type: number, body: Buffer): Buffer {
  const out = Buffer.allocUnsafe(1 + body.length);
  out[0] = type;
  body.copy(out, 1);
  return out;
}

export function decodeFixed(type: number, b: Buffer): Buffer | null {
  return b.length === 1 + NONCE_BYTES && b[0] === type ? b.subarray(1) : null;
}

/** A record's header at `offset`: type, session tag, sequence number (below SEQ_LIMIT, so six bytes hold it). */
export function writeHeader(out: Buffer, offset: number, type: number, tag: number, seq: number): void {
  out[offset] = type;
  out.writeUInt16BE(tag, offset + TAG_OFFSET);
  out.writeUIntBE(seq, offset + SEQ_OFFSET, 6);
}

export const readTag = (record: Buffer): number => record.readUInt16BE(TAG_OFFSET);
export const readSeq = (record: Buffer): number => record.readUIntBE(SEQ_OFFSET, 6);
