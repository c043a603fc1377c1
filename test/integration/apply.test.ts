import { jest } from '@jest/globals';
import dgram from 'node:dgram';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { compileText } from '../../src/lang/compile.js';
import { Phase } from '../../src/plan/plan.js';
import { diff } from '../../src/plan/diff.js';
import { applyPlan } from '../../src/remote/apply.js';
import { fetchLive } from '../../src/remote/fetch.js';
import { defaultLaunch, vmEndpoints } from '../../src/remote/launch.js';
import { LocalTransport } from '../../src/remote/local.js';
import { runVnetcAsync, type Run } from '../support/vnetc.js';

/**
 * plan, apply, show, route, up and down against real vnetd processes on
 * this machine (the local transport: one loopback address per daemon), the
 * way a user runs them: the built binary in a scratch directory.
 */

jest.setTimeout(60_000);

let dir: string;
let home: string;
const port = 20000 + Math.floor(Math.random() * 20000);
const run = (...args: string[]): Promise<Run> => runVnetcAsync(args, { cwd: dir, env: { VNETC_HOME: home } });
const write = (name: string, text: string) => fs.writeFileSync(path.join(dir, name), text);
const mac = (i: number) => `02:00:00:00:00:0${i}`;

function spec(extra: string[] = []): string {
  const lines = ['BEGIN', `  HOST vnet AT proxy ${port} lan0`];
  for (const h of [1, 2, 3]) lines.push(`  HOST vnet AT host${h} ${port} vm0`);
  lines.push('  ADD');
  for (const h of [1, 2, 3]) {
    lines.push(
      `    LINK host${h} proxy`,
      `    FORWARD host${h} ANY ${mac(h)} vm0`,
      `    FORWARD host${h} ${mac(h)} NONE host${h} proxy`,
      `    FORWARD proxy ANY ${mac(h)} proxy host${h}`,
    );
  }
  return [...lines, ...extra.map((l) => `    ${l}`), 'END', ''].join('\n');
}
const FAST = [`LINK host1 host2`, `FORWARD host1 ${mac(1)} ${mac(2)} host1 host2`, `FORWARD host2 ${mac(2)} ${mac(1)} host2 host1`];

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vnetc-apply-'));
  home = path.join(dir, 'home');
  write('star.vnet', spec());
  write('fast.vnet', spec(FAST));
});
afterAll(async () => {
  await run('down', '--local', 'fast.vnet');
  // Whatever a failed test left running goes too.
  for (const m of fs.existsSync(path.join(home, 'local')) ? fs.readdirSync(path.join(home, 'local'), { withFileTypes: true }) : []) {
    try {
      const { pid } = JSON.parse(fs.readFileSync(path.join(home, 'local', m.name, 'launch.json'), 'utf8')) as { pid: number };
      process.kill(pid, 'SIGKILL');
    } catch {
      // not running
    }
  }
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('the local workflow', () => {
  test('up starts the daemons and the star; a second plan has nothing to do', async () => {
    const up = await run('up', '--local', 'star.vnet');
    expect(up.stderr).toContain('proxy: started\n');
    expect(up.stderr).toContain('proxy: 6 changes committed\n');
    expect(up.stdout).toContain('Plan: 16 to add, 0 to replace, 0 to delete.');
    expect(up.stdout).toMatch(/Apply complete! 16 added, 0 replaced, 0 deleted/);
    expect(up.status).toBe(0);
    const again = await run('plan', '--local', 'star.vnet', '-detailed-exitcode');
    expect(again.stdout).toBe('No changes. The daemons hold what the file describes.\n');
    expect(again.status).toBe(0);
  });

  test('apply asks first, and without a terminal refuses rather than guess', async () => {
    const r = await run('apply', '--local', 'fast.vnet');
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('pass --auto-approve, or apply a plan saved with plan --out');
  });

  test('a saved plan is exactly the change, applies without asking, and leaves nothing to do', async () => {
    const p = await run('plan', '--local', 'fast.vnet', '--out', 'change.vnet', '-detailed-exitcode');
    expect(p.status).toBe(2);
    expect(p.stdout).toContain('Plan: 3 to add, 0 to replace, 0 to delete.');
    const a = await run('apply', '--local', 'change.vnet');
    expect(a.stdout).toContain('Apply complete! 3 added');
    expect(a.status).toBe(0);
    expect((await run('plan', '--local', 'fast.vnet', '-detailed-exitcode')).status).toBe(0);
  });

  test('a saved plan is refused once the daemons have changed', async () => {
    expect((await run('plan', '--local', 'star.vnet', '--out', 'back.vnet')).status).toBe(0);
    // Someone else changes the network in between.
    write('other.vnet', spec([...FAST, `FORWARD host3 ${mac(3)} ${mac(1)} host3 proxy`]));
    expect((await run('apply', '--local', '--auto-approve', 'other.vnet')).status).toBe(0);
    const stale = await run('apply', '--local', 'back.vnet');
    expect(stale.status).toBe(1);
    expect(stale.stderr).toContain('error[VN4002]');
    const back = await run('apply', '--local', '--auto-approve', 'fast.vnet');
    expect(back.stdout).toContain('Apply complete! 0 added, 0 replaced, 1 deleted');
  });

  test('a saved plan that cuts the star carries its --allow-backbone-delete: apply takes it without the flag, and still only on the state it was made against', async () => {
    write('cut.vnet', spec(FAST).split('\n').filter((l) => !/host3 proxy|proxy host3/.test(l)).join('\n'));
    const refused = await run('plan', '--local', 'cut.vnet');
    expect(refused.stderr).toContain('cut.vnet: error[VN4001]');
    expect((await run('plan', '--local', 'cut.vnet', '--allow-backbone-delete', '--out', 'cut-plan.vnet')).status).toBe(0);
    const a = await run('apply', '--local', 'cut-plan.vnet');
    expect(a.stdout).toContain('Apply complete! 0 added, 0 replaced, 3 deleted');
    expect(a.status).toBe(0);
    const again = await run('apply', '--local', 'cut-plan.vnet');
    expect(again.status).toBe(1);
    expect(again.stderr).toContain('error[VN4002]');
    expect((await run('apply', '--local', '--auto-approve', 'fast.vnet')).status).toBe(0);
  });

  test('a daemon restarted between plan and apply: with its state intact the plan stands; with state lost it is stale', async () => {
    write('extra.vnet', spec([...FAST, `FORWARD host3 ${mac(3)} ${mac(2)} host3 proxy`]));
    expect((await run('plan', '--local', 'extra.vnet', '--out', 'extra-plan.vnet')).status).toBe(0);
    const launch = () => JSON.parse(fs.readFileSync(path.join(home, 'local', 'host3', 'launch.json'), 'utf8')) as { pid: number };
    // kill -9 and start again (up restarts what is not running): it restores what it held, so the live state is the one planned against.
    process.kill(launch().pid, 'SIGKILL');
    await new Promise((r) => setTimeout(r, 200));
    expect((await run('up', '--local', 'fast.vnet')).status).toBe(0);
    const a = await run('apply', '--local', 'extra-plan.vnet');
    expect(a.stdout).toContain('Apply complete! 1 added');
    expect(a.status).toBe(0);
    // Now plan again, and restart host3 having lost its state: what was planned against is gone.
    expect((await run('plan', '--local', 'fast.vnet', '--out', 'back-plan.vnet')).status).toBe(0);
    process.kill(launch().pid, 'SIGKILL');
    await new Promise((r) => setTimeout(r, 200));
    for (const f of ['state.json', 'state.journal']) fs.rmSync(path.join(home, 'local', 'host3', f), { force: true });
    const restart = await run('show', '--local', 'fast.vnet');
    expect(restart.stdout).toMatch(/host3 .*no daemon running/);
    // Started again, empty, and given fast.vnet's share: not the state back-plan.vnet was made against.
    expect((await run('up', '--local', 'fast.vnet')).status).toBe(0);
    const stale = await run('apply', '--local', 'back-plan.vnet');
    expect(stale.status).toBe(1);
    expect(stale.stderr).toContain('error[VN4002]');
  });

  test('show: a table, JSON, a .vnet program that describes exactly the live state, and Graphviz', async () => {
    const table = await run('show', '--local', 'fast.vnet');
    expect(table.status).toBe(0);
    expect(table.stdout).toMatch(/^host1 {2}local 127\.[\d.]+, port \d+/m);
    expect(table.stdout).toMatch(/link {2}host2 TCP dial (up|connecting)/);
    const json = JSON.parse((await run('show', '--local', 'fast.vnet', '--json')).stdout);
    expect(json.daemons.map((d: { machine: string }) => d.machine).sort()).toEqual(['host1', 'host2', 'host3', 'proxy']);
    const vnet = await run('show', '--local', 'fast.vnet', '--vnet');
    write('shown.vnet', vnet.stdout);
    expect((await run('validate', 'shown.vnet')).status).toBe(0);
    // What show prints, applied as a spec, changes nothing.
    expect((await run('plan', '--local', 'shown.vnet', '-detailed-exitcode')).status).toBe(0);
    const dot = await run('show', '--dot');
    expect(dot.stdout).toMatch(/^graph vnet \{/);
    expect(dot.stdout).toContain('"host1" -- "host2"');
  });

  test('route: hop by hop with the matching rule; dead ends are found and exit 1', async () => {
    const direct = await run('route', mac(1), mac(2), '-f', 'fast.vnet', '--local');
    expect(direct.status).toBe(0);
    expect(direct.stdout).toContain(`1. host1 (from interface vm0)\n       FORWARD host1 ${mac(1)} ${mac(2)} host1 host2  priority 12`);
    expect(direct.stdout).toContain('✓ delivered into vm0 on host2');
    const star = await run('route', mac(1), mac(3));
    expect(star.stdout).toMatch(/2\. proxy \(over the link from host1\)[\s\S]*3\. host3/);
    const dead = await run('route', mac(1), 'ff:ff:ff:ff:ff:ff', '--json');
    expect(dead.status).toBe(1);
    expect(JSON.parse(dead.stdout).endings).toEqual([expect.objectContaining({ kind: 'dead-end', machine: 'proxy' })]);
    const bad = await run('route', 'nonsense', mac(2));
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain("the source 'nonsense' is not a MAC address");
  });

  test('a daemon killed mid-apply: the report says what was done and what not, and plan shows exactly the rest', async () => {
    const transport = new LocalTransport(home);
    const desired = compileText('x.vnet', spec([...FAST, 'LINK host2 host3', `FORWARD host3 ${mac(3)} ${mac(2)} host3 host2`])).state!;
    const fetched = await fetchLive([...desired.hosts.values()], transport);
    try {
      const plan = diff(fetched.live, desired);
      expect(plan.steps.map((s) => s.phase)).toEqual([Phase.Links, Phase.Rules]);
      const events: string[] = [];
      // host3 dies after the plan was made, before its batch arrives.
      const launch = JSON.parse(fs.readFileSync(path.join(home, 'local', 'host3', 'launch.json'), 'utf8')) as { pid: number };
      process.kill(launch.pid, 'SIGKILL');
      await new Promise((r) => setTimeout(r, 200));
      const report = await applyPlan(plan.steps, fetched, { launchFor: defaultLaunch, progress: (e) => events.push(`${e.machine} ${e.ok}`) });
      expect(report.ok).toBe(false);
      expect(report.failures.map((f) => f.machine)).toEqual(['host3']);
      // host2's share (its end of the link) committed whole; host3's (the other end and the rule) did not.
      expect(report.results.map((r) => [r.step.kind, r.status])).toEqual([
        ['link', 'partial'],
        ['rule', 'failed'],
      ]);
      expect([...report.results[0]!.at].sort((a, b) => a.machine.localeCompare(b.machine))).toEqual([
        { machine: 'host2', ok: true },
        { machine: 'host3', ok: false, error: 'not applied: the daemon closed the control connection' },
      ]);
      expect(events.sort()).toEqual(['host2 true', 'host3 false']);
    } finally {
      await fetched.close();
    }
    // With host3 gone, the Proxy's end of their link is not up, so vnetd drops a frame for host3 there (link-down):
    // route says so and names the rule and the link, rather than follow the rule to a daemon that cannot answer.
    const cut = await run('route', mac(1), mac(3), '--json');
    expect(cut.status).toBe(1);
    const cutReport = JSON.parse(cut.stdout) as { hops: { machine: string; passed_over: { rule: string; text: string }[] }[]; endings: unknown[] };
    expect(cutReport.endings).toEqual([expect.objectContaining({ kind: 'dead-end', machine: 'proxy', drop: 'link-down' })]);
    expect(cutReport.hops.map((h) => h.machine)).toEqual(['host1', 'proxy']);
    expect(cutReport.hops[1]!.passed_over).toEqual([{ rule: `FORWARD proxy ANY ${mac(3)} proxy host3`, priority: 10, why: expect.stringMatching(/^(down|connecting)$/), text: expect.stringMatching(/^the link to host3 is /) }]);
    write('more.vnet', spec([...FAST, 'LINK host2 host3', `FORWARD host3 ${mac(3)} ${mac(2)} host3 host2`]));
    // host3 is down: the plan restarts it, and what it restores from its state is not redone.
    const p = await run('plan', '--local', 'more.vnet');
    expect(p.stdout).toContain('+ HOST vnet AT host3');
    const a = await run('apply', '--local', '--auto-approve', 'more.vnet');
    // Restarted, host3 restores its rules; the half-made link is made whole at both ends.
    expect(a.stderr.split('\n').sort()).toEqual(['', 'host2: 1 change committed', 'host3: 2 changes committed', 'host3: started']);
    expect(a.status).toBe(0);
    expect((await run('plan', '--local', 'more.vnet', '-detailed-exitcode')).status).toBe(0);
    expect((await run('apply', '--local', '--auto-approve', 'fast.vnet')).status).toBe(0);
  });

  test('infer: turns VTTIF on at every daemon, then shows who talks to whom as a table, JSON, DOT, SVG and --watch lines', async () => {
    const transport = new LocalTransport(home);
    const sockets: dgram.Socket[] = [];
    const vmAt = async (machine: string) => {
      const { daemon, vm } = vmEndpoints(`${await transport.addressOf(machine)}:${port}`);
      const s = dgram.createSocket('udp4');
      await new Promise<void>((r) => s.bind(vm.port, vm.host, () => r()));
      sockets.push(s);
      return (dst: number, src: number, bytes: number) => {
        const f = Buffer.alloc(bytes);
        Buffer.from(mac(dst).replace(/:/g, ''), 'hex').copy(f, 0);
        Buffer.from(mac(src).replace(/:/g, ''), 'hex').copy(f, 6);
        s.send(f, daemon.port, daemon.host);
      };
    };
    const [h1, h2, h3] = [await vmAt('host1'), await vmAt('host2'), await vmAt('host3')];
    // 1<->2 heavy, 1<->3 a third of it, 2->3 a trickle under the threshold.
    const traffic = setInterval(() => {
      h1(2, 1, 1000);
      h2(1, 2, 1000);
      h1(3, 1, 600);
      h3(1, 3, 100);
      if (Math.random() < 0.05) h2(3, 2, 100);
    }, 2);
    try {
      const first = await run('infer', '--local', 'fast.vnet', '--rate', '20', '--window', '0.5', '--threshold', '0.2', '--json');
      expect(first.status).toBe(0);
      expect(first.stderr.split('\n').filter(Boolean).sort()).toEqual(
        ['host1', 'host2', 'host3', 'proxy'].map((m) => `vttif: ${m}: set collector=proxy update-hz=20 window-s=0.5`),
      );
      let inf: { state: string; topology: { edges: { a: string; b: string; intensity: number }[] }; hosts: Record<string, string>; params: unknown };
      for (let i = 0; ; i++) {
        const r = await run('infer', '--local', 'fast.vnet', '--json');
        expect(r.stderr).toBe('');
        inf = JSON.parse(r.stdout);
        if (inf.state === 'settled' || i > 40) break;
        await new Promise((res) => setTimeout(res, 100));
      }
      expect(inf.state).toBe('settled');
      expect(inf.params).toEqual({ updateHz: 20, windowS: 0.5, threshold: 0.2 });
      expect(inf.topology.edges.map((e) => `${e.a} ${e.b}`)).toEqual([`${mac(1)} ${mac(2)}`, `${mac(1)} ${mac(3)}`]);
      expect(inf.topology.edges[0]!.intensity).toBe(1);
      expect(inf.hosts).toMatchObject({ [mac(1)]: 'host1', [mac(2)]: 'host2' });

      const table = await run('infer', '--local', 'fast.vnet', '--svg', 'inferred.svg');
      expect(table.status).toBe(0);
      expect(table.stdout).toContain(mac(1));
      expect(table.stderr).toBe('wrote inferred.svg\n');
      expect(fs.readFileSync(path.join(dir, 'inferred.svg'), 'utf8')).toMatch(/<svg[^>]*xmlns="http:\/\/www.w3.org\/2000\/svg"/);
      const dot = await run('infer', '--local', 'fast.vnet', '--dot');
      expect(dot.stdout).toMatch(/penwidth/);
      const watch = await run('infer', '--local', 'fast.vnet', '--watch', '--max-changes', '1');
      expect(watch.status).toBe(0);
      expect(watch.stdout.trim().split('\n')).toHaveLength(1);
      expect(watch.stdout).toContain('2 edges');

      // VADAPT from the live inference: host1 and host3 talk but have no fast path yet.
      const adapted = await run('adapt', '--live', '--local', '-s', 'fast.vnet', '-o', 'adapted.vnet');
      expect(adapted.stderr).toBe('');
      expect(adapted.status).toBe(0);
      const adaptedText = fs.readFileSync(path.join(dir, 'adapted.vnet'), 'utf8');
      expect(adaptedText).toMatch(/^\s*LINK host1 host3/m);
      // Latencies come from what the links measured (the star has been up for longer than a keep-alive).
      expect(adaptedText.replace(/\n# /g, ' ')).toMatch(/latency measured by the links' keep-alives on [1-9]\d* links?/);
      expect((await run('plan', '--local', 'adapted.vnet', '-detailed-exitcode')).status).toBe(2);
      const watched = await run('adapt', '--watch', '--max-changes', '1', '--local', '-s', 'fast.vnet', '-o', 'watched.vnet');
      expect(watched.status).toBe(0);
      expect(fs.readFileSync(path.join(dir, 'watched-1.vnet'), 'utf8')).toMatch(/^\s*LINK host1 host3/m);
      expect((await run('adapt', '--live', '-m', 'x.json', '-s', 'fast.vnet')).stderr).toContain('give --matrix or --live (or --watch), not both');

      // --window auto: from the daemons' configuration time (here their own longest commit, well under a second).
      const auto = await run('infer', '--local', 'fast.vnet', '--window', 'auto', '--rate', '10', '--json');
      expect(auto.status).toBe(0);
      const w = (JSON.parse(auto.stdout) as { params: { windowS: number } }).params.windowS;
      expect(auto.stderr).toContain(`window-s=${w}`);
      expect(w).toBeGreaterThanOrEqual(0.1);
      expect(w).toBeLessThan(2);

      const bad = await run('infer', '--local', 'fast.vnet', '--rate', '1', '--window', '0.25');
      expect(bad.status).toBe(2);
      expect(bad.stderr).toContain('must be at least one update interval');
      const wrong = await run('infer', '--local', 'fast.vnet', '--collector', 'nowhere');
      expect(wrong.status).toBe(2);
      expect(wrong.stderr).toContain('--collector nowhere is not one of the daemons here');
    } finally {
      clearInterval(traffic);
      for (const s of sockets) s.close();
    }
  });

  test('down removes what the file made and stops its daemons', async () => {
    const d = await run('down', '--local', 'fast.vnet');
    expect(d.stderr).toBe('');
    expect(d.stdout).toMatch(/stopped 4 daemons \(host1, host2, host3, proxy\)/);
    expect(d.status).toBe(0);
    const shown = await run('show', '--local', 'fast.vnet');
    expect(shown.stdout.match(/no daemon running/g)).toHaveLength(4);
  });
});
