import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import ssh2 from 'ssh2';
import type { AnyAuthMethod, AuthHandlerMiddleware } from 'ssh2';
import { ioErrorText } from '../../util/io-error.js';
import type { SshHostConfig } from './config.js';
import { AgentKeys } from './agent-keys.js';
import { KeyLocked, ProtectedKeyAgent, publicHalf, type KeyUnlocker } from './unlock.js';

/**
 * The ways to prove who we are, in the order OpenSSH tries them: the agent's
 * keys, then identity files (IdentityFile, or the default ones when none is
 * configured). Under IdentitiesOnly the agent still signs for an identity
 * file it holds, and for no other key. A file whose key the agent holds is
 * not offered again: as in ssh's pubkey_prepare, the agent's key takes the
 * place of the first identity file that is it (a second offer of a refused
 * key would only use up one of sshd's MaxAuthTries). A passphrase-protected file is
 * offered through a ProtectedKeyAgent, which asks for the passphrase only
 * once the server accepts the key. Keys that cannot be used (missing,
 * unreadable, not a key) are skipped and named in the failure message.
 */

export interface AuthPlan {
  /** Whether there is anything at all to log in with. */
  any: boolean;
  /** ssh2's authHandler: the next way to log in, for one login. */
  next: AuthHandlerMiddleware;
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
  const turns: FileTurn[] = [];
  const notes: string[] = [];
  let agentKeys: AgentKeys | undefined;
  const plan: AuthPlan = { any: false, next: () => {}, locked: [], unlocked: [], notes };
  const username = cfg.user;
  const short = (p: string) => (p.startsWith(home + path.sep) ? '~' + p.slice(home.length) : p);

  const configured = cfg.identityFiles.length > 0;
  const files = configured ? cfg.identityFiles : DEFAULT_IDENTITIES.map((n) => path.join(home, '.ssh', n));
  const agent = cfg.agentSocket;
  const agentThere = agent !== undefined && existsSync(agent);
  // The files' public keys are for matching the agent's: without one, not looked for.
  const wantPublics = agentThere;
  for (const file of files) {
    let text: Buffer;
    try {
      text = readFileSync(file);
    } catch (e) {
      // A key kept only in the agent may be named by its .pub alone, as ssh allows.
      const pub = wantPublics ? publicHalf(file, Buffer.alloc(0)) : undefined;
      // Still a turn, with nothing to offer: ssh matches the agent's key to it, not to a later copy of the same key.
      if (pub) turns.push({ pub: pub.getPublicSSH() });
      // Missing default identities are normal; a missing configured one is worth saying.
      if (configured || (e as NodeJS.ErrnoException).code !== 'ENOENT') notes.push(`${short(file)}: ${ioErrorText(e)}`);
      continue;
    }
    const key = ssh2.utils.parseKey(text);
    const pub = !wantPublics ? undefined : key instanceof Error ? publicHalf(file, text) : key;
    const turn: FileTurn = { pub: pub?.getPublicSSH() };
    turns.push(turn);
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
      turn.method = { type: 'agent', username, agent: new ProtectedKeyAgent(file, shown, text, unlocker, cfg.passphraseTries, outcome, (busy) => plan.onWait?.(busy)) };
      notes.push(`${shown} (passphrase-protected)`);
      continue;
    }
    turn.method = { type: 'publickey', username, key: text };
    notes.push(short(file));
  }

  // First, as ssh asks the agent before reading any file: a key it holds is used without its passphrase.
  if (!agent) {
    if (!cfg.identitiesOnly) notes.unshift('no agent (SSH_AUTH_SOCK is not set)');
  } else if (!agentThere) {
    notes.unshift(`no agent: ${short(agent)} does not exist`);
  } else if (!cfg.identitiesOnly || turns.some((t) => t.pub)) {
    const unusable = (why: string) => warn(`the SSH agent at ${short(agent)} cannot be used (${why}); going on without it`);
    agentKeys = new AgentKeys(agent, turns.flatMap((t) => (t.pub ? [t.pub] : [])), cfg.identitiesOnly, unusable);
    notes.unshift(cfg.identitiesOnly ? `the agent's keys that are these files' (${short(agent)}; IdentitiesOnly)` : `the agent's keys (${short(agent)})`);
  }

  plan.any = agentKeys !== undefined || turns.some((t) => t.method);
  plan.next = inTurn(agentKeys, username, turns);
  return plan;
}

/** An identity file's turn: how it is offered (none when it cannot be), and its public key when known, by which the agent may stand in for it. */
interface FileTurn {
  method?: AnyAuthMethod;
  pub?: Buffer;
}

/**
 * The agent first, then each file whose key the agent has not already
 * offered. Decided at each file's turn, not before: what the agent holds is
 * known only once ssh2 has asked it, as the login starts. Each agent key
 * stands in for the first file that is it only, as in ssh.
 */
function inTurn(agent: AgentKeys | undefined, username: string, turns: FileTurn[]): AuthHandlerMiddleware {
  let first: AnyAuthMethod | undefined = agent && { type: 'agent', username, agent };
  const stoodIn = new Set<string>();
  const nextFile = (): AnyAuthMethod | undefined => {
    for (let t = turns.shift(); t; t = turns.shift()) {
      const blob = t.pub?.toString('base64');
      if (blob !== undefined && agent?.holds(blob) && !stoodIn.has(blob)) {
        stoodIn.add(blob);
        continue;
      }
      if (t.method) return t.method;
    }
    return undefined;
  };
  return (_left, _partial, next) => {
    const method = first ?? nextFile();
    first = undefined;
    // false ends the login (ssh2 takes it; its types leave it out).
    next(method ?? (false as never));
  };
}
