import { jest } from '@jest/globals';
import { startBed, type Bed } from '../../daemon/bed.js';
import { pattern, type Kind } from '../../src/patterns/topology.js';
import { edgeKey } from '../../src/vttif/prune.js';
import type { Inference } from '../../src/vttif/types.js';
import { parseInference } from '../../src/wire/vttif.js';

/**
 * Fig. 6 on real daemons: two patterns alternated faster than the window
 * settle to their union and stay there; alternated slower, each is
 * reported in turn and their union never is.
 */

jest.setTimeout(90_000);

const A: Kind = 'ring';
const B: Kind = 'hypercube';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Runs A and B in turn, each for `periodMs`, until `totalMs`; records every settled topology. */
async function alternate(bed: Bed, periodMs: number, totalMs: number): Promise<{ settled: string[][]; last: Inference }> {
  const proxy = bed.daemons.get('proxy')!;
  const settled: string[][] = [];
  let seen = 0;
  let last = parseInference([...proxy.query('infer?')]);
  const watch = setInterval(() => {
    last = parseInference([...proxy.query('infer?')]);
    if (last.changes > seen) {
      seen = last.changes;
      settled.push(last.topology.edges.map(edgeKey).sort());
    }
  }, 10);
  try {
    const end = Date.now() + totalMs;
    for (let i = 0; Date.now() < end; i++) {
      const stop = new AbortController();
      const run = bed.run({ topology: i % 2 ? B : A, iterations: 1_000_000, size: 2048, signal: stop.signal });
      await sleep(periodMs);
      stop.abort();
      await run;
    }
  } finally {
    clearInterval(watch);
  }
  return { settled, last };
}

describe('damping on real daemons', () => {
  let bed: Bed;
  let edges: (k: Kind) => string[];
  beforeEach(async () => {
    bed = await startBed({ vms: 8, hosts: 4 });
    edges = (k) => pattern(k, 8).edges.map(([a, b]) => edgeKey({ a: bed.vms[a]!.mac, b: bed.vms[b]!.mac })).sort();
  });
  afterEach(async () => {
    await bed.close();
  });

  test('alternated faster than the window: the union settles and nothing after it', async () => {
    for (const d of bed.daemons.values()) await d.setVttif(['collector=proxy', 'update-hz=20', 'window-s=1.5', 'threshold=0.2']);
    const union = [...new Set([...edges(A), ...edges(B)])].sort();
    const { settled } = await alternate(bed, 150, 6000);
    expect(settled.length).toBeGreaterThan(0);
    const at = settled.findIndex((s) => s.join() === union.join());
    expect(at).toBeGreaterThanOrEqual(0);
    // Once the union is reported, it stays: no oscillation.
    expect(settled.slice(at + 1)).toEqual([]);
  });

  test('alternated slower than the window: each is reported in turn, never their union', async () => {
    for (const d of bed.daemons.values()) await d.setVttif(['collector=proxy', 'update-hz=20', 'window-s=0.25', 'threshold=0.2']);
    const { settled } = await alternate(bed, 1500, 6000);
    expect(settled.length).toBeGreaterThanOrEqual(3);
    settled.forEach((s, i) => expect(s).toEqual(edges(i % 2 ? B : A)));
  });
});
