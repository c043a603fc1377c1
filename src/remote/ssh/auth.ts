import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import ssh2 from 'ssh2';
import type { AnyAuthMethod } from 'ssh2';
import type { SshHostConfig } from './config.js';
import { AgentKeys } from './agent-keys.js';
import { KeyLocked, ProtectedKeyAgent, publicHalf, type KeyUnlocker } from './unlock.js';

/**
 * The ways to prove who we are, in the order OpenSSH tries them: the agent's
 * keys, then identity files (IdentityFile, or the default ones when none is
 * configured). Under IdentitiesOnly the agent still signs for an identity
 * file it holds, and for no other key. A passphrase-protected file is
 * offered through a ProtectedKeyAgent, which asks for the passphrase only
 * once the server accepts the key. Keys that cannot be used (missing,
 * unreadable, not a key) are skipped and named in the failure message.
 */

export interface AuthPlan {
  methods: AnyAuthMethod[];
  /** What was tried and what was skipped, for a person reading why it failed. */
  notes: string[];
  /** Protected keys the server would have taken but that stayed locked, filled in while logging in. */
  locked: KeyLocked[];
  /** Protected keys unlocked to sign with, filled in while logging in. */
  unlocked: string[];
  /** Told while a protected key is being unlocked (set by whoever bounds the login's time). */
  onWait?: (busy: boolean) => void;
}

const DEFAULT_IDENTITIES = ['id_ed25519', 'id_ecdsa', 'id_rsa'];

export function authPlan(cfg: SshHostConfig, home: string, unlocker: KeyUnlocker, warn: (line: string) => void): AuthPlan {
  const methods: AnyAuthMethod[] = [];
  const notes: string[] = [];
  const plan: AuthPlan = { methods, notes, locked: [], unlocked: [] };
  const username = cfg.user;
  const short = (p: string) => (p.startsWith(home + path.sep) ? '~' + p.slice(home.length) : p);

  const configured = cfg.identityFiles.length > 0;
  const files = configured ? cfg.identityFiles : DEFAULT_IDENTITIES.map((n) => path.join(home, '.ssh', n));
  const agent = cfg.agentSocket;
  const agentThere = agent !== undefined && existsSync(agent);
  /** The identity files' public keys: the agent's keys offered first (under IdentitiesOnly, the only ones), and only wanted with an agent. */
  const publics: Buffer[] = [];
  const wantPublics = agentThere;
  for (const file of files) {
    let text: Buffer;
    try {
      text = readFileSync(file);
    } catch (e) {
      // A key kept only in the agent may be named by its .pub alone, as ssh allows.
      const pub = wantPublics ? publicHalf(file, Buffer.alloc(0)) : undefined;
      if (pub) publics.push(pub.getPublicSSH());
      // Missing default identities are normal; a missing configured one is worth saying.
      if (configured || (e as NodeJS.ErrnoException).code !== 'ENOENT') notes.push(`${short(file)}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}`);
      continue;
    }
    const key = ssh2.utils.parseKey(text);
    const pub = !wantPublics ? undefined : key instanceof Error ? publicHalf(file, text) : key;
    if (pub) publics.push(pub.getPublicSSH());
    if (key instanceof Error) {
      if (!/encrypted|passphrase/i.test(key.message)) {
        notes.push(`${short(file)}: not a usable private key (${key.message})`);
        continue;
      }
      const shown = short(file);
      const outcome = (k: unknown) => {
        if (k instanceof KeyLocked) plan.locked.some((l) => l.shown === shown) || plan.locked.push(k);
        else if (!plan.unlocked.includes(shown)) plan.unlocked.push(shown);
      };
      methods.push({ type: 'agent', username, agent: new ProtectedKeyAgent(file, shown, text, unlocker, cfg.passphraseTries, outcome, (busy) => plan.onWait?.(busy)) });
      notes.push(`${shown} (passphrase-protected)`);
      continue;
    }
    methods.push({ type: 'publickey', username, key: text });
    notes.push(short(file));
  }

  // First, as ssh asks the agent before reading any file: a key it holds is used without its passphrase.
  if (!agent) {
    if (!cfg.identitiesOnly) notes.unshift('no agent (SSH_AUTH_SOCK is not set)');
  } else if (!agentThere) {
    notes.unshift(`no agent: ${short(agent)} does not exist`);
  } else if (!cfg.identitiesOnly || publics.length) {
    const unusable = (why: string) => warn(`the SSH agent at ${short(agent)} cannot be used (${why}); going on without it`);
    methods.unshift({ type: 'agent', username, agent: new AgentKeys(agent, publics, cfg.identitiesOnly, unusable) });
    notes.unshift(cfg.identitiesOnly ? `the agent's keys that are these files' (${short(agent)}; IdentitiesOnly)` : `the agent's keys (${short(agent)})`);
  }
  return plan;
}
