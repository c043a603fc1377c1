import { createHash } from 'node:crypto';
import { lookup } from 'node:dns/promises';
import net from 'node:net';
import path from 'node:path';
import type { Duplex } from 'node:stream';
import ssh2 from 'ssh2';
import { ReachError } from '../transport.js';
import { authPlan, type AuthPlan } from './auth.js';
import { seconds, within } from './exec.js';
import type { SshHostConfig } from './config.js';
import { tapBanner, type Banner } from './banner.js';
import { appendKnownHost, keyType, knownHostsName, knownTypes, verifyHostKey } from './known-hosts.js';
import { KeyLocked, KeyUnlocker } from './unlock.js';
import { ioErrorText } from '../../util/io-error.js';

/**
 * One authenticated SSH connection per hop: the first hop is dialled, each
 * later one is tunnelled through the previous (ProxyJump), and every hop's
 * host key is checked against known_hosts before we authenticate.
 */

export interface ConnectPolicy {
  /** The .vnet machine the connection is for, for messages. */
  machine: string;
  /** Record unknown host keys instead of refusing them (`--accept-new-host-keys`). */
  acceptNew: boolean;
  /** Bound on reaching and authenticating each hop. */
  timeoutMs: number;
  home: string;
  /** Told each hop's host key once it is verified (jump hosts first). */
  onHostKey?: (hop: number, blob: Buffer) => void;
  /** Resolves the first hop's host name to an address (default: the system's resolver, as for any connection). */
  resolve?: (hostname: string) => Promise<string>;
  /** Unlocks passphrase-protected identity files; without one, nobody is asked and such keys stay locked. */
  unlocker?: KeyUnlocker;
  /** Told each passphrase-protected key a hop logged in with (after unlocking it). */
  onUnlockedKey?: (shown: string) => void;
  /** One-line notices for the person running the command (an agent that cannot be used); none for a keeper. */
  say?: (line: string) => void;
}

/** For connections that must never ask anyone (a keeper). */
const NEVER_ASK = new KeyUnlocker(undefined, () => {});

const systemResolve = async (hostname: string): Promise<string> => (await lookup(hostname)).address;

const RSA_ALGOS = ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'];
/** The host key algorithms ssh2 verifies. */
const HOST_KEY_ALGOS = new Set(['ssh-ed25519', 'ecdsa-sha2-nistp256', 'ecdsa-sha2-nistp384', 'ecdsa-sha2-nistp521', ...RSA_ALGOS]);

/** SHA256 fingerprint, as ssh-keygen -l prints it. */
export const fingerprint = (blob: Buffer): string => 'SHA256:' + createHash('sha256').update(blob).digest('base64').replace(/=+$/, '');

/** Connects through `hops` (in order) to `target`; resolves every client, the target's last. */
export async function connectChain(hops: readonly SshHostConfig[], target: SshHostConfig, policy: ConnectPolicy): Promise<ssh2.Client[]> {
  const clients: ssh2.Client[] = [];
  try {
    const chain = [...hops, target];
    for (let i = 0; i < chain.length; i++) {
      const cfg = chain[i]!;
      const via = clients[i - 1];
      const sock = via ? await tunnel(via, chain[i - 1]!, cfg, policy) : undefined;
      clients.push(await connectOne(cfg, sock, policy, (blob) => policy.onHostKey?.(i, blob)));
    }
    return clients;
  } catch (e) {
    for (const c of clients.reverse()) c.end();
    throw e;
  }
}

/** Where a hop's host key is looked up: the known_hosts files, and the name it is filed under. */
export const hostKeyLookup = (cfg: SshHostConfig): { files: string[]; keyName: string } => ({
  files: [...cfg.userKnownHostsFiles, ...cfg.globalKnownHostsFiles],
  keyName: cfg.hostKeyAlias ?? knownHostsName(cfg.hostname, cfg.port),
});

function tunnel(via: ssh2.Client, viaCfg: SshHostConfig, to: SshHostConfig, policy: ConnectPolicy): Promise<Duplex> {
  const ms = to.connectTimeoutMs ?? policy.timeoutMs;
  // The next hop's connect bound covers its TCP connection too: a jump host that never answers the request would hold the command for ever.
  const late = () =>
    new ReachError(policy.machine, `jump host ${viaCfg.alias} did not open a connection to ${to.hostname}:${to.port} within ${seconds(ms)} s`, `check that ${to.hostname}:${to.port} is reachable from ${viaCfg.alias} (ConnectTimeout in ~/.ssh/config sets the bound)`);
  return within<ssh2.ClientChannel>({ ms, late }, (done) => via.forwardOut('127.0.0.1', 0, to.hostname, to.port, done)).catch((err: Error) => {
    if (err instanceof ReachError) throw err;
    throw new ReachError(
      policy.machine,
      `jump host ${viaCfg.alias} could not open a connection to ${to.hostname}:${to.port}: ${err.message}`,
      `check that ${to.hostname}:${to.port} is reachable from ${viaCfg.alias} and that its sshd allows TCP forwarding (AllowTcpForwarding)`,
    );
  });
}

function connectOne(cfg: SshHostConfig, sock: Duplex | undefined, policy: ConnectPolicy, verified: (blob: Buffer) => void): Promise<ssh2.Client> {
  const { machine } = policy;
  const where = `${cfg.user}@${cfg.hostname}:${cfg.port}${cfg.alias !== cfg.hostname ? ` (${cfg.alias})` : ''}`;
  const { files, keyName } = hostKeyLookup(cfg);
  const accept = policy.acceptNew || cfg.strictHostKeyChecking === 'accept-new' || cfg.strictHostKeyChecking === 'no';
  const auth = authPlan(cfg, policy.home, policy.unlocker ?? NEVER_ASK, policy.say ?? (() => {}));
  if (!auth.any) {
    return Promise.reject(new ReachError(machine, `no SSH key to log in to ${where} with: ${auth.notes.join('; ')}`, 'start ssh-agent and add a key (ssh-add), or set IdentityFile in ~/.ssh/config'));
  }

  // Offer the key types already on record first, so a host with several keys is checked against the one we know.
  // Only types ssh2 can verify: asking for another (a security key's sk-ssh-ed25519) makes it throw before connecting.
  const preferred = knownTypes(files, keyName)
    .flatMap((t) => (t === 'ssh-rsa' ? RSA_ALGOS : [t]))
    .filter((t) => HOST_KEY_ALGOS.has(t));
  let refusal: ReachError | undefined;

  const hostVerifier = (blob: Buffer): boolean => {
    const v = verifyHostKey(files, keyName, blob);
    const fp = `${keyType(blob)} ${fingerprint(blob)}`;
    switch (v.status) {
      case 'known':
        verified(blob);
        return true;
      case 'revoked':
        refusal = new ReachError(machine, `the host key of ${where} (${fp}) is marked @revoked in ${v.match.file}:${v.match.line}`, 'the machine must get a new host key before vnetc will connect');
        return false;
      case 'changed': {
        const lines = v.known.map((k) => `${k.file}:${k.line}`).join(', ');
        refusal = new ReachError(
          machine,
          `the host key of ${where} has CHANGED (it now offers ${fp}; known_hosts has ${lines}); refusing to connect: this may be an attack`,
          `if the machine was reinstalled, confirm the new fingerprint with its administrator, remove the old key (ssh-keygen -R '${keyName}' -f ${v.known[0]!.file}, or delete line ${v.known[0]!.line}), and connect again with --accept-new-host-keys`,
        );
        return false;
      }
      case 'unknown': {
        const file = cfg.userKnownHostsFiles[0];
        if (accept && file) {
          try {
            appendKnownHost(file, keyName, blob, cfg.hashKnownHosts);
          } catch (e) {
            // Not connected unrecorded: the next command, and a keeper, would meet the same unknown key.
            refusal = new ReachError(
              machine,
              `${where} is not a known host (its key is ${fp}), and vnetc cannot record it in ${file}: ${unwritable(e as NodeJS.ErrnoException, file)}`,
              `make ${file} a file you can write (UserKnownHostsFile in ~/.ssh/config names it), or confirm the fingerprint and add the key there yourself (ssh-keyscan -p ${cfg.port} ${cfg.hostname})`,
            );
            return false;
          }
          verified(blob);
          return true;
        }
        refusal = new ReachError(
          machine,
          `${where} is not a known host (its key is ${fp})${accept ? ' and UserKnownHostsFile is none, so it cannot be recorded' : ''}`,
          `confirm the fingerprint with the machine's administrator (ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub there), then run again with --accept-new-host-keys to record it in ${file ?? 'known_hosts'}`,
        );
        return false;
      }
    }
  };

  // Resolved here rather than inside ssh2, so that the resolver can be chosen (tests inject a failing one).
  const address = sock ? Promise.resolve(cfg.hostname) : (policy.resolve ?? systemResolve)(cfg.hostname);
  return address.then(
    (host) => handshake(host),
    (e: Error & { code?: string }) => Promise.reject(describeFailure(e, cfg, where, auth, policy)),
  );

  function handshake(host: string): Promise<ssh2.Client> {
    return new Promise((resolve, reject) => {
      const c = new ssh2.Client();
      // Our own socket (ssh2 takes one as it takes a tunnel), so that what a server that is not sshd says can be told.
      const stream = sock ?? net.connect({ host, port: cfg.port });
      const banner = tapBanner(stream);
      // The bound, kept here rather than by ssh2 (readyTimeout), so that it stops while a person types a passphrase and starts afresh after.
      let timer: NodeJS.Timeout | undefined;
      const bound = (on: boolean) => {
        clearTimeout(timer);
        timer = undefined;
        if (!on) return;
        timer = setTimeout(() => {
          c.destroy();
          fail(Object.assign(new Error('timed out'), { level: 'client-timeout' }));
        }, cfg.connectTimeoutMs ?? policy.timeoutMs);
      };
      const fail = (e: Error & { level?: string; code?: string }) => {
        bound(false);
        // Not end(): after a protocol error the server may never close its side, and a half-closed socket keeps vnetc running.
        c.destroy();
        reject(refusal ?? describeFailure(e, cfg, where, auth, policy, banner()));
      };
      auth.onWait = (busy) => bound(!busy);
      bound(true);
      c.on('ready', () => {
        bound(false);
        for (const k of auth.unlocked) policy.onUnlockedKey?.(k);
        // The control stream is small requests and replies: Nagle would hold each behind the last one's ACK (up to 40 ms, delayed).
        c.setNoDelay(true);
        resolve(c);
      });
      c.on('error', (e: Error & { level?: string; code?: string }) => {
        // A protected key that stayed locked: ssh2 goes on to the next key; it is named if all fail.
        if (e instanceof KeyLocked) return;
        fail(e);
      });
      try {
        c.connect({
          username: cfg.user,
          sock: stream,
          readyTimeout: 0,
          hostVerifier,
          authHandler: auth.next,
          keepaliveInterval: 15_000,
          ...(preferred.length ? { algorithms: { serverHostKey: { remove: preferred, prepend: preferred } as never } } : {}),
        });
      } catch (e) {
        // ssh2 checks its options as it is called: said now, not after the bound runs out.
        stream.destroy();
        fail(e as Error);
      }
    });
  }
}

function describeFailure(e: Error & { level?: string; code?: string }, cfg: SshHostConfig, where: string, auth: AuthPlan, policy: ConnectPolicy, banner: Banner = { kind: 'ssh' }): ReachError {
  const { machine } = policy;
  const bound = seconds(cfg.connectTimeoutMs ?? policy.timeoutMs);
  const port = `check Port${cfg.alias !== cfg.hostname ? ' and HostName' : ''} for ${cfg.alias} in ~/.ssh/config`;
  // However ssh2 put it (a header line too long, too many lines, the connection lost, the bound run out): it is not sshd.
  if (banner.kind === 'other') {
    return new ReachError(machine, `${where} is not an SSH server: it answered '${banner.said}' rather than identifying as SSH`, `${port}: that port serves something else (ssh -v ${cfg.alias} shows the same)`);
  }
  if (banner.kind === 'nothing' && e.level === 'protocol' && /before handshake/.test(e.message)) {
    return new ReachError(
      machine,
      `${where} closed the connection without identifying as SSH`,
      `something took the connection and dropped it at once: ${port}, and check that no firewall or TCP wrapper (hosts.deny) refuses this machine and that sshd is not at its MaxStartups limit`,
    );
  }
  switch (e.code) {
    case 'ECONNREFUSED':
      return new ReachError(machine, `cannot connect to ${where}: connection refused`, `is sshd running there, and is the port right? (set Port for ${cfg.alias} in ~/.ssh/config)`);
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return new ReachError(machine, `cannot resolve the host name '${cfg.hostname}'${cfg.alias !== cfg.hostname ? ` (HostName of ${cfg.alias})` : ''}`, `check the machine name in the .vnet file, or give it a HostName in ~/.ssh/config`);
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
    case 'ETIMEDOUT':
      return new ReachError(machine, `cannot connect to ${where}: ${e.code === 'ETIMEDOUT' ? 'timed out' : 'no route to host'}`, 'check the network path to the machine (or a ProxyJump in ~/.ssh/config)');
  }
  if (e.level === 'client-timeout') {
    return new ReachError(machine, `no SSH answer from ${where} within ${bound} s`, 'check that the machine is up and the port is an SSH server (ConnectTimeout in ~/.ssh/config sets the bound)');
  }
  if (e.level === 'client-authentication') {
    // The server would have taken a protected key: that it stayed locked is the reason, not the other keys.
    const locked = auth.locked[0];
    if (locked) return lockedFailure(machine, where, locked);
    return new ReachError(machine, `${where} refused every key we offered (tried: ${auth.notes.join('; ')})`, `add one of these public keys to ~${cfg.user}/.ssh/authorized_keys on ${cfg.hostname}, or name the right key with IdentityFile in ~/.ssh/config`);
  }
  // sshd ends the login once MaxAuthTries keys were refused, whether or not the one it takes had its turn yet.
  if (/too many authentication failures/i.test(e.message)) {
    return new ReachError(
      machine,
      `${where} ended the login after too many refused keys (sshd's MaxAuthTries; the keys, in the order offered: ${auth.notes.join('; ')})`,
      `set IdentitiesOnly yes and the IdentityFile the server takes for ${cfg.alias} in ~/.ssh/config, so that only that key is offered`,
    );
  }
  return new ReachError(machine, `SSH to ${where} failed: ${e.message}`, 'try `ssh -v` to the same machine to see why');
}

/** Why a known_hosts file cannot be written, in words rather than an errno. */
function unwritable(e: NodeJS.ErrnoException, file: string): string {
  // mkdir of its directory where a file is (EEXIST), or a file further up (ENOTDIR).
  if (e.code === 'EEXIST' || e.code === 'ENOTDIR') return `a directory on its path (${path.dirname(file)} or above) is a file`;
  return ioErrorText(e);
}

function lockedFailure(machine: string, where: string, k: KeyLocked): ReachError {
  const add = `add it to ssh-agent (ssh-add ${k.shown})`;
  switch (k.reason) {
    case 'no-way-to-ask':
      return new ReachError(machine, `cannot log in to ${where}: key ${k.shown} is passphrase-protected; ${add} or run on a terminal / set SSH_ASKPASS`, 'vnetc asks for a passphrase as ssh does: on the terminal, else through SSH_ASKPASS (with DISPLAY, or SSH_ASKPASS_REQUIRE=force)');
    case 'not-asked':
      return new ReachError(machine, `cannot log in to ${where}: key ${k.shown} is passphrase-protected, and the SSH configuration forbids asking (BatchMode yes, or NumberOfPasswordPrompts 0)`, `${add}, or allow prompts for this host in ~/.ssh/config`);
    case 'not-given':
      return new ReachError(machine, `cannot log in to ${where}: no passphrase was given for key ${k.shown}`, `run again and enter it, or ${add}`);
    case 'wrong':
      return new ReachError(machine, `cannot log in to ${where}: wrong passphrase for key ${k.shown} (${k.tries} ${k.tries === 1 ? 'try' : 'tries'})`, `check it with ssh-keygen -y -f ${k.shown}, or ${add}`);
  }
}
