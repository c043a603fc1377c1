import { isIPv6 } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { isMachineName } from '../../model/names.js';
import { ConfigFiles, SshConfigError, type Directive } from './config-file.js';
import { Tilde } from './passwd.js';
import { patternListMatch } from './patterns.js';
import { connectionHash, expandTokens, JUMP_TOKENS, only, PATH_TOKENS } from './tokens.js';

/**
 * What ssh_config says about one host: ssh_config(5) semantics for the
 * keywords vnetc's SSH client acts on. For each keyword the first value
 * obtained wins (IdentityFile accumulates); Host patterns match the name as
 * given, Match blocks the name after HostName.
 */

export interface Jump {
  /** As written in ProxyJump: an alias to look up, or an address. */
  name: string;
  user?: string;
  port?: number;
}

export interface SshHostConfig {
  /** The name looked up: the .vnet machine name, or a jump host's. */
  alias: string;
  /** Where to connect (HostName, `%h` expanded). */
  hostname: string;
  port: number;
  user: string;
  /** Expanded paths; empty means the default identities. */
  identityFiles: string[];
  identitiesOnly: boolean;
  /** Agent socket path, or undefined for none. */
  agentSocket: string | undefined;
  /** Hops in order, first one dialled directly. */
  proxyJump: Jump[];
  strictHostKeyChecking: 'yes' | 'no' | 'ask' | 'accept-new';
  userKnownHostsFiles: string[];
  globalKnownHostsFiles: string[];
  hashKnownHosts: boolean;
  /** The name host keys are looked up under instead of the host name. */
  hostKeyAlias: string | undefined;
  connectTimeoutMs: number | undefined;
  /**
   * How many times a protected key's passphrase may be asked for
   * (NumberOfPasswordPrompts, default 3); 0 under BatchMode, which never asks.
   */
  passphraseTries: number;
}

export interface LocalContext {
  home: string;
  localUser: string;
  /** The environment's SSH_AUTH_SOCK, used when IdentityAgent is not set. */
  authSock: string | undefined;
  /** gethostname(3), for %l and %L (default: the system's). */
  hostname?: string;
  /** What a relative path in the config is relative to, as for ssh (default: the process's current directory). */
  cwd?: string;
}

/**
 * This side as ssh sees it, where not given: the user and home the passwd
 * database has for the running uid (getpwuid(3), which os.userInfo asks, as
 * ssh takes `~`, %d and ~/.ssh: $HOME is not read, so a `sudo -E` or a
 * changed HOME reads the same files ssh would), and SSH_AUTH_SOCK.
 */
export function localContext(given: Partial<LocalContext> = {}, env: NodeJS.ProcessEnv = process.env): LocalContext {
  const account = given.home === undefined || given.localUser === undefined ? ownAccount(env) : undefined;
  return {
    home: given.home ?? account!.home,
    localUser: given.localUser ?? account!.user,
    authSock: 'authSock' in given ? given.authSock : env.SSH_AUTH_SOCK,
    ...(given.hostname === undefined ? {} : { hostname: given.hostname }),
    ...(given.cwd === undefined ? {} : { cwd: given.cwd }),
  };
}

/**
 * A uid the passwd database does not know (a container run with an
 * arbitrary uid) is where ssh stops; vnetc goes on with HOME and USER, the
 * only account there is.
 */
function ownAccount(env: NodeJS.ProcessEnv): { user: string; home: string } {
  try {
    const u = os.userInfo();
    return { user: u.username, home: u.homedir };
  } catch {
    return { user: env.USER || env.LOGNAME || String(process.getuid?.() ?? ''), home: env.HOME || '/' };
  }
}

export interface LookupOptions {
  /** Like `ssh -l user`: wins over any User in the files (the .vnet file's user is explicit). */
  user?: string;
  /** Like `ssh -p port`. */
  port?: number;
}

/** Where settings come from: `-F file` alone, or the user's then the system's file. */
export interface ConfigSources {
  files: { file: string; includeBase: string; required: boolean }[];
}

export function configSources(home: string, explicitFile?: string): ConfigSources {
  const userBase = path.join(home, '.ssh');
  if (explicitFile) return { files: [{ file: path.resolve(explicitFile), includeBase: userBase, required: true }] };
  return {
    files: [
      { file: path.join(userBase, 'config'), includeBase: userBase, required: false },
      { file: '/etc/ssh/ssh_config', includeBase: '/etc/ssh', required: false },
    ],
  };
}

/** Include depth bound, as OpenSSH's: a file including itself must fail, not loop. */
const MAX_INCLUDE_DEPTH = 16;

/** Match criteria ssh has and vnetc does not evaluate: a block using one is not applied, and the user is told. */
const UNEVALUATED = new Set(['exec', 'canonical', 'final', 'localnetwork', 'tagged']);

export class SshConfig {
  private readonly files = new ConfigFiles();
  private readonly tilde: Tilde;
  /** Match lines already warned about: once per line, not once per host. */
  private readonly warned = new Set<string>();

  constructor(
    private readonly sources: ConfigSources,
    private readonly local: LocalContext,
    /** One-line notices for the person running the command. */
    private readonly say: (line: string) => void,
  ) {
    this.tilde = new Tilde(local.home);
  }

  lookup(alias: string, opts: LookupOptions = {}): SshHostConfig {
    const first = new Map<string, Directive>();
    const identityFiles: Directive[] = [];
    const take = (d: Directive) => {
      if (d.keyword === 'identityfile') identityFiles.push(d);
      else if (!first.has(d.keyword) && !proxyDecided(first, d.keyword)) first.set(d.keyword, d);
    };
    // Match `host` sees HostName as it stands when the Match line is read.
    const currentHost = () => {
      const h = first.get('hostname');
      return h ? expandTokens(h.args[0]!, { h: alias }, where(h), 'HostName') : alias;
    };
    const currentUser = () => opts.user ?? first.get('user')?.args[0] ?? this.local.localUser;

    const walk = (directives: Directive[], includeBase: string, depth: number) => {
      let active = true;
      for (const d of directives) {
        if (d.keyword === 'host') active = patternListMatch(d.args, alias);
        else if (d.keyword === 'match') active = this.matchCriteria(d, alias, currentHost(), currentUser());
        else if (!active) continue;
        else if (d.keyword === 'include') {
          if (depth >= MAX_INCLUDE_DEPTH) throw new SshConfigError(`${where(d)}: Include nested too deeply (a file includes itself?)`);
          for (const arg of d.args) {
            for (const f of this.files.includeTargets(arg, includeBase, this.tilde, where(d))) {
              const inner = this.files.read(f);
              if (inner) walk(inner, includeBase, depth + 1);
            }
          }
        } else take(d);
      }
    };
    for (const src of this.sources.files) {
      const directives = this.files.read(src.file);
      if (directives === null) {
        if (src.required) throw new SshConfigError(`${src.file}: no such ssh config file`);
        continue;
      }
      walk(directives, src.includeBase, 0);
    }
    return this.settle(alias, opts, first, identityFiles);
  }

  /** Turns the raw first values into settings, checking each and expanding tokens. */
  private settle(alias: string, opts: LookupOptions, first: Map<string, Directive>, identityDirectives: Directive[]): SshHostConfig {
    const arg = (k: string) => first.get(k)?.args[0];
    const hostnameD = first.get('hostname');
    const hostname = hostnameD ? expandTokens(hostnameD.args[0]!, { h: alias }, where(hostnameD), 'HostName') : alias;

    const portD = first.get('port');
    const port = opts.port ?? (portD ? parsePort(portD.args[0]!, where(portD)) : 22);
    const user = opts.user ?? arg('user') ?? this.local.localUser;

    const proxyCommand = first.get('proxycommand');
    if (proxyCommand && proxyCommand.args[0]!.toLowerCase() !== 'none') {
      throw new SshConfigError(`${where(proxyCommand)}: ProxyCommand is not supported by vnetc's SSH client; use ProxyJump`);
    }
    const jumpD = first.get('proxyjump');
    const jumpTokens = { h: hostname, n: alias, p: String(port), r: user };
    const proxyJump = jumpD ? parseProxyJump(jumpD, (t) => expandTokens(t, only(jumpTokens, JUMP_TOKENS), where(jumpD), 'ProxyJump')) : [];

    const localHost = this.local.hostname ?? os.hostname();
    const pathTokens = only(
      {
        ...jumpTokens,
        C: connectionHash(localHost, hostname, String(port), user),
        d: this.local.home,
        i: String(process.getuid?.() ?? ''),
        j: proxyJump.length ? jumpD!.args[0]! : '',
        k: arg('hostkeyalias') ?? alias,
        // %l is gethostname(3) whole, %L its first label.
        l: localHost,
        L: localHost.split('.')[0]!,
        u: this.local.localUser,
      },
      PATH_TOKENS,
    );
    // `~` first, then tokens and ${VAR}, as ssh does: a value is never read as a home.
    // What is still relative is relative to the current directory, as ssh opens it (ssh -G keeps it as written);
    // made absolute here so a keeper, started elsewhere, opens the same file.
    const filePath = (d: Directive, text: string) => {
      const p = expandTokens(this.tilde.expand(text, where(d)), pathTokens, where(d), keywordName(d), process.env);
      return path.isAbsolute(p) ? p : path.resolve(this.local.cwd ?? process.cwd(), p);
    };

    const strictD = first.get('stricthostkeychecking');
    let strict: SshHostConfig['strictHostKeyChecking'] = 'ask';
    if (strictD) {
      const v = strictD.args[0]!.toLowerCase();
      // OpenSSH's spellings, true and false among them.
      if (v === 'yes' || v === 'ask' || v === 'accept-new') strict = v;
      else if (v === 'true') strict = 'yes';
      else if (v === 'no' || v === 'off' || v === 'false') strict = 'no';
      else throw new SshConfigError(`${where(strictD)}: StrictHostKeyChecking must be yes, no, ask or accept-new, not '${strictD.args[0]}'`);
    }

    const knownD = first.get('userknownhostsfile');
    const userKnownHostsFiles = !knownD ? ['known_hosts', 'known_hosts2'].map((f) => path.join(this.local.home, '.ssh', f)) : isNone(knownD) ? [] : knownD.args.map((a) => filePath(knownD, a));

    const agentD = first.get('identityagent');
    let agentSocket = this.local.authSock || undefined;
    if (agentD) {
      const v = agentD.args[0]!;
      if (v.toLowerCase() === 'none') agentSocket = undefined;
      else if (v.startsWith('$') && !v.startsWith('${')) {
        // ssh's older form, the whole value one variable's name: its value as it is, unset meaning no agent.
        if (!/^\$[A-Za-z_][A-Za-z0-9_]*$/.test(v)) throw new SshConfigError(`${where(agentD)}: IdentityAgent '${v}' is not an environment variable's name (write $NAME, or \${NAME} within a path)`);
        agentSocket = process.env[v.slice(1)] || undefined;
      } else if (v !== 'SSH_AUTH_SOCK') agentSocket = filePath(agentD, v);
    }

    const timeoutD = first.get('connecttimeout');
    let connectTimeoutMs: number | undefined;
    if (timeoutD) {
      const t = timeoutD.args[0]!;
      if (!/^\d+$/.test(t) || Number(t) < 1) throw new SshConfigError(`${where(timeoutD)}: ConnectTimeout must be a number of seconds, not '${t}'`);
      connectTimeoutMs = Number(t) * 1000;
    }

    const promptsD = first.get('numberofpasswordprompts');
    let passphraseTries = 3;
    if (promptsD) {
      const t = promptsD.args[0]!;
      if (!/^\d{1,3}$/.test(t)) throw new SshConfigError(`${where(promptsD)}: NumberOfPasswordPrompts must be a whole number, not '${t}'`);
      passphraseTries = Number(t);
    }
    if (yesNo(first.get('batchmode'), false)) passphraseTries = 0;

    return {
      alias,
      hostname,
      port,
      user,
      identityFiles: identityDirectives.map((d) => filePath(d, d.args[0]!)),
      identitiesOnly: yesNo(first.get('identitiesonly'), false),
      agentSocket,
      proxyJump,
      strictHostKeyChecking: strict,
      userKnownHostsFiles,
      globalKnownHostsFiles: globalKnownHosts(first.get('globalknownhostsfile')),
      hashKnownHosts: yesNo(first.get('hashknownhosts'), false),
      hostKeyAlias: arg('hostkeyalias'),
      connectTimeoutMs,
      passphraseTries,
    };
  }

  /**
   * `Match`, criteria in order as ssh takes them: all, host, originalhost,
   * user and localuser, each negatable with `!`. The others (exec,
   * canonical, final, localnetwork, tagged) are not evaluated: a block that
   * reaches one is not applied, and the user is told once per line. For
   * exec that is a choice, not a gap: ssh would run the command through the
   * user's shell for every host looked up, with host and user names from the
   * .vnet file substituted unquoted, and a topology tool running a command
   * because a config file names it is exactly what nobody expects of it.
   */
  private matchCriteria(d: Directive, alias: string, host: string, user: string): boolean {
    const a = d.args;
    if (a.length === 1 && a[0]!.toLowerCase() === 'all') return true;
    let result = true;
    for (let i = 0; i < a.length; i++) {
      let crit = a[i]!.toLowerCase();
      const negate = crit.startsWith('!');
      if (negate) crit = crit.slice(1);
      if (crit === 'all') {
        if (negate) result = false;
        continue;
      }
      if (crit === 'canonical' || crit === 'final') {
        if (result) result = this.unevaluated(d, crit);
        continue;
      }
      const subject = { host, originalhost: alias, user, localuser: this.local.localUser }[crit];
      if (subject === undefined && !UNEVALUATED.has(crit)) {
        throw new SshConfigError(`${where(d)}: Match ${crit} is not a Match criterion (ssh_config(5) lists all, canonical, final, exec, localnetwork, host, originalhost, tagged, user, localuser)`);
      }
      const arg = a[++i];
      if (arg === undefined) throw new SshConfigError(`${where(d)}: Match ${crit} needs ${crit === 'exec' ? 'a command' : 'a pattern list'}`);
      // As ssh does, a criterion after one that failed is not evaluated (an exec is not run).
      if (!result) continue;
      if (subject === undefined) result = this.unevaluated(d, crit, arg);
      else if (patternListMatch(arg.split(','), subject) === negate) result = false;
    }
    return result;
  }

  /** A criterion vnetc does not evaluate, reached: the block is not applied, said once per line. */
  private unevaluated(d: Directive, crit: string, arg?: string): false {
    const key = where(d);
    if (!this.warned.has(key)) {
      this.warned.add(key);
      const why = crit === 'exec' ? `vnetc does not run '${arg}': it runs no command an ssh config names` : `vnetc does not evaluate Match ${crit}`;
      this.say(`ssh config: ${key}: the lines under this Match are not applied, as ${why}; if vnetc needs them, put them under a Host line`);
    }
    return false;
  }
}

const where = (d: Directive) => `${d.file}:${d.line}`;

/**
 * ProxyJump and ProxyCommand share one first-obtained value, as ssh reads
 * them: a ProxyJump after any ProxyCommand (`none` included) is ignored, and
 * a ProxyCommand after a ProxyJump other than `none` is too (ssh -G shows
 * both, OpenSSH 9.2).
 */
function proxyDecided(first: Map<string, Directive>, keyword: string): boolean {
  if (keyword === 'proxyjump') return first.has('proxycommand');
  if (keyword === 'proxycommand') {
    const jump = first.get('proxyjump');
    return jump !== undefined && !isNone(jump);
  }
  return false;
}

/** Keywords as ssh_config(5) spells them, for messages. */
const KEYWORD_NAMES: Record<string, string> = { identityfile: 'IdentityFile', userknownhostsfile: 'UserKnownHostsFile', identityagent: 'IdentityAgent' };
const keywordName = (d: Directive) => KEYWORD_NAMES[d.keyword] ?? d.keyword;

/** As OpenSSH 9.2 takes GlobalKnownHostsFile: the names as written, no `~`, no tokens. */
function globalKnownHosts(d: Directive | undefined): string[] {
  if (!d) return ['/etc/ssh/ssh_known_hosts', '/etc/ssh/ssh_known_hosts2'];
  return isNone(d) ? [] : d.args;
}

const isNone = (d: Directive) => d.args.length === 1 && d.args[0]!.toLowerCase() === 'none';

function yesNo(d: Directive | undefined, dflt: boolean): boolean {
  if (!d) return dflt;
  const v = d.args[0]!.toLowerCase();
  if (v === 'yes' || v === 'true') return true;
  if (v === 'no' || v === 'false') return false;
  throw new SshConfigError(`${where(d)}: ${d.keyword} must be yes or no, not '${d.args[0]}'`);
}

const isPort = (text: string): boolean => /^\d+$/.test(text) && Number(text) >= 1 && Number(text) <= 65535;

export function parsePort(text: string, at: string): number {
  if (!isPort(text)) throw new SshConfigError(`${at}: port must be 1..65535, not '${text}'`);
  return Number(text);
}

/**
 * ProxyJump as ssh reads it: `none`, or one value of comma-separated hops.
 * The hops' hosts and users take %h %n %p %r, the target's, as ssh expands
 * them in the command it builds for the jump; a port is a number.
 */
export function parseProxyJump(d: Directive, expand: (text: string) => string): Jump[] {
  const at = where(d);
  if (d.args.length > 1) throw new SshConfigError(`${at}: ProxyJump takes one value, not '${d.args.join(' ')}' (several hops are separated by commas, without spaces)`);
  const value = d.args[0]!;
  if (value.toLowerCase() === 'none') return [];
  return value.split(',').map((hop) => {
    if (hop === '') throw new SshConfigError(`${at}: ProxyJump '${value}' has an empty hop (hops are separated by single commas, without spaces)`);
    if (hop.toLowerCase() === 'none') throw new SshConfigError(`${at}: ProxyJump '${value}': none must stand alone (ProxyJump none means no jump host)`);
    const j = parseJump(hop, at);
    const name = expand(j.name);
    if (!isMachineName(name) && !isIPv6(name)) throw new SshConfigError(`${at}: '${name}' in ProxyJump '${value}' is not a host name or address`);
    const user = j.user === undefined ? undefined : expand(j.user);
    return { name, ...(user ? { user } : {}), ...(j.port ? { port: j.port } : {}) };
  });
}

/** One ProxyJump hop as written: `[user@]host[:port]`, `[v6 address][:port]`, or `ssh://[user@]host[:port][/]`. */
export function parseJump(text: string, at: string): Jump {
  const bad = (why: string) => new SshConfigError(`${at}: ProxyJump hop '${text}': ${why} (write [user@]host[:port], [user@][IPv6 address][:port] or ssh://[user@]host[:port])`);
  let t = text;
  const uri = t.startsWith('ssh://');
  if (uri) {
    t = t.slice('ssh://'.length).replace(/\/$/, '');
    if (t.includes('/')) throw bad('an ssh:// jump host has no path');
  }
  let user: string | undefined;
  const atSign = t.lastIndexOf('@');
  if (atSign !== -1) {
    // An ssh:// user may carry ;parameters, which ssh ignores.
    user = uri ? t.slice(0, atSign).split(';')[0]! : t.slice(0, atSign);
    if (!user) throw bad('no user before @');
    t = t.slice(atSign + 1);
  }
  let name: string;
  let portText: string | undefined;
  if (t.startsWith('[')) {
    const close = t.indexOf(']');
    if (close === -1) throw bad("'[' without ']'");
    name = t.slice(1, close);
    const rest = t.slice(close + 1);
    if (rest !== '' && !rest.startsWith(':')) throw bad(`'${rest}' after ']'`);
    portText = rest.slice(1);
  } else {
    const colon = t.indexOf(':');
    name = colon === -1 ? t : t.slice(0, colon);
    portText = colon === -1 ? '' : t.slice(colon + 1);
  }
  const v6 = ', an IPv6 address goes in brackets';
  if (!name) throw bad(`no host${t.startsWith(':') ? v6 : ''}`);
  let port: number | undefined;
  // `host:` is the default port, as ssh takes it.
  if (portText !== '') {
    if (!isPort(portText)) throw bad(`port '${portText}' is not 1..65535${portText.includes(':') ? v6 : ''}`);
    port = Number(portText);
  }
  return { name, ...(user ? { user } : {}), ...(port ? { port } : {}) };
}
