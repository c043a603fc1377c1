import { tableKey } from '../src/model/state.js';
import { WireError, type Change, type LinkConfig, type WireRule } from '../src/wire/control.js';

/**
 * A daemon's configuration, links and rules, and the rules for changing it.
 * Changes are checked in order against a scratch copy, so a batch either
 * commits whole or leaves the configuration exactly as it was; nothing here
 * does I/O, so the check is cheap and exact.
 */
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
   * Checks `changes` in order as if applied one after another; on success
   * returns the configuration they lead to (this one is left alone), else
   * the error of every step (undefined where a step was fine).
   */
  tryApply(changes: readonly Change[]): { ok: true; next: Config } | { ok: false; errors: (WireError | undefined)[] } {
    const next = this.copy();
    const errors: (WireError | undefined)[] = [];
    let failed = false;
    for (const c of changes) {
      try {
        next.applyOne(c);
        errors.push(undefined);
      } catch (e) {
        if (!(e instanceof WireError)) throw e;
        errors.push(e);
        failed = true;
      }
    }
    return failed ? { ok: false, errors } : { ok: true, next };
  }

  copy(): Config {
    const c = new Config(this.machine, this.interfaces);
    for (const [k, v] of this.links) c.links.set(k, v);
    for (const [k, v] of this.rules) c.rules.set(k, v);
    for (const [k, v] of this.linkUse) c.linkUse.set(k, v);
    return c;
  }

  private applyOne(c: Change): void {
    switch (c.op) {
      case 'link-add':
        if (c.link.peer === this.machine) throw new WireError('E_SYNTAX', `a link from ${this.machine} to itself`);
        // A different configuration for the same peer replaces it in place, so rules keep their link.
        this.links.set(c.link.peer, c.link);
        return;
      case 'link-delete': {
        if (!this.links.has(c.peer)) throw new WireError('E_MISSING', `no link to ${c.peer}`);
        const used = this.linkUse.get(c.peer) ?? 0;
        if (used) throw new WireError('E_INUSE', `${used} rule${used === 1 ? '' : 's'} still send over the link to ${c.peer}; delete them first`);
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
        this.rules.set(key, c.rule);
        if (d.kind === 'link') this.linkUse.set(d.to, (this.linkUse.get(d.to) ?? 0) + 1);
        return;
      }
      case 'rule-delete': {
        const key = Config.ruleKey(c.rule);
        if (!this.rules.delete(key)) throw new WireError('E_MISSING', 'the table has no such rule');
        const d = c.rule.dest;
        if (d.kind === 'link') this.linkUse.set(d.to, this.linkUse.get(d.to)! - 1);
        return;
      }
    }
  }
}
