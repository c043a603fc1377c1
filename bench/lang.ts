/**
 * Benchmark of the language front end: parse+validate of a large .vnet
 * program, next to JSON.parse of the same content as JSON, in the same run.
 *
 *   npm run bench:lang                     1,000,000 lines, 5 rounds
 *   node dist/bench/lang.js --lines 100000 --rounds 3 --json
 *   node dist/bench/lang.js --lines 100000 --rounds 1 --keep   (keeps the two files)
 *
 * The machines are shared and noisy, so an absolute time means little on its
 * own: the figure is the ratio to JSON.parse measured in the same run, with
 * the two sides alternating so that load drifts hit both alike.
 *
 * Each measurement runs in a fresh child process (this same script, with
 * `--child vnet|json <file>`), so that peak RSS is that side's own and
 * neither side inherits the other's JIT state or heap.
 *
 * Timed window, identical for both sides: from the file's bytes in memory to
 * the finished result. The disk read is excluded for both (it measures the
 * page cache, not the parser); decoding bytes to a string is included for
 * both (vnetc's decode checks UTF-8 and NUL bytes then decodes; the JSON side
 * decodes with Buffer#toString, which does no checking).
 *
 * Exit status: 0 whether or not the targets are met (a benchmark reports; it
 * is not a test); 1 if the generated program does not validate cleanly, a
 * result does not hold what was generated, or a child crashes.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, writeSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { printAddress } from '../src/lang/print.js';
import { ruleCount, type Address } from '../src/model/state.js';
import { median } from './stats.js';
import { machine } from './table.js';

// ---------------------------------------------------------------------------
// The program: one model, written out twice (as .vnet and as JSON), so the
// two files hold the same content by construction.

type Destination = { kind: 'link'; from: string; to: string } | { kind: 'interface'; iface: string };

interface HostItem {
  t: 'host';
  user: string;
  machine: string;
  port: number;
  iface: string;
}
interface LinkItem {
  t: 'link';
  proto: 'tcp' | 'udp';
  a: string;
  b: string;
  dialer: string;
  /** Whether the .vnet text names the dialer (JSON always does). */
  writeDialer: boolean;
}
interface RuleItem {
  t: 'rule';
  machine: string;
  src: Address;
  dst: Address;
  dest: Destination;
}
type Item = HostItem | LinkItem | RuleItem;

/** How a program of a given length is made up. */
interface Layout {
  lines: number;
  /** Daemons, the Proxy included. */
  hosts: number;
  /** Hosts with a VM: host1..hostN. */
  vms: number;
  links: number;
  rules: number;
  /** Rules from the all-to-all part, which pads the program to its exact length. */
  allToAll: number;
}

const MIN_LINES = 1000;

/**
 * Scales the host count with the square root of the length, since the
 * all-to-all rules grow with its square: 1,000 hosts for a million lines.
 * Every part but the all-to-all one is fixed by the host count; the
 * all-to-all rules fill the rest, so the line count is exact.
 */
function layout(lines: number): Layout {
  for (let hosts = Math.max(4, Math.round(1000 * Math.sqrt(lines / 1e6))); ; hosts++) {
    const vms = hosts - 1;
    const links = vms /* TCP star */ + vms /* UDP ring, vms >= 3 */;
    const fixedRules = 3 * vms /* Fig. 2, per host */ + vms; /* the Proxy's */
    const fixed = 1 /* BEGIN */ + hosts + 1 /* ADD */ + links + fixedRules + 1; /* END */
    const allToAll = lines - fixed;
    if (allToAll < 0) throw new Error(`--lines ${lines}: too few for ${hosts} hosts (at least ${fixed})`);
    if (allToAll <= vms * (vms - 1)) return { lines, hosts, vms, links, rules: fixedRules + allToAll, allToAll };
  }
}

/** A VM's MAC, from its host's index: 00:50:56 (VMware's prefix) then the index. */
function mac(i: number): string {
  const h = (n: number) => n.toString(16).padStart(2, '0');
  return `00:50:56:${h((i >> 16) & 255)}:${h((i >> 8) & 255)}:${h(i & 255)}`;
}

const BROADCAST = 'ff:ff:ff:ff:ff:ff';

/**
 * The program, statement by statement, deterministically: the Fig. 1
 * topology (a resilient TCP star on the Proxy) plus a UDP ring of fast
 * paths, the Fig. 2 rules per host, then every host's route to every other
 * host's VM, grouped per daemon, over the ring when the two are neighbours
 * and through the Proxy otherwise.
 */
function* program(l: Layout): Generator<Item> {
  const host = (i: number) => `host${i}`;
  const next = (i: number) => (i % l.vms) + 1;

  yield { t: 'host', user: 'vnet', machine: 'proxy', port: 5000, iface: 'eth0' };
  for (let i = 1; i <= l.vms; i++) yield { t: 'host', user: 'vnet', machine: host(i), port: 5000, iface: 'vmnet1' };

  // The host dials the Proxy: it is the end that may sit behind NAT.
  for (let i = 1; i <= l.vms; i++) {
    yield { t: 'link', proto: 'tcp', a: host(i), b: 'proxy', dialer: host(i), writeDialer: true };
  }
  for (let i = 1; i <= l.vms; i++) {
    yield { t: 'link', proto: 'udp', a: host(i), b: host(next(i)), dialer: host(i), writeDialer: false };
  }

  for (let i = 1; i <= l.vms; i++) {
    const m = mac(i);
    const vmnet1: Destination = { kind: 'interface', iface: 'vmnet1' };
    yield { t: 'rule', machine: host(i), src: { q: 'not', mac: m }, dst: { q: 'exact', mac: BROADCAST }, dest: vmnet1 };
    yield { t: 'rule', machine: host(i), src: { q: 'any' }, dst: { q: 'exact', mac: m }, dest: vmnet1 };
    yield {
      t: 'rule',
      machine: host(i),
      src: { q: 'exact', mac: m },
      dst: { q: 'none' },
      dest: { kind: 'link', from: host(i), to: 'proxy' },
    };
    yield { t: 'rule', machine: 'proxy', src: { q: 'any' }, dst: { q: 'exact', mac: m }, dest: { kind: 'link', from: 'proxy', to: host(i) } };
  }

  let left = l.allToAll;
  for (let i = 1; i <= l.vms && left > 0; i++) {
    for (let j = 1; j <= l.vms && left > 0; j++) {
      if (j === i) continue;
      const ring = next(i) === j || next(j) === i;
      yield {
        t: 'rule',
        machine: host(i),
        src: { q: 'exact', mac: mac(i) },
        dst: { q: 'exact', mac: mac(j) },
        dest: { kind: 'link', from: host(i), to: ring ? host(j) : 'proxy' },
      };
      left--;
    }
  }
}

/** Buffers small strings into large writes: a million writeSync calls would dominate generation. */
class ChunkedFile {
  private readonly fd: number;
  private parts: string[] = [];

  constructor(file: string) {
    this.fd = openSync(file, 'w');
  }

  write(s: string): void {
    this.parts.push(s);
    if (this.parts.length >= 16384) this.flush();
  }

  private flush(): void {
    writeSync(this.fd, this.parts.join(''));
    this.parts = [];
  }

  close(): void {
    this.flush();
    closeSync(this.fd);
  }
}

/** Canonical form (as `vnetc fmt` prints it): two spaces per level. */
function vnetLine(item: Item): string {
  switch (item.t) {
    case 'host':
      return `  HOST ${item.user} AT ${item.machine} ${item.port} ${item.iface}\n`;
    case 'link':
      return `    LINK ${item.proto.toUpperCase()} ${item.a} ${item.b}${item.writeDialer ? ` ${item.dialer}` : ''}\n`;
    case 'rule': {
      const dest = item.dest.kind === 'link' ? `${item.dest.from} ${item.dest.to}` : item.dest.iface;
      return `    FORWARD ${item.machine} ${printAddress(item.src)} ${printAddress(item.dst)} ${dest}\n`;
    }
  }
}

/**
 * The same item with named fields. The key order is fixed by the literal,
 * and the `t` tag is left out: in JSON the array an item sits in says what
 * it is.
 */
function jsonItem(item: Item): string {
  switch (item.t) {
    case 'host':
      return JSON.stringify({ user: item.user, machine: item.machine, port: item.port, iface: item.iface });
    case 'link':
      return JSON.stringify({ proto: item.proto, a: item.a, b: item.b, dialer: item.dialer });
    case 'rule':
      return JSON.stringify({ machine: item.machine, src: item.src, dst: item.dst, dest: item.dest });
  }
}

interface Generated {
  layout: Layout;
  vnetFile: string;
  jsonFile: string;
  vnetBytes: number;
  jsonBytes: number;
}

/**
 * Writes both files in one pass. The JSON has one item per line, compact
 * inside: `{"hosts":[…],"blocks":[{"action":"add","links":[…],"rules":[…]}]}`.
 */
function generate(dir: string, lines: number): Generated {
  const l = layout(lines);
  const vnetFile = path.join(dir, 'bench.vnet');
  const jsonFile = path.join(dir, 'bench.json');
  const vnet = new ChunkedFile(vnetFile);
  const json = new ChunkedFile(jsonFile);

  let written = 0;
  const line = (s: string) => {
    vnet.write(s);
    written++;
  };
  // JSON sections open in the order items arrive: hosts, then links, then rules.
  const opening = { host: '{"hosts":[\n', link: '],\n"blocks":[{"action":"add","links":[\n', rule: '],\n"rules":[\n' };
  let section: Item['t'] | undefined;

  line('BEGIN\n');
  for (const item of program(l)) {
    if (item.t !== section) {
      if (item.t === 'link') line('  ADD\n');
      json.write(section === undefined ? opening[item.t] : `\n${opening[item.t]}`);
      section = item.t;
    } else {
      json.write(',\n');
    }
    line(vnetLine(item));
    json.write(jsonItem(item));
  }
  line('END\n');
  json.write('\n]}]}\n');
  vnet.close();
  json.close();

  if (written !== lines) throw new Error(`generator bug: wrote ${written} lines, meant ${lines}`);
  return { layout: l, vnetFile, jsonFile, vnetBytes: statSync(vnetFile).size, jsonBytes: statSync(jsonFile).size };
}

// ---------------------------------------------------------------------------
// A child: one measurement of one side, printed as one JSON line.

type Side = 'vnet' | 'json';

interface Counts {
  hosts: number;
  links: number;
  rules: number;
}

interface Measurement {
  side: Side;
  wallMs: number;
  /** User + system, all threads: includes V8's parallel GC helpers. */
  cpuMs: number;
  /** Peak RSS of the whole child, KiB (process.resourceUsage().maxRSS). */
  maxRssKiB: number;
  /** Peak RSS just before the timed window: Node, loaded code, the file's bytes. */
  startRssKiB: number;
  /** JS heap still held after a full GC, with the result alive: the result's size. */
  retainedHeapBytes: number;
  counts: Counts;
  /** vnet only: how many diagnostics, and the first few rendered. */
  diagnostics: number;
  firstDiagnostics: string[];
}

const gc = (globalThis as { gc?: () => void }).gc;

async function child(side: Side, file: string): Promise<void> {
  // Only the vnet side loads the compiler, so its code counts in vnet's RSS alone.
  const compiler = side === 'vnet' ? await import('../src/lang/compile.js') : undefined;
  const render = side === 'vnet' ? await import('../src/diag/render.js') : undefined;

  const bytes = readFileSync(file); // outside the timed window, for both sides
  gc?.();
  const heapBefore = process.memoryUsage().heapUsed;
  const startRssKiB = process.resourceUsage().maxRSS;

  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  let result: unknown;
  if (compiler) {
    // decode + compileSource is what `vnetc validate` does: parse, then evaluate with every check.
    const decoded = compiler.decode(file, bytes);
    result = decoded.diagnostics.length > 0 ? { state: undefined, diagnostics: decoded.diagnostics } : compiler.compileSource(decoded.file);
  } else {
    result = JSON.parse(bytes.toString('utf8'));
  }
  const wallMs = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  const maxRssKiB = process.resourceUsage().maxRSS;

  gc?.();
  const retainedHeapBytes = process.memoryUsage().heapUsed - heapBefore;

  // Read the result after the heap figure, which also keeps it alive until then.
  let counts: Counts;
  let diagnostics = 0;
  let firstDiagnostics: string[] = [];
  if (compiler && render) {
    const compiled = result as ReturnType<typeof compiler.compileSource>;
    const state = compiled.state;
    counts = { hosts: state?.hosts.size ?? 0, links: state?.links.size ?? 0, rules: state ? ruleCount(state) : 0 };
    diagnostics = compiled.diagnostics.length;
    firstDiagnostics = compiled.diagnostics.slice(0, 5).map((d) => render.renderDiagnostic(d));
  } else {
    const doc = result as { hosts: unknown[]; blocks: { links: unknown[]; rules: unknown[] }[] };
    counts = {
      hosts: doc.hosts.length,
      links: doc.blocks.reduce((n, b) => n + b.links.length, 0),
      rules: doc.blocks.reduce((n, b) => n + b.rules.length, 0),
    };
  }

  const m: Measurement = {
    side,
    wallMs,
    cpuMs: (cpu.user + cpu.system) / 1000,
    maxRssKiB,
    startRssKiB,
    retainedHeapBytes,
    counts,
    diagnostics,
    firstDiagnostics,
  };
  process.stdout.write(JSON.stringify(m) + '\n');
}

// ---------------------------------------------------------------------------
// The parent: generate, measure alternately, report.

let running: ChildProcess | undefined;

function measure(side: Side, file: string): Promise<Measurement> {
  const script = fileURLToPath(import.meta.url);
  return new Promise((resolve, reject) => {
    // --expose-gc only for the retained-heap figure; no GC runs inside the timed window because of it.
    const proc = spawn(process.execPath, ['--expose-gc', script, '--child', side, file], { stdio: ['ignore', 'pipe', 'pipe'] });
    running = proc;
    let out = '';
    let err = '';
    proc.stdout.setEncoding('utf8').on('data', (s: string) => (out += s));
    proc.stderr.setEncoding('utf8').on('data', (s: string) => (err += s));
    proc.on('error', reject);
    proc.on('close', (code, signal) => {
      running = undefined;
      const last = out.trim().split('\n').pop() ?? '';
      if (code !== 0 || !last.startsWith('{')) {
        reject(new Error(`the ${side} child failed (${signal ?? `exit ${code}`}):\n${err.trim().slice(-4000)}`));
        return;
      }
      resolve(JSON.parse(last) as Measurement);
    });
  });
}

/** Each result must hold exactly what was generated; for vnet, with no diagnostic at all. */
function check(m: Measurement, l: Layout): void {
  if (m.side === 'vnet' && m.diagnostics > 0) {
    throw new Error(
      `the generated program does not validate: ${m.diagnostics} diagnostic(s), the first:\n\n${m.firstDiagnostics.join('\n\n')}`,
    );
  }
  const want: Counts = { hosts: l.hosts, links: l.links, rules: l.rules };
  for (const k of ['hosts', 'links', 'rules'] as const) {
    if (m.counts[k] !== want[k]) throw new Error(`the ${m.side} result has ${m.counts[k]} ${k}, the generator wrote ${want[k]}`);
  }
}


interface SideSummary {
  wallMs: { median: number; min: number };
  cpuMs: { median: number; min: number };
  /** Program lines per second of median wall time (for JSON: the same program's lines). */
  linesPerSec: number;
  /** Bytes of its own file per second: the JSON is the longer text, so per byte the gap is wider. */
  mbPerSec: number;
  maxRssMiB: { median: number; max: number };
  startRssMiB: number;
  retainedHeapMiB: number;
  runs: { wallMs: number; cpuMs: number; maxRssMiB: number }[];
}

const MiB = (kib: number) => kib / 1024;

function summarize(ms: Measurement[], lines: number, bytes: number): SideSummary {
  const wall = ms.map((m) => m.wallMs);
  const cpu = ms.map((m) => m.cpuMs);
  const rss = ms.map((m) => MiB(m.maxRssKiB));
  return {
    wallMs: { median: median(wall), min: Math.min(...wall) },
    cpuMs: { median: median(cpu), min: Math.min(...cpu) },
    linesPerSec: lines / (median(wall) / 1000),
    mbPerSec: bytes / 1e6 / (median(wall) / 1000),
    maxRssMiB: { median: median(rss), max: Math.max(...rss) },
    startRssMiB: median(ms.map((m) => MiB(m.startRssKiB))),
    retainedHeapMiB: median(ms.map((m) => m.retainedHeapBytes / 2 ** 20)),
    runs: ms.map((m) => ({ wallMs: m.wallMs, cpuMs: m.cpuMs, maxRssMiB: MiB(m.maxRssKiB) })),
  };
}

const n0 = (x: number) => Math.round(x).toLocaleString('en-US');
const f1 = (x: number) => x.toFixed(1);
const f2 = (x: number) => x.toFixed(2);
const pad = (s: string, w: number) => s.padStart(w);

async function parent(lines: number, rounds: number, asJson: boolean, keep: boolean): Promise<void> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'vnetc-bench-'));
  // Ctrl-C: stop the child we started, and leave no temp files behind.
  const onSignal = (sig: NodeJS.Signals) => {
    running?.kill(sig);
    rmSync(dir, { recursive: true, force: true });
    process.exit(130);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const progress = (s: string) => process.stderr.write(s);
    progress(`generating ${n0(lines)} lines in ${dir} ... `);
    const t0 = performance.now();
    const g = generate(dir, lines);
    progress(`${f1((performance.now() - t0) / 1000)} s\n`);

    // Alternate the sides so that a burst of load on the shared machine
    // lands on both, and pair each vnet run with the JSON run next to it.
    const vnet: Measurement[] = [];
    const json: Measurement[] = [];
    for (let r = 1; r <= rounds; r++) {
      progress(`round ${r}/${rounds}: vnet `);
      const v = await measure('vnet', g.vnetFile);
      check(v, g.layout); // the first round fails loudly if the program is not clean
      progress(`${f2(v.wallMs / 1000)} s, json `);
      const j = await measure('json', g.jsonFile);
      check(j, g.layout);
      progress(`${f2(j.wallMs / 1000)} s\n`);
      vnet.push(v);
      json.push(j);
    }

    const sv = summarize(vnet, lines, g.vnetBytes);
    const sj = summarize(json, lines, g.jsonBytes);
    // Paired ratios are the robust figure: each vnet run against the JSON run beside it.
    const pairedWall = median(vnet.map((v, i) => v.wallMs / json[i]!.wallMs));
    const ratio = {
      wallPairedMedian: pairedWall,
      wallOfMedians: sv.wallMs.median / sj.wallMs.median,
      wallOfMins: sv.wallMs.min / sj.wallMs.min,
      cpuOfMedians: sv.cpuMs.median / sj.cpuMs.median,
      maxRssOfMedians: sv.maxRssMiB.median / sj.maxRssMiB.median,
    };
    // The time target is 3 s for a million lines; a shorter run is held to the
    // same rate, which is harsher: start-up and JIT warm-up weigh more in it.
    const limitMs = 3000 * (lines / 1e6);
    const timeName =
      lines === 1e6
        ? '1M lines parse+validate < 3 s (median wall)'
        : `${n0(lines)} lines parse+validate < ${f2(limitMs / 1000)} s (3 s per 1M lines; median wall)`;
    const targets = [
      { name: timeName, value: sv.wallMs.median / 1000, limit: limitMs / 1000, unit: 's', pass: sv.wallMs.median < limitMs },
      { name: 'within 10x of JSON.parse (median paired ratio)', value: pairedWall, limit: 10, unit: 'x', pass: pairedWall <= 10 },
    ];

    const env = { node: process.version, platform: `${process.platform} ${process.arch}`, cpus: os.cpus().length, loadavg: os.loadavg() };
    const prog = {
      lines,
      hosts: g.layout.hosts,
      links: g.layout.links,
      rules: g.layout.rules,
      vnetBytes: g.vnetBytes,
      jsonBytes: g.jsonBytes,
    };
    const timed = 'file bytes in memory -> result; disk read excluded for both sides, bytes->string decoding included for both';

    if (asJson) {
      process.stdout.write(JSON.stringify({ env, rounds, program: prog, timed, vnet: sv, json: sj, ratio, targets }, null, 2) + '\n');
      return;
    }

    const mb = (b: number) => `${f1(b / 1e6)} MB`;
    const out: string[] = [];
    out.push(`vnetc language benchmark: ${machine()}`);
    out.push('');
    out.push(`program   ${n0(lines)} lines: ${n0(prog.hosts)} hosts, ${n0(prog.links)} links, ${n0(prog.rules)} rules`);
    out.push(`          .vnet ${mb(prog.vnetBytes)}, .json ${mb(prog.jsonBytes)} (same content, one item per line)`);
    out.push(`timed     ${timed}`);
    out.push(`rounds    ${rounds}, alternating vnet/json, each in a fresh process`);
    out.push('');
    const head = ['', 'wall median', 'wall min', 'lines/s', 'MB/s', 'CPU median', 'peak RSS', 'RSS at start', 'result heap'];
    const w = [20, 11, 9, 10, 6, 11, 9, 13, 12];
    const row = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(w[0]!) : pad(c, w[i]!))).join(' ');
    out.push(row(head));
    for (const [name, s] of [
      ['vnetc parse+validate', sv],
      ['JSON.parse', sj],
    ] as const) {
      out.push(
        row([
          name,
          `${f2(s.wallMs.median / 1000)} s`,
          `${f2(s.wallMs.min / 1000)} s`,
          n0(s.linesPerSec),
          f1(s.mbPerSec),
          `${f2(s.cpuMs.median / 1000)} s`,
          `${n0(s.maxRssMiB.median)} MiB`,
          `${n0(s.startRssMiB)} MiB`,
          `${n0(s.retainedHeapMiB)} MiB`,
        ]),
      );
    }
    out.push('');
    out.push(
      `ratio vnet/json   wall ${f2(ratio.wallPairedMedian)}x (median of ${rounds} paired rounds; ` +
        `of medians ${f2(ratio.wallOfMedians)}x, of mins ${f2(ratio.wallOfMins)}x), ` +
        `CPU ${f2(ratio.cpuOfMedians)}x, peak RSS ${f2(ratio.maxRssOfMedians)}x`,
    );
    out.push('');
    out.push('targets');
    for (const t of targets) {
      out.push(`  ${t.pass ? 'PASS' : 'MISS'}  ${t.name}: ${f2(t.value)}${t.unit === 's' ? ' s' : 'x'}`);
    }
    out.push('');
    out.push('per round (wall s, vnet / json): ' + vnet.map((v, i) => `${f2(v.wallMs / 1000)}/${f2(json[i]!.wallMs / 1000)}`).join('  '));
    process.stdout.write(out.join('\n') + '\n');
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    if (keep) process.stderr.write(`kept ${dir}\n`);
    else rmSync(dir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    options: {
      lines: { type: 'string', default: '1000000' },
      rounds: { type: 'string', default: '5' },
      json: { type: 'boolean', default: false },
      keep: { type: 'boolean', default: false }, // leave the generated files, e.g. to profile `vnetc validate` on them
      child: { type: 'string' }, // internal: measure one side of one file
    },
    allowPositionals: true,
    strict: true,
  });
  if (values.child !== undefined) {
    const file = positionals[0];
    if (values.child !== 'vnet' && values.child !== 'json') throw new Error(`--child: vnet or json, not ${values.child}`);
    if (file === undefined) throw new Error('--child: which file?');
    await child(values.child, file);
    return;
  }
  const lines = Number(values.lines);
  const rounds = Number(values.rounds);
  if (!Number.isInteger(lines) || lines < MIN_LINES) throw new Error(`--lines: a whole number, at least ${MIN_LINES}`);
  if (!Number.isInteger(rounds) || rounds < 1) throw new Error('--rounds: a whole number, at least 1');
  await parent(lines, rounds, values.json, values.keep);
}

main().catch((e: unknown) => {
  process.stderr.write(`\nbench:lang: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exitCode = 1;
});
