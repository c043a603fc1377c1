import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { freePort } from '../support/sshd.js';
import { ok, startVnetd, stopVnetd, waitFor, type SpawnedVnetd } from '../support/vnetd-process.js';

/**
 * Two real vnetd processes with a TCP link hb → ha, and a host on ha's own
 * loopback address that keeps 128 idle connections open to ha's port (as
 * many as ha holds handshakes for), reopening each as ha closes it. hb is
 * killed and restarted, and must get its link back while they are held.
 */

/** ha's bound on pending handshakes: the most an attacker ever needs to hold. */
const POOL = 128;

let base: string;
let ha: SpawnedVnetd;
let hb: SpawnedVnetd;

async function commit(d: SpawnedVnetd, lines: string[]): Promise<void> {
  await ok(d, 'BATCH');
  for (const l of lines) await ok(d, l);
  await ok(d, 'COMMIT');
}

async function linkState(d: SpawnedVnetd, peer: string): Promise<string | undefined> {
  const line = (await ok(d, 'LINKS?')).data.find((l) => l.startsWith(`${peer} `));
  return line?.split(' ')[5];
}

async function counter(d: SpawnedVnetd, name: string): Promise<number> {
  const line = (await ok(d, 'STATS?')).data.find((l) => l.startsWith(`${name} `));
  return Number(line?.split(' ')[1]);
}

/**
 * Keeps `count` connections to `port` open, sending nothing. One that was
 * held until the handshake deadline is reopened at once, as the attack
 * needs; one closed sooner (pushed out for a newer one) after a pause, so
 * the churn stays bounded. Never more than `count` at a time, nor
 * `maxOpens` in all.
 */
function holdIdle(port: number, count: number, maxOpens: number) {
  const open = new Set<net.Socket>();
  let opens = 0;
  let stopped = false;
  const timers = new Set<NodeJS.Timeout>();
  const connectOne = (): void => {
    if (stopped || opens >= maxOpens) return;
    opens++;
    const s = net.connect({ port, host: '127.0.0.1' });
    const born = Date.now();
    open.add(s);
    s.on('error', () => {});
    s.on('close', () => {
      open.delete(s);
      const timedOut = Date.now() - born >= 2500;
      const t = setTimeout(() => (timers.delete(t), connectOne()), timedOut ? 0 : 500);
      timers.add(t);
    });
  };
  for (let i = 0; i < count; i++) connectOne();
  return {
    get opens() {
      return opens;
    },
    get open() {
      return open.size;
    },
    stop(): void {
      stopped = true;
      for (const t of timers) clearTimeout(t);
      for (const s of open) s.destroy();
    },
  };
}

beforeAll(async () => {
  base = fs.mkdtempSync(path.join(os.tmpdir(), 'vnetd-flood-'));
  ha = { machine: 'ha', port: await freePort(), dir: path.join(base, 'ha'), log: '' };
  hb = { machine: 'hb', port: await freePort(), dir: path.join(base, 'hb'), log: '' };
  await Promise.all([startVnetd(ha), startVnetd(hb)]);
}, 30_000);

afterAll(async () => {
  await stopVnetd(ha);
  await stopVnetd(hb);
  fs.rmSync(base, { recursive: true, force: true });
});

test('idle connections from one address, as many as ha holds handshakes for, do not keep a restarted dialer from its TCP link', async () => {
  const key = randomBytes(32).toString('hex');
  await commit(ha, [`LINK ADD hb TCP ACCEPT - ${key}`]);
  await commit(hb, [`LINK ADD ha TCP DIAL 127.0.0.1:${ha.port} ${key}`]);
  await waitFor('hb → ha up', async () => ((await linkState(hb, 'ha')) === 'up' ? true : undefined), 10_000);

  const before = await counter(ha, 'listener.connections');
  const attack = holdIdle(ha.port, POOL, 4000);
  try {
    // Every idle connection is ha's before hb comes back, so that without a
    // defence its pool is full when hb dials.
    await waitFor('ha to take every idle connection', async () => ((await counter(ha, 'listener.connections')) >= before + POOL ? true : undefined), 10_000);
    await stopVnetd(hb, 'SIGKILL');
    await startVnetd(hb);
    // Longer than two of ha's 5 s handshake deadlines, at which the attack reopens its sockets.
    await waitFor('hb → ha up again', async () => ((await linkState(hb, 'ha')) === 'up' ? true : undefined), 12_000);
    expect(await linkState(ha, 'hb')).toBe('up');
    // The attack was still under way, as many sockets open as it could hold.
    expect(attack.opens).toBeLessThan(4000);
    expect(attack.open).toBeGreaterThan(0);
  } finally {
    attack.stop();
  }
}, 60_000);
