import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Host } from '../../src/model/state.js';
import { Phase } from '../../src/plan/plan.js';
import { applyPlan } from '../../src/remote/apply.js';
import { fetchLive } from '../../src/remote/fetch.js';
import { defaultLaunch } from '../../src/remote/launch.js';
import { LocalTransport } from '../../src/remote/local.js';

/**
 * A daemon that refuses its share of an apply (its configuration changed
 * behind the plan's back): the failure names the step it refused and the
 * daemon's reason, not only "1 of 1 changes failed". A real local vnetd.
 */

const KEY = '0f'.repeat(32);

test('a refused batch names the step and the reason', async () => {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'vnetc-refusal-'));
  const host: Host = { machine: 'solo', user: 'vnet', port: 20000 + Math.floor(Math.random() * 20000), iface: 'vm0' };
  const transport = new LocalTransport(home);
  const session = await transport.open(host);
  try {
    await session.start(defaultLaunch(host, session));
    // Someone else makes the link carry a rule, after the plan was made.
    const c = (await session.control())!;
    expect((await c.batch([{ op: 'link-add', link: { peer: 'far', proto: 'tcp', dial: true, address: '127.0.0.1:9', key: KEY, mode: 'encrypt' } }, { op: 'rule-add', rule: { src: { q: 'any' }, dst: { q: 'any' }, dest: { kind: 'link', to: 'far' } } }])).ok).toBe(true);
    await session.close();
    const fetched = await fetchLive([host], transport);
    try {
      const link = { a: 'far', b: 'solo', proto: 'tcp' as const, dialer: 'solo' };
      const report = await applyPlan([{ kind: 'link', action: 'delete', before: link, daemons: ['solo', 'far'], phase: Phase.LinkDeletes }], fetched, { launchFor: defaultLaunch, skip: new Set(['far']) });
      expect(report.ok).toBe(false);
      expect(report.failures).toEqual([
        { machine: 'solo', message: 'E_REJECTED 1 of 1 changes failed; nothing applied; refused: LINK TCP far solo solo: E_INUSE 1 rule still send over the link to far; delete them first' },
      ]);
    } finally {
      await fetched.close();
    }
  } finally {
    await session.stop().catch(() => undefined);
    fs.rmSync(home, { recursive: true, force: true });
  }
}, 30_000);
