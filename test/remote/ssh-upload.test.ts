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
      const e = await reachError(upload(client, place(), [cache], bundle({ 'daemon/vnetd.js': '', daemon: '' }), path.join(cache, '0.0.0-test')));
      expect(e.message).toMatch(/^uploading daemon to h1 failed: /);
      expect(fs.readdirSync(cache)).toEqual([]);
    } finally {
      client.end();
    }
  });

  test('mv failing for a real reason is said, not taken for another upload having got there first', async () => {
    const { client, cache } = await connected();
    try {
      const installDir = path.join(cache, '0.0.0-test');
      // In the way, and not a daemon: mv cannot replace a non-empty directory.
      fs.mkdirSync(path.join(installDir, 'junk'), { recursive: true });
      const e = await reachError(upload(client, place(), [cache], bundle({ 'daemon/vnetd.js': '' }), installDir));
      expect(e.message).toMatch(new RegExp(`^cannot install vnetd into ${installDir} on h1: mv: .*(not empty|exists)`, 'i'));
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
      await upload(client, place(), [cache], bundle({ 'daemon/vnetd.js': 'first' }), installDir);
      await upload(client, place(), [cache], bundle({ 'daemon/vnetd.js': 'second' }), installDir);
      expect(fs.readdirSync(cache)).toEqual(['0.0.0-test']);
      expect(fs.readFileSync(path.join(installDir, 'daemon', 'vnetd.js'), 'utf8')).toBe('first');
    } finally {
      client.end();
    }
  });
});
