import fc from 'fast-check';
import { clampMss } from '../../daemon/links/mss.js';
import { ACK, layout, mssOf, mssOption, NOP, SACK_OK, SYN, TIMESTAMPS, WSCALE, tcpChecksumSum, tcpFrame, type Spec } from '../support/tcp-frames.js';

/**
 * MSS clamping (daemon/links/mss.ts) on frames built byte by byte, checked against a
 * TCP checksum computed from scratch: the clamped SYN is one the receiving
 * kernel accepts, with the MSS the path allows, and nothing else changed.
 */

describe('clampMss', () => {
  const fit = (n: number) => ({ fitFrame: () => n });

  test('a SYN over IPv4 gets the MSS whose full frame fits, and a checksum the receiver accepts', () => {
    const spec = { options: [mssOption(1460), SACK_OK, TIMESTAMPS, NOP, WSCALE] };
    const frame = tcpFrame(spec);
    expect(tcpChecksumSum(frame, spec)).toBe(0xffff);
    // A UDP link on a 1500-byte IPv4 path carries frames of 1447 bytes unfragmented: 1447 - 14 - 20 - 20.
    const out = clampMss(frame, fit(1447));
    expect(mssOf(out, spec)).toBe(1393);
    expect(tcpChecksumSum(out, spec)).toBe(0xffff);
    // Only the two bytes of the MSS and the two of the checksum changed, and the input is untouched.
    const changed = [...out].flatMap((b, i) => (b === frame[i] ? [] : [i]));
    const tcp = layout(spec).tcp;
    expect(changed.every((i) => i === tcp + 16 || i === tcp + 17 || i === tcp + 22 || i === tcp + 23)).toBe(true);
    expect(mssOf(frame, spec)).toBe(1460);
  });

  test('a SYN-ACK over IPv6 behind two VLAN tags, its MSS at an odd offset, is clamped as well', () => {
    const spec = { v6: true, vlans: 2, flags: SYN | ACK, options: [NOP, mssOption(8940), NOP, NOP, NOP] };
    const frame = tcpFrame(spec);
    const out = clampMss(frame, fit(1427));
    expect(mssOf(out, spec)).toBe(1427 - 22 - 60);
    expect(tcpChecksumSum(out, spec)).toBe(0xffff);
  });

  test('what is left alone: a smaller MSS, segments without SYN, SYNs without the option, fragments, other protocols, an unknown path', () => {
    const syn = { options: [mssOption(1200)] };
    const cases: [Spec, number][] = [
      [syn, 1447],
      [{ flags: ACK, options: [mssOption(1460)] }, 1447],
      [{ options: [SACK_OK, NOP, NOP] }, 1447],
      [{ fragment: true, options: [mssOption(1460)] }, 1447],
      [{ options: [mssOption(1460)] }, 0],
    ];
    for (const [spec, n] of cases) {
      const frame = tcpFrame(spec);
      expect(clampMss(frame, fit(n))).toBe(frame);
    }
    const arp = Buffer.from('ffffffffffff0200000001010806' + '00'.repeat(28), 'hex');
    expect(clampMss(arp, fit(100))).toBe(arp);
  });

  test('the path is asked only for a SYN with an MSS option', () => {
    let asked = 0;
    const count = { fitFrame: () => (asked++, 1447) };
    clampMss(tcpFrame({ flags: ACK, options: [mssOption(1460)] }), count);
    clampMss(tcpFrame({ options: [SACK_OK] }), count);
    expect(asked).toBe(0);
    clampMss(tcpFrame({ options: [mssOption(1460)] }), count);
    expect(asked).toBe(1);
  });

  test('property: any layout of options, any MSS and any path: a valid checksum, and the MSS is the smaller of the two', () => {
    const other = fc.constantFrom(NOP, SACK_OK, WSCALE, TIMESTAMPS);
    fc.assert(
      fc.property(
        fc.record({
          v6: fc.boolean(),
          vlans: fc.integer({ min: 0, max: 2 }),
          before: fc.array(other, { maxLength: 3 }),
          after: fc.array(other, { maxLength: 2 }),
          mss: fc.integer({ min: 1, max: 65535 }),
          fit: fc.integer({ min: 0, max: 9100 }),
          payload: fc.integer({ min: 0, max: 33 }),
        }),
        (r) => {
          const spec = { v6: r.v6, vlans: r.vlans, options: [...r.before, mssOption(r.mss), ...r.after] };
          // TCP has room for 40 bytes of options.
          fc.pre(spec.options.flat().length <= 40);
          const frame = tcpFrame(spec, r.payload);
          const copy = Buffer.from(frame);
          const out = clampMss(frame, fit(r.fit));
          const room = r.fit - layout(spec).l3 - (r.v6 ? 60 : 40);
          expect(tcpChecksumSum(out, spec)).toBe(0xffff);
          expect(mssOf(out, spec)).toBe(room > 0 ? Math.min(r.mss, room) : r.mss);
          expect(frame.equals(copy)).toBe(true);
        },
      ),
      { numRuns: 2000 },
    );
  });

  test('property: bytes from anywhere never throw, and come back as they were or only with two words changed', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 0, maxLength: 120 }), fc.integer({ min: 0, max: 2000 }), (bytes, n) => {
        const frame = Buffer.from(bytes);
        // Make some of them IPv4 TCP SYNs with room for options, so the parser gets far.
        if (frame.length > 40 && n % 2) {
          frame.writeUInt16BE(0x0800, 12);
          frame[23] = 6;
          frame[20] = 0;
          frame[21] = 0;
        }
        const out = clampMss(frame, fit(n));
        expect(out.length).toBe(frame.length);
        expect([...out].filter((b, i) => b !== frame[i]).length).toBeLessThanOrEqual(4);
      }),
      { numRuns: 3000 },
    );
  });
});
