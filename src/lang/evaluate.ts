import { diagnostic, MAX_ERRORS, type Diagnostic, type DiagnosticSink, type DiagOptions, type Related, type Span } from '../diag/diagnostic.js';
import { clip, Msg, type MessageDef } from '../diag/messages.js';
import { isGroupMac, parseMac } from '../model/mac.js';
import { isInterfaceName, isMachineName, isUserName } from '../model/names.js';
import {
  addressKey,
  allRules,
  copyState,
  emptyState,
  linkKey,
  type Address,
  type Destination,
  type Host,
  type Link,
  tableKey,
  type Rule,
  type State,
} from '../model/state.js';
import type { ForwardStmt, HostDecl, Ident, LinkStmt, Program, Statement } from './ast.js';
import { colonWordHint } from './colon-words.js';
import { suggest } from './suggest.js';

/** Where a rule was added: its statement, and where its destination starts (a FORWARD ends with it). */
interface RuleOrigin extends Span {
  /** -1 when the first hop is wrong, which was reported and explains a missing link. */
  hop: number;
}

/**
 * A rule as the evaluator adds it: a plain Rule to everyone else, carrying
 * where it was written in a private field. A side table (Map or WeakMap)
 * would cost a hash insert per rule, about 0.45 s per million rules; a
 * private field costs nothing and stays out of JSON, spreads and equality.
 */
class AddedRule implements Rule {
  readonly #origin: RuleOrigin;

  constructor(
    public machine: string,
    public src: Address,
    public dst: Address,
    public dest: Destination,
    origin: RuleOrigin,
  ) {
    this.#origin = origin;
  }

  static originOf(rule: Rule): RuleOrigin | undefined {
    return #origin in rule ? rule.#origin : undefined;
  }
}

/**
 * Runs a program's statements in order over an empty state, checking their
 * meaning along the way; the result is the desired State. Statements arrive
 * one at a time from the parser (see parser.ts), so nothing but the State is
 * kept: a million-rule program costs a million rules, not a million trees.
 *
 * Checks that depend on the program as a whole (declarations, existence,
 * duplicates) are held back and dropped if the parser lost a statement: they
 * would mostly report the consequences of the syntax error, not new facts.
 */
export class Evaluator {
  private readonly state: State;
  /** Evaluating a plan without the live state it applies to: what it deletes cannot be checked. */
  private readonly unknownBase: boolean;
  private add = true;
  private readonly hostSpans = new Map<string, Span & { text: string }>();
  private readonly linkOrigins = new Map<string, Span>();
  private readonly linkDeletions = new Map<string, Span>();
  /** The same address or destination is written on many lines; keep one object of each. */
  private readonly addresses = new Map<string, Address>();
  /** Per rule machine, its destinations by target: few, shared, and each link checked once. */
  private readonly destinations = new Map<Host, Map<string, Destination>>();
  private readonly deferred: Diagnostic[] = [];
  private deferredDropped = 0;
  private declared: string[] | undefined;

  /**
   * `base` is the state the program starts from: empty for a description of
   * a network, the live state for a saved plan (a program of changes), or
   * 'unknown' to check a plan on its own.
   */
  constructor(
    private readonly sink: DiagnosticSink,
    base?: State | 'unknown',
  ) {
    this.unknownBase = base === 'unknown';
    this.state = base === undefined || base === 'unknown' ? emptyState() : copyState(base);
  }

  readonly visit = (s: Statement): void => {
    switch (s.kind) {
      case 'host':
        return this.host(s);
      case 'block':
        this.add = s.action === 'add';
        return;
      case 'link':
        return this.link(s);
      case 'forward':
        return this.forward(s);
    }
  };

  /** Ends the run; `complete` is false when the parser lost statements. */
  finish(complete: boolean): State {
    if (complete) {
      if (!this.unknownBase) this.checkRuleLinks();
      for (const d of this.deferred) this.sink.add(d);
      this.sink.drop(this.deferredDropped);
    }
    return this.state;
  }

  /** A whole-program finding, reported only if the program turns out complete. */
  private defer(def: MessageDef, span: Span, args: readonly (string | number)[], opts?: DiagOptions): void {
    if (this.deferred.length < MAX_ERRORS) this.deferred.push(diagnostic(def, this.sink.file, span, args, opts));
    else this.deferredDropped++;
  }

  private host(h: HostDecl): void {
    const { sink } = this;
    if (!isUserName(h.user.text)) sink.report(Msg.InvalidUserName, h.user, [h.user.text]);
    if (!isMachineName(h.machine.text)) {
      const text = h.machine.text;
      const hint = text.includes(':') ? colonWordHint(text, 'machine') : undefined;
      sink.report(Msg.InvalidMachineName, h.machine, [h.machine.text], { hint });
    }
    if (!(h.port.value >= 1 && h.port.value <= 65535)) sink.report(Msg.PortOutOfRange, h.port, [h.port.text]);
    if (!isInterfaceName(h.iface.text)) sink.report(Msg.InvalidInterfaceName, h.iface, [h.iface.text]);
    // Host names are not case-sensitive, so neither are machines: Proxy is proxy.
    const folded = h.machine.text.toLowerCase();
    const first = this.hostSpans.get(folded);
    if (first) {
      sink.report(Msg.DuplicateHost, h.machine, [h.machine.text], {
        related: [{ span: first, message: 'first declared here' }],
        hint: first.text === h.machine.text ? undefined : `machine names are not case-sensitive: '${clip(h.machine.text)}' is '${clip(first.text)}'`,
      });
      return;
    }
    this.hostSpans.set(folded, { start: h.machine.start, end: h.machine.end, text: h.machine.text });
    // On a base, a HOST line restates (or changes) a daemon the base already has, rules and all.
    this.state.hosts.set(h.machine.text, {
      machine: h.machine.text,
      user: h.user.text,
      port: h.port.value,
      iface: h.iface.text,
    });
    if (!this.state.tables.has(h.machine.text)) this.state.tables.set(h.machine.text, new Map());
    this.declared = undefined;
  }

  /**
   * The declared host of that name, or undefined after (deferring) a report.
   * `beside` is a name the user clearly did not mean (the link's other end).
   */
  private declaredHost(id: Ident, beside?: string): Host | undefined {
    const host = this.state.hosts.get(id.text);
    if (host) return host;
    this.declared ??= [...this.state.hosts.keys()];
    const found = suggest(id.text, this.declared);
    const close = found === beside ? undefined : found;
    const hint = close
      ? `did you mean '${clip(close)}'?`
      : `declare it with a HOST line: HOST <user> AT ${clip(id.text)} <port> <interface>`;
    // A long name is clipped in the hint, so a note shows where it is spelt in full.
    const declaredAt = close !== undefined && clip(close) !== close ? this.hostSpans.get(close.toLowerCase()) : undefined;
    const related = declaredAt ? [{ span: declaredAt, message: 'declared here' }] : undefined;
    this.defer(Msg.UndeclaredMachine, id, [id.text], { hint, related });
    return undefined;
  }

  private link(s: LinkStmt): void {
    const { sink } = this;
    const a = this.declaredHost(s.a, s.b.text);
    const b = this.declaredHost(s.b, s.a.text);
    if (s.a.text === s.b.text) sink.report(Msg.SelfLink, s.b, [s.a.text]);
    if (s.dialer && s.dialer.text !== s.a.text && s.dialer.text !== s.b.text) {
      sink.report(Msg.DialerNotEndpoint, s.dialer, [s.dialer.text, s.a.text, s.b.text]);
    }
    if (!a || !b) return;

    const key = linkKey(a.machine, b.machine);
    const existing = this.state.links.get(key);
    const addedHere = (): Related[] => {
      const origin = this.linkOrigins.get(key);
      return origin ? [{ span: origin, message: 'added here' }] : [];
    };
    const span = { start: s.start, end: s.end };
    if (this.add) {
      if (existing) return this.defer(Msg.DuplicateLink, span, [a.machine, b.machine], { related: addedHere() });
      const link: Link = { a: a.machine, b: b.machine, proto: s.proto ?? 'tcp', dialer: s.dialer?.text ?? a.machine };
      this.state.links.set(key, link);
      this.linkOrigins.set(key, span);
      this.linkDeletions.delete(key);
      return;
    }
    if (!existing) {
      if (this.unknownBase) return;
      return this.defer(Msg.DeleteMissingLink, span, [a.machine, b.machine], { related: this.deletedHere(key) });
    }
    // A DELETE matches on the endpoints; type and dialer only when written out.
    if (s.proto && s.proto !== existing.proto) {
      const args = [a.machine, b.machine, existing.proto.toUpperCase(), s.proto.toUpperCase()];
      return sink.report(Msg.LinkChangedOnDelete, span, args, { related: addedHere() });
    }
    if (s.dialer && s.dialer.text !== existing.dialer) {
      const args = [a.machine, b.machine, `dialed by '${existing.dialer}'`, `by '${s.dialer.text}'`];
      return sink.report(Msg.LinkChangedOnDelete, s.dialer, args, { related: addedHere() });
    }
    this.state.links.delete(key);
    this.linkOrigins.delete(key);
    this.linkDeletions.set(key, span);
  }

  private deletedHere(key: string): Related[] {
    const span = this.linkDeletions.get(key);
    return span ? [{ span, message: 'deleted here' }] : [];
  }

  private forward(s: ForwardStmt): void {
    const { sink } = this;
    const host = this.declaredHost(s.machine);
    if (s.src.addr.q === 'none') sink.report(Msg.NoneAsSource, s.src);
    // (A malformed MAC was reported by the scanner and says nothing about groups.)
    const src = s.src.addr;
    if (src.q === 'exact' && isGroupMac(src.mac) && parseMac(src.mac).ok) sink.report(Msg.GroupSource, s.src, [src.mac]);

    const d = s.dest;
    let hop = d.start;
    let dest: Destination;
    if (d.kind === 'edge') {
      if (s.ruleType === 'interface') {
        sink.report(Msg.RuleTypeMismatch, d, ['an INTERFACE', 'two destination names'], {
          hint: 'an INTERFACE rule names one local interface; a rule that sends over a link is an EDGE rule',
        });
      }
      if (d.from.text !== s.machine.text) {
        hop = -1;
        sink.report(Msg.FirstHopNotOwnMachine, d.from, [s.machine.text, d.from.text]);
      } else {
        this.declaredHost(d.to);
      }
      dest = this.destination(host, '>' + d.to.text, () => ({ kind: 'link', to: d.to.text }));
    } else {
      if (s.ruleType === 'edge') {
        sink.report(Msg.RuleTypeMismatch, d, ['an EDGE', 'a single destination name'], {
          hint: 'an EDGE rule sends over a link: name both of its machines, this one first',
        });
      }
      if (!isInterfaceName(d.iface.text)) {
        sink.report(Msg.InvalidInterfaceName, d.iface, [d.iface.text]);
      } else if (host && host.iface !== d.iface.text) {
        sink.report(Msg.InterfaceNotDeclared, d.iface, [d.iface.text, host.machine, host.iface]);
      }
      dest = this.destination(host, '@' + d.iface.text, () => ({ kind: 'interface', iface: d.iface.text }));
    }
    if (!host) return;

    const rule = new AddedRule(host.machine, this.address(s.src.addr), this.address(s.dst.addr), dest, {
      start: s.start,
      end: s.end,
      hop,
    });
    const key = tableKey(rule);
    const rules = this.state.tables.get(host.machine)!;
    if (this.add) {
      const existing = rules.get(key);
      if (existing) {
        const origin = AddedRule.originOf(existing);
        return this.defer(Msg.DuplicateRule, s, [rule.machine], {
          related: origin ? [{ span: origin, message: 'added here' }] : [],
        });
      }
      rules.set(key, rule);
    } else if (!rules.delete(key) && !this.unknownBase) {
      this.defer(Msg.DeleteMissingRule, s, [rule.machine]);
    }
  }

  private address(a: Address): Address {
    if (a.q === 'any' || a.q === 'none') return a;
    const key = addressKey(a);
    let shared = this.addresses.get(key);
    if (!shared) this.addresses.set(key, (shared = a));
    return shared;
  }

  private destination(host: Host | undefined, key: string, make: () => Destination): Destination {
    if (!host) return make();
    let mine = this.destinations.get(host);
    if (!mine) this.destinations.set(host, (mine = new Map()));
    let shared = mine.get(key);
    if (!shared) mine.set(key, (shared = make()));
    return shared;
  }

  /**
   * Links are checked against the final state: a later block may add the
   * link a rule uses. Each (machine, target) pair is checked once; the rules
   * are walked only to find which ones to blame.
   */
  private checkRuleLinks(): void {
    const missing = new Set<Destination>();
    for (const [host, mine] of this.destinations) {
      for (const dest of mine.values()) {
        if (dest.kind !== 'link' || !this.state.hosts.has(dest.to)) continue;
        if (!this.state.links.has(linkKey(host.machine, dest.to))) missing.add(dest);
      }
    }
    if (missing.size === 0) return;
    for (const rule of allRules(this.state)) {
      if (rule.dest.kind !== 'link' || !missing.has(rule.dest)) continue;
      // Rules of the base are not this program's to answer for.
      const origin = AddedRule.originOf(rule);
      if (!origin || origin.hop < 0) continue;
      const deleted = this.deletedHere(linkKey(rule.machine, rule.dest.to));
      this.sink.report(
        Msg.LinkMissingForRule,
        { start: origin.hop, end: origin.end },
        [rule.machine, rule.dest.to, deleted.length ? ' any more' : ''],
        deleted.length
          ? { related: deleted, hint: 'delete this rule along with its link, or keep the link' }
          : { related: deleted },
      );
    }
  }
}

/** Evaluates a whole program tree (the streaming path is `Evaluator.visit`). */
export function evaluate(program: Program, sink: DiagnosticSink, complete = true): State {
  const ev = new Evaluator(sink);
  for (const h of program.hosts) ev.visit(h);
  for (const b of program.blocks) {
    ev.visit(b);
    for (const s of b.statements) ev.visit(s);
  }
  return ev.finish(complete);
}
