import { jest } from '@jest/globals';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort } from '../support/sshd.js';
import { sshdForSuites } from '../support/ssh-suites.js';
import { runVnetcAsync, type Run } from '../support/vnetc.js';

/**
 * plan, apply, show, route and down through a real OpenSSH sshd on a
 * loopback port: three machine aliases in the test's own ssh config (-F) all
 * lead to it, each daemon on its own port, and the daemons are bootstrapped
 * over SSH (uploaded into the test's remote root, started, reached through
 * `vnetd ctl` on the SSH connection).
 */

jest.setTimeout(120_000);

// VERBOSE: sshd logs each login, which shows whether a command made new connections.
const { sshd, suite: maybe } = await sshdForSuites('SSH apply', ['LogLevel VERBOSE']);

let dir: string;
let home: string;
const ports: Record<string, number> = {};
// The config by -F: as for ssh, ~/.ssh is the passwd database's home, not HOME, and these tests must not write to the real one.
const sshConfig = () => path.join(home, '.ssh', 'config');
const run = (...args: string[]): Promise<Run> =>
  runVnetcAsync(args[0] === 'ssh-close' ? args : [...args, '-F', sshConfig()], {
    cwd: dir,
    env: { VNETC_HOME: path.join(home, 'vnetc'), VNETC_REMOTE_ROOT: path.join(dir, 'remote'), SSH_AUTH_SOCK: '' },
  });
const knownHosts = () => path.join(home, '.ssh', 'known_hosts');
const mac = (i: number) => `02:00:00:00:01:0${i}`;

function spec(user: string): string {
  const lines = ['BEGIN', `  HOST ${user} AT proxy ${ports.proxy} lan0`, `  HOST ${user} AT host1 ${ports.host1} vm0`, `  HOST ${user} AT host2 ${ports.host2} vm0`, '  ADD'];
  for (const h of [1, 2]) lines.push(`    LINK host${h} proxy`, `    FORWARD host${h} ANY ${mac(h)} vm0`, `    FORWARD host${h} ${mac(h)} NONE host${h} proxy`, `    FORWARD proxy ANY ${mac(h)} proxy host${h}`);
  return [...lines, 'END', ''].join('\n');
}
const ifaces = async (): Promise<string[]> => {
  const out: string[] = [];
  for (const m of ['proxy', 'host1', 'host2']) {
    const p = await freePort();
    out.push('--iface', `${m}=qemu-udp:listen=127.0.0.1:${p},peer=127.0.0.1:${p + 1}`);
  }
  return out;
};

beforeAll(async () => {
  if (!sshd) return;
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vnetc-ssh-apply-'));
  home = path.join(dir, 'home');
  fs.mkdirSync(path.join(home, '.ssh'), { recursive: true, mode: 0o700 });
  for (const m of ['proxy', 'host1', 'host2', 'nowhere']) ports[m] = await freePort();
  const closed = await freePort();
  fs.writeFileSync(
    sshConfig(),
    [
      'Host proxy host1 host2',
      '  HostName 127.0.0.1',
      `  Port ${sshd.port}`,
      'Host nowhere',
      '  HostName 127.0.0.1',
      `  Port ${closed}`,
      'Host *',
      `  IdentityFile ${sshd.userKey}`,
      `  UserKnownHostsFile ${knownHosts()}`,
      // What Debian's /etc/ssh/ssh_config says, which -F leaves unread.
      '  HashKnownHosts yes',
      '  ConnectTimeout 5',
      '',
    ].join('\n'),
  );
  fs.writeFileSync(path.join(dir, 'star.vnet'), spec(sshd.user));
});
afterAll(async () => {
  if (!sshd) return;
  await run('down', 'star.vnet');
  await run('ssh-close');
  // The "remote" is this machine: whatever a failed test left running goes too.
  const state = path.join(dir, 'remote', 'state');
  for (const m of fs.existsSync(state) ? fs.readdirSync(state) : []) {
    try {
      process.kill(Number(fs.readFileSync(path.join(state, m, 'vnetd.pid'), 'utf8')), 'SIGKILL');
    } catch {
      // not running
    }
  }
  await sshd.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

maybe('plan and apply over SSH', () => {
  test('first contact: refused with a clear message until host keys are accepted, then recorded', async () => {
    const r = await run('plan', 'star.vnet');
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/star\.vnet:3:\d+: error\[VN5001\]: cannot reach host1: root@127\.0\.0\.1:\d+ \(host1\) is not a known host \(its key is ssh-ed25519 SHA256:/);
    expect(fs.existsSync(knownHosts())).toBe(false);
  });

  test('apply bootstraps the daemons over SSH and establishes the star; plan then has nothing to do', async () => {
    const a = await run('apply', 'star.vnet', '--auto-approve', '--accept-new-host-keys', ...(await ifaces()));
    expect(a.stdout).toContain('Apply complete! 11 added');
    expect(a.status).toBe(0);
    // Recorded hashed, as OpenSSH's HashKnownHosts does.
    expect(fs.readFileSync(knownHosts(), 'utf8')).toMatch(/^\|1\|\S+ ssh-ed25519 \S+\n$/);
    const again = await run('plan', 'star.vnet', '-detailed-exitcode');
    expect(again.stdout).toBe('No changes. The daemons hold what the file describes.\n');
    expect(again.status).toBe(0);
  });

  test('show and route read the live tables over SSH', async () => {
    const shown = JSON.parse((await run('show', 'star.vnet', '--json')).stdout);
    expect(shown.daemons.map((d: { reached_by: string }) => d.reached_by)).toEqual(expect.arrayContaining([expect.stringContaining('ssh')]));
    expect(shown.daemons.every((d: { running: boolean }) => d.running)).toBe(true);
    const r = await run('route', mac(1), mac(2), '-f', 'star.vnet');
    expect(r.stdout).toContain('✓ delivered into vm0 on host2');
    expect(r.status).toBe(0);
  });

  test('later commands go through the connections earlier ones left open (no new logins); ssh-close closes them; --ssh-persist 0 keeps none', async () => {
    const kept = path.join(home, 'vnetc', 'ssh');
    const keys = () => (fs.existsSync(kept) ? fs.readdirSync(kept).filter((f) => f.endsWith('.pid')) : []);
    const deadline = Date.now() + 15_000;
    while (keys().length < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
    expect(keys()).toHaveLength(3);
    const logins = () => (sshd!.log().match(/Accepted publickey for /g) ?? []).length;
    const before = logins();
    const p = await run('plan', 'star.vnet', '-detailed-exitcode');
    expect(p.status).toBe(0);
    const shown = JSON.parse((await run('show', 'star.vnet', '--json')).stdout);
    expect(shown.daemons.map((d: { reached_by: string }) => d.reached_by)).toEqual([expect.stringMatching(/\(kept\)$/), expect.stringMatching(/\(kept\)$/), expect.stringMatching(/\(kept\)$/)]);
    expect(logins()).toBe(before);

    const closed = await run('ssh-close');
    expect(closed.stdout).toMatch(/^Closed the SSH connections of \d+ keepers?\.\n$/);
    expect(fs.readdirSync(kept)).toEqual([]);
    const fresh = await run('plan', 'star.vnet', '--ssh-persist', '0');
    expect(fresh.status).toBe(0);
    expect(logins()).toBe(before + 3);
    expect(fs.readdirSync(kept)).toEqual([]);
    expect((await run('ssh-close')).stdout).toBe('No SSH connections were kept.\n');
    const bad = await run('plan', 'star.vnet', '--ssh-persist', '-1');
    expect(bad.stderr).toMatch(/--ssh-persist must be a number of seconds from 0 to 2147483 \(about 24.8 days\), not -1/);
  });

  test('an unreachable machine is reported against its HOST line, not as a stack trace', async () => {
    fs.writeFileSync(path.join(dir, 'far.vnet'), spec(sshd!.user).replace(/HOST (\S+) AT host2 \d+ vm0/, `HOST $1 AT nowhere ${ports.nowhere} vm0`).replace(/host2/g, 'nowhere'));
    const r = await run('plan', 'far.vnet');
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/far\.vnet:4:\d+: error\[VN5001\]: cannot reach nowhere: .*refused/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  test('a changed host key is refused, naming the known_hosts line', async () => {
    const saved = fs.readFileSync(knownHosts(), 'utf8');
    const forged = saved.replace(/ssh-ed25519 \S+/, 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeFakeFakeFakeFakeFakeFakeFakeFakeFakeFake');
    fs.writeFileSync(knownHosts(), forged);
    try {
      const r = await run('plan', 'star.vnet', '--accept-new-host-keys');
      expect(r.status).toBe(1);
      expect(r.stderr).toMatch(/VN5001.*host key.*has CHANGED/);
      expect(r.stderr).toContain('or delete line 1');
    } finally {
      fs.writeFileSync(knownHosts(), saved);
    }
  });

  test('down removes the links and rules and stops the daemons over SSH', async () => {
    const d = await run('down', 'star.vnet');
    expect(d.stdout).toMatch(/stopped 3 daemons/);
    expect(d.status).toBe(0);
    const shown = JSON.parse((await run('show', 'star.vnet', '--json')).stdout);
    expect(shown.daemons.map((x: { running: boolean }) => x.running)).toEqual([false, false, false]);
  });
});
