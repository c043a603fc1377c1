import fc from 'fast-check';
import { macToNumber } from '../../src/model/mac48.js';
import { applySettingWords, DEFAULT_SETTINGS, formatSettings, settingsFromLines, settingsLines, settingsProblem } from '../../src/vttif/params.js';
import type { Inference } from '../../src/vttif/types.js';
import { formatInference, parseInference } from '../../src/wire/vttif.js';
import { ReachError } from '../../src/remote/transport.js';
import { inferenceFrom } from '../../cli/infer.js';
import { decodeReport, encodeReport, PAIR_FIELDS, type Report } from '../../src/wire/vttif-report.js';
import { Sampler } from '../../daemon/vttif/sampler.js';

const mac48 = fc.integer({ min: 0, max: 0xffff_ffff_ffff });

function merge(chunks: Report[]): { hosted: number[]; pairs: number[][] } {
  const pairs: number[][] = [];
  for (const r of chunks) for (let f = 0; f < r.pairs.length; f += PAIR_FIELDS) pairs.push([...r.pairs.subarray(f, f + PAIR_FIELDS)]);
  return { hosted: chunks.flatMap((r) => r.hosted), pairs };
}

describe('VTTIF report codec', () => {
  test('property: any report survives encoding in chunks of any size, each chunk a report of its own', () => {
    fc.assert(
      fc.property(
        fc.array(mac48, { maxLength: 40 }),
        // Bytes up to what the frames can hold (65535 each), as a report must say.
        fc.array(
          fc.tuple(mac48, mac48, fc.integer({ min: 1, max: 2 ** 32 - 1 }).chain((n) => fc.tuple(fc.integer({ min: 0, max: Math.min(2 ** 40, n * 65535) }), fc.constant(n)))).map(([s, d, [b, n]]) => [s, d, b, n] as const),
          { maxLength: 60 },
        ),
        fc.integer({ min: 32, max: 4000 }),
        fc.integer({ min: 0, max: 10_000 }),
        (hosted, raw, max, round) => {
          const pairs = new Float64Array(raw.flatMap(([s, d, b, n]) => [s, d, b, n]));
          const chunks = encodeReport({ hosted, pairs }, max, round);
          for (const c of chunks) expect(c.length).toBeLessThanOrEqual(max);
          const decoded = chunks.map((c) => decodeReport(c));
          for (const d of decoded) expect(d.round).toBe(round % 256);
          const back = merge(decoded);
          expect(back.hosted).toEqual(hosted);
          expect(back.pairs).toEqual(raw.map(([s, d, b, n]) => [s, d, b, n]));
        },
      ),
    );
  });

  test('garbage is refused with a reason, never half-read', () => {
    const good = encodeReport({ hosted: [1], pairs: new Float64Array([1, 2, 100, 1]) }, 8192, 7)[0]!;
    expect(() => decodeReport(good.subarray(0, 5))).toThrow(/shorter than its 8-byte header/);
    expect(() => decodeReport(good.subarray(0, good.length - 1))).toThrow(/header announces/);
    const v9 = Buffer.from(good);
    v9[0] = 9;
    expect(() => decodeReport(v9)).toThrow(/version 9/);
    const neg = Buffer.from(good);
    neg.writeDoubleBE(-5, 8 + 6 + 12);
    expect(() => decodeReport(neg)).toThrow(/non-negative/);
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
        try {
          decodeReport(bytes);
        } catch (e) {
          expect(e).toBeInstanceOf(RangeError);
        }
      }),
    );
  });
});

describe('INFER? lines', () => {
  const inf: Inference = {
    collector: 'proxy',
    at: '2026-11-24T10:00:00.000Z',
    params: { updateHz: 20, windowS: 0.25, threshold: 0.2 },
    state: 'settling',
    topology: { vms: ['02:50:00:00:00:01', '02:50:00:00:00:02'], edges: [{ a: '02:50:00:00:00:01', b: '02:50:00:00:00:02', intensity: 1, bytesPerS: 2000, aToBBytesPerS: 1000 }] },
    changes: 1,
    settledAt: '2026-11-24T09:59:59.500Z',
    current: {
      vms: ['02:50:00:00:00:01', '02:50:00:00:00:02', '02:50:00:00:00:03'],
      edges: [
        { a: '02:50:00:00:00:01', b: '02:50:00:00:00:02', intensity: 1, bytesPerS: 2000, aToBBytesPerS: 1000 },
        { a: '02:50:00:00:00:01', b: '02:50:00:00:00:03', intensity: 0.5, bytesPerS: 1000, aToBBytesPerS: 0 },
      ],
    },
    matrix: [
      { src: '02:50:00:00:00:01', dst: '02:50:00:00:00:02', bytesPerS: 1000, framesPerS: 1 },
      { src: '02:50:00:00:00:02', dst: '02:50:00:00:00:01', bytesPerS: 1000, framesPerS: 1 },
      { src: '02:50:00:00:00:03', dst: '02:50:00:00:00:01', bytesPerS: 1000, framesPerS: 1 },
    ],
    hosts: { '02:50:00:00:00:01': 'host1', '02:50:00:00:00:02': 'host2' },
    reporters: { host1: 0.031, host2: 0.002 },
  };

  test('round trip', () => {
    expect(parseInference(formatInference(inf))).toEqual(inf);
  });

  test('a line that does not read is named; unknown facts are skipped', () => {
    const lines = formatInference(inf);
    expect(parseInference([...lines, 'sparkline 1 2 3'])).toEqual(inf);
    expect(() => parseInference(lines.map((l) => (l.startsWith('pair') ? l.replace('bytes-per-s=1000', 'bytes-per-s=lots') : l)))).toThrow(/line \d+ .*'lots' is not a non-negative number/);
    expect(() => parseInference(lines.map((l) => l.replace('host host1', 'host ho$t1')))).not.toThrow();
    expect(() => parseInference(lines.map((l) => (l.startsWith('host ') ? l.replace(' host1', ' ho$t') : l)))).toThrow(/'ho\$t' is not a machine name/);
    expect(() => parseInference(lines.filter((l) => !l.startsWith('state')))).toThrow(/no 'state' line/);
    // An edge's one direction is part of it, never more: what adapt routes each way must add up.
    expect(() => parseInference(lines.map((l) => l.replace('a-to-b-bytes-per-s=1000', 'a-to-b-bytes-per-s=2001')))).toThrow(/a-to-b-bytes-per-s 2001 is more than bytes-per-s 2000/);
    expect(() => parseInference(lines.map((l) => l.replace(' a-to-b-bytes-per-s=1000', '')))).toThrow(/line \d+ .*no a-to-b-bytes-per-s=/);
  });

  // A daemon gone wrong must not hand adapt a pair counted twice, an edge from a VM to itself, or a rate whose sums print as Infinity.
  test('an answer adapt would misroute is refused at its line', () => {
    const lines = formatInference(inf);
    const edge = lines.find((l) => l.startsWith('edge '))!;
    expect(() => parseInference([...lines, edge])).toThrow(/line \d+ \('edge .*'\): this VM pair was given before/);
    expect(() => parseInference([...lines, edge.replace('edge 02:50:00:00:00:01 02:50:00:00:00:02', 'edge 02:50:00:00:00:02 02:50:00:00:00:01')])).toThrow(/this VM pair was given before/);
    expect(() => parseInference([...lines, edge.replace('00:00:02', '00:00:01')])).toThrow(/an edge joins a VM to itself/);
    expect(() => parseInference(lines.map((l) => (l.startsWith('pair') ? l.replace('bytes-per-s=1000', 'bytes-per-s=1e308') : l)))).toThrow(/bytes-per-s 1e308 is more than 1000000000000000/);
    expect(() => parseInference(lines.map((l) => l.replace('intensity=0.5', 'intensity=7')))).toThrow(/intensity 7 is more than 1/);
  });

  test('an answer that does not read is the collector machine\'s error, with what to do', () => {
    const e = (() => {
      try {
        inferenceFrom('proxy', ['collector proxy', 'pair 1 2']);
      } catch (err) {
        return err;
      }
    })();
    expect(e).toBeInstanceOf(ReachError);
    expect(e).toMatchObject({
      machine: 'proxy',
      message: "the daemon of proxy sent an answer to INFER? vnetc cannot read: INFER? line 2 ('pair 1 2'): no bytes-per-s=",
      hint: "run the vnetd of this vnetc's release on proxy ('vnetd --version' there says which it runs), then run this command again",
    });
  });
});

describe('VTTIF settings', () => {
  test('words are checked one by one with what would be accepted, and round-trip', () => {
    const s = applySettingWords(DEFAULT_SETTINGS, ['collector=proxy', 'update-hz=20', 'window-s=0.25', 'threshold=0.1', 'sampling=off', 'sample-every=16']);
    expect(s).toEqual({ collector: 'proxy', updateHz: 20, windowS: 0.25, threshold: 0.1, sampling: false, sampleEvery: 16 });
    expect(() => applySettingWords(s, ['sample-every=1.5'])).toThrow(/whole number from 1 to 65536/);
    expect(applySettingWords(DEFAULT_SETTINGS, formatSettings(s).split(' '))).toEqual(s);
    expect(settingsFromLines([...settingsLines(s), 'role reporter', 'hosted 02:00:00:00:00:01 age-s=1'])).toEqual(s);
    // The slowest rate still fits one interval in the longest window; anything slower could never be a valid setting.
    for (const slow of ['update-hz=0', 'update-hz=0.0002', 'update-hz=1e-300']) expect(() => applySettingWords(s, [slow])).toThrow(/a rate from 0\.000278 \(one report per 3600 s, the longest window\) to 20/);
    expect(applySettingWords(s, ['update-hz=0.000278', 'window-s=3600']).updateHz).toBe(0.000278);
    expect(() => applySettingWords(s, ['threshold=1'])).toThrow(/fraction/);
    expect(() => applySettingWords(s, ['window-s=1e400'])).toThrow(/window-s/);
    expect(() => applySettingWords(s, ['collector=a;b'])).toThrow(/not a machine name/);
    expect(settingsProblem({ updateHz: 1, windowS: 0.25, threshold: 0.2 })).toMatch(/at least one update interval \(1 s at 1 Hz\)/);
    expect(settingsProblem({ updateHz: 5, windowS: 0.25, threshold: 0.2 })).toBeNull();
  });
});

describe('the sampler', () => {
  const frame = (dst: string, src: string, len = 100): Buffer => {
    const f = Buffer.alloc(len);
    Buffer.from(dst.replaceAll(':', ''), 'hex').copy(f, 0);
    Buffer.from(src.replaceAll(':', ''), 'hex').copy(f, 6);
    return f;
  };
  const A = '02:00:00:00:00:0a';
  const B = '02:00:00:00:00:0b';

  test('counts unicast pairs, learns local senders (broadcasters too), ignores group destinations, group sources and runts, and empties on take', () => {
    const s = new Sampler();
    s.sent(frame(B, A, 100));
    s.sent(frame(B, A, 200));
    s.sent(frame(A, B, 60));
    s.sent(frame('ff:ff:ff:ff:ff:ff', '02:00:00:00:00:0c'));
    s.sent(frame(A, '01:00:5e:00:00:01'));
    s.sent(Buffer.alloc(10));
    const r = s.take();
    expect(r.hosted.sort()).toEqual([A, B, '02:00:00:00:00:0c'].map(macToNumber).sort());
    const rows = merge([r]).pairs.sort((x, y) => x[0]! - y[0]!);
    expect(rows).toEqual([
      [macToNumber(A), macToNumber(B), 300, 2],
      [macToNumber(B), macToNumber(A), 60, 1],
    ]);
    expect(s.take()).toEqual({ hosted: [], pairs: new Float64Array(0) });
  });

  test('counts from the fast path (count) land where the same frames sent one by one would, and a group source is ignored', () => {
    const macs = ['02:00:00:00:00:0a', '02:00:00:00:00:0b', 'fe:dc:ba:98:76:54', '00:00:00:00:00:01'];
    const one = new Sampler();
    const bulk = new Sampler();
    for (const [i, src] of macs.entries()) {
      const dst = macs[(i + 1) % macs.length]!;
      for (let n = 0; n < 3; n++) one.sent(frame(dst, src, 100 + i));
      bulk.count(macToNumber(src), macToNumber(dst), 3, 3 * (100 + i));
    }
    bulk.count(macToNumber('03:00:00:00:00:01'), macToNumber(B), 5, 500);
    const a = one.take();
    const b = bulk.take();
    expect(b.hosted.sort()).toEqual(a.hosted.sort());
    expect(merge([b]).pairs.sort((x, y) => x[0]! - y[0]!)).toEqual(merge([a]).pairs.sort((x, y) => x[0]! - y[0]!));
  });

  test('one frame in N, at random and scaled: estimates close to the truth, even for traffic in step with N', () => {
    const s = new Sampler(16);
    const C = '02:00:00:00:00:0c';
    // Strictly alternating destinations: a fixed 1-in-16 would only ever see one of them.
    for (let i = 0; i < 64_000; i++) s.sent(frame(i % 2 ? B : C, A, 100));
    for (let i = 0; i < 8_000; i++) s.sent(frame(A, B, 1000));
    const rows = new Map(merge([s.take()]).pairs.map((p) => [`${p[0]} ${p[1]}`, p]));
    const est = (src: string, dst: string) => rows.get(`${macToNumber(src)} ${macToNumber(dst)}`)!;
    for (const [src, dst, frames, bytes] of [[A, B, 32_000, 3_200_000], [A, C, 32_000, 3_200_000], [B, A, 8_000, 8_000_000]] as const) {
      const p = est(src, dst);
      expect(p[3]! % 16).toBe(0);
      expect(Math.abs(p[3]! / frames - 1)).toBeLessThan(0.15);
      expect(Math.abs(p[2]! / bytes - 1)).toBeLessThan(0.15);
    }
  });

  test('property: counts equal a plain map of the same frames, across runs of one pair, growth and takes', () => {
    // Unicast MACs that differ only in their high or only in their low bits, so every part of the key matters.
    const macs = [0x0250_0000_0001, 0x0250_0000_0002, 0x0a50_0000_0001, 0x0250_8000_0001, 0xfe00_ffff_ffff, 0x0200_0000_0000];
    const toFrame = (d: number, s: number, len: number) => {
      const f = Buffer.alloc(len);
      f.writeUIntBE(d, 0, 6);
      f.writeUIntBE(s, 6, 6);
      return f;
    };
    fc.assert(
      fc.property(
        fc.array(fc.oneof(fc.tuple(fc.nat(macs.length - 1), fc.nat(macs.length - 1), fc.integer({ min: 14, max: 1514 }), fc.integer({ min: 1, max: 12 })), fc.constant('take' as const)), { maxLength: 120 }),
        (ops) => {
          const s = new Sampler();
          let want = new Map<string, [number, number]>();
          const check = () => {
            const got = new Map(merge([s.take()]).pairs.map((p) => [`${p[0]} ${p[1]}`, [p[2]!, p[3]!] as [number, number]]));
            expect(got).toEqual(want);
            want = new Map();
          };
          for (const op of ops) {
            if (op === 'take') check();
            else {
              const [d, src, len, run] = op;
              for (let i = 0; i < run; i++) s.sent(toFrame(macs[d]!, macs[src]!, len));
              const k = `${macs[src]} ${macs[d]}`;
              const [b, n] = want.get(k) ?? [0, 0];
              want.set(k, [b + len * run, n + run]);
            }
          }
          check();
        },
      ),
    );
  });

  test('grows past its first table and keeps every pair exact', () => {
    const s = new Sampler();
    for (let i = 0; i < 3000; i++) s.sent(frame(`02:00:00:00:${(i >> 8).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`, A, 64 + (i % 7)));
    const pairs = merge([s.take()]).pairs;
    expect(pairs).toHaveLength(3000);
    expect(pairs.reduce((n, p) => n + p[2]!, 0)).toBe(Array.from({ length: 3000 }, (_, i) => 64 + (i % 7)).reduce((a, b) => a + b, 0));
  });
});
