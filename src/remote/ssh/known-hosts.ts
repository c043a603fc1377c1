import { createHmac, randomBytes } from 'node:crypto';
import { appendFileSync, mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { patternListMatch } from './patterns.js';

/**
 * known_hosts (sshd(8) SSH_KNOWN_HOSTS FILE FORMAT): which host keys this
 * machine trusts for which host names. Plain and hashed (`|1|salt|hash`)
 * host fields, `[host]:port` for ports other than 22, negated patterns,
 * and the @revoked marker are honoured; @cert-authority lines are skipped,
 * since vnetc's client does not negotiate host certificates.
 */

export interface KnownKey {
  type: string;
  /** The key blob, base64 as in the file. */
  key: string;
  file: string;
  line: number;
  revoked: boolean;
  /** Whether the line names the host (a revoked line counts whatever it names). */
  forHost: boolean;
}

export type HostKeyVerdict =
  | { status: 'known'; match: KnownKey }
  | { status: 'unknown' }
  /** The host has keys on record and this is none of them: the lines to look at. */
  | { status: 'changed'; known: KnownKey[] }
  | { status: 'revoked'; match: KnownKey };

/** The name a host's keys are filed under: `host`, or `[host]:port` off port 22. */
export function knownHostsName(host: string, port: number): string {
  const h = host.toLowerCase();
  return port === 22 ? h : `[${h}]:${port}`;
}

/** The key type named inside an SSH public key blob (its first string). */
export function keyType(blob: Buffer): string {
  if (blob.length < 4) return 'unknown';
  const n = blob.readUInt32BE(0);
  return blob.subarray(4, 4 + Math.min(n, 64)).toString('latin1');
}

export function hashedHostMatch(field: string, name: string): boolean {
  const parts = field.split('|');
  if (parts.length !== 4 || parts[1] !== '1') return false;
  const salt = Buffer.from(parts[2]!, 'base64');
  return createHmac('sha1', salt).update(name).digest('base64') === parts[3];
}

/** All keys on record for `name` in `files`, in file order (missing files are empty). */
export function keysFor(files: readonly string[], name: string): KnownKey[] {
  const out: KnownKey[] = [];
  for (const file of files) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    const lines = text.split('\n');
    for (let i = 0; i < lines.length; i++) {
      const words = lines[i]!.trim().split(/[ \t]+/);
      if (!words[0] || words[0].startsWith('#')) continue;
      let revoked = false;
      if (words[0].startsWith('@')) {
        if (words[0] !== '@revoked') continue;
        revoked = true;
        words.shift();
      }
      const [hosts, type, key] = words;
      if (!hosts || !type || !key) continue;
      const matches = hosts.startsWith('|') ? hashedHostMatch(hosts, name) : patternListMatch(hosts.split(','), name);
      // A revoked key is revoked whatever host it is listed for (sshd(8)).
      if (matches || revoked) out.push({ type, key, file, line: i + 1, revoked, forHost: matches });
    }
  }
  return out;
}

export function verifyHostKey(files: readonly string[], name: string, blob: Buffer): HostKeyVerdict {
  const offered = blob.toString('base64');
  const all = keysFor(files, name);
  const revoked = all.find((k) => k.revoked && k.key === offered);
  if (revoked) return { status: 'revoked', match: revoked };
  const known = all.filter((k) => k.forHost && !k.revoked);
  const match = known.find((k) => k.key === offered);
  if (match) return { status: 'known', match };
  return known.length ? { status: 'changed', known } : { status: 'unknown' };
}

/** The key types on record for `name`, to offer them first in the key exchange (as OpenSSH does). */
export function knownTypes(files: readonly string[], name: string): string[] {
  const all = keysFor(files, name);
  // A key on record for the host but revoked elsewhere would only be refused: its type is not worth asking for first.
  const revoked = new Set(all.filter((k) => k.revoked).map((k) => k.key));
  return [...new Set(all.filter((k) => k.forHost && !k.revoked && !revoked.has(k.key)).map((k) => k.type))];
}

/** Records a first-contact key, hashed when HashKnownHosts asks for it. */
export function appendKnownHost(file: string, name: string, blob: Buffer, hashed: boolean): number {
  mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  let host = name;
  if (hashed) {
    const salt = randomBytes(20);
    host = `|1|${salt.toString('base64')}|${createHmac('sha1', salt).update(name).digest('base64')}`;
  }
  let before = '';
  try {
    before = readFileSync(file, 'utf8');
  } catch {
    // a new file
  }
  const sep = before && !before.endsWith('\n') ? '\n' : '';
  appendFileSync(file, `${sep}${host} ${keyType(blob)} ${blob.toString('base64')}\n`, { mode: 0o600 });
  const lines = before ? before.split('\n').length - (before.endsWith('\n') ? 1 : 0) : 0;
  return lines + 1;
}
