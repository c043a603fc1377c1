import { createHmac } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { appendKnownHost, knownHostsName, knownTypes, verifyHostKey } from '../../src/remote/ssh/known-hosts.js';

/** known_hosts lookups on files written by the test, with made-up key blobs. */

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vnetc-kh-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
let n = 0;

/** A key blob: the type as an SSH string, then some bytes. */
function blob(type: string, fill: number): Buffer {
  const t = Buffer.from(type);
  const len = Buffer.alloc(4);
  len.writeUInt32BE(t.length);
  return Buffer.concat([len, t, Buffer.alloc(32, fill)]);
}
const b64 = (b: Buffer) => b.toString('base64');
const K1 = blob('ssh-ed25519', 1);
const K2 = blob('ssh-ed25519', 2);
const R1 = blob('ssh-rsa', 3);

function file(text: string): string {
  const f = path.join(dir, `kh${++n}`);
  fs.writeFileSync(f, text);
  return f;
}

test('names: [host]:port off port 22, lower case', () => {
  expect(knownHostsName('Host1', 22)).toBe('host1');
  expect(knownHostsName('host1', 2222)).toBe('[host1]:2222');
});

test('plain, pattern and negated entries', () => {
  const f = file(`# comment\n\nhost1,10.0.0.1 ssh-ed25519 ${b64(K1)} me@x\n*.lan,!bad.lan ssh-ed25519 ${b64(K2)}\n[host1]:2222 ssh-rsa ${b64(R1)}\n`);
  expect(verifyHostKey([f], 'host1', K1)).toMatchObject({ status: 'known', match: { file: f, line: 3 } });
  expect(verifyHostKey([f], '10.0.0.1', K1).status).toBe('known');
  expect(verifyHostKey([f], 'a.lan', K2).status).toBe('known');
  expect(verifyHostKey([f], 'bad.lan', K2).status).toBe('unknown');
  expect(verifyHostKey([f], '[host1]:2222', R1).status).toBe('known');
  expect(verifyHostKey([f], '[host1]:2222', K1).status).toBe('changed');
  expect(verifyHostKey([f], 'host2', K1).status).toBe('unknown');
  expect(verifyHostKey([f, '/nonexistent'], 'host1', K2)).toEqual({ status: 'changed', known: [expect.objectContaining({ file: f, line: 3 })] });
  expect(knownTypes([f], '[host1]:2222')).toEqual(['ssh-rsa']);
  // A type whose only key on record is revoked elsewhere is not asked for first: the host would be refused with it.
  const g = file(`host1 ssh-ed25519 ${b64(K1)}\nhost1 ssh-rsa ${b64(R1)}\n@revoked * ssh-ed25519 ${b64(K1)}\n`);
  expect(knownTypes([g], 'host1')).toEqual(['ssh-rsa']);
});

test('hashed entries match the name they hash, and only it', () => {
  const salt = Buffer.alloc(20, 7);
  const hashed = `|1|${b64(salt)}|${createHmac('sha1', salt).update('[host1]:2222').digest('base64')}`;
  const f = file(`${hashed} ssh-ed25519 ${b64(K1)}\n`);
  expect(verifyHostKey([f], '[host1]:2222', K1).status).toBe('known');
  expect(verifyHostKey([f], 'host1', K1).status).toBe('unknown');
});

test('@revoked refuses the key for every host; @cert-authority lines are not host keys', () => {
  const f = file(`@revoked * ssh-ed25519 ${b64(K1)}\nhost1 ssh-ed25519 ${b64(K1)}\n@cert-authority host2 ssh-ed25519 ${b64(K2)}\n`);
  expect(verifyHostKey([f], 'host1', K1)).toMatchObject({ status: 'revoked', match: { line: 1 } });
  expect(verifyHostKey([f], 'host2', K2).status).toBe('unknown');
});

test('appending, plain and hashed, to a file without a final newline', () => {
  const f = file(`host1 ssh-ed25519 ${b64(K1)}`);
  expect(appendKnownHost(f, '[h2]:22', K2, false)).toBe(2);
  expect(appendKnownHost(f, 'h3', K2, true)).toBe(3);
  const lines = fs.readFileSync(f, 'utf8').split('\n');
  expect(lines[1]).toBe(`[h2]:22 ssh-ed25519 ${b64(K2)}`);
  expect(lines[2]).toMatch(/^\|1\|/);
  expect(verifyHostKey([f], 'h3', K2).status).toBe('known');
  expect(verifyHostKey([f], 'host1', K1).status).toBe('known');
  const fresh = path.join(dir, 'new', 'known_hosts');
  expect(appendKnownHost(fresh, 'h4', K1, false)).toBe(1);
  expect(fs.statSync(fresh).mode & 0o777).toBe(0o600);
});
