import fs from 'node:fs';
import path from 'node:path';
import { SourceFile } from '../../src/diag/source.js';
import { compileSource, compileText } from '../../src/lang/compile.js';
import { liveFromState } from '../../src/model/live.js';
import type { State } from '../../src/model/state.js';
import { diff } from '../../src/plan/diff.js';
import type { Plan } from '../../src/plan/plan.js';
import { adapt, type Adapted, type AdaptOptions } from '../../src/vadapt/adapt.js';
import { defaultNetwork, type Network } from '../../src/vadapt/network.js';
import type { Inference } from '../../src/vttif/types.js';
import { topologyOf } from '../vttif/fixtures.js';
import { SAMPLES } from '../support/vnetc.js';

/** VM i's MAC in the samples: 00:50:56:00:21:XX. */
export const mac = (i: number): string => `00:50:56:00:21:${i.toString(16).padStart(2, '0')}`;

/**
 * A settled inference with `traffic` as [src, dst, bytes/s] and VM i on
 * host{i} unless `hosts` says otherwise. Every pair is an edge (a threshold
 * of 0), so a test's traffic is exactly what adapt sees.
 */
export function inference(traffic: [number, number, number][], hosts: Record<number, string>): Inference {
  const matrix = traffic.map(([s, d, r]) => ({ src: mac(s), dst: mac(d), bytesPerS: r, framesPerS: r / 1000 }));
  const topology = topologyOf(matrix, 0);
  return {
    collector: 'proxy',
    at: '2025-01-01T00:00:00Z',
    params: { updateHz: 1, windowS: 10, threshold: 0 },
    state: 'settled',
    topology,
    changes: 1,
    settledAt: '2025-01-01T00:00:00Z',
    current: topology,
    matrix,
    hosts: Object.fromEntries(Object.entries(hosts).map(([i, h]) => [mac(Number(i)), h])),
    reporters: {},
  };
}

/** Both directions of each VM pair at `rate`. */
export const both = (pairs: [number, number][], rate = 1e6): [number, number, number][] => pairs.flatMap(([a, b]) => [[a, b, rate] as [number, number, number], [b, a, rate] as [number, number, number]]);

export const oneEach = (n: number): Record<number, string> => Object.fromEntries(Array.from({ length: n }, (_, k) => [k + 1, `host${k + 1}`]));

export function sample(name: string): { file: SourceFile; state: State } {
  const text = fs.readFileSync(path.join(SAMPLES, name), 'utf8');
  return spec(name, text);
}

export function spec(name: string, text: string): { file: SourceFile; state: State } {
  const file = new SourceFile(name, text);
  const r = compileSource(file);
  if (r.diagnostics.some((d) => d.severity === 'error') || !r.state) throw new Error(`${name} does not compile`);
  return { file, state: r.state };
}

export function run(base: { file: SourceFile; state: State }, inf: Inference, options: Partial<AdaptOptions> = {}, network: Network = defaultNetwork()): Adapted {
  return adapt(
    { inference: inf, inferenceName: 'm.json', base, network, networkName: 'net.json' },
    { limit: { kind: 'all' }, placement: false, algorithm: 'best', seed: 1, ...options },
  );
}

/** The state a file evaluates to; fails on any error or warning. */
export function stateOf(name: string, text: string, base?: State): State {
  const r = base ? compileSource(new SourceFile(name, text), { base }) : compileText(name, text);
  const bad = r.diagnostics.filter((d) => d.severity === 'error' || d.severity === 'warning');
  if (bad.length || !r.state) throw new Error(`${name}:\n${bad.map((d) => `${d.code} ${d.message}`).join('\n')}\n${text}`);
  return r.state;
}

export const planOf = (from: State, to: State): Plan => diff(liveFromState(from), to);

export const linksOf = (s: State): string[] => [...s.links.keys()].sort();
