import { jest } from '@jest/globals';
import fs from 'node:fs';
import path from 'node:path';
import type { Host } from '../../src/model/state.js';
import { KeeperDir } from '../../src/remote/ssh/keeper-dir.js';
import { readPid } from '../../src/remote/ssh/keeper.js';
import { SshTransport } from '../../src/remote/ssh/ssh-transport.js';
import type { ReachError, Session } from '../../src/remote/transport.js';
import { closingSessions } from '../support/sessions.js';
import { freePort } from '../support/sshd.js';
import { localSide, sshdForSuites } from '../support/ssh-suites.js';

const open = closingSessions();

jest.setTimeout(60_000);

/**
 * Kept SSH connections (keeper.ts) against a real sshd that logs every
 * login, so a reused connection is proven by the logins not growing.
 */

const { sshd, suite } = await sshdForSuites('SSH keeper', ['LogLevel VERBOSE']);

/** Logins sshd has accepted so far: one per SSH handshake. */
const logins = () => (sshd!.log().match(/Accepted publickey for /g) ?? []).length;

let n = 0;
function side(port = sshd!.port, user = sshd!.user, extra = '') {
  const name = `keeper${++n}`;
  const known = path.join(sshd!.dir, name, 'known_hosts');
  const kept = path.join(sshd!.dir, name, 'vnetc', 'ssh');
  const config = (p: number) => `Host h1\n  HostName 127.0.0.1\n  Port ${p}\n  IdentityFile ${sshd!.userKey}\n  UserKnownHostsFile ${known}\n  GlobalKnownHostsFile none\n${extra}`;
  const s = localSide(sshd!, name, () => config(port), `[127.0.0.1]:${sshd!.port} ${sshd!.hostKeyPub}\n`, () => ({ persist: { dir: kept, idleMs: 30_000 } }));
  return { ...s, known, config, kept, user };
}

const host = (machine: string, port: number, user = sshd!.user): Host => ({ machine, user, port, iface: 'vm0' });

/** Every keeper process of every side, so none outlives the tests. */
const dirs: string[] = [];
const daemons: number[] = [];

async function keptPids(dir: string, count = 1): Promise<number[]> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    // Read as commands read them: a file caught half written has no pid yet (Number('') would be 0, the whole process group).
    const pids = fs.existsSync(dir) ? fs.readdirSync(dir).filter((f) => f.endsWith('.pid')).map((f) => readPid(path.join(dir, f))).filter((p) => p !== undefined) : [];
    if (pids.length >= count) return pids;
    if (Date.now() > deadline) throw new Error(`no keeper in ${dir} after 15 s`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Waits (up to 10 s) for a process to be gone; false if it is not. */
async function gone(pid: number): Promise<boolean> {
  const deadline = Date.now() + 10_000;
  while (alive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  return !alive(pid);
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/** A side with a running daemon for h1, and the keeper the starting command left behind. */
async function withKeeper(extraConfig = '') {
  const s = side(sshd!.port, sshd!.user, extraConfig);
  dirs.push(s.kept);
  const port = await freePort();
  const t = new SshTransport(s.opts());
  const first = await open(t, host('h1', port));
  await first.start({ host: host('h1', port), ifaces: [] });
  daemons.push(Number(fs.readFileSync(path.join(s.home, 'remote', 'state', 'h1', 'vnetd.pid'), 'utf8')));
  expect(await first.control()).toBeDefined();
  await first.close();
  const [keeper] = await keptPids(s.kept);
  return { ...s, port, keeper: keeper! };
}

async function info(session: Session): Promise<string> {
  const c = await session.control();
  expect(c).toBeDefined();
  const r = await c!.request('INFO?');
  return r.data.join('\n');
}

afterAll(async () => {
  for (const d of dirs) await new KeeperDir(d).stopAll();
  for (const pid of daemons) if (alive(pid)) process.kill(pid, 'SIGKILL');
  await sshd?.stop();
});

suite('kept SSH connections', () => {
  test('a later command reuses the kept connection: no new login at sshd', async () => {
    const s = await withKeeper();
    const before = logins();
    const t = new SshTransport(s.opts());
    for (let i = 0; i < 3; i++) {
      const again = await open(t, host('h1', s.port));
      expect(again.describe).toMatch(/\(kept\)$/);
      expect(await info(again)).toMatch(/^machine h1$/m);
      await again.close();
    }
    expect(logins()).toBe(before);
    // The keeper's socket and pid file are the owner's alone, in a directory closed to others.
    expect(fs.statSync(s.kept).mode & 0o777).toBe(0o700);
    for (const f of fs.readdirSync(s.kept)) expect(fs.statSync(path.join(s.kept, f)).mode & 0o777).toBe(0o600);
    expect(fs.readdirSync(s.kept).some((f) => f.endsWith('.sock'))).toBe(true);
  });

  test('a killed keeper: its stale socket is cleaned up and the command connects afresh', async () => {
    const s = await withKeeper();
    process.kill(s.keeper, 'SIGKILL');
    expect(await gone(s.keeper)).toBe(true);
    const before = logins();
    const t = new SshTransport(s.opts());
    const again = await open(t, host('h1', s.port));
    expect(again.describe).not.toMatch(/kept/);
    expect(await info(again)).toMatch(/^machine h1$/m);
    expect(logins()).toBe(before + 1);
    expect(fs.readdirSync(s.kept).filter((f) => f.endsWith('.sock') || f.endsWith('.pid'))).toEqual([]);
    // Closing it leaves a new keeper behind.
    await again.close();
    const [next] = await keptPids(s.kept);
    expect(next).not.toBe(s.keeper);
  });

  test('a keeper never serves another port or user', async () => {
    const s = await withKeeper();
    // The same alias, now on a port where nothing listens: refused, not served by the keeper for the old port.
    fs.writeFileSync(s.configFile, s.config(await freePort()));
    const e = (await open(new SshTransport(s.opts()), host('h1', s.port)).catch((x: ReachError) => x)) as ReachError;
    expect(e.message).toMatch(/connection refused/);
    fs.writeFileSync(s.configFile, s.config(sshd!.port));
    // Another user: a login of its own, which sshd refuses (no key of ours is authorized for it).
    const other = await open(new SshTransport(s.opts()), host('h1', s.port, 'nobody')).catch((x: ReachError) => x);
    expect((other as ReachError).message).toMatch(/refused every key|nobody/);
    // The original choice is still served by its keeper.
    const same = await open(new SshTransport(s.opts()), host('h1', s.port));
    expect(same.describe).toMatch(/\(kept\)$/);
    await same.close();
  });

  test('a host key no longer in known_hosts ends the reuse: the keeper is stopped and the fresh connection says why', async () => {
    const s = await withKeeper();
    fs.writeFileSync(s.known, '');
    const e = (await open(new SshTransport(s.opts()), host('h1', s.port)).catch((x: ReachError) => x)) as ReachError;
    expect(e.message).toMatch(/is not a known host/);
    expect(await gone(s.keeper)).toBe(true);
  });

  test('a suspended daemon behind a keeper: the command gives up on the keeper, connects afresh, and names the daemon within the bound', async () => {
    const s = await withKeeper();
    const pid = daemons.at(-1)!;
    process.kill(pid, 'SIGSTOP');
    try {
      // 5 s for the keeper's greeting, then the fresh connection's 10 s (jest's 60 s would end a wait for ever).
      const e = (await open(new SshTransport(s.opts()), host('h1', s.port))
        .then((session) => session.control())
        .catch((x: ReachError) => x)) as ReachError;
      expect(e.message).toBe('vnetd on h1 accepted the connection but did not greet within 10 s');
      expect(e.hint).toMatch(/^it may be suspended \(SIGSTOP\) or wedged: its log is .*vnetd\.log there/);
    } finally {
      process.kill(pid, 'SIGCONT');
    }
  });

  test("a kept connection whose channel does not open: the command reads the keeper's E_CHANNEL, stops it, and its own connection is kept instead", async () => {
    // A connect bound longer than a command waits for a keeper's greeting: the keeper must answer within that wait all the same.
    const s = await withKeeper('  ConnectTimeout 8\n');
    const suspended = sshd!.sessions();
    for (const pid of suspended) process.kill(pid, 'SIGSTOP');
    try {
      const t = new SshTransport(s.opts());
      const again = await open(t, host('h1', s.port));
      expect(again.describe).not.toMatch(/kept/);
      // Stopped by the command, not left to hold the key until its own bound: so the command's connection is the one kept.
      expect(alive(s.keeper)).toBe(false);
      expect(await info(again)).toMatch(/^machine h1$/m);
      await again.close();
      const [next] = await keptPids(s.kept);
      expect(next).not.toBe(s.keeper);
    } finally {
      for (const pid of suspended) process.kill(pid, 'SIGCONT');
    }
  });

  test('a keeper directory open to other users is not used', async () => {
    const s = await withKeeper();
    fs.chmodSync(s.kept, 0o755);
    const again = await open(new SshTransport(s.opts()), host('h1', s.port));
    expect(again.describe).not.toMatch(/kept/);
    await again.close();
    fs.chmodSync(s.kept, 0o700);
  });

  test('persist 0 neither uses nor leaves keepers; stopping the daemon stops its keeper; stopAll stops the rest', async () => {
    const s = await withKeeper();
    const off = await open(new SshTransport(s.opts({ persist: { dir: s.kept, idleMs: 0 } })), host('h1', s.port));
    expect(off.describe).not.toMatch(/kept/);
    await off.close();
    const kept = await open(new SshTransport(s.opts()), host('h1', s.port));
    expect(kept.describe).toMatch(/\(kept\)$/);
    await kept.stop();
    await kept.close();
    expect(alive(s.keeper)).toBe(false);
    expect(fs.readdirSync(s.kept).filter((f) => !f.startsWith('job-'))).toEqual([]);

    const t = await withKeeper();
    expect(await new KeeperDir(t.kept).stopAll()).toBe(1);
    expect(alive(t.keeper)).toBe(false);
  });

  test('an idle keeper lets its connection go and exits', async () => {
    const s = side();
    dirs.push(s.kept);
    const port = await freePort();
    const t = new SshTransport(s.opts({ persist: { dir: s.kept, idleMs: 300 } }));
    const first = await open(t, host('h1', port));
    await first.start({ host: host('h1', port), ifaces: [] });
    daemons.push(Number(fs.readFileSync(path.join(s.home, 'remote', 'state', 'h1', 'vnetd.pid'), 'utf8')));
    await first.close();
    const [keeper] = await keptPids(s.kept);
    expect(await gone(keeper!)).toBe(true);
    expect(fs.readdirSync(s.kept)).toEqual([]);
  });
});
