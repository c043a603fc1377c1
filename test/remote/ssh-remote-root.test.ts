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
