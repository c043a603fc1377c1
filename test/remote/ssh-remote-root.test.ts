import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Host } from '../../src/model/state.js';
import { daemonBundle } from '../../src/remote/ssh/bundle.js';
import { SshTransport } from '../../src/remote/ssh/ssh-transport.js';
import { closingSessions, reachError } from '../support/sessions.js';
import { freePort, type Sshd } from '../support/sshd.js';
import { localSide, sshdForSuites } from '../support/ssh-suites.js';
import { jest } from '@jest/globals';

/**
 * A remote root other users can write in: vnetc must neither run what they
 * planted there nor write through their symlinks (real sshd, and `nobody`
 * as the other user).
 */

jest.setTimeout(30_000);

const open = closingSessions();
const { sshd, suite } = await sshdForSuites('shared remote root');
const NOBODY = 65534;

afterAll(async () => {
  await sshd?.stop();
});

let n = 0;
const host = (port: number): Host => ({ machine: 'h1', user: sshd!.user, port, iface: 'vm0' });
const config = (s: Sshd, knownHosts: string) => `Host h1\n  HostName 127.0.0.1\n  Port ${s.port}\n  IdentityFile ${s.userKey}\n  UserKnownHostsFile ${knownHosts}\n  GlobalKnownHostsFile none\n`;

/** A place other users can reach (sshd's own directory is root's alone), holding a remote root, and a session using it. */
async function sharedRoot() {
  const base = fs.mkdtempSync(path.join(os.tmpdir(), 'vnetc-shared-'));
  fs.chmodSync(base, 0o755);
  const root = path.join(base, 'shared2');
  const { opts } = localSide(sshd!, `shared${++n}`, ({ knownHosts }) => config(sshd!, knownHosts), `[127.0.0.1]:${sshd!.port} ${sshd!.hostKeyPub}\n`);
  const port = await freePort();
  const s = await open(new SshTransport(opts({ remoteRoot: root })), host(port));
  return { base, root, port, s, done: () => fs.rmSync(base, { recursive: true, force: true }) };
}

/** mkdir -p as `nobody` would have left it: every directory made is nobody's. */
function mkdirAsNobody(top: string, dir: string): void {
  fs.mkdirSync(dir, { recursive: true, mode: 0o755 });
  for (let d = dir; d.startsWith(top); d = path.dirname(d)) fs.chownSync(d, NOBODY, NOBODY);
}

suite('a remote root other users can write in', () => {
  test("nobody's remote root: its planted daemon does not run, and its pid-file symlink is not written through", async () => {
    const { base, root, port, s, done } = await sharedRoot();
    try {
      const marker = path.join(base, 'ran');
      const victim = path.join(base, 'victimfile');
      fs.writeFileSync(victim, 'precious\n');
      const planted = path.join(root, 'cache', daemonBundle().id, 'daemon');
      mkdirAsNobody(root, planted);
      fs.writeFileSync(path.join(planted, 'vnetd.js'), `require('fs').writeFileSync(${JSON.stringify(marker)}, process.argv.join(' '));\n`);
      fs.chownSync(path.join(planted, 'vnetd.js'), NOBODY, NOBODY);
      mkdirAsNobody(root, path.join(root, 'state', 'h1'));
      fs.symlinkSync(victim, path.join(root, 'state', 'h1', 'vnetd.pid'));
      fs.lchownSync(path.join(root, 'state', 'h1', 'vnetd.pid'), NOBODY, NOBODY);

      const e = await reachError(s.start({ host: host(port), ifaces: [] }));
      expect(e.message).toBe(`${root} on h1 is a directory owned by uid ${NOBODY} with mode drwxr-xr-x: another user could plant the daemon vnetc runs or redirect what it writes, so vnetc will not use it`);
      expect(e.hint).toBe(`make it ${sshd!.user}'s own and closed to others (chown ${sshd!.user} ${root} && chmod go-w ${root}), or set a remote root of ${sshd!.user}'s own (VNETC_REMOTE_ROOT)`);
      expect(fs.existsSync(marker)).toBe(false);
      expect(fs.readFileSync(victim, 'utf8')).toBe('precious\n');
    } finally {
      done();
    }
  });

  test('a directory of our own that group or others may write in is refused too, before anything is uploaded into it', async () => {
    const { root, port, s, done } = await sharedRoot();
    try {
      fs.mkdirSync(path.join(root, 'cache'), { recursive: true });
      fs.chmodSync(path.join(root, 'cache'), 0o777);
      const e = await reachError(s.start({ host: host(port), ifaces: [] }));
      expect(e.message).toMatch(new RegExp(`^${path.join(root, 'cache')} on h1 is a directory owned by uid 0 with mode drwxrwxrwx: `));
      expect(fs.readdirSync(path.join(root, 'cache'))).toEqual([]);
    } finally {
      done();
    }
  });

  test('a symlink as the pid file, in a state directory of our own, is not written through', async () => {
    const { base, root, port, s, done } = await sharedRoot();
    try {
      const victim = path.join(base, 'victimfile');
      fs.writeFileSync(victim, 'precious\n');
      const pidFile = path.join(root, 'state', 'h1', 'vnetd.pid');
      fs.mkdirSync(path.dirname(pidFile), { recursive: true, mode: 0o700 });
      fs.symlinkSync(victim, pidFile);
      const e = await reachError(s.start({ host: host(port), ifaces: [] }));
      expect(e.message).toMatch(new RegExp(`^${pidFile} on h1 is a symlink owned by uid 0 with mode lrwxrwxrwx: `));
      expect(e.hint).toBe(`remove it (rm ${pidFile}) if ${sshd!.user} did not put it there on purpose, or set a remote root of ${sshd!.user}'s own (VNETC_REMOTE_ROOT)`);
      expect(fs.readFileSync(victim, 'utf8')).toBe('precious\n');
    } finally {
      done();
    }
  });
});

suite('a remote root that is a symlink', () => {
  /** A remote root `base/[linkIn/]link` that is a symlink to `target` (made by `make`, under `base`), and a session using it (given as `link/` with `slash`). */
  async function linkedRoot(make: (base: string) => string, { linkIn = '', slash = false } = {}) {
    const base = fs.mkdtempSync(path.join(os.tmpdir(), 'vnetc-linked-'));
    fs.chmodSync(base, 0o755);
    const target = make(base);
    const root = path.join(base, linkIn, 'link');
    fs.mkdirSync(path.dirname(root), { recursive: true });
    fs.symlinkSync(target, root);
    const { opts } = localSide(sshd!, `linked${++n}`, ({ knownHosts }) => config(sshd!, knownHosts), `[127.0.0.1]:${sshd!.port} ${sshd!.hostKeyPub}\n`);
    const port = await freePort();
    const s = await open(new SshTransport(opts({ remoteRoot: slash ? `${root}/` : root })), host(port));
    // A start that should have been refused may have started a daemon after all: stopped before its directory goes.
    const done = async () => {
      await s.stop().catch(() => undefined);
      fs.rmSync(base, { recursive: true, force: true });
    };
    return { base, root, target, port, s, done };
  }

  const ours = (dir: string): string => (fs.mkdirSync(dir, { recursive: true, mode: 0o700 }), dir);

  test('to a directory of our own, along directories of root\'s and ours: used, as the directory it leads to', async () => {
    const { root, target, port, s, done } = await linkedRoot((base) => ours(path.join(base, 'data', 'mine')));
    try {
      await s.start({ host: host(port), ifaces: [] });
      const pid = Number(fs.readFileSync(path.join(target, 'state', 'h1', 'vnetd.pid'), 'utf8'));
      expect(pid).toBeGreaterThan(0);
      expect(fs.readdirSync(path.join(target, 'cache'))).toEqual([daemonBundle().id]);
      const c = await s.control();
      expect((await c!.request('INFO?')).data).toContain('machine h1');
      c!.close();
      await s.stop();
      expect(fs.existsSync(path.join(root, 'state', 'h1', 'vnetd.pid'))).toBe(false);
    } finally {
      await done();
    }
  });

  test("to another user's directory: refused, naming that directory", async () => {
    const { target, port, s, done } = await linkedRoot((base) => {
      const d = ours(path.join(base, 'theirs'));
      fs.chownSync(d, NOBODY, NOBODY);
      return d;
    });
    try {
      const e = await reachError(s.start({ host: host(port), ifaces: [] }));
      expect(e.message).toBe(`${target} on h1 is a directory owned by uid ${NOBODY} with mode drwx------: another user could plant the daemon vnetc runs or redirect what it writes, so vnetc will not use it`);
      expect(fs.readdirSync(target)).toEqual([]);
    } finally {
      await done();
    }
  });

  test.each([
    ["of another user's", (d: string) => (fs.chmodSync(d, 0o755), fs.chownSync(d, NOBODY, NOBODY)), 'drwxr-xr-x', NOBODY],
    ['everyone may write in (not sticky)', (d: string) => fs.chmodSync(d, 0o777), 'drwxrwxrwx', 0],
  ])('to a directory of our own inside a directory %s: refused, naming that directory', async (_, spoil, mode, uid) => {
    const { base, target, port, s, done } = await linkedRoot((b) => ours(path.join(b, 'shared', 'mine')));
    try {
      spoil(path.join(base, 'shared'));
      const e = await reachError(s.start({ host: host(port), ifaces: [] }));
      expect(e.message).toBe(`${path.join(base, 'shared')} on h1 is a directory owned by uid ${uid} with mode ${mode}: another user could plant the daemon vnetc runs or redirect what it writes, so vnetc will not use it`);
      expect(fs.readdirSync(target)).toEqual([]);
    } finally {
      await done();
    }
  });

  test.each([['link'], ['link/']])('itself made by another user, given as %s: refused, naming the link', async (given) => {
    const { root, target, port, s, done } = await linkedRoot((base) => ours(path.join(base, 'mine')), { slash: given.endsWith('/') });
    try {
      fs.lchownSync(root, NOBODY, NOBODY);
      const e = await reachError(s.start({ host: host(port), ifaces: [] }));
      expect(e.message).toMatch(new RegExp(`^${root} on h1 is a symlink owned by uid ${NOBODY} with mode lrwxrwxrwx: `));
      expect(fs.readdirSync(target)).toEqual([]);
    } finally {
      await done();
    }
  });

  test('in a directory anyone may write in (and replace it): refused, naming that directory', async () => {
    const { base, target, port, s, done } = await linkedRoot((b) => ours(path.join(b, 'mine')), { linkIn: 'open' });
    try {
      fs.chmodSync(path.join(base, 'open'), 0o777);
      const e = await reachError(s.start({ host: host(port), ifaces: [] }));
      expect(e.message).toMatch(new RegExp(`^${path.join(base, 'open')} on h1 is a directory owned by uid 0 with mode drwxrwxrwx: `));
      expect(fs.readdirSync(target)).toEqual([]);
    } finally {
      await done();
    }
  });

  test('below it, the state directory as a symlink to a directory of our own is still refused', async () => {
    const { base, target, port, s, done } = await linkedRoot((b) => ours(path.join(b, 'mine')));
    try {
      const elsewhere = ours(path.join(base, 'elsewhere'));
      fs.symlinkSync(elsewhere, path.join(target, 'state'));
      const e = await reachError(s.start({ host: host(port), ifaces: [] }));
      expect(e.message).toMatch(new RegExp(`^${path.join(base, 'link', 'state')} on h1 is a symlink owned by uid 0 with mode lrwxrwxrwx: `));
      expect(fs.readdirSync(elsewhere)).toEqual([]);
    } finally {
      await done();
    }
  });
});
