import { execFileSync, spawnSync } from 'node:child_process';
import { netnsUnavailable, sweepStale, Testbed } from './testbed.js';

const skip = netnsUnavailable();
const suite = skip ? describe.skip : describe;
if (skip) console.warn(`namespace testbed tests skipped: ${skip}`);

const namespaces = () => execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' });

suite(`the testbed cleans up (${skip ?? 'root, ip'})`, () => {
  test('destroy removes its namespaces, the links in them and its state directory', async () => {
    const tb = await Testbed.create();
    await tb.lan(['a', 'b']);
    await tb.vm('a', 'vm', 'vmport', '02:00:00:00:00:0a', '10.201.0.9');
    expect(namespaces()).toContain(tb.ns('vm'));
    // Shaping works where the kernel has netem, and says so plainly where it does not.
    const shaped = await tb.shape('a', { delayMs: 5, rateMbit: 100 }).then(() => null, (e: Error) => e.message);
    if (shaped === null) expect((await tb.exec('a', ['tc', 'qdisc', 'show', 'dev', 'eth0'])).stdout).toMatch(/netem .*delay 5ms rate 100Mbit/);
    else expect(shaped).toBe("cannot shape a's link: this kernel has no netem (modprobe sch_netem)");
    await tb.destroy();
    expect(namespaces()).not.toContain(tb.prefix);
  }, 30_000);

  test("a killed run's namespaces are swept by the next run, live runs' are left alone", async () => {
    // The pid of a process that has exited stands in for a test run that was killed.
    const dead = spawnSync('true').pid!;
    const stale = `vnt${dead}xdead01-h1`;
    const mine = `vnt${process.pid}xlive01-h1`;
    execFileSync('ip', ['netns', 'add', stale]);
    execFileSync('ip', ['netns', 'add', mine]);
    try {
      expect(await sweepStale()).toContain(stale);
      expect(namespaces()).not.toContain(stale);
      expect(namespaces()).toContain(mine);
    } finally {
      for (const ns of [stale, mine]) spawnSync('ip', ['netns', 'del', ns]);
    }
  }, 30_000);
});
