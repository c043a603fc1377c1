/**
 * INFER?'s answer (PROTOCOL.md "VTTIF"): an Inference as data lines, one
 * fact per line, so that a person with `vnetd ctl` can read it and a script
 * can grep it. The daemon formats, vnetc parses; this is the only codec.
 *
 *   collector proxy
 *   at 2026-11-24T10:00:00.000Z
 *   params update-hz=20 window-s=0.25 threshold=0.2
 *   state settled changes=3 settled-at=2026-11-24T09:59:58.120Z
 *   host 02:50:00:00:01:01 host1
 *   reporter host1 age-s=0.031
 *   pair 02:50:00:00:01:01 02:50:00:00:02:01 bytes-per-s=81920 frames-per-s=56
 *   edge 02:50:00:00:01:01 02:50:00:00:02:01 intensity=1 bytes-per-s=163840 a-to-b-bytes-per-s=81920
 *   current 02:50:00:00:01:01 02:50:00:00:02:01 intensity=1 bytes-per-s=163840 a-to-b-bytes-per-s=81920
 */
import { parseMac } from '../model/mac.js';
import { isMachineName } from '../model/names.js';
import { edgeChecker, topologyOf } from '../vttif/prune.js';
import { INFERENCE_STATES, MAX_RATE, type Inference, type InferenceState, type TopologyEdge, type VttifParams } from '../vttif/types.js';


const num = (n: number): string => String(Math.round(n * 1e6) / 1e6);
const edgeLine = (kind: string, e: TopologyEdge): string =>
  `${kind} ${e.a} ${e.b} intensity=${num(e.intensity)} bytes-per-s=${num(e.bytesPerS)} a-to-b-bytes-per-s=${num(e.aToBBytesPerS)}`;

export function formatInference(i: Inference): string[] {
  const p = i.params;
  return [
    `collector ${i.collector}`,
    `at ${i.at}`,
    `params update-hz=${p.updateHz} window-s=${p.windowS} threshold=${p.threshold}`,
    `state ${i.state} changes=${i.changes} settled-at=${i.settledAt ?? '-'}`,
    ...Object.entries(i.hosts).map(([mac, m]) => `host ${mac} ${m}`),
    ...Object.entries(i.reporters).map(([m, age]) => `reporter ${m} age-s=${num(age)}`),
    ...i.matrix.map((m) => `pair ${m.src} ${m.dst} bytes-per-s=${num(m.bytesPerS)} frames-per-s=${num(m.framesPerS)}`),
    ...i.topology.edges.map((e) => edgeLine('edge', e)),
    ...i.current.edges.map((e) => edgeLine('current', e)),
  ];
}

/** Throws RangeError naming the line that does not read. */
export function parseInference(lines: readonly string[]): Inference {
  const out: Partial<Inference> & { hosts: Record<string, string>; reporters: Record<string, number> } = {
    hosts: {},
    reporters: {},
    matrix: [],
  };
  const edges: TopologyEdge[] = [];
  const current: TopologyEdge[] = [];
  // Each list, as Adapt reads it: every VM pair once.
  const edgeCheck = edgeChecker();
  const currentCheck = edgeChecker();
  lines.forEach((line, n) => {
    const bad = (why: string): never => {
      throw new RangeError(`INFER? line ${n + 1} ('${line.slice(0, 80)}'): ${why}`);
    };
    const [head, ...w] = line.split(' ');
    const fields = (from: number, names: readonly string[]): Record<string, string> => {
      const r: Record<string, string> = {};
      for (const word of w.slice(from)) {
        const eq = word.indexOf('=');
        if (eq > 0) r[word.slice(0, eq)] = word.slice(eq + 1);
      }
      for (const k of names) if (r[k] === undefined) bad(`no ${k}=`);
      return r;
    };
    const number = (v: string, what: string, max = Infinity): number => {
      const x = Number(v);
      if (v === '' || !Number.isFinite(x) || x < 0) bad(`${what} '${v}' is not a non-negative number`);
      if (x > max) bad(`${what} ${v} is more than ${max}`);
      return x;
    };
    const rate = (v: string, what: string): number => number(v, what, MAX_RATE);
    const mac = (v: string | undefined): string => {
      const m = parseMac(v ?? '');
      return m.ok ? m.mac : bad(`'${v}' is not a MAC address`);
    };
    const machine = (v: string | undefined): string => (v && isMachineName(v) ? v : bad(`'${v}' is not a machine name`));
    const time = (v: string | undefined): string => (v && !Number.isNaN(Date.parse(v)) ? v : bad(`'${v}' is not a timestamp`));
    const edge = (check: ReturnType<typeof edgeChecker>, index: number): TopologyEdge => {
      const f = fields(2, ['intensity', 'bytes-per-s', 'a-to-b-bytes-per-s']);
      const bytesPerS = rate(f['bytes-per-s']!, 'bytes-per-s');
      const aToBBytesPerS = rate(f['a-to-b-bytes-per-s']!, 'a-to-b-bytes-per-s');
      // Rounding to six decimals may lift the part a hair over the whole.
      if (aToBBytesPerS > bytesPerS * (1 + 1e-9) + 1e-6) bad(`a-to-b-bytes-per-s ${aToBBytesPerS} is more than bytes-per-s ${bytesPerS}`);
      const a = mac(w[0]);
      const b = mac(w[1]);
      const wrong = check({ a, b }, index);
      if (wrong === 'self') bad('an edge joins a VM to itself');
      if (wrong !== undefined) bad('this VM pair was given before');
      return { a, b, intensity: number(f['intensity']!, 'intensity', 1), bytesPerS, aToBBytesPerS: Math.min(aToBBytesPerS, bytesPerS) };
    };
    switch (head) {
      case 'collector':
        out.collector = machine(w[0]);
        break;
      case 'at':
        out.at = time(w[0]);
        break;
      case 'params': {
        const f = fields(0, ['update-hz', 'window-s', 'threshold']);
        out.params = { updateHz: number(f['update-hz']!, 'update-hz'), windowS: number(f['window-s']!, 'window-s'), threshold: number(f['threshold']!, 'threshold') } satisfies VttifParams;
        break;
      }
      case 'state': {
        if (!INFERENCE_STATES.includes(w[0] as InferenceState)) bad(`unknown state '${w[0]}'`);
        const f = fields(1, ['changes', 'settled-at']);
        out.state = w[0] as InferenceState;
        out.changes = number(f['changes']!, 'changes');
        out.settledAt = f['settled-at'] === '-' ? null : time(f['settled-at']);
        break;
      }
      case 'host':
        out.hosts[mac(w[0])] = machine(w[1]);
        break;
      case 'reporter':
        out.reporters[machine(w[0])] = number(fields(1, ['age-s'])['age-s']!, 'age-s');
        break;
      case 'pair': {
        const f = fields(2, ['bytes-per-s', 'frames-per-s']);
        out.matrix!.push({ src: mac(w[0]), dst: mac(w[1]), bytesPerS: rate(f['bytes-per-s']!, 'bytes-per-s'), framesPerS: rate(f['frames-per-s']!, 'frames-per-s') });
        break;
      }
      case 'edge':
        edges.push(edge(edgeCheck, edges.length));
        break;
      case 'current':
        current.push(edge(currentCheck, current.length));
        break;
      default:
      // A newer daemon's extra facts: skip them, as the protocol promises.
    }
  });
  for (const k of ['collector', 'at', 'params', 'state'] as const) {
    if (out[k] === undefined) throw new RangeError(`INFER? answer has no '${k}' line`);
  }
  return { ...(out as Inference), topology: topologyOf(edges), current: topologyOf(current) };
}
