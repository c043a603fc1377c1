import { randomBytes } from 'node:crypto';
import { Sealer, sealCopy, type DirectionKeys } from '../../daemon/links/crypto.js';
import { REPLAY_WINDOW } from '../../daemon/links/replay.js';
import { Session, sessionImpl, type Ordering, type SessionImpl } from '../../daemon/links/session.js';
import { DATA, HEADER_BYTES, PING, TAG_BYTES } from '../../daemon/links/wire.js';

/**
 * Native sessions (daemon/links/aead-native/vnetd_session.c) against
 * node:crypto ones: the same keys, sequence numbers and payloads must make
 * the same bytes, each must open what the other sealed, and both must order
 * records alike, or two daemons built differently could not talk.
 */
const native = sessionImpl() === 'native';
if (!native) {
  process.stderr.write('links-aead.test: no native session support is built (node-gyp and a C compiler at npm ci); only node:crypto is tested\n');
}
const maybe = native ? describe : describe.skip;

/* 0 first: an empty record as the first a native session opens, before it has a buffer to decipher into, is what UBSan once caught (vnetd_session.c). */
const SIZES = [0, 1, 15, 16, 17, 63, 64, 65, 1514, 9014, 65_000];
const MODES = [
  ['encrypt', true],
  ['auth-only', false],
] as const;

const keys = (): DirectionKeys => ({ d2a: randomBytes(32), a2d: randomBytes(32), tag: 0xbeef });
const mode = (encrypt: boolean) => (encrypt ? 'encrypt' : 'auth-only');
const dialer = (k: DirectionKeys, encrypt: boolean, impl: SessionImpl, headroom = 0, ordering: Ordering = 'window') =>
  new Session(k, 'dialer', mode(encrypt), headroom, ordering, impl);
const acceptor = (k: DirectionKeys, encrypt: boolean, impl: SessionImpl, ordering: Ordering = 'window') =>
  new Session(k, 'acceptor', mode(encrypt), 0, ordering, impl);

maybe('native sessions', () => {
  test.each(MODES)('%s: native and node:crypto seal the same bytes, and each opens the other\'s', (_mode, encrypt) => {
    for (const headroom of [0, 4]) {
      const k = keys();
      const sealers = { native: dialer(k, encrypt, 'native', headroom), node: dialer(k, encrypt, 'node', headroom) };
      const openers = { native: acceptor(k, encrypt, 'native'), node: acceptor(k, encrypt, 'node') };
      for (const size of SIZES) {
        const payload = randomBytes(size);
        const a = sealers.native.seal(DATA, payload)!;
        const b = sealers.node.seal(DATA, payload)!;
        // The headroom is the transport's, left unwritten.
        expect(a.subarray(headroom).equals(b.subarray(headroom))).toBe(true);
        expect(a.length).toBe(headroom + HEADER_BYTES + size + TAG_BYTES);
        for (const [sealed, opener] of [[b, openers.native], [a, openers.node]] as const) {
          const r = opener.open(Buffer.from(sealed.subarray(headroom)));
          expect(r.ok && r.type === DATA && r.payload.equals(payload)).toBe(true);
        }
        if (encrypt && size >= 16) expect(a.subarray(headroom + HEADER_BYTES, headroom + HEADER_BYTES + size).equals(payload)).toBe(false);
      }
    }
  });

  test('sequence numbers up to 2^48 - 1 make the nonce node:crypto makes', () => {
    const k = keys();
    const opener = acceptor(k, true, 'native');
    for (const seq of [255, 256, 65_536, 2 ** 32 - 1, 2 ** 32, 2 ** 40 + 7, 2 ** 48 - 1]) {
      const s = new Sealer(k.d2a, true, 0, k.tag);
      (s as unknown as { seq: number }).seq = seq;
      const payload = randomBytes(40);
      const r = opener.open(sealCopy(s, PING, payload)!);
      expect(r.ok && r.payload.equals(payload)).toBe(true);
    }
  });

  test.each(MODES)('%s: a record altered anywhere, or under another key, does not open, and is left as it came', (_mode, encrypt) => {
    const k = keys();
    const record = dialer(k, encrypt, 'node').seal(DATA, randomBytes(100))!;
    const opener = acceptor(k, encrypt, 'native');
    for (const at of [0, 5, HEADER_BYTES, HEADER_BYTES + 50, record.length - TAG_BYTES, record.length - 1]) {
      const bad = Buffer.from(record);
      bad[at]! ^= 0x01;
      const before = Buffer.from(bad);
      expect(opener.open(bad).ok).toBe(false);
      expect(bad.equals(before)).toBe(true);
    }
    // The session tag names another session: refused before authentication.
    const other = Buffer.from(record);
    other[2]! ^= 0x01;
    expect(opener.open(other)).toEqual({ ok: false, reason: 'malformed' });
    expect(acceptor({ ...keys(), tag: k.tag }, encrypt, 'native').open(Buffer.from(record))).toEqual({ ok: false, reason: 'auth' });
    expect(opener.open(record.subarray(0, HEADER_BYTES + TAG_BYTES - 1))).toEqual({ ok: false, reason: 'malformed' });
    expect(opener.open(Buffer.from(record)).ok).toBe(true);
  });

  test('an encrypted record opened natively is deciphered in place, without a copy', () => {
    const k = keys();
    const payload = randomBytes(64);
    const record = dialer(k, true, 'native').seal(DATA, payload)!;
    const r = acceptor(k, true, 'native').open(record);
    expect(r.ok && r.payload.buffer === record.buffer).toBe(true);
    expect(record.subarray(HEADER_BYTES, HEADER_BYTES + 64).equals(payload)).toBe(true);
  });

  test('the replay window takes and refuses what node:crypto\'s does, for reordered and repeated records', () => {
    const k = keys();
    const sender = new Sealer(k.d2a, false, 0, k.tag);
    const records: Buffer[] = [];
    for (let i = 0; i < 3 * REPLAY_WINDOW; i++) records.push(sealCopy(sender, DATA, Buffer.from([i & 0xff]))!);
    const receivers = { native: acceptor(k, false, 'native'), node: acceptor(k, false, 'node') };
    // A deterministic walk: mostly forward, with repeats, stragglers and jumps past the window.
    let rng = 12345;
    const next = () => (rng = (Math.imul(rng, 1103515245) + 12345) >>> 0) / 2 ** 32;
    let at = 0;
    let refused = 0;
    for (let step = 0; step < 4000; step++) {
      const r = next();
      at = Math.max(0, Math.min(records.length - 1, r < 0.6 ? at + 1 : r < 0.8 ? at - Math.floor(next() * 40) : r < 0.9 ? at : at + Math.floor(next() * REPLAY_WINDOW)));
      const a = receivers.native.open(Buffer.from(records[at]!));
      const b = receivers.node.open(Buffer.from(records[at]!));
      expect(a).toEqual(b);
      if (!a.ok) refused++;
    }
    expect(refused).toBeGreaterThan(100);
  });

  test('strict ordering (TCP) takes exactly the next sequence number', () => {
    const k = keys();
    const s = dialer(k, true, 'native', 0, 'strict');
    const r = acceptor(k, true, 'native', 'strict');
    const [r0, r1, r2] = [0, 1, 2].map(() => s.seal(DATA, randomBytes(10))!);
    expect(r.open(Buffer.from(r1!))).toEqual({ ok: false, reason: 'replay' });
    expect(r.open(r0!).ok).toBe(true);
    expect(r.open(Buffer.from(r0!)).ok).toBe(false);
    expect(r.open(r1!).ok).toBe(true);
    expect(r.open(r2!).ok).toBe(true);
  });
});
