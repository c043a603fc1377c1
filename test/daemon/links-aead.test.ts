import { randomBytes } from 'node:crypto';
import { aeadImpl, Opener, Sealer } from '../../daemon/links/crypto.js';
import { DATA, HEADER_BYTES, PING, TAG_BYTES } from '../../daemon/links/wire.js';

/**
 * The native record cipher (daemon/links/aead-native) against node:crypto:
 * the same key, sequence number and payload must make the same bytes, and
 * each must open what the other sealed, or two daemons built differently
 * could not talk.
 */
const native = aeadImpl() === 'native';
if (!native) {
  process.stderr.write('links-aead.test: vnetd-aead is not built (node-gyp and a C compiler at npm ci); only node:crypto is tested\n');
}
const maybe = native ? describe : describe.skip;

const SIZES = [0, 1, 15, 16, 17, 63, 64, 65, 1514, 9014, 65_000];
const MODES = [
  ['encrypt', true],
  ['auth-only', false],
] as const;

maybe('native record cipher', () => {
  test.each(MODES)('%s: native and node:crypto seal the same bytes, and each opens the other\'s', (_mode, encrypt) => {
    const key = randomBytes(32);
    for (const headroom of [0, 4]) {
      const sealers = { native: new Sealer(key, encrypt, headroom, 0xbeef, 'native'), node: new Sealer(key, encrypt, headroom, 0xbeef, 'node') };
      const openers = { native: new Opener(key, encrypt, 'native'), node: new Opener(key, encrypt, 'node') };
      for (const [seq, size] of SIZES.entries()) {
        const payload = randomBytes(size);
        const a = sealers.native.seal(DATA, payload)!;
        const b = sealers.node.seal(DATA, payload)!;
        // The headroom is the transport's, left unwritten.
        expect(a.subarray(headroom).equals(b.subarray(headroom))).toBe(true);
        expect(a.length).toBe(headroom + HEADER_BYTES + size + TAG_BYTES);
        for (const [sealedBy, opener] of [['node', openers.native], ['native', openers.node]] as const) {
          const record = Buffer.from((sealedBy === 'node' ? b : a).subarray(headroom));
          const opened = opener.open(record, seq);
          expect(opened && opened.type === DATA && opened.seq === seq && opened.payload.equals(payload)).toBe(true);
        }
        if (encrypt && size >= 16) expect(a.subarray(headroom + HEADER_BYTES, headroom + HEADER_BYTES + size).equals(payload)).toBe(false);
      }
    }
  });

  test('sequence numbers up to 2^48 - 1 make the nonce node:crypto makes', () => {
    const key = randomBytes(32);
    const opener = new Opener(key, true, 'node');
    for (const seq of [255, 256, 65_536, 2 ** 32 - 1, 2 ** 32, 2 ** 40 + 7, 2 ** 48 - 1]) {
      const s = new Sealer(key, true, 0, 1, 'native');
      (s as unknown as { seq: number }).seq = seq;
      const payload = randomBytes(40);
      const opened = opener.open(s.seal(PING, payload)!, seq);
      expect(opened?.payload.equals(payload)).toBe(true);
    }
  });

  test.each(MODES)('%s: a record altered anywhere, or under another sequence number, does not open, and is left as it came', (_mode, encrypt) => {
    const key = randomBytes(32);
    const sealer = new Sealer(key, encrypt, 0, 7, 'node');
    const opener = new Opener(key, encrypt, 'native');
    const record = sealer.seal(DATA, randomBytes(100))!;
    for (const at of [0, 2, 5, HEADER_BYTES, HEADER_BYTES + 50, record.length - TAG_BYTES, record.length - 1]) {
      const bad = Buffer.from(record);
      bad[at]! ^= 0x01;
      const before = Buffer.from(bad);
      expect(opener.open(bad, 0)).toBeNull();
      expect(bad.equals(before)).toBe(true);
    }
    expect(opener.open(Buffer.from(record), 1)).toBeNull();
    expect(new Opener(randomBytes(32), encrypt, 'native').open(Buffer.from(record), 0)).toBeNull();
    expect(opener.open(record.subarray(0, HEADER_BYTES + TAG_BYTES - 1), 0)).toBeNull();
    expect(opener.open(Buffer.from(record), 0)).not.toBeNull();
  });

  test('an encrypted record opened natively is deciphered in place, without a copy', () => {
    const key = randomBytes(32);
    const payload = randomBytes(64);
    const record = new Sealer(key, true, 0, 0, 'native').seal(DATA, payload)!;
    const opened = new Opener(key, true, 'native').open(record, 0)!;
    expect(opened.payload.buffer).toBe(record.buffer);
    expect(record.subarray(HEADER_BYTES, HEADER_BYTES + 64).equals(payload)).toBe(true);
  });
});
