/**
 * The installed rules, indexed so that finding a frame's winners costs a few
 * hash probes instead of a scan: by destination (exact MAC, NOT MAC, ANY,
 * NONE), then by source (exact MAC, NOT MAC, ANY). A cache miss on a
 * 100,000-rule table of per-VM exact rules touches a handful of buckets;
 * what is walked one rule at a time is only the NOT rules (one bucket per
 * distinct NOT address) and the ANY-source rules under a destination that
 * matches.
 *
 * Resolution walks the twelve (source, destination) levels from the
 * strongest down and stops at the first level with an applicable rule (see
 * PROTOCOL.md "Forwarding semantics"): a rule is applicable when its egress
 * port is up and is not the port the frame came in on.
 */
import type { Rule } from '../../src/model/state.js';
import type { Port } from './ports.js';
import { priorityOf, type DestinationQualifier, type SourceQualifier } from '../../src/model/priority.js';

export interface InstalledRule {
  readonly rule: Rule;
  /** The rule's identity, `tableKey(rule)`. */
  readonly key: string;
  readonly priority: number;
  /** Egress port id. */
  readonly egress: number;
  /** Frames (and their bytes) this rule sent on, as one of the winners. */
  readonly packets: number;
  readonly bytes: number;
}

let serials = 0;

export class Entry implements InstalledRule {
  /** Unique for the life of the process: names this rule in shared-Decision keys. */
  readonly serial = serials++;
  packets = 0;
  bytes = 0;
  readonly priority: number;
  /**
   * The Decision in which this rule wins alone, the common case: built on
   * first use and shared by every flow it decides, so a miss that ends here
   * allocates nothing. It depends only on the rule, never on port state.
   */
  alone: Decision | undefined = undefined;
  constructor(
    readonly rule: Rule,
    readonly key: string,
    readonly port: Port,
    /** The source and destination MACs as numbers; -1 where the slot has none. */
    readonly src: number,
    readonly dst: number,
  ) {
    this.priority = priorityOf(rule.src.q as SourceQualifier, rule.dst.q);
  }
  get egress(): number {
    return this.port.id;
  }
}

/** Why a frame goes nowhere; `null` when it goes somewhere. */
export type DropReason = 'no-match' | 'link-down' | 'ingress';

export interface Match {
  /** Egress port ids, ascending, each once, never the ingress. */
  readonly ports: readonly number[];
  /** The winning rules: every applicable rule at the top priority. */
  readonly rules: readonly InstalledRule[];
  /** The winners' priority; 0 when there are none. */
  readonly priority: number;
  /**
   * When nothing is applicable: `link-down` if some matching rule's port is
   * down, else `ingress` if some matching rule points back at the ingress,
   * else `no-match`.
   */
  readonly drop: DropReason | null;
}

/** A Match with what the data path needs to count without lookups. */
export interface Decision extends Match {
  readonly rules: readonly Entry[];
  /** The ports of `ports`, in the same order. */
  readonly egress: readonly Port[];
}

// Shared by every dropped flow; same shape as a forwarding Decision so the data path stays monomorphic.
function dropped(reason: DropReason): Decision {
  return { ports: [], rules: [], egress: [], priority: 0, drop: reason };
}
const NO_MATCH = dropped('no-match');
const LINK_DOWN = dropped('link-down');
const TO_INGRESS = dropped('ingress');

/**
 * The rules under one destination, by source. The maps and list are made on
 * first use: most buckets of a big table hold one ANY-source rule for one
 * VM, and three empty containers each would triple the memory a miss walks.
 */
class BySource {
  exact: Map<number, Entry[]> | undefined = undefined;
  not: Map<number, Entry[]> | undefined = undefined;
  any: Entry[] | undefined = undefined;
  size = 0;
}

/** Shared multi-winner Decisions kept at most; past it the set starts over. */
const SHARED_LIMIT = 4096;

/** Gathers one resolution's applicable rules; one instance, reset per miss. */
class Collector {
  /**
   * Decisions with several winners, by their winners' serials, so that
   * flows with the same winners share one: a flood of broadcasts from random
   * sources would otherwise fill every cache slot with its own copy of the
   * fan-out (kilobytes each, for a hundred links).
   */
  readonly shared = new Map<string, Decision>();
  ingress = -1;
  /** winners[0..count) are this resolution's; the array is reused, never shrunk. */
  readonly winners: Entry[] = [];
  count = 0;
  sawDown = false;
  sawIngress = false;

  reset(ingress: number): void {
    this.ingress = ingress;
    this.count = 0;
    this.sawDown = false;
    this.sawIngress = false;
  }

  take(list: readonly Entry[] | undefined): void {
    if (list === undefined) return;
    for (let i = 0; i < list.length; i++) {
      const e = list[i]!;
      if (e.port.id === this.ingress) this.sawIngress = true;
      else if (!e.port.up) this.sawDown = true;
      else this.winners[this.count++] = e;
    }
  }

  /** Every list of a NOT-keyed map except the one for `mac`. */
  takeAllBut(lists: ReadonlyMap<number, readonly Entry[]> | undefined, mac: number): void {
    if (lists === undefined) return;
    for (const [m, list] of lists) if (m !== mac) this.take(list);
  }

  decide(priority: number): Decision {
    if (this.count === 1) {
      const e = this.winners[0]!;
      return (e.alone ??= { ports: [e.port.id], rules: [e], egress: [e.port], priority, drop: null });
    }
    let key = '';
    for (let i = 0; i < this.count; i++) key += `${this.winners[i]!.serial},`;
    const known = this.shared.get(key);
    if (known !== undefined) return known;
    const rules = this.winners.slice(0, this.count);
    const egress: Port[] = [];
    for (const e of rules) if (!egress.includes(e.port)) egress.push(e.port);
    egress.sort((a, b) => a.id - b.id);
    const decision: Decision = { ports: egress.map((p) => p.id), rules, egress, priority, drop: null };
    if (this.shared.size >= SHARED_LIMIT) this.shared.clear();
    this.shared.set(key, decision);
    return decision;
  }

  nothing(): Decision {
    return this.sawDown ? LINK_DOWN : this.sawIngress ? TO_INGRESS : NO_MATCH;
  }
}

const SOURCE_LEVELS: readonly SourceQualifier[] = ['exact', 'not', 'any'];

export class RuleIndex {
  private readonly dstExact = new Map<number, BySource>();
  private readonly dstNot = new Map<number, BySource>();
  private readonly dstAny = new BySource();
  private readonly dstNone = new BySource();
  private readonly collector = new Collector();

  insert(e: Entry): void {
    const by = this.bySource(e, true)!;
    by.size++;
    const src = e.rule.src.q;
    if (src === 'any') {
      (by.any ??= []).push(e);
      return;
    }
    const lists = src === 'exact' ? (by.exact ??= new Map()) : (by.not ??= new Map());
    const list = lists.get(e.src);
    if (list === undefined) lists.set(e.src, [e]);
    else list.push(e);
  }

  remove(e: Entry): void {
    const by = this.bySource(e, false);
    if (by === undefined) return;
    const src = e.rule.src.q;
    const lists = src === 'exact' ? by.exact : src === 'not' ? by.not : undefined;
    const list = src === 'any' ? by.any : lists?.get(e.src);
    const at = list === undefined ? -1 : list.indexOf(e);
    if (at < 0) return;
    list!.splice(at, 1);
    if (list!.length === 0 && lists !== undefined) lists.delete(e.src);
    // Let go of the removed rule: shared Decisions naming it can never recur.
    this.collector.shared.clear();
    if (--by.size === 0) {
      if (e.rule.dst.q === 'exact') this.dstExact.delete(e.dst);
      else if (e.rule.dst.q === 'not') this.dstNot.delete(e.dst);
    }
  }

  /** The winners for a frame, computed from the rules (the cache sits in front). */
  resolve(ingress: number, src: number, dst: number): Decision {
    const c = this.collector;
    c.reset(ingress);
    const exact = this.dstExact.get(dst);
    if (exact !== undefined) {
      const found = this.level(exact, 'exact', src);
      if (found !== undefined) return found;
    }
    if (this.dstNot.size > 0) {
      for (const q of SOURCE_LEVELS) {
        for (const [m, by] of this.dstNot) {
          if (m === dst) continue;
          if (q === 'exact') c.take(by.exact?.get(src));
          else if (q === 'not') c.takeAllBut(by.not, src);
          else c.take(by.any);
        }
        if (c.count > 0) return c.decide(priorityOf(q, 'not'));
      }
    }
    return this.level(this.dstAny, 'any', src) ?? this.level(this.dstNone, 'none', src) ?? c.nothing();
  }

  /** The three source levels under one destination bucket, strongest first. */
  private level(by: BySource, dq: DestinationQualifier, src: number): Decision | undefined {
    if (by.size === 0) return undefined;
    const c = this.collector;
    if (by.exact !== undefined) {
      c.take(by.exact.get(src));
      if (c.count > 0) return c.decide(priorityOf('exact', dq));
    }
    if (by.not !== undefined) {
      c.takeAllBut(by.not, src);
      if (c.count > 0) return c.decide(priorityOf('not', dq));
    }
    c.take(by.any);
    if (c.count > 0) return c.decide(priorityOf('any', dq));
    return undefined;
  }

  private bySource(e: Entry, create: boolean): BySource | undefined {
    switch (e.rule.dst.q) {
      case 'any':
        return this.dstAny;
      case 'none':
        return this.dstNone;
      case 'exact':
      case 'not': {
        const map = e.rule.dst.q === 'exact' ? this.dstExact : this.dstNot;
        let by = map.get(e.dst);
        if (by === undefined && create) {
          by = new BySource();
          map.set(e.dst, by);
        }
        return by;
      }
    }
  }
}
