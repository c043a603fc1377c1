import { jest } from '@jest/globals';
import { startBed, type Bed } from '../../daemon/bed.js';
import { KINDS, pattern, type Kind } from '../../src/patterns/topology.js';
import { edgeKey } from '../../src/vttif/prune.js';
import type { Inference } from '../../src/vttif/types.js';
import { parseInference } from '../../src/wire/vttif.js';

/**
 * VTTIF against the patterns workload on real daemons (in one process: a
 * Proxy, four hosts, a synthetic VM per interface, the star, real links):
 * for every topology at 4, 8 and 16 VMs, the settled inference is exactly
 * the pattern's edge set, and stays so with noise at 10% of the weakest
 * edge between VMs that are not neighbours.
 */

jest.setTimeout(120_000);

const SETTINGS = ['collector=proxy', 'update-hz=20', 'threshold=0.2'];

const infer = (bed: Bed): Inference => parseInference([...bed.daemons.get('proxy')!.query('infer?')]);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(what: string, bed: Bed, ok: (i: Inference) => boolean, ms = 15_000): Promise<Inference> {
  const end = Date.now() + ms;
  for (;;) {
    const i = infer(bed);
    if (ok(i)) return i;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}; last inference: ${JSON.stringify({ state: i.state, changes: i.changes, edges: i.current.edges.length })}`);
    await sleep(25);
  }
}

const cases: [Kind, number, number][] = [
  ...KINDS.flatMap((k) => [4, 8, 16].map((n) => [k, n, 1] as [Kind, number, number])),
  // sFlow-style sampling estimates: with enough frames in the window (large messages, a longer window), intense pairs are still told from noise.
  ['all-to-all', 8, 16],
  ['torus2d', 16, 16],
];

describe.each(cases)('%s of %i VMs, counting one frame in %i', (kind, n, every) => {
  test('the inferred topology is exactly the pattern, with and without noise at 10% of the weakest edge', async () => {
    const truth = pattern(kind, n);
    const bed = await startBed({ vms: n, hosts: Math.min(4, n) });
    const stop = new AbortController();
    try {
      // Sampled, a window must hold enough counted frames per pair for the estimate to be steady.
      for (const d of bed.daemons.values()) await d.setVttif([...SETTINGS, `sample-every=${every}`, `window-s=${every === 1 ? 0.5 : 1}`]);
      const mac = (r: number) => bed.vms[r]!.mac;
      const want = truth.edges.map(([a, b]) => edgeKey(mac(a) < mac(b) ? { a: mac(a), b: mac(b) } : { a: mac(b), b: mac(a) })).sort();
      const run = bed.run({ topology: kind, iterations: 1_000_000, size: every === 1 ? 8192 : 65536, signal: stop.signal });

      // The first settled topology may be part of the pattern (its first frames had not all been reported); the
      // inference must then grow to exactly the pattern, and never to anything else.
      const settled = await until('a settled inference of the whole pattern', bed, (i) => {
        if (i.state !== 'settled') return false;
        const got = i.topology.edges.map(edgeKey);
        expect(got.filter((e) => !want.includes(e))).toEqual([]);
        // A pair may reach the collector in another daemon's report before the VM's own daemon has said it hosts it.
        return got.length === want.length && bed.vms.every((v) => i.hosts[v.mac] !== undefined);
      });
      expect(settled.topology.edges.map(edgeKey).sort()).toEqual(want);
      for (const v of bed.vms) expect(settled.hosts[v.mac]).toBe(v.host);

      // Noise between VMs that are not neighbours, at a tenth of the weakest edge's rate.
      const weakest = Math.min(...settled.topology.edges.map((e) => e.bytesPerS));
      const adjacent = new Set(truth.edges.map(([a, b]) => `${a} ${b}`));
      const others: [number, number][] = [];
      for (let a = 0; a < n && others.length < 3; a++) for (let b = a + 1; b < n && others.length < 3; b++) if (!adjacent.has(`${a} ${b}`)) others.push([a, b]);
      const noise = bed.noise(others.map(([from, to]) => ({ from, to, bytesPerS: weakest / 10 / 2 })).flatMap((p) => [p, { from: p.to, to: p.from, bytesPerS: p.bytesPerS }]));
      await sleep(every === 1 ? 1200 : 2200); // more than two windows
      const sent = noise.stop();
      const noisy = infer(bed);
      if (others.length) expect(sent.frames).toBeGreaterThan(0);
      // Counting every frame, the noise is in the matrix (it was seen), but not in the topology. (Sampled, a pair
      // this faint may have no frame counted in the window at all: the estimate is 0, which is what sampling is.)
      if (others.length && every === 1) expect(noisy.matrix.some((m) => m.src === mac(others[0]![0]) && m.dst === mac(others[0]![1]))).toBe(true);
      expect(noisy.topology.edges.map(edgeKey).sort()).toEqual(want);
      expect(noisy.changes).toBe(settled.changes);
      stop.abort();
      await run;
    } finally {
      stop.abort();
      await bed.close();
    }
  });
});
