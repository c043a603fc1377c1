import { parseMac } from '../model/mac.js';
import { InputError, parseJsonFile } from '../util/input-error.js';
import { JsonReader, type Json } from '../util/json-reader.js';
import { edgeChecker } from '../vttif/prune.js';
import { INFERENCE_STATES, MAX_RATE, type Inference, type InferenceState, type MatrixEntry, type Topology, type TopologyEdge } from '../vttif/types.js';

/**
 * Reads what `vnetc infer --json` prints (src/vttif/types.ts, `Inference`)
 * back from a file, every field checked (src/util/json-reader.ts).
 */

const EXPECTED = "the JSON object 'vnetc infer --json' prints (with matrix, hosts, topology, params)";

/** A rate field: finite, ≥ 0, at most MAX_RATE. */
function rate(r: JsonReader, v: Json, path: string): number {
  const n = r.number(v, path, 0);
  if (n > MAX_RATE) r.fail(path, 'a number from 0 to 1e15 (8 Pbit/s, beyond any link)', v);
  return n;
}

/** A MAC address field, normalised. */
function mac(r: JsonReader, v: Json, path: string): string {
  const text = r.string(v, path);
  const m = parseMac(text);
  if (!m.ok) r.fail(path, `a MAC address (${m.reason})`, text);
  return (m as { mac: string }).mac;
}

/** An edge's one direction: part of its `bytesPerS`. */
function share(r: JsonReader, v: Json, path: string, whole: number): number {
  // An earlier vnetc infer --json wrote none: say how to get a file adapt can route.
  if (v === undefined) r.fail(path, 'a number (what a sends to b)', v, "the file predates it: write it again with 'vnetc infer --json'");
  if (typeof v !== 'number' || !(v >= 0 && v <= whole)) r.fail(path, `a number from 0 to the edge's bytesPerS (${whole})`, v);
  return v as number;
}

function topology(r: JsonReader, v: Json, path: string): Topology {
  const o = r.object(v, path);
  const vms = r.array(o.vms, `${path}.vms`).map((m, i) => mac(r, m, `${path}.vms[${i}]`));
  const check = edgeChecker();
  const edges = r.array(o.edges, `${path}.edges`).map((e, i): TopologyEdge => {
    const p = `${path}.edges[${i}]`;
    const eo = r.object(e, p);
    const bytesPerS = rate(r, eo.bytesPerS, `${p}.bytesPerS`);
    const a = mac(r, eo.a, `${p}.a`);
    const b = mac(r, eo.b, `${p}.b`);
    const first = check({ a, b }, i);
    if (first === 'self') r.fail(`${p}.b`, `a VM other than a (${a}): an edge joins two VMs`, eo.b);
    if (first !== undefined) r.fail(p, 'a VM pair not given before', e, `${path}.edges[${first}] is the same pair, ${a} and ${b}; keep one entry per pair`);
    return {
      a,
      b,
      intensity: r.number(eo.intensity, `${p}.intensity`, 0, 1),
      bytesPerS,
      aToBBytesPerS: share(r, eo.aToBBytesPerS, `${p}.aToBBytesPerS`, bytesPerS),
    };
  });
  return { vms, edges };
}

export function readInference(name: string, text: string): Inference {
  const r = new JsonReader(name);
  const root = parseJsonFile(name, text, EXPECTED);
  if (typeof root !== 'object' || root === null || Array.isArray(root) || !('matrix' in root) || !('hosts' in root)) {
    throw new InputError(`${name}: not an inference; expected ${EXPECTED}`);
  }
  const o = root as Record<string, Json>;
  const params = r.object(o.params, 'params');
  const state = r.string(o.state, 'state') as InferenceState;
  if (!INFERENCE_STATES.includes(state)) r.fail('state', `one of ${INFERENCE_STATES.join(', ')}`, state);
  const settledAt = o.settledAt === null ? null : r.string(o.settledAt, 'settledAt');
  const matrix = r.array(o.matrix, 'matrix').map((e, i): MatrixEntry => {
    const p = `matrix[${i}]`;
    const eo = r.object(e, p);
    return {
      src: mac(r, eo.src, `${p}.src`),
      dst: mac(r, eo.dst, `${p}.dst`),
      bytesPerS: rate(r, eo.bytesPerS, `${p}.bytesPerS`),
      framesPerS: rate(r, eo.framesPerS, `${p}.framesPerS`),
    };
  });
  const hosts: Record<string, string> = {};
  for (const [key, machine] of Object.entries(r.object(o.hosts, 'hosts'))) {
    hosts[mac(r, key, `hosts key ${JSON.stringify(key)}`)] = r.string(machine, `hosts[${JSON.stringify(key)}]`);
  }
  const reporters: Record<string, number> = {};
  for (const [m, age] of Object.entries(r.object(o.reporters, 'reporters'))) reporters[m] = r.number(age, `reporters[${JSON.stringify(m)}]`, 0);
  return {
    collector: r.string(o.collector, 'collector'),
    at: r.string(o.at, 'at'),
    params: {
      updateHz: r.number(params.updateHz, 'params.updateHz', 0),
      windowS: r.number(params.windowS, 'params.windowS', 0),
      threshold: r.number(params.threshold, 'params.threshold', 0, 1),
    },
    state,
    topology: topology(r, o.topology, 'topology'),
    changes: r.number(o.changes, 'changes', 0),
    settledAt,
    current: topology(r, o.current, 'current'),
    matrix,
    hosts,
    reporters,
  };
}
