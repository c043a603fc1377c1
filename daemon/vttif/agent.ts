import { performance } from 'node:perf_hooks';
import { Collector } from '../../src/vttif/collector.js';
import { paramsOf, settingsLines, type VttifSettings } from '../../src/vttif/params.js';
import { formatInference } from '../../src/wire/vttif.js';
import { decodeReport, encodeReport, type ReceivedReport, type Report } from '../../src/wire/vttif-report.js';
import { WireError } from '../../src/wire/control.js';
import { numberToMac } from '../../src/model/mac48.js';
import { remember } from '../../src/vttif/recent.js';
import { Sampler } from './sampler.js';

/**
 * One daemon's part in VTTIF: its sampler on the data path, a timer at the
 * update rate that turns the local matrix into a report and sends it to the
 * collector over the overlay link (000 §2.2: updates go to the daemon on the
 * Proxy), and, on the collector itself, the Collector.
 */

/** Report chunks stay well under any link's record size, and under a jumbo frame. */
const CHUNK_BYTES = 8192;
const EVALUATE_MS = 10;

export interface AgentHooks {
  machine: string;
  /** Sends one report chunk over the link to `peer`; false when that link is down or absent. */
  send(peer: string, payload: Buffer): boolean;
  log(line: string): void;
  /** Called just before the sampler is read: the fast path folds in what it counted. */
  beforeReport?(): void;
}

export class VttifAgent {
  /** Null while sampling is off: the data path then pays one null check. */
  sampler: Sampler | null = null;
  private collector: Collector | null = null;
  private timer: NodeJS.Timeout | null = null;
  private settings!: VttifSettings;
  private readonly counters = { reportsSent: 0, reportsUnsent: 0, reportsIn: 0, badReports: 0, strayReports: 0 };
  /** Sources seen locally, with when (monotonic ms): what VTTIF? lists as hosted. */
  private readonly hosted = new Map<number, number>();
  private collectorReachable = true;
  private pending: NodeJS.Timeout | null = null;
  private pendingAt = 0;
  /** This daemon's report count, mod 256: every chunk of one report carries it. */
  private round = 0;

  constructor(private readonly hooks: AgentHooks) {}

  get current(): VttifSettings {
    return this.settings;
  }

  configure(s: VttifSettings): void {
    const before = this.settings;
    this.settings = s;
    // A new rate starts a new sampler: the counts of this interval so far, taken at the old rate, are dropped with the old one.
    if (s.sampling && (!this.sampler || before?.sampleEvery !== s.sampleEvery)) this.sampler = new Sampler(s.sampleEvery);
    if (!s.sampling) this.sampler = null;
    if (s.collector === this.hooks.machine) {
      if (this.collector) this.collector.setParams(paramsOf(s));
      else this.collector = new Collector(this.hooks.machine, paramsOf(s));
    } else {
      this.collector = null;
    }
    if (!before || before.updateHz !== s.updateHz || !this.timer) this.restartTimer();
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    if (this.pending) clearTimeout(this.pending);
    this.timer = null;
    this.pending = null;
  }

  /** A REPORT record from a peer's link. */
  received(peer: string, payload: Buffer): void {
    if (!this.collector) {
      // Reports meant for another collector, from a peer configured differently: count, do not keep.
      this.counters.strayReports++;
      return;
    }
    const now = performance.now();
    let report: ReceivedReport;
    try {
      report = decodeReport(payload);
    } catch (e) {
      this.refused(peer, e as Error);
      return;
    }
    if (!this.ingest(peer, report, report.round, now)) return;
    this.counters.reportsIn++;
    this.evaluateSoon(now);
  }

  /** Into the collector's window; a report it refuses (past its bounds) is counted like a bad one, never thrown: it came from the network. */
  private ingest(from: string, report: Report, round: number, now: number): boolean {
    try {
      this.collector!.ingest(from, report, round, now);
      return true;
    } catch (e) {
      if (!(e instanceof RangeError)) throw e;
      this.refused(from, e);
      return false;
    }
  }

  private refused(from: string, e: Error): void {
    this.counters.badReports++;
    if (this.counters.badReports <= 10) this.hooks.log(`vttif: bad report from ${from}: ${e.message}`);
  }

  /**
   * Re-reads the window as reports arrive, not only on this daemon's own
   * tick, so a change is seen as soon as the round that shows it is in:
   * EVALUATE_MS after the first report not yet read, so that a round, whose
   * reports arrive within milliseconds of each other, is read once (the
   * read is most of what VTTIF costs the collector). A change waiting to
   * settle is read again when it is due.
   */
  private evaluateSoon(now: number): void {
    if (this.collector) this.wake(now + EVALUATE_MS);
  }

  private evaluateNow(now: number): void {
    if (!this.collector) return;
    this.collector.evaluate(now);
    const due = this.collector.due;
    if (due !== null) this.wake(Math.max(due, now + 1));
  }

  /** One evaluation at `at` (monotonic ms), unless one is already set for no later. */
  private wake(at: number): void {
    if (this.pending && this.pendingAt <= at) return;
    if (this.pending) clearTimeout(this.pending);
    this.pendingAt = at;
    this.pending = setTimeout(() => {
      this.pending = null;
      this.evaluateNow(performance.now());
    }, Math.max(0, at - performance.now()));
    this.pending.unref();
  }

  /**
   * Ticks fall on multiples of the interval by the wall clock, so daemons
   * whose clocks agree (NTP keeps them within milliseconds) report in step
   * and a round reaches the collector all at once: the damper then waits out
   * that short spread, not a whole interval (src/vttif/damping.ts). Each tick
   * is set for the beat after its own, not for an interval after it ran, so
   * timer lateness never accumulates and a timer that fires a little early
   * (its clock is not the wall clock) cannot tick twice for one beat.
   */
  private restartTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    const interval = 1000 / this.settings.updateHz;
    const at = (beat: number) => {
      this.timer = setTimeout(() => {
        this.tick();
        // The beat after this one, or the first still ahead if this tick ran more than an interval late.
        at(Math.max(beat + interval, Math.ceil(Date.now() / interval) * interval));
      }, Math.max(0, beat - Date.now()));
      this.timer.unref();
    };
    at(Math.ceil((Date.now() + 1) / interval) * interval);
  }

  private tick(): void {
    const now = performance.now();
    if (this.sampler) {
      this.hooks.beforeReport?.();
      const report = this.sampler.take();
      for (const mac of report.hosted) remember(this.hosted, mac, now);
      this.deliver(report, now);
      this.round = (this.round + 1) & 0xff;
    }
    this.evaluateSoon(now);
  }

  private deliver(report: Report, now: number): void {
    const to = this.settings.collector;
    if (to === null) return;
    if (to === this.hooks.machine) {
      if (this.collector) this.ingest(to, report, this.round, now);
      return;
    }
    let ok = true;
    for (const chunk of encodeReport(report, CHUNK_BYTES, this.round)) ok = this.hooks.send(to, chunk) && ok;
    if (ok) this.counters.reportsSent++;
    else this.counters.reportsUnsent++;
    if (ok !== this.collectorReachable) {
      this.collectorReachable = ok;
      this.hooks.log(ok ? `vttif: reports reach collector ${to} again` : `vttif: no link up to collector ${to}; reports are dropped until there is`);
    }
  }

  /** VTTIF?'s lines. */
  *status(): Iterable<string> {
    const s = this.settings;
    yield* settingsLines(s);
    yield `role ${this.collector ? 'collector' : s.collector ? 'reporter' : 'none'}`;
    yield `reports-sent ${this.counters.reportsSent}`;
    yield `reports-unsent ${this.counters.reportsUnsent}`;
    yield `reports-in ${this.counters.reportsIn}`;
    yield `bad-reports ${this.counters.badReports}`;
    yield `stray-reports ${this.counters.strayReports}`;
    yield `overflow-frames ${this.sampler?.overflow ?? 0}`;
    const now = performance.now();
    for (const [mac, at] of [...this.hosted].sort((a, b) => a[0] - b[0])) yield `hosted ${numberToMac(mac)} age-s=${Math.round(now - at) / 1000}`;
  }

  /** INFER?'s lines; only the collector can answer. */
  inference(): string[] {
    if (!this.collector) {
      const c = this.settings.collector;
      throw new WireError('E_STATE', c ? `this daemon reports to collector ${c}; ask that one` : 'VTTIF has no collector here; set one with VTTIF collector=MACHINE');
    }
    const now = performance.now();
    this.collector.evaluate(now);
    return formatInference(this.collector.inference(now));
  }
}
