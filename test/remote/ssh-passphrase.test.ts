import { jest } from '@jest/globals';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { Host } from '../../src/model/state.js';
import { SshTransport } from '../../src/remote/ssh/ssh-transport.js';
import { packageRoot } from '../../src/util/package-root.js';
import { closingSessions, reachError } from '../support/sessions.js';
import { keygen } from '../support/sshd.js';
import { localSide, sshdForSuites, withAgent } from '../support/ssh-suites.js';

const open = closingSessions();

jest.setTimeout(30_000);

/**
 * Passphrase-protected identity files against a real sshd: a key made with
 * `ssh-keygen -N`, its passphrase given by a real SSH_ASKPASS program (a
 * script that answers from a list and records the prompts it was shown),
 * with no terminal to ask on.
 */

const { sshd, suite } = await sshdForSuites('SSH passphrase', ['LogLevel VERBOSE']);

const SECRET = 'correct horse 7';
const WRONG = ['tr0ub4dor', 'hunter2', 'letmein'];

let n = 0;
/** A local side: a protected copy of the authorized key, ssh_config for h1/h2, and an askpass script answering `answers` in turn. */
function side(answers: string[], delaySeconds = 0) {
  const s = sshd!;
  const said: string[] = [];
  const { home, opts } = localSide(
    s,
    `pass${++n}`,
    ({ home, knownHosts }) => `Host h1 h2\n  HostName 127.0.0.1\n  Port ${s.port}\n  IdentityFile ${path.join(home, 'id_ed25519')}\n  UserKnownHostsFile ${knownHosts}\n  GlobalKnownHostsFile none\n`,
    `[127.0.0.1]:${s.port} ${s.hostKeyPub}\n`,
    (home) => ({
      // No terminal here, whatever runs the tests.
      passphrase: { env: { SSH_ASKPASS: path.join(home, 'askpass'), SSH_ASKPASS_REQUIRE: 'force' }, terminal: path.join(home, 'no-tty') },
      say: (line) => said.push(line),
    }),
  );
  const key = path.join(home, 'id_ed25519');
  fs.copyFileSync(s.userKey, key);
  fs.chmodSync(key, 0o600);
  const p = spawnSync('ssh-keygen', ['-q', '-p', '-N', SECRET, '-f', key], { encoding: 'utf8' });
  if (p.status !== 0) throw new Error(`ssh-keygen -p failed: ${p.stderr}`);
  fs.writeFileSync(path.join(home, 'answers'), answers.map((a) => a + '\n').join(''));
  const askpass = path.join(home, 'askpass');
  // Each call takes the next answer; the prompt (never the answer) is recorded, one per line.
  fs.writeFileSync(
    askpass,
    `#!/bin/sh\nd='${home}'\nsleep ${delaySeconds}\nn=$(( $(cat "$d/count" 2>/dev/null || echo 0) + 1 ))\necho $n > "$d/count"\nprintf '%s\\n' "$1" >> "$d/prompts"\nsed -n "\${n}p" "$d/answers"\n`,
    { mode: 0o700 },
  );
  const prompts = (): string[] => (fs.existsSync(path.join(home, 'prompts')) ? fs.readFileSync(path.join(home, 'prompts'), 'utf8').split('\n').filter(Boolean) : []);
  return { home, key, shown: '~/id_ed25519', askpass, said, opts, prompts };
}

const host = (machine: string): Host => ({ machine, user: sshd!.user, port: 5000, iface: 'vm0' });

afterAll(async () => {
  await sshd?.stop();
});

/** Everything a person or a log could see: no passphrase may be in it. */
function expectNoPassphrase(texts: string[]): void {
  const all = [...texts, sshd!.log()].join('\n');
  for (const p of [SECRET, ...WRONG]) expect(all).not.toContain(p);
}

suite('passphrase-protected identity files', () => {
  test('SSH_ASKPASS (forced, no terminal): asked once for the key however many machines use it', async () => {
    const s = side([SECRET]);
    const t = new SshTransport(s.opts());
    const [a, b] = await Promise.all([open(t, host('h1')), open(t, host('h2'))]);
    expect(await a.control()).toBeUndefined();
    expect(await b.control()).toBeUndefined();
    expect(s.prompts()).toEqual([`Enter passphrase for key '${s.shown}': `]);
    expect(s.said).toEqual([]);
    expectNoPassphrase(s.prompts());
  });

  test('a wrong passphrase is said so and asked again; the right one then logs in', async () => {
    const s = side([WRONG[0]!, SECRET]);
    await open(new SshTransport(s.opts()), host('h1'));
    expect(s.prompts()).toHaveLength(2);
    expect(s.said).toEqual([`wrong passphrase for key ${s.shown}, try again`]);
    expectNoPassphrase([...s.said, ...s.prompts()]);
  });

  test('three wrong passphrases fail that host cleanly, and the key is not asked for again in the same command', async () => {
    const s = side([...WRONG, SECRET]);
    const t = new SshTransport(s.opts());
    const e = await reachError(t.open(host('h1')));
    expect(e.machine).toBe('h1');
    expect(e.message).toBe(`cannot log in to ${sshd!.user}@127.0.0.1:${sshd!.port} (h1): wrong passphrase for key ${s.shown} (3 tries)`);
    expect(e.hint).toContain(`ssh-add ${s.shown}`);
    expect(s.said.at(-1)).toBe(`wrong passphrase for key ${s.shown}: 3 tries, giving up on it`);
    const again = await reachError(t.open(host('h2')));
    expect(again.message).toMatch(/wrong passphrase for key .* \(3 tries\)$/);
    expect(s.prompts()).toHaveLength(3);
    expectNoPassphrase([e.message, e.hint!, again.message, ...s.said, ...s.prompts()]);
  });

  test('the connect bound does not run while the passphrase is being asked for', async () => {
    // A person slower than the 1 s bound: the login still goes through.
    const s = side([SECRET], 2);
    await open(new SshTransport(s.opts({ connectTimeoutMs: 1000 })), host('h1'));
    expect(s.prompts()).toHaveLength(1);
  });

  test('an empty answer gives up on the key', async () => {
    const s = side([]);
    const e = await reachError(new SshTransport(s.opts()).open(host('h1')));
    expect(e.message).toMatch(/: no passphrase was given for key .*id_ed25519$/);
    expect(s.prompts()).toHaveLength(1);
  });

  test('no terminal and no askpass allowed: the clear message, and nothing is run', async () => {
    const s = side([SECRET]);
    const noTty = s.opts().passphrase!.terminal!;
    // No askpass at all; one named but without DISPLAY (and not forced); one forbidden by SSH_ASKPASS_REQUIRE=never.
    for (const env of [{}, { SSH_ASKPASS: s.askpass }, { SSH_ASKPASS: s.askpass, DISPLAY: ':9', SSH_ASKPASS_REQUIRE: 'never' }]) {
      const e = await reachError(new SshTransport(s.opts({ passphrase: { env, terminal: noTty } })).open(host('h1')));
      expect(e.message).toBe(`cannot log in to ${sshd!.user}@127.0.0.1:${sshd!.port} (h1): key ${s.shown} is passphrase-protected; add it to ssh-agent (ssh-add ${s.shown}) or run on a terminal / set SSH_ASKPASS`);
    }
    expect(s.prompts()).toEqual([]);
    // DISPLAY (or WAYLAND_DISPLAY) allows the askpass program without forcing it.
    await open(new SshTransport(s.opts({ passphrase: { env: { SSH_ASKPASS: s.askpass, WAYLAND_DISPLAY: 'wayland-9' }, terminal: noTty } })), host('h1'));
    expect(s.prompts()).toHaveLength(1);
  });

  test('NumberOfPasswordPrompts sets the tries; BatchMode yes never asks', async () => {
    const s = side([...WRONG, SECRET]);
    const cfg = path.join(s.home, 'ssh_config');
    const base = fs.readFileSync(cfg, 'utf8');
    // ssh_config: the first value obtained wins, so the per-host line goes first.
    fs.writeFileSync(cfg, `Host h1\n  NumberOfPasswordPrompts 1\nHost h2\n  BatchMode yes\n${base}`);
    const t = new SshTransport(s.opts());
    const batch = await reachError(t.open(host('h2')));
    expect(batch.message).toBe(`cannot log in to ${sshd!.user}@127.0.0.1:${sshd!.port} (h2): key ${s.shown} is passphrase-protected, and the SSH configuration forbids asking (BatchMode yes, or NumberOfPasswordPrompts 0)`);
    expect(batch.hint).toContain(`ssh-add ${s.shown}`);
    expect(s.prompts()).toEqual([]);
    const one = await reachError(t.open(host('h1')));
    expect(one.message).toMatch(/wrong passphrase for key .* \(1 try\)$/);
    expect(s.said).toEqual([`wrong passphrase for key ${s.shown}: 1 try, giving up on it`]);
    expect(s.prompts()).toHaveLength(1);
    fs.writeFileSync(cfg, `Host h1\n  NumberOfPasswordPrompts often\n${base}`);
    const bad = await reachError(new SshTransport(s.opts()).open(host('h1')));
    expect(bad.message).toMatch(/ssh_config:2: NumberOfPasswordPrompts must be a whole number, not 'often'$/);
  });

  test('a key the server does not take is never asked for', async () => {
    const s = side([SECRET]);
    const stranger = path.join(s.home, 'stranger');
    keygen(stranger);
    spawnSync('ssh-keygen', ['-q', '-p', '-N', SECRET, '-f', stranger]);
    fs.rmSync(`${stranger}.pub`);
    fs.appendFileSync(path.join(s.home, 'ssh_config'), `Host h3\n  HostName 127.0.0.1\n  Port ${sshd!.port}\n  IdentityFile ${stranger}\n  UserKnownHostsFile ${path.join(s.home, 'known_hosts')}\n`);
    const e = await reachError(new SshTransport(s.opts()).open(host('h3')));
    expect(e.message).toMatch(/refused every key we offered \(tried: .*stranger \(passphrase-protected\)\)/);
    expect(s.prompts()).toEqual([]);
  });

  test('the agent is preferred when it holds the key: no passphrase asked', async () => {
    const s = side([SECRET]);
    await withAgent(
      s.home,
      // The same key pair, unprotected, in the agent.
      (env) => expect(spawnSync('ssh-add', [sshd!.userKey], { env }).status).toBe(0),
      async (sock) => {
        await open(new SshTransport(s.opts({ local: { home: s.home, authSock: sock } })), host('h1'));
        expect(s.prompts()).toEqual([]);
      },
    );
  });

  /** ssh-add of a protected key file, its passphrase from a program as ssh-add itself asks for it. */
  function sshAdd(env: NodeJS.ProcessEnv, home: string, key: string): void {
    const giver = path.join(home, 'give-passphrase');
    fs.writeFileSync(giver, `#!/bin/sh\necho '${SECRET}'\n`, { mode: 0o700 });
    const r = spawnSync('ssh-add', [key], { env: { ...env, SSH_ASKPASS: giver, SSH_ASKPASS_REQUIRE: 'force', DISPLAY: ':0' }, stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' });
    expect(r.stderr).toMatch(/Identity added/);
  }

  test('IdentitiesOnly yes: the agent signs for the IdentityFile it holds, with no passphrase to be had', async () => {
    const s = side([]);
    const cfg = path.join(s.home, 'ssh_config');
    fs.writeFileSync(cfg, `Host h1\n  IdentitiesOnly yes\n${fs.readFileSync(cfg, 'utf8')}`);
    // Nobody to ask: no terminal, no askpass allowed.
    const noOne = { env: {}, terminal: s.opts().passphrase!.terminal! };
    await withAgent(
      s.home,
      (env) => sshAdd(env, s.home, s.key),
      async (sock) => {
        // Only its public half beside it (as ssh-keygen leaves it) and in the agent: ssh would log in so, and so does vnetc.
        fs.writeFileSync(`${s.key}.pub`, fs.readFileSync(`${sshd!.userKey}.pub`));
        await open(new SshTransport(s.opts({ local: { home: s.home, authSock: sock }, passphrase: noOne })), host('h1'));
        // And with no .pub: the protected file's own clear header names its key.
        fs.rmSync(`${s.key}.pub`);
        await open(new SshTransport(s.opts({ local: { home: s.home, authSock: sock }, passphrase: noOne })), host('h1'));
        expect(s.prompts()).toEqual([]);
      },
    );
  });

  test('IdentitiesOnly yes: an agent key that is not an IdentityFile is not offered, though the server would take it', async () => {
    const s = side([]);
    const cfg = path.join(s.home, 'ssh_config');
    fs.writeFileSync(cfg, `Host h1\n  IdentitiesOnly yes\n${fs.readFileSync(cfg, 'utf8')}`);
    const other = path.join(s.home, 'other');
    const otherPub = keygen(other);
    const authorized = path.join(sshd!.dir, 'authorized_keys');
    const before = fs.readFileSync(authorized, 'utf8');
    fs.appendFileSync(authorized, otherPub + '\n');
    try {
      await withAgent(
        s.home,
        (env) => expect(spawnSync('ssh-add', [other], { env, stdio: 'ignore' }).status).toBe(0),
        async (sock) => {
          const t = (extra: string) => {
            fs.writeFileSync(cfg, `Host h1\n  IdentitiesOnly ${extra}\n${fs.readFileSync(cfg, 'utf8').replace(/^Host h1\n  IdentitiesOnly \w+\n/, '')}`);
            return new SshTransport(s.opts({ local: { home: s.home, authSock: sock }, passphrase: { env: {}, terminal: s.opts().passphrase!.terminal! } }));
          };
          const e = await reachError(open(t('yes'), host('h1')));
          expect(e.message).toBe(`cannot log in to ${sshd!.user}@127.0.0.1:${sshd!.port} (h1): key ${s.shown} is passphrase-protected; add it to ssh-agent (ssh-add ${s.shown}) or run on a terminal / set SSH_ASKPASS`);
          // The same agent without IdentitiesOnly: its key is offered, and taken.
          await open(t('no'), host('h1'));
        },
      );
    } finally {
      fs.writeFileSync(authorized, before);
    }
  });

  test('a connection that needed a passphrase is not kept: said once, and no keeper is started', async () => {
    const s = side([SECRET]);
    const kept = path.join(s.home, 'vnetc', 'ssh');
    const t = new SshTransport(s.opts({ persist: { dir: kept, idleMs: 30_000 } }));
    const a = await open(t, host('h1'));
    const b = await open(t, host('h2'));
    expect(await a.control()).toBeUndefined();
    await a.close();
    await b.close();
    expect(s.said).toEqual([`SSH connections that log in with a passphrase-protected key file (${s.shown}) are not kept after the command; add the key to ssh-agent (ssh-add) to have them kept`]);
    // A keeper's job file is written before it is started, and its proc- entry as it starts: neither is there.
    expect(fs.existsSync(kept) ? fs.readdirSync(kept) : []).toEqual([]);
  });
});

/**
 * The terminal path, on a real pseudo-terminal made by script(1): a child
 * asks with the built asker, the test types once it sees the prompt (echo
 * is off by then), and the child says only whether it got the expected
 * answer. Whatever the terminal showed must not hold what was typed.
 */
const hasScript = spawnSync('script', ['--version']).status === 0;
(hasScript ? describe : describe.skip)('passphrase on a terminal', () => {
  function onTerminal(typed: string): Promise<string> {
    const dir = fs.mkdtempSync(path.join(sshd?.dir ?? '/tmp', 'tty-'));
    const child = path.join(dir, 'ask.mjs');
    const asker = path.join(packageRoot(), 'dist', 'src', 'remote', 'ssh', 'passphrase.js');
    fs.writeFileSync(
      child,
      `import { passphraseAsker } from ${JSON.stringify(asker)};\n` +
        `const ask = passphraseAsker({ SSH_ASKPASS: '/bin/false' });\n` +
        `const a = ask && await ask("Enter passphrase for key 'k': ");\n` +
        `console.log(!ask ? 'NO-TERMINAL' : a === ${JSON.stringify(SECRET)} ? 'GOT-IT' : a === undefined ? 'NONE' : 'OTHER');\n`,
    );
    return new Promise((resolve, reject) => {
      const p = spawn('script', ['-qfec', `${process.execPath} ${child}`, '/dev/null'], { stdio: ['pipe', 'pipe', 'inherit'] });
      let out = '';
      let sent = false;
      p.stdout.on('data', (b: Buffer) => {
        out += b.toString();
        if (!sent && out.includes('Enter passphrase')) {
          sent = true;
          p.stdin.write(typed);
        }
      });
      p.on('error', reject);
      p.on('close', () => {
        fs.rmSync(dir, { recursive: true, force: true });
        resolve(out);
      });
    });
  }

  test('read with echo off; backspace and Ctrl-U edit; Ctrl-C gives no answer', async () => {
    const plain = await onTerminal(`${SECRET}\r`);
    expect(plain).toContain('GOT-IT');
    const edited = await onTerminal(`xyz\x15${SECRET}q\x7f\r`);
    expect(edited).toContain('GOT-IT');
    expect(await onTerminal(`${SECRET}\x03`)).toContain('NONE');
    for (const shown of [plain, edited]) expect(shown).not.toContain(SECRET);
  });
});
