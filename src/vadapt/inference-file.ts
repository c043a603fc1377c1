import { parseMac } from '../model/mac.js';
import { InputError, parseJsonFile } from '../util/input-error.js';
import type { Inference, InferenceState, MatrixEntry, Topology, TopologyEdge } from '../vttif/types.js';

/**
 * Reads what `vnetc infer --json` prints (src/vttif/types.ts, `Inference`)
 * back from a file, checking every field so that a wrong or hand-edited file
 * is reported at the field that is wrong (`m.json: matrix[3].bytesPerS:
 * expected a number ≥ 0, got "fast"`), never half-used.
 */

const EXPECTED = "the JSON object 'vnetc infer --json' prints (with matrix, hosts, topology, params)";
const STATES: readonly InferenceState[] = ['settled', 'settling', 'idle', 'no-data'];

type Json = unknown;

class Reader {
  constructor(private readonly name: string) {}

  fail(path: string, expected: string, got: Json): never {
    throw new InputError(`${this.name}: ${path}: expected ${expected}, got ${show(got)}`);
  }

  object(v: Json, path: string): Record<string, Json> {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) this.fail(path, 'an object', v);
    return v as Record<string, Json>;
  }

  array(v: Json, path: string): Json[] {
    if (!Array.isArray(v)) this.fail(path, 'an array', v);
    return v as Json[];
  }

  string(v: Json, path: string): string {
    if (typeof v !== 'string') this.fail(path, 'a string', v);
    return v as string;
  }

  number(v: Json, path: string, min = -Infinity, max = Infinity): number {
    if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max) {
      const range = min === -Infinity ? '' : max === Infinity ? ` ≥ ${min}` : ` from ${min} to ${max}`;
      this.fail(path, `a number${range}`, v);
    }
    return v as number;
  }

  mac(v: Json, path: string): string {
    const text = this.string(v, path);
    const m = parseMac(text);
    if (!m.ok) this.fail(path, `a MAC address (${m.reason})`, text);
    return (m as { mac: string }).mac;
  }
}

function show(v: Json): string {
  if (v === undefined) return 'nothing';
  const text = JSON.stringify(v) ?? String(v);
  return text.length > 40 ? `${text.slice(0, 37)}...` : text;
}

function topology(r: Reader, v: Json, path: string): Topology {
  const o = r.object(v, path);
  const vms = r.array(o.vms, `${path}.vms`).map((m, i) => r.mac(m, `${path}.vms[${i}]`));
  const edges = r.array(o.edges, `${path}.edges`).map((e, i): TopologyEdge => {
    const p = `${path}.edges[${i}]`;
    const eo = r.object(e, p);
    return {
      a: r.mac(eo.a, `${p}.a`),
      b: r.mac(eo.b, `${p}.b`),
      intensity: r.number(eo.intensity, `${p}.intensity`, 0, 1),
      bytesPerS: r.number(eo.bytesPerS, `${p}.bytesPerS`, 0),
    };
  });
  return { vms, edges };
}

export function readInference(name: string, text: string): Inference {
  const r = new Reader(name);
  const root = parseJsonFile(name, text, EXPECTED);
  if (typeof root !== 'object' || root === null || Array.isArray(root) || !('matrix' in root) || !('hosts' in root)) {
    throw new InputError(`${name}: not an inference; expected ${EXPECTED}`);
  }
  const o = root as Record<string, Json>;
  const params = r.object(o.params, 'params');
  const state = r.string(o.state, 'state') as InferenceState;
  if (!STATES.includes(state)) r.fail('state', `one of ${STATES.join(', ')}`, state);
  const settledAt = o.settledAt === null ? null : r.string(o.settledAt, 'settledAt');
  const matrix = r.array(o.matrix, 'matrix').map((e, i): MatrixEntry => {
    const p = `matrix[${i}]`;
    const eo = r.object(e, p);
    return {
      src: r.mac(eo.src, `${p}.src`),
      dst: r.mac(eo.dst, `${p}.dst`),
      bytesPerS: r.number(eo.bytesPerS, `${p}.bytesPerS`, 0),
      framesPerS: r.number(eo.framesPerS, `${p}.framesPerS`, 0),
    };
  });
  const hosts: Record<string, string> = {};
  for (const [mac, machine] of Object.entries(r.object(o.hosts, 'hosts'))) {
    hosts[r.mac(mac, `hosts key ${JSON.stringify(mac)}`)] = r.string(machine, `hosts[${JSON.stringify(mac)}]`);
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
