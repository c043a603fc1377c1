/**
 * vnetd's forwarding table: the rules of one daemon (Fig. 2 of 000), the
 * ports frames move between, the lookup cache in front of the rule index,
 * and the counters an operator reads. PROTOCOL.md "Forwarding semantics" is
 * the user-facing statement of what it does.
 *
 * Data path: `forward(ingress, frame)` per frame (`route` for the whole decision), or `lookup` when the caller
 * reads the MACs itself. Control path: `add`, `delete`, `replaceAll`,
 * `attach`, `detach`; each change invalidates the cache, since any of them
 * can change where a cached flow goes.
 *
 * Single-threaded like the rest of the daemon: nothing here locks.
 */
import { tableKey, type Destination, type Rule } from '../../src/model/state.js';
import { FlowCache, type CacheStats } from './flow-cache.js';
import { macToNumber, readMac48 } from '../../src/model/mac48.js';
import { PortRegistry, type Port, type PortInfo } from './ports.js';
import { Entry, RuleIndex, type Decision, type InstalledRule, type Match } from './rule-index.js';
import { MIN_FRAME } from '../../src/model/frame.js';

export type { CacheStats } from './flow-cache.js';
export { BROADCAST48, macToNumber, numberToMac, readMac48, writeMac48 } from '../../src/model/mac48.js';
export type { PortInfo } from './ports.js';
export { MAX_PRIORITY, priorityOf } from '../../src/model/priority.js';
export type { Decision, DropReason, InstalledRule, Match } from './rule-index.js';

export { MIN_FRAME } from '../../src/model/frame.js';

/** Flows the cache holds unless told otherwise: 4 MiB of keys and 1 MiB of references. */
export const DEFAULT_CACHE_SIZE = 131072;

export interface TableOptions {
  /** Flows the lookup cache holds (rounded up to a power of two); 0 turns the cache off. */
  cacheSize?: number;
}

export interface TableStats {
  /** Frames given to `forward`, and their bytes. */
  readonly frames: number;
  readonly bytes: number;
  /** Frames sent to at least one port. */
  readonly forwarded: number;
  /** Frames sent nowhere: the sum of `drops`. */
  readonly dropped: number;
  readonly drops: {
    /** No rule matches the frame's addresses. */
    readonly noMatch: number;
    /** Matching rules exist, but some point at a port that is down and the rest at the ingress. */
    readonly linkDown: number;
    /** Every matching rule points back at the port the frame came in on. */
    readonly ingress: number;
    /** Shorter than MIN_FRAME bytes. */
    readonly malformed: number;
  };
  readonly cache: CacheStats;
}

/** Why `rule` cannot be installed, or null if it can. */
export function ruleError(rule: Rule): string | null {
  if (rule.src.q === 'none') return 'NONE is a destination address only';
  for (const a of [rule.src, rule.dst]) {
    if (a.q === 'exact' || a.q === 'not') {
      try {
        macToNumber(a.mac);
      } catch (e) {
        return (e as Error).message;
      }
    }
  }
  const name = rule.dest.kind === 'link' ? rule.dest.to : rule.dest.iface;
  if (typeof name !== 'string' || name.length === 0) return `a ${rule.dest.kind} destination needs a name`;
  return null;
}

const NOWHERE: readonly number[] = Object.freeze([]);

export class ForwardingTable {
  private readonly entries = new Map<string, Entry>();
  private readonly index = new RuleIndex();
  private readonly registry = new PortRegistry();
  private readonly cache: FlowCache<Decision>;
  /** Called whenever cached results go stale (any rule or port change): the fast path flushes with the cache. */
  onChange: (() => void) | undefined = undefined;
  private frames = 0;
  private bytes = 0;
  private forwarded = 0;
  private noMatch = 0;
  private linkDown = 0;
  private toIngress = 0;
  private malformed = 0;

  constructor(options: TableOptions = {}) {
    this.cache = new FlowCache(options.cacheSize ?? DEFAULT_CACHE_SIZE);
  }

  /** Installed rules. */
  get size(): number {
    return this.entries.size;
  }

  // --- ports ---------------------------------------------------------------

  /** The id of the port for `dest`, registering it (down) if new. Ids are dense from 0 and never reused. */
  portId(dest: Destination): number {
    return this.registry.intern(dest).id;
  }

  /** Marks the port up (link connected, interface open) and returns its id. */
  attach(dest: Destination): number {
    const port = this.registry.intern(dest);
    if (!port.up) {
      port.up = true;
      this.invalidate();
    }
    return port.id;
  }

  /** Marks the port down; rules sending to it stop applying until it is attached again. False if it was not up. */
  detach(dest: Destination): boolean {
    const port = this.registry.find(dest);
    if (port === undefined || !port.up) return false;
    port.up = false;
    this.invalidate();
    return true;
  }

  port(id: number): PortInfo | undefined {
    return this.registry.list[id];
  }

  ports(): readonly PortInfo[] {
    return this.registry.list;
  }

  // --- rules ---------------------------------------------------------------

  /** Installs `rule`; false if the table already holds it (by tableKey). Throws RangeError if ruleError finds a fault. */
  add(rule: Rule): boolean {
    const fault = ruleError(rule);
    if (fault !== null) throw new RangeError(`cannot install rule: ${fault}`);
    const key = tableKey(rule);
    if (this.entries.has(key)) return false;
    this.install(key, rule);
    this.invalidate();
    return true;
  }

  /** Removes the rule with `rule`'s identity; false if there is none. */
  delete(rule: Rule): boolean {
    const key = tableKey(rule);
    const entry = this.entries.get(key);
    if (entry === undefined) return false;
    this.entries.delete(key);
    this.index.remove(entry);
    this.invalidate();
    return true;
  }

  /**
   * Makes `rules` the whole table, all or nothing: if one is faulty, throws
   * before changing anything. Rules kept keep their counters.
   */
  replaceAll(rules: Iterable<Rule>): void {
    const wanted = new Map<string, Rule>();
    for (const rule of rules) {
      const fault = ruleError(rule);
      if (fault !== null) throw new RangeError(`cannot install rule: ${fault}`);
      wanted.set(tableKey(rule), rule);
    }
    for (const [key, entry] of this.entries) {
      if (!wanted.has(key)) {
        this.entries.delete(key);
        this.index.remove(entry);
      }
    }
    for (const [key, rule] of wanted) if (!this.entries.has(key)) this.install(key, rule);
    // A whole new table: release the old results too, not just outdate them.
    this.cache.clear();
    this.onChange?.();
  }

  has(rule: Rule): boolean {
    return this.entries.has(tableKey(rule));
  }

  /** The installed rule with `rule`'s identity, with its counters. */
  get(rule: Rule): InstalledRule | undefined {
    return this.entries.get(tableKey(rule));
  }

  rules(): IterableIterator<InstalledRule> {
    return this.entries.values();
  }

  private install(key: string, rule: Rule): void {
    const mac = (a: Rule['src']): number => (a.q === 'exact' || a.q === 'not' ? macToNumber(a.mac) : -1);
    const entry = new Entry(rule, key, this.registry.intern(rule.dest), mac(rule.src), mac(rule.dst));
    this.entries.set(key, entry);
    this.index.insert(entry);
  }

  // --- data path -----------------------------------------------------------

  /** Where a frame from `src` to `dst` (48-bit MACs) that came in on port `ingress` goes. Counts nothing. */
  lookup(ingress: number, src: number, dst: number): readonly number[] {
    return this.decide(ingress, src, dst).ports;
  }

  /** `lookup` with the winning rules, their priority and the drop reason. */
  match(ingress: number, src: number, dst: number): Match {
    return this.decide(ingress, src, dst);
  }

  /**
   * Looks up an Ethernet frame that came in on port `ingress`, counts it, and
   * returns the ports to send it on (empty: dropped). Throws RangeError for
   * an unknown ingress id.
   */
  forward(ingress: number, frame: Uint8Array): readonly number[] {
    return this.route(ingress, frame)?.ports ?? NOWHERE;
  }

  /**
   * `forward` with the whole decision (the winning rules and egress ports,
   * for the fast path to cache); null for a frame too short to look up.
   */
  route(ingress: number, frame: Uint8Array): Decision | null {
    const inPort: Port | undefined = this.registry.list[ingress];
    if (inPort === undefined) throw new RangeError(`no port ${ingress}`);
    const len = frame.length;
    if (len < MIN_FRAME) {
      this.received(inPort, 1, len);
      this.malformed++;
      return null;
    }
    const decision = this.decide(ingress, readMac48(frame, 6), readMac48(frame, 0));
    if (decision.egress.length === 0) {
      this.received(inPort, 1, len);
      if (decision.drop === 'no-match') this.noMatch++;
      else if (decision.drop === 'link-down') this.linkDown++;
      else this.toIngress++;
      return decision;
    }
    this.sent(inPort, decision, 1, len);
    return decision;
  }

  /**
   * Counts `frames` frames (`bytes` bytes) that went where `decision` sent
   * them without `forward` (the fast path carried them), as `forward`
   * would have counted them.
   */
  credit(ingress: number, decision: Decision, frames: number, bytes: number): void {
    const inPort = this.registry.list[ingress];
    if (inPort) this.sent(inPort, decision, frames, bytes);
  }

  /** Frames that came in on `inPort`, counted whatever became of them. */
  private received(inPort: Port, frames: number, bytes: number): void {
    inPort.rxPackets += frames;
    inPort.rxBytes += bytes;
    this.frames += frames;
    this.bytes += bytes;
  }

  /** Frames that `decision` sent on: counted in, per winning rule and per egress port. */
  private sent(inPort: Port, decision: Decision, frames: number, bytes: number): void {
    this.received(inPort, frames, bytes);
    this.forwarded += frames;
    for (const rule of decision.rules) {
      rule.packets += frames;
      rule.bytes += bytes;
    }
    for (const port of decision.egress) {
      port.txPackets += frames;
      port.txBytes += bytes;
    }
  }

  stats(): TableStats {
    return {
      frames: this.frames,
      bytes: this.bytes,
      forwarded: this.forwarded,
      dropped: this.noMatch + this.linkDown + this.toIngress + this.malformed,
      drops: { noMatch: this.noMatch, linkDown: this.linkDown, ingress: this.toIngress, malformed: this.malformed },
      cache: this.cache.stats(),
    };
  }

  private invalidate(): void {
    this.cache.invalidate();
    this.onChange?.();
  }

  private decide(ingress: number, src: number, dst: number): Decision {
    const cached = this.cache.get(ingress, src, dst);
    if (cached !== undefined) return cached;
    const decision = this.index.resolve(ingress, src, dst);
    this.cache.set(ingress, src, dst, decision);
    return decision;
  }
}
