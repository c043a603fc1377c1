import { tableKey } from '../src/model/state.js';
import { WireError, type Change, type LinkConfig, type WireRule } from '../src/wire/control.js';

/**
 * A daemon's configuration, links and rules, and the rules for changing it.
 * A batch is applied in place, step by step, each step checked against the
 * configuration the steps before it left; every step records how to take it
 * back, so a batch that fails anywhere is undone whole and the configuration
 * is exactly as it was. The cost of a batch is its own size, never the
 * size of the configuration. Nothing here does I/O.
 */

/** How to take one applied step back. */
type Step =
  | { kind: 'link'; peer: string; before: LinkConfig | undefined }
  | { kind: 'rule'; key: string; rule: WireRule; added: boolean };

/** What `apply` did, for `undo` if the batch cannot be made durable. */
export interface Applied {
  readonly steps: readonly Step[];
}

export class Config {
  readonly links = new Map<string, LinkConfig>();
  /** By the model's rule identity within one table. */
  readonly rules = new Map<string, WireRule>();
  /** How many rules send over each link, for the in-use check on delete. */
  private readonly linkUse = new Map<string, number>();

  constructor(
    readonly machine: string,
    /** Names of the interfaces this daemon has open. */
    readonly interfaces: ReadonlySet<string>,
  ) {}

  static ruleKey(r: WireRule): string {
    return tableKey({ machine: '', ...r });
  }

  /**
   * Applies `changes` in order. On success the configuration is what they
   * lead to; otherwise it is left as it was, and the result holds the error
   * of every step (undefined where a step was fine). `check` may refuse a
   * step (a WireError) for what the daemon knows beyond its configuration.
   */
  apply(changes: readonly Change[], check?: (c: Change) => void): { ok: true; applied: Applied } | { ok: false; errors: (WireError | undefined)[] } {
    const steps: Step[] = [];
    const errors: (WireError | undefined)[] = [];
    let failed = false;
    for (const c of changes) {
      try {
        check?.(c);
        this.applyOne(c, steps);
        errors.push(undefined);
      } catch (e) {
        if (!(e instanceof WireError)) throw e;
        errors.push(e);
        failed = true;
      }
    }
    if (!failed) return { ok: true, applied: { steps } };
    this.undo({ steps });
    return { ok: false, errors };
  }

  /** Takes back a batch `apply` accepted; only the most recent one, and only once. */
  undo(applied: Applied): void {
    const { steps } = applied;
    for (let i = steps.length - 1; i >= 0; i--) {
      const s = steps[i]!;
      if (s.kind === 'link') {
        if (s.before) this.links.set(s.peer, s.before);
        else this.links.delete(s.peer);
      } else if (s.added) {
        this.rules.delete(s.key);
        this.countUse(s.rule, -1);
      } else {
        this.rules.set(s.key, s.rule);
        this.countUse(s.rule, +1);
      }
    }
  }

  private countUse(r: WireRule, by: number): void {
    if (r.dest.kind === 'link') this.linkUse.set(r.dest.to, (this.linkUse.get(r.dest.to) ?? 0) + by);
  }

  private applyOne(c: Change, steps: Step[]): void {
    switch (c.op) {
      case 'link-add':
        if (c.link.peer === this.machine) throw new WireError('E_SYNTAX', `a link from ${this.machine} to itself`);
        // A different configuration for the same peer replaces it in place, so rules keep their link.
        steps.push({ kind: 'link', peer: c.link.peer, before: this.links.get(c.link.peer) });
        this.links.set(c.link.peer, c.link);
        return;
      case 'link-delete': {
        const before = this.links.get(c.peer);
        if (!before) throw new WireError('E_MISSING', `no link to ${c.peer}`);
        const used = this.linkUse.get(c.peer) ?? 0;
        if (used) throw new WireError('E_INUSE', `${used} rule${used === 1 ? '' : 's'} still send over the link to ${c.peer}; delete them first`);
        steps.push({ kind: 'link', peer: c.peer, before });
        this.links.delete(c.peer);
        return;
      }
      case 'rule-add': {
        const key = Config.ruleKey(c.rule);
        if (this.rules.has(key)) throw new WireError('E_EXISTS', 'the table already has this rule');
        const d = c.rule.dest;
        if (d.kind === 'link' && !this.links.has(d.to)) {
          throw new WireError('E_NOLINK', `no link to ${d.to}; add the link first (in the same batch is fine)`);
        }
        if (d.kind === 'interface' && !this.interfaces.has(d.iface)) {
          const open = [...this.interfaces].join(', ') || 'none';
          throw new WireError('E_NOIFACE', `no interface ${d.iface} on ${this.machine} (open: ${open})`);
        }
        steps.push({ kind: 'rule', key, rule: c.rule, added: true });
        this.rules.set(key, c.rule);
        this.countUse(c.rule, +1);
        return;
      }
      case 'rule-delete': {
        const key = Config.ruleKey(c.rule);
        const rule = this.rules.get(key);
        if (!rule) throw new WireError('E_MISSING', 'the table has no such rule');
        steps.push({ kind: 'rule', key, rule, added: false });
        this.rules.delete(key);
        this.countUse(rule, -1);
        return;
      }
    }
  }
}
