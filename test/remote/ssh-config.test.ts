import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { splitLine, SshConfigError } from '../../src/remote/ssh/config-file.js';
import { configSources, localContext, parseJump, SshConfig } from '../../src/remote/ssh/config.js';
import { passwdHome } from '../../src/remote/ssh/passwd.js';
import { patternListMatch, wildcardMatch } from '../../src/remote/ssh/patterns.js';
import { expandTokens } from '../../src/remote/ssh/tokens.js';
import { noNotice } from '../support/ssh-suites.js';
import { runTool, toolMissing } from '../support/tools.js';
import { cleanEnv, ROOT } from '../support/vnetc.js';

/** ssh_config(5) semantics, on files written by the test. */

const home = fs.mkdtempSync(path.join(os.tmpdir(), 'vnetc-sshcfg-'));
afterAll(() => fs.rmSync(home, { recursive: true, force: true }));
let n = 0;

function config(text: string, files: Record<string, string> = {}, hostname?: string) {
  const dir = path.join(home, `c${++n}`);
  fs.mkdirSync(path.join(dir, '.ssh'), { recursive: true });
  for (const [name, body] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, '.ssh', name)), { recursive: true });
    fs.writeFileSync(path.join(dir, '.ssh', name), body);
  }
  const file = path.join(dir, '.ssh', 'config');
  fs.writeFileSync(file, text);
  const notices: string[] = [];
  return { dir, file, notices, cfg: new SshConfig(configSources(dir, file), { home: dir, localUser: 'me', authSock: '/agent.sock', ...(hostname ? { hostname } : {}) }, (l) => notices.push(l)) };
}

test('words: quotes, = separators, trailing comments', () => {
  expect(splitLine('  IdentityFile "/a b/key"  # mine', 'f:1')).toEqual(['IdentityFile', '/a b/key']);
  expect(splitLine('Port=22', 'f:1')).toEqual(['Port', '22']);
  expect(splitLine('Port = 22', 'f:1')).toEqual(['Port', '22']);
  expect(splitLine('Port =22', 'f:1')).toEqual(['Port', '22']);
  expect(splitLine('Port= 22', 'f:1')).toEqual(['Port', '22']);
  expect(() => splitLine('HostName "x', 'f:3')).toThrow('f:3: unterminated quote');
});

test('patterns: wildcards, case, negation vetoes', () => {
  expect(wildcardMatch('*.example.org', 'A.Example.ORG')).toBe(true);
  expect(wildcardMatch('h?', 'h12')).toBe(false);
  expect(wildcardMatch('*a*b', 'xaxxab')).toBe(true);
  expect(patternListMatch(['*.example.org', '!c.example.org'], 'c.example.org')).toBe(false);
  expect(patternListMatch(['!c.example.org'], 'a.example.org')).toBe(false); // negation alone matches nothing
});

test('first obtained value wins; IdentityFile accumulates; defaults', () => {
  const { dir, cfg } = config(
    'Host web\n  Port 2200\n  IdentityFile ~/.ssh/web\nhost WEB*\n  port 2300\n  User deploy\n  IdentityFile "%d/two %r@%h:%p"\nHost *\n  Port 22\n  User fallback\n',
  );
  const c = cfg.lookup('web');
  expect(c.port).toBe(2200);
  expect(c.user).toBe('deploy');
  expect(c.hostname).toBe('web');
  expect(c.identityFiles).toEqual([path.join(dir, '.ssh/web'), path.join(dir, 'two deploy@web:2200')]);
  expect(c.userKnownHostsFiles).toEqual([path.join(dir, '.ssh/known_hosts'), path.join(dir, '.ssh/known_hosts2')]);
  expect(c.agentSocket).toBe('/agent.sock');
  expect(c.strictHostKeyChecking).toBe('ask');
  expect(cfg.lookup('web', { user: 'vnet' }).user).toBe('vnet'); // the .vnet user, like ssh -l
  expect(cfg.lookup('other').user).toBe('fallback');
});

test('HostName with %h and %%; tokens are checked', () => {
  const { cfg } = config('Host *.lan\n  HostName %h.example.org\nHost odd\n  HostName 100%%\n');
  expect(cfg.lookup('db.lan').hostname).toBe('db.lan.example.org');
  expect(cfg.lookup('odd').hostname).toBe('100%');
  expect(() => expandTokens('%Q', {}, 'f:1')).toThrow("f:1: unknown or unsupported token '%Q'");
});

test('Include: relative to ~/.ssh, wildcards in order, conditional inside Host', () => {
  const { cfg } = config('Include conf.d/*.conf\nHost inner\n  Include inner.conf\nHost *\n  Port 1\n', {
    'conf.d/10-a.conf': 'Host a\n  Port 10\n',
    'conf.d/20-b.conf': 'Host a b\n  Port 20\n  User from-b\n',
    'conf.d/ignored.txt': 'Host *\n  Port 99\n',
    'inner.conf': 'User inner-user\nHost nope\n  User never\n',
  });
  expect(cfg.lookup('a').port).toBe(10);
  expect(cfg.lookup('a').user).toBe('from-b');
  expect(cfg.lookup('b').port).toBe(20);
  expect(cfg.lookup('inner').user).toBe('inner-user');
  expect(cfg.lookup('other').user).toBe('me');
  expect(cfg.lookup('other').port).toBe(1);
});

test('an Include loop fails with a message, not a stack overflow', () => {
  const { cfg } = config('Include config\n');
  expect(() => cfg.lookup('x')).toThrow(/Include nested too deeply/);
});

test('Match: all, host (after HostName), originalhost, user, negation; exec is never run', () => {
  const { cfg } = config(
    'Host short\n  HostName long.example.org\n' +
      'Match host *.example.org !user root\n  Port 2000\n' +
      'Match originalhost short user root\n  Port 3000\n' +
      `Match exec "touch ${home}/exec-ran"\n  User exec-user\n` +
      'Match all\n  User all-user\n',
  );
  expect(cfg.lookup('short').port).toBe(2000);
  expect(cfg.lookup('short', { user: 'root' }).port).toBe(3000);
  expect(cfg.lookup('short').user).toBe('all-user');
  expect(fs.existsSync(`${home}/exec-ran`)).toBe(false);
});

test('Match exec: never run, its block not applied, said once per line; not reached after a failed criterion', () => {
  const { file, cfg, notices } = config(
    `Match host skipped exec "touch ${home}/exec-ran-2"\n  User never\n` +
      `Match exec "touch ${home}/exec-ran-2 %h"\n  User exec-user\n  Port 2022\n` +
      'Match !final user *\n  Port 2023\n' +
      'Host *\n  User plain\n',
  );
  expect([cfg.lookup('a').user, cfg.lookup('b').port, cfg.lookup('c').user]).toEqual(['plain', 22, 'plain']);
  expect(fs.existsSync(`${home}/exec-ran-2`)).toBe(false);
  expect(notices).toEqual([
    `ssh config: ${file}:3: the lines under this Match are not applied, as vnetc does not run 'touch ${home}/exec-ran-2 %h': it runs no command an ssh config names; if vnetc needs them, put them under a Host line`,
    `ssh config: ${file}:6: the lines under this Match are not applied, as vnetc does not evaluate Match final; if vnetc needs them, put them under a Host line`,
  ]);
  const { cfg: bad } = config('Match hots a\n  User x\n');
  expect(() => bad.lookup('a')).toThrow(/config:1: Match hots is not a Match criterion/);
  const { cfg: bare } = config('Match exec\n');
  expect(() => bare.lookup('a')).toThrow(/config:1: Match exec needs a command/);
});

test('ProxyJump hops, none, and ProxyCommand refused', () => {
  expect(parseJump('jump', 'f:1')).toEqual({ name: 'jump' });
  expect(parseJump('u@j:2222', 'f:1')).toEqual({ name: 'j', user: 'u', port: 2222 });
  expect(parseJump('ssh://u@[::1]:22', 'f:1')).toEqual({ name: '::1', user: 'u', port: 22 });
  expect(() => parseJump('j:0', 'f:1')).toThrow("f:1: ProxyJump hop 'j:0': port '0' is not 1..65535");
  const { cfg } = config('Host a\n  ProxyJump j1,u@j2:2\nHost b\n  ProxyJump none\nHost *\n  ProxyJump never\n');
  expect(cfg.lookup('a').proxyJump).toEqual([{ name: 'j1' }, { name: 'j2', user: 'u', port: 2 }]);
  expect(cfg.lookup('b').proxyJump).toEqual([]);
  const { cfg: c2 } = config('Host c\n  ProxyCommand nc %h %p\n');
  expect(() => c2.lookup('c')).toThrow(/:2: ProxyCommand is not supported by vnetc's SSH client; use ProxyJump/);
});

/** localContext() as the built module gives it in a node of its own: HOME must be the process's (jest's process.env is a copy). */
function ownLocalContext(prefix: string[], env: Record<string, string>) {
  const module = pathToFileURL(path.join(ROOT, 'dist', 'src', 'remote', 'ssh', 'config.js')).href;
  const script = `import { localContext } from ${JSON.stringify(module)}; process.stdout.write(JSON.stringify(localContext()));`;
  const [cmd, ...args] = [...prefix, process.execPath, '--input-type=module', '-e', script];
  return spawnSync(cmd!, args, { env: cleanEnv(env), encoding: 'utf8' });
}

const setprivMissing = toolMissing('setpriv', ['--version'], 'util-linux');

(setprivMissing || process.getuid?.() !== 0 ? test.skip : test)('a uid the passwd database does not know: HOME and USER, rather than a crash', () => {
  // A uid with no passwd entry, as in a container run with an arbitrary one.
  const uid = '54321';
  expect(spawnSync('getent', ['passwd', uid]).status).toBe(2);
  const r = ownLocalContext(['setpriv', `--reuid=${uid}`, `--regid=${uid}`, '--clear-groups'], { HOME: '/nowhere-home', USER: 'ghost' });
  expect(r.stderr).toBe('');
  expect(JSON.parse(r.stdout)).toMatchObject({ home: '/nowhere-home', localUser: 'ghost' });
});

test("this side's home is the passwd database's for the running user, as ssh's ~ and ~/.ssh are, whatever HOME says", () => {
  const r = ownLocalContext([], { HOME: home, SSH_AUTH_SOCK: '/s' });
  expect(r.stderr).toBe('');
  const user = os.userInfo().username;
  // getent is another way to the same database: the two must agree, and neither is HOME.
  expect(JSON.parse(r.stdout)).toEqual({ home: passwdHome(user), localUser: user, authSock: '/s' });
  expect(passwdHome(user)).not.toBe(home);
  expect(localContext({ home: '/given', authSock: undefined })).toEqual({ home: '/given', localUser: user, authSock: undefined });
});

test('a relative IdentityFile, UserKnownHostsFile or IdentityAgent is relative to the current directory, as ssh opens it', () => {
  const { dir, cfg } = config('Host a\n  IdentityFile keys/%h\n  IdentityFile ~/abs\n  UserKnownHostsFile kh\n  IdentityAgent agent.sock\n');
  const a = cfg.lookup('a');
  expect(path.resolve('x')).not.toBe(path.join(dir, 'x'));
  expect([a.identityFiles, a.userKnownHostsFiles, a.agentSocket]).toEqual([[path.resolve('keys/a'), path.join(dir, 'abs')], [path.resolve('kh')], path.resolve('agent.sock')]);
  // The command's own directory, where it is not the process's (the CLI's io.cwd).
  const elsewhere = new SshConfig(configSources(dir, path.join(dir, '.ssh', 'config')), { home: dir, localUser: 'me', authSock: undefined, cwd: '/srv/w' }, noNotice);
  expect(elsewhere.lookup('a').identityFiles[0]).toBe('/srv/w/keys/a');
});

test('ProxyJump and ProxyCommand: whichever comes first wins, as ssh -G shows', () => {
  const { cfg } = config(
    'Host a\n  ProxyJump j1\nHost a b\n  ProxyCommand nc %h %p\nHost c\n  ProxyCommand none\n  ProxyJump j3\nHost d\n  ProxyJump none\n  ProxyCommand nc x\nHost b\n  ProxyJump j2\n',
  );
  expect(cfg.lookup('a').proxyJump).toEqual([{ name: 'j1' }]);
  // The ProxyCommand came first, so the ProxyJump after it is ignored and the command refused.
  expect(() => cfg.lookup('b')).toThrow(/config:4: ProxyCommand is not supported by vnetc's SSH client; use ProxyJump/);
  expect(cfg.lookup('c').proxyJump).toEqual([]);
  expect(() => cfg.lookup('d')).toThrow(/config:10: ProxyCommand is not supported/);
});

test('host key settings: StrictHostKeyChecking, known hosts files, agent', () => {
  const { dir, cfg } = config(
    'Host a\n  StrictHostKeyChecking accept-new\n  UserKnownHostsFile ~/k1 %d/k2\n  GlobalKnownHostsFile none\n  HostKeyAlias alias-a\n  IdentityAgent none\n' +
      'Host b\n  StrictHostKeyChecking off\n  UserKnownHostsFile none\n  IdentityAgent ~/agent\n  HashKnownHosts yes\n' +
      'Host c\n  StrictHostKeyChecking maybe\n' +
      'Host t\n  StrictHostKeyChecking true\nHost f\n  StrictHostKeyChecking False\n',
  );
  const a = cfg.lookup('a');
  expect([a.strictHostKeyChecking, a.userKnownHostsFiles, a.globalKnownHostsFiles, a.hostKeyAlias, a.agentSocket]).toEqual(['accept-new', [path.join(dir, 'k1'), path.join(dir, 'k2')], [], 'alias-a', undefined]);
  const b = cfg.lookup('b');
  expect([b.strictHostKeyChecking, b.userKnownHostsFiles, b.agentSocket, b.hashKnownHosts]).toEqual(['no', [], path.join(dir, 'agent'), true]);
  expect(() => cfg.lookup('c')).toThrow(SshConfigError);
  // OpenSSH takes true and false too.
  expect([cfg.lookup('t').strictHostKeyChecking, cfg.lookup('f').strictHostKeyChecking]).toEqual(['yes', 'no']);
});

test('-F names a file that must exist', () => {
  const cfg = new SshConfig(configSources(home, path.join(home, 'missing')), { home, localUser: 'me', authSock: undefined }, noNotice);
  expect(() => cfg.lookup('x')).toThrow(`${path.join(home, 'missing')}: no such ssh config file`);
});

/** Tests that compare with what OpenSSH itself resolves (`ssh -G`), when it is installed. */
const sshMissing = toolMissing('ssh', ['-G', '-F', '/dev/null', 'x'], 'openssh-client');
const me = os.userInfo();

/** `ssh -G` for a host: its keyword → value lines, or its complaint. */
function sshG(file: string, host: string, args: string[] = []): { ok: true; values: Map<string, string> } | { ok: false; error: string } {
  const r = runTool('ssh', ['-G', '-F', file, ...args, host], '');
  if (r.status !== 0) return { ok: false, error: r.stderr };
  return { ok: true, values: new Map(r.stdout.split('\n').map((l) => [l.slice(0, l.indexOf(' ')), l.slice(l.indexOf(' ') + 1)])) };
}

/** A config file for both ssh -G and vnetc, with this process's real home and user, as ssh -G has. */
function realConfig(text: string) {
  const dir = fs.mkdtempSync(path.join(home, 'real-'));
  const file = path.join(dir, 'config');
  fs.writeFileSync(file, text);
  const notices: string[] = [];
  return { dir, file, notices, cfg: new SshConfig(configSources(me.homedir, file), { home: me.homedir, localUser: me.username, authSock: undefined }, (l) => notices.push(l)) };
}

test('Include: glob(3) in every component, in byte order of the whole path; dot files only by a literal dot', () => {
  const { cfg } = config('Include conf.d/*/config conf.d/[x]*.conf conf.d/\\.h*/config\nHost *\n  Port 1\n', {
    'conf.d/a-b/config': 'Host a\n  User from-a-b\n',
    'conf.d/a/config': 'Host a b\n  User from-a\n  Port 10\n',
    'conf.d/a/not-config': 'Host *\n  User wrong\n',
    'conf.d/.hidden/config': 'Host h\n  User hidden-by-escape\n',
    'conf.d/.skipped/config': 'Host *\n  Port 99\n',
    'conf.d/x1.conf': 'Host x\n  User from-x1\n',
    'conf.d/y1.conf': 'Host *\n  User wrong-class\n',
  });
  // 'conf.d/a-b/config' < 'conf.d/a/config': '-' sorts before '/'.
  expect(cfg.lookup('a').user).toBe('from-a-b');
  expect([cfg.lookup('b').user, cfg.lookup('b').port]).toEqual(['from-a', 10]);
  expect([cfg.lookup('x').user, cfg.lookup('h').user]).toEqual(['from-x1', 'hidden-by-escape']);
  expect([cfg.lookup('z').user, cfg.lookup('z').port]).toEqual(['me', 1]);
});

test('~user in paths is that user\'s home from the passwd database; an unknown user is an error at its line', () => {
  const { dir, file, cfg } = config(
    'Host a\n  IdentityFile ~root/k1\n  IdentityFile ~/k2\n  UserKnownHostsFile ~root ~/.x %d/y\n  IdentityAgent ~root/agent\n' +
      'Host b\n  UserKnownHostsFile /ok ~no-such-user-vnetc/known\n' +
      'Host c\n  Include ~no-such-user-vnetc/conf\n',
  );
  const root = passwdHome('root')!;
  expect(root).toMatch(/^\//);
  const a = cfg.lookup('a');
  expect([a.identityFiles, a.userKnownHostsFiles, a.agentSocket]).toEqual([[path.join(root, 'k1'), path.join(dir, 'k2')], [root, path.join(dir, '.x'), path.join(dir, 'y')], path.join(root, 'agent')]);
  expect(() => cfg.lookup('b')).toThrow(`${file}:7: '~no-such-user-vnetc' names no local user 'no-such-user-vnetc'`);
  expect(() => cfg.lookup('c')).toThrow(`${file}:9: '~no-such-user-vnetc' names no local user`);
  // A name is looked up as a name only: not as a uid, not as getent's option.
  expect([passwdHome('0'), passwdHome('--help'), passwdHome('no-such-user-vnetc')]).toEqual([undefined, undefined, undefined]);
});

test('tokens: %C %k %l %L %j in paths; HostName takes only %h; ProxyJump %h %n %p %r; an unknown one names the keyword and line', () => {
  const { file, cfg } = config(
    'Host a\n  HostName a.example\n  ProxyJump %r@%n-jump:2200,%h\n  UserKnownHostsFile /k/%C /k/%k /k/%l /k/%L /k/%j\n' +
      'Host b\n  HostKeyAlias b-key\n  UserKnownHostsFile /k/%k /k/%j\n' +
      'Host c\n  IdentityFile /k/%Q\n' +
      'Host d\n  HostName %n.example\n' +
      'Host e\n  ProxyJump %d\n',
    {},
    'box.example.org',
  );
  const a = cfg.lookup('a', { user: 'bob', port: 2222 });
  const C = createHash('sha1').update('box.example.orga.example2222bob').digest('hex');
  expect(a.userKnownHostsFiles).toEqual([`/k/${C}`, '/k/a', '/k/box.example.org', '/k/box', '/k/%r@%n-jump:2200,%h']);
  expect(a.proxyJump).toEqual([{ name: 'a-jump', user: 'bob', port: 2200 }, { name: 'a.example' }]);
  expect(cfg.lookup('b').userKnownHostsFiles).toEqual(['/k/b-key', '/k/']);
  expect(() => cfg.lookup('c')).toThrow(`${file}:9: unknown or unsupported token '%Q' in '/k/%Q' (IdentityFile takes %% %C %d %h %i %j %k %L %l %n %p %r %u; write %% for a percent sign)`);
  expect(() => cfg.lookup('d')).toThrow(`${file}:11: unknown or unsupported token '%n' in '%n.example' (HostName takes %% %h;`);
  expect(() => cfg.lookup('e')).toThrow(`${file}:13: unknown or unsupported token '%d' in '%d' (ProxyJump takes %% %h %n %p %r;`);
});

test('ProxyJump: none, lists, user@host:port, [v6]:port, ssh:// as ssh takes them; anything else an error at its line', () => {
  const hops = (v: string) => config(`ProxyJump ${v}\n`).cfg.lookup('t').proxyJump;
  expect(hops('none')).toEqual([]);
  expect(hops('NONE')).toEqual([]);
  expect(hops('a,b:2,u@c')).toEqual([{ name: 'a' }, { name: 'b', port: 2 }, { name: 'c', user: 'u' }]);
  expect(hops('[::1]:22')).toEqual([{ name: '::1', port: 22 }]);
  expect(hops('u@[::1]')).toEqual([{ name: '::1', user: 'u' }]);
  expect(hops('host:')).toEqual([{ name: 'host' }]);
  expect(hops('u@v@h')).toEqual([{ name: 'h', user: 'u@v' }]);
  expect(hops('ssh://u;fp=x@h:22/')).toEqual([{ name: 'h', user: 'u', port: 22 }]);
  const refused: [string, string][] = [
    ['host:22:junk', "ProxyJump hop 'host:22:junk': port '22:junk' is not 1..65535, an IPv6 address goes in brackets"],
    ['host:port', "port 'port' is not 1..65535"],
    ['host:65536', "port '65536' is not 1..65535"],
    ['::1', "ProxyJump hop '::1': no host, an IPv6 address goes in brackets"],
    ['[::1]:22:x', "port '22:x' is not 1..65535"],
    ['[::1', "'[' without ']'"],
    ['@host', 'no user before @'],
    ['user@', 'no host'],
    ['ssh://u@h/path', 'an ssh:// jump host has no path'],
    ['a,,b', "ProxyJump 'a,,b' has an empty hop"],
    ['a,', "ProxyJump 'a,' has an empty hop"],
    ['none,a', 'none must stand alone'],
    ['a,none', 'none must stand alone'],
    ['a, b', "ProxyJump takes one value, not 'a, b'"],
    ['u@h:22 extra', "ProxyJump takes one value, not 'u@h:22 extra'"],
    ['-oProxyCommand=x', "'-oProxyCommand=x' in ProxyJump '-oProxyCommand=x' is not a host name or address"],
  ];
  for (const [v, why] of refused) {
    const { file, cfg } = config(`# hops\nProxyJump ${v}\n`);
    expect(() => cfg.lookup('t')).toThrow(`${file}:2: `);
    expect(() => cfg.lookup('t')).toThrow(why);
  }
});

test('${VAR} in paths is the environment variable, in the same pass as tokens; unset is an error at its line; IdentityAgent $VAR is the value as it is', () => {
  process.env.VNETC_TEST_ENV_DIR = '/env-dir';
  try {
    const { file, cfg } = config(
      'Host a\n  HostName ${VNETC_TEST_ENV_DIR}\n  IdentityFile ${VNETC_TEST_ENV_DIR}/k-%r\n  UserKnownHostsFile /k/%h\n  IdentityAgent ${VNETC_TEST_ENV_DIR}/sock\n' +
        'Host b\n  IdentityFile /x/${VNETC_TEST_ENV_UNSET}/k\n' +
        'Host c\n  IdentityAgent $VNETC_TEST_ENV_DIR\n' +
        'Host d\n  IdentityAgent $VNETC_TEST_ENV_UNSET\n' +
        'Host e\n  IdentityAgent $1x\n' +
        'Host f\n  IdentityFile /x/${VNETC_TEST_ENV_DIR\n',
    );
    const a = cfg.lookup('a', { user: 'bob' });
    // A token's value is not expanded again: HostName takes no ${}, so %h stays '${...}'.
    expect([a.identityFiles, a.userKnownHostsFiles, a.agentSocket]).toEqual([['/env-dir/k-bob'], ['/k/${VNETC_TEST_ENV_DIR}'], '/env-dir/sock']);
    expect(() => cfg.lookup('b')).toThrow(`${file}:7: environment variable VNETC_TEST_ENV_UNSET in '/x/\${VNETC_TEST_ENV_UNSET}/k' is not set`);
    expect([cfg.lookup('c').agentSocket, cfg.lookup('d').agentSocket]).toEqual(['/env-dir', undefined]);
    expect(() => cfg.lookup('e')).toThrow(`${file}:13: IdentityAgent '$1x' is not an environment variable's name`);
    expect(() => cfg.lookup('f')).toThrow(`${file}:15: '\${VNETC_TEST_ENV_DIR' in '/x/\${VNETC_TEST_ENV_DIR' is not an environment variable`);
  } finally {
    delete process.env.VNETC_TEST_ENV_DIR;
  }
});

(sshMissing ? describe.skip : describe)(`as ssh -G resolves it (${sshMissing ?? 'the installed OpenSSH'})`, () => {
  test('Include globs in directories, absolute and in byte order', () => {
    const { dir, file, cfg } = realConfig('');
    for (const [f, body] of [
      ['d/a-b/c.conf', 'Host g\n  User from-a-b\n'],
      ['d/a/c.conf', 'Host g\n  User from-a\n  Port 2001\n'],
      ['d/.h/c.conf', 'Host g\n  Port 2999\n'],
      ['d/b/c.txt', 'Host g\n  Port 2998\n'],
      ['d/b/sub/c.conf', 'Host g\n  HostName from-sub\n'],
    ]) {
      fs.mkdirSync(path.dirname(path.join(dir, f!)), { recursive: true });
      fs.writeFileSync(path.join(dir, f!), body!);
    }
    fs.writeFileSync(file, `Include ${dir}/d/*/c.conf ${dir}/?/[b-c]/*/*.conf ${dir}/d/nothing*/x\n`);
    const ssh = sshG(file, 'g');
    if (!ssh.ok) throw new Error(ssh.error);
    const c = cfg.lookup('g');
    expect([c.user, String(c.port), c.hostname]).toEqual([ssh.values.get('user'), ssh.values.get('port'), ssh.values.get('hostname')]);
    expect([c.user, c.port, c.hostname]).toEqual(['from-a-b', 2001, 'from-sub']);
  });

  test('~user and every path token, in UserKnownHostsFile and IdentityAgent', () => {
    const { file, cfg } = realConfig(
      'Host t\n  HostName t.example\n  HostKeyAlias t-key\n  GlobalKnownHostsFile ~root/g /g/%h\n  UserKnownHostsFile ~root/%C ~daemon/%k /x/%d/%h/%i/%L/%l/%n/%p/%r/%u/%% ${HOME}/e\n  IdentityAgent ~root/agent-%C-${HOME}\n' + 'Host u\n  UserKnownHostsFile /u/%k\n',
    );
    for (const host of ['t', 'u']) {
      const ssh = sshG(file, host, ['-l', 'bob', '-p', '2222']);
      if (!ssh.ok) throw new Error(ssh.error);
      const c = cfg.lookup(host, { user: 'bob', port: 2222 });
      expect(c.userKnownHostsFiles.join(' ')).toBe(ssh.values.get('userknownhostsfile'));
      expect(c.globalKnownHostsFiles.join(' ')).toBe(ssh.values.get('globalknownhostsfile'));
      if (host === 't') expect(c.agentSocket).toBe(ssh.values.get('identityagent'));
    }
  });

  test('an unknown ~user, an unknown token and an unset variable are refused by both', () => {
    for (const line of ['UserKnownHostsFile ~no-such-user-vnetc/k', 'UserKnownHostsFile /k/%Q', 'HostName %n.x', 'UserKnownHostsFile /k/${VNETC_TEST_ENV_UNSET}']) {
      const { file, cfg } = realConfig(`${line}\n`);
      expect(sshG(file, 'h').ok).toBe(false);
      expect(() => cfg.lookup('h')).toThrow(`${file}:1: `);
    }
  });

  test('ProxyJump values ssh refuses, vnetc refuses; those it takes, vnetc takes', () => {
    // vnetc is stricter than ssh 9.2 on purpose for none in a list ('a,none' dials a host named none, 'none,a' reaches a directly),
    // extra words (which ssh drops) and a host starting with '-'.
    const values = ['none', 'a,b:2,u@c', '[::1]:22', 'u@[::1]:2222', 'host:', 'u@v@h', 'ssh://u@h:22/', 'ssh://u;fp=x@h', 'host:22:junk', 'host:port', 'host:0', '::1', '[::1]:22:x', '@host', 'user@', 'ssh://u@h/path', 'a,,b', 'a,'];
    for (const v of values) {
      const { file, cfg } = realConfig(`ProxyJump ${v}\n`);
      const theirs = sshG(file, 't').ok;
      let ours = true;
      try {
        cfg.lookup('t');
      } catch {
        ours = false;
      }
      expect(`${v}: ${ours}`).toBe(`${v}: ${theirs}`);
    }
  });

  test('Match exec: ssh runs it, vnetc does not and says so', () => {
    const ran = path.join(home, 'ssh-ran-exec');
    const { file, cfg, notices } = realConfig(`Match exec "touch ${ran}"\n  User exec-user\n`);
    const ssh = sshG(file, 'h');
    expect(ssh.ok && ssh.values.get('user')).toBe('exec-user');
    expect(fs.existsSync(ran)).toBe(true);
    fs.rmSync(ran);
    expect(cfg.lookup('h').user).toBe(me.username);
    expect(fs.existsSync(ran)).toBe(false);
    expect(notices).toEqual([expect.stringContaining(`${file}:1: the lines under this Match are not applied, as vnetc does not run 'touch ${ran}'`)]);
  });
});
