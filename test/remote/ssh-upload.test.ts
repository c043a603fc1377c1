import fs from 'node:fs';
import path from 'node:path';
import type ssh2 from 'ssh2';
import { connectChain } from '../../src/remote/ssh/connect.js';
import { configSources, SshConfig } from '../../src/remote/ssh/config.js';
import { upload } from '../../src/remote/ssh/install.js';
import type { DaemonBundle } from '../../src/remote/ssh/bundle.js';
import { reachError } from '../support/sessions.js';
import { localSide, noNotice, sshdForSuites } from '../support/ssh-suites.js';
import { jest } from '@jest/globals';

/** Uploading the daemon into a cache directory over a real sshd: what a failed upload leaves, and what it says. */

jest.setTimeout(30_000);

const { sshd, suite } = await sshdForSuites('upload');

afterAll(async () => {
  await sshd?.stop();
});

let n = 0;
/** A client logged in to the test sshd, and a fresh cache directory there. */
async function connected(): Promise<{ client: ssh2.Client; cache: string }> {
  const { home, opts } = localSide(sshd!, `up${++n}`, ({ knownHosts }) => `Host h1\n  HostName 127.0.0.1\n  Port ${sshd!.port}\n  IdentityFile ${sshd!.userKey}\n  UserKnownHostsFile ${knownHosts}\n`, `[127.0.0.1]:${sshd!.port} ${sshd!.hostKeyPub}\n`);
  const cfg = new SshConfig(configSources(home, opts().configFile), { home, localUser: sshd!.user, authSock: undefined }, noNotice).lookup('h1', { user: sshd!.user });
  const [client] = await connectChain([], cfg, { machine: 'h1', acceptNew: false, timeoutMs: 5000, home });
  return { client: client!, cache: path.join(home, 'cache') };
}

const bundle = (files: Record<string, string>): DaemonBundle => ({
  version: '0.0.0',
  id: '0.0.0-test',
  entry: 'daemon/vnetd.js',
  files: new Map(Object.entries(files).map(([k, v]) => [k, Buffer.from(v)])),
});
const place = () => ({ machine: 'h1', user: sshd!.user, shellMs: 5000 });

suite('uploading vnetd', () => {
  test('a failed upload leaves no scratch directory behind', async () => {
    const { client, cache } = await connected();
    try {
      // `daemon` is a directory (for daemon/vnetd.js), so writing it as a file fails midway.
      const e = await reachError(upload(client, place(), { dirs: [cache], root: undefined }, bundle({ 'daemon/vnetd.js': '', daemon: '' }), path.join(cache, '0.0.0-test')));
      expect(e.message).toMatch(/^uploading daemon to h1 failed: /);
      expect(fs.readdirSync(cache)).toEqual([]);
    } finally {
      client.end();
    }
  });

  test('something else in the way is said, not taken for another upload having got there first', async () => {
    const { client, cache } = await connected();
    try {
      const installDir = path.join(cache, '0.0.0-test');
      // In the way, and not a daemon: mv cannot replace a non-empty directory.
      fs.mkdirSync(path.join(installDir, 'junk'), { recursive: true });
      const e = await reachError(upload(client, place(), { dirs: [cache], root: undefined }, bundle({ 'daemon/vnetd.js': '' }), installDir));
      expect(e.message).toBe(`cannot install vnetd into ${installDir} on h1: ${installDir} is in the way: a directory that holds no vnetd`);
      expect(e.hint).toContain(`remove ${installDir} there if it is not a complete vnetd`);
      expect(fs.readdirSync(cache)).toEqual(['0.0.0-test']);
    } finally {
      client.end();
    }
  });

  test('another upload that got there first is fine, and its scratch directory goes', async () => {
    const { client, cache } = await connected();
    try {
      const installDir = path.join(cache, '0.0.0-test');
      await upload(client, place(), { dirs: [cache], root: undefined }, bundle({ 'daemon/vnetd.js': 'first' }), installDir);
      await upload(client, place(), { dirs: [cache], root: undefined }, bundle({ 'daemon/vnetd.js': 'second' }), installDir);
      expect(fs.readdirSync(cache)).toEqual(['0.0.0-test']);
      expect(fs.readFileSync(path.join(installDir, 'daemon', 'vnetd.js'), 'utf8')).toBe('first');
    } finally {
      client.end();
    }
  });

  test("a day-old scratch directory of the user's, left by an upload that was cut short, goes with the next upload; others stay", async () => {
    const { client, cache } = await connected();
    try {
      const dayOld = new Date(Date.now() - 25 * 3600_000);
      const made = (name: string, opts: { old?: boolean; owner?: number } = {}) => {
        const d = path.join(cache, name);
        fs.mkdirSync(path.join(d, 'daemon'), { recursive: true });
        fs.writeFileSync(path.join(d, 'daemon', 'vnetd.js'), 'half');
        if (opts.owner !== undefined) fs.chownSync(d, opts.owner, opts.owner);
        if (opts.old) fs.utimesSync(d, dayOld, dayOld);
      };
      made('0.0.0-gone.tmp-4242-0a0b0c0d0e0f', { old: true });
      made('0.0.0-test.tmp-4243-0a0b0c0d0e0f', { old: true });
      made('0.0.0-going.tmp-4244-0a0b0c0d0e0f');
      made('0.0.0-used', { old: true });
      if (process.getuid?.() === 0) made('0.0.0-theirs.tmp-4245-0a0b0c0d0e0f', { old: true, owner: 65534 });
      await upload(client, place(), { dirs: [cache], root: undefined }, bundle({ 'daemon/vnetd.js': 'new' }), path.join(cache, '0.0.0-test'));
      expect(fs.readdirSync(cache).sort()).toEqual(['0.0.0-going.tmp-4244-0a0b0c0d0e0f', '0.0.0-test', ...(process.getuid?.() === 0 ? ['0.0.0-theirs.tmp-4245-0a0b0c0d0e0f'] : []), '0.0.0-used']);
    } finally {
      client.end();
    }
  });

  test('an upload that outlasts its bound gives up, says so, and leaves no scratch directory', async () => {
    const { client, cache } = await connected();
    try {
      // Far more than a millisecond's worth of writing, however fast the machine.
      const e = await reachError(upload(client, place(), { dirs: [cache], root: undefined }, bundle({ 'daemon/vnetd.js': 'x'.repeat(64 << 20) }), path.join(cache, '0.0.0-test'), 1));
      expect(e.message).toBe('uploading vnetd to h1 did not finish within 1 s');
      expect(e.hint).toBe('check the connection to it, and run the command again (the upload starts afresh)');
      expect(fs.readdirSync(cache)).toEqual([]);
    } finally {
      client.end();
    }
  });
});
