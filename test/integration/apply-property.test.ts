import { jest } from '@jest/globals';
import fc from 'fast-check';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { liveFromState } from '../../src/model/live.js';
import { linkKey, type Host, type State } from '../../src/model/state.js';
import { diff } from '../../src/plan/diff.js';
import type { Step } from '../../src/plan/plan.js';
import { printStep } from '../../src/plan/text.js';
import { applyPlan } from '../../src/remote/apply.js';
import { fetchLive, overlayAddresses, type Fetched } from '../../src/remote/fetch.js';
import { defaultLaunch } from '../../src/remote/launch.js';
import { LocalTransport } from '../../src/remote/local.js';
import { build, canonical, MACHINES, stateOver } from '../plan/gen.js';

/**
 * The plan model's promises, checked against what real vnetd processes hold
 * rather than against the model itself: for random desired states, one after
 * another over the same daemons (so links and rules get replaced and deleted,
 * not only created), apply converges, the daemons then hold exactly the
 * desired state, and the plan made from their live state is the one the model
 * makes from the state they were last given. The daemons are the local
 * transport's, started and restarted the way `vnetc up --local` does.
 */

jest.setTimeout(60_000);

// One port for every daemon (each has its own loopback address); P+1 and P+2 are its VM's.
const port = 20000 + 3 * Math.floor(Math.random() * 10000);
const HOSTS = MACHINES.map((machine) => ({ machine, port, iface: 'vm0' }));

/** Nothing but the hosts: what the daemons hold once started. */
const bare = (): State => build({ hosts: HOSTS, links: [], rules: [] });
const hosts: Host[] = [...bare().hosts.values()];

let home: string;
let transport: LocalTransport;

async function withLive<T>(use: (f: Fetched) => Promise<T>): Promise<T> {
  const fetched = await fetchLive(hosts, transport);
  try {
    expect(fetched.failures.map((f) => f.message)).toEqual([]);
    return await use(fetched);
  } finally {
    await fetched.close();
  }
}

/**
 * A step as plan prints it, both sides of a replace: equal texts, equal changes. Links by their
 * key: which end a file names first is not something a daemon holds.
 */
const side = (s: Step, which: 'before' | 'after'): string => {
  if (s.kind !== 'link') return printStep(s, which);
  const l = s[which]!;
  return `LINK ${linkKey(l.a, l.b)} ${l.proto} dialer ${l.dialer}`;
};
const said = (s: Step): string =>
  s.action === 'replace' ? `~ ${side(s, 'before')} => ${side(s, 'after')}` : s.action === 'create' ? `+ ${side(s, 'after')}` : `- ${side(s, 'before')}`;

const planOf = (f: Fetched, desired: State) => diff(f.live, desired, { overlayAddress: overlayAddresses(f.reached) });

/** Plans against the daemons, applies, and returns the steps applied. */
async function apply(desired: State): Promise<string[]> {
  return withLive(async (f) => {
    const plan = planOf(f, desired);
    const report = await applyPlan(plan.steps, f, {
      launchFor: defaultLaunch,
      replan: () => planOf(f, desired).steps,
    });
    expect(report.failures).toEqual([]);
    expect(report.results.map((r) => `${said(r.step)}: ${r.status}`)).toEqual(plan.steps.map((s) => `${said(s)}: applied`));
    return plan.steps.map(said);
  });
}

/** The daemons hold exactly `desired`, agree among themselves, and a new plan has nothing to do. */
async function expectHeld(desired: State): Promise<void> {
  await withLive(async (f) => {
    expect(canonical(f.live.state)).toEqual(canonical(desired));
    expect(f.live.drift).toEqual([]);
    expect(planOf(f, desired).steps.map(said)).toEqual([]);
  });
}

/** Stopped and started again as up does it: over its state directory, so it comes back with what it held. */
async function restart(machine: string): Promise<void> {
  const host = hosts.find((h) => h.machine === machine)!;
  const session = await transport.open(host);
  try {
    await session.stop();
    await session.start(defaultLaunch(host, session));
  } finally {
    await session.close();
  }
}

beforeAll(async () => {
  home = fs.mkdtempSync(path.join(os.tmpdir(), 'vnetc-apply-property-'));
  transport = new LocalTransport(home);
  // The plan from nothing starts every daemon: the product's own way of bringing them up.
  const started = await apply(bare());
  expect(started).toHaveLength(hosts.length);
  await expectHeld(bare());
});

afterAll(async () => {
  try {
    for (const h of hosts) {
      const session = await transport.open(h);
      await session.stop().catch(() => {});
      await session.close().catch(() => {});
    }
  } finally {
    // Whatever a failed stop left running goes too.
    for (const h of hosts) {
      try {
        const launched = await transport.launched(h.machine);
        if (launched?.pid) process.kill(launched.pid, 'SIGKILL');
      } catch {
        // not running
      }
    }
    fs.rmSync(home, { recursive: true, force: true });
  }
});

test('plan and apply against real daemons: converges, holds exactly the desired state, with the steps the model predicts', async () => {
  // What the daemons were last given: the model's picture of them.
  let held = bare();
  let restarted: string | undefined;
  await fc.assert(
    fc.asyncProperty(stateOver(HOSTS), async (desired) => {
      const predicted = diff(liveFromState(held), desired).steps.map(said);
      try {
        const applied = await apply(desired);
        // Minimality against the daemons: nothing applied beyond the model's own diff (a step the
        // daemons' live state forced, such as a redial or a half-open link, would show here).
        expect(applied).toEqual(predicted);
        await expectHeld(desired);
      } catch (e) {
        // The failing pair, not only the state: the daemons held the previous one.
        throw new Error(`from ${JSON.stringify(canonical(held))}\nto ${JSON.stringify(canonical(desired))}\n${(e as Error).message}`);
      }
      held = desired;
      // Once, a daemon that holds links and rules is restarted: what it was given must survive.
      const busy = hosts.find((h) => (desired.tables.get(h.machine)?.size ?? 0) > 0 && [...desired.links.values()].some((l) => l.a === h.machine || l.b === h.machine));
      if (restarted === undefined && busy) {
        restarted = busy.machine;
        await restart(busy.machine);
        await expectHeld(desired);
      }
    }),
    // No shrinking: the daemons are a sequence's state, so a shrunk case would run from another one than the failure did.
    { numRuns: 25, endOnFailure: true },
  );
  expect(restarted).toBeDefined();
  // Back to bare hosts: every link and rule the sequence left is deleted.
  expect(await apply(bare())).toEqual(diff(liveFromState(held), bare()).steps.map(said));
  await expectHeld(bare());
});
