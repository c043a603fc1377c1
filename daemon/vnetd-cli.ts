import { existsSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import net from 'node:net';
import { parseArgs } from 'node:util';
import { suggest } from '../src/lang/suggest.js';
import { isMachineName } from '../src/model/names.js';
import { connectUnix, tooLong } from '../src/util/unix-socket.js';
import { GREETING_MS, REPLY_MS } from '../src/wire/control.js';
import { version } from '../src/version.js';
import { captureTarget, isWithin, namesByIdentity, plannedDirectory } from './capture/capture-paths.js';
import { PcapWriter } from './capture/pcap-file.js';
import { interfaceFromSpec } from './interfaces/from-spec.js';
import type { Interface } from './interfaces/interface.js';
import { StateError } from './store.js';
import { controlSocketPath, Vnetd } from './vnetd-core.js';

/**
 * vnetd: the VNET daemon, one per host and one on the Proxy.
 *
 *   vnetd --machine NAME --port PORT --state-dir DIR [--listen ADDR] [--iface NAME=KIND:PARAMS]... [--capture NAME=FILE]... [--no-fast-path]
 *   vnetd ctl --state-dir DIR [--timeout S]   the control socket on stdin/stdout (what SSH runs)
 */

const USAGE = `usage: vnetd --machine NAME --port PORT --state-dir DIR [--listen ADDR] [--iface NAME=KIND:PARAMS]... [--capture NAME=FILE]... [--no-fast-path]
       vnetd ctl --state-dir DIR [--timeout S]

  --machine     this daemon's machine name, as in the .vnet file's HOST line
  --port        the overlay port (TCP and UDP) from the HOST line
  --listen      the address overlay links are accepted on (default 0.0.0.0)
  --state-dir   where links, rules and the control socket live (owner only)
  --iface       a local interface: vm0=qemu-udp:listen=127.0.0.1:7001,peer=127.0.0.1:7000,
                vm0=qemu-stream:listen=127.0.0.1:7001 (or path=/run/vm0.sock) where QEMU connects,
                vm0=qemu-stream:connect=127.0.0.1:7001 (or connect-path=/run/vm0.sock) where QEMU listens,
                vm0=pcap:veth0[,filter=BPF]
  --capture     write the frames crossing interface NAME, both ways, to FILE (.pcap, for tcpdump/Wireshark);
                link:PEER=FILE writes the Ethernet frames the overlay link to machine PEER carries, decrypted
  --no-fast-path  forward every frame in JavaScript; by default the frames of known flows between pcap
                and QEMU interfaces and links are forwarded in C (the pcap addon), which counts them the same
  ctl           connect standard input and output to the running daemon's control socket (vnetd ctl --help)
`;

const CTL_USAGE = `usage: vnetd ctl --state-dir DIR [--timeout S]

  Connects standard input and output to the control socket of the vnetd started with --state-dir DIR
  (what an SSH session runs; PROTOCOL.md lists the commands).

  --state-dir   the running daemon's state directory, which holds its socket
  --timeout     once the input ends, give up after S seconds (default 60) of the daemon's silence
                (time spent waiting for a slow reader of standard output does not count);
                a daemon that does not greet within 10 s (or S, if less) is given up on too
`;

function fail(message: string, code = 2): never {
  // Synchronously: stderr on a pipe is asynchronous, and exit would cut the message off.
  writeSync(2, `vnetd: error: ${message}\n${code === 2 ? "Run 'vnetd --help' for usage.\n" : ''}`);
  process.exit(code);
}

/** Set once the log's reader is gone (a closed terminal, a dead pipe): the daemon goes on without a log rather than die of it. */
let logGone = false;
process.stderr.on('error', () => {
  logGone = true;
});

function log(line: string): void {
  if (!logGone) process.stderr.write(`${new Date().toISOString()} ${line}\n`);
}

/**
 * `--flag -1` as `--flag=-1` for the flags that take a value: parseArgs
 * refuses a negative number as ambiguous, in words of its own, where the
 * flag's own check says what it takes. (A word like -h or --port after
 * the flag is left to parseArgs: it is more likely a missing value.)
 */
function joinValues(argv: string[], valued: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const next = argv[i + 1];
    if (valued.includes(a) && next !== undefined && /^-[\d.]/.test(next)) out.push(`${a}=${argv[++i]}`);
    else out.push(a);
  }
  return out;
}

async function ctl(argv: string[]): Promise<void> {
  let values;
  try {
    ({ values } = parseArgs({ args: joinValues(argv, ['--timeout']), options: { 'state-dir': { type: 'string' }, timeout: { type: 'string' }, help: { type: 'boolean', short: 'h' } }, strict: true }));
  } catch (e) {
    fail((e as Error).message);
  }
  if (values.help) return void process.stdout.write(CTL_USAGE);
  // An empty DIR too: it would name a socket in the current directory, and the daemon refuses it as well.
  const dir = values['state-dir'] || fail('ctl needs --state-dir DIR');
  const timeoutS = values.timeout === undefined ? REPLY_MS / 1000 : Number(values.timeout);
  if (!(timeoutS >= 0.1 && timeoutS <= 3600)) fail(`--timeout must be seconds from 0.1 to 3600, not '${values.timeout}'`);
  const replyMs = timeoutS * 1000;
  const greetingMs = Math.min(GREETING_MS, replyMs);
  const path = controlSocketPath(dir);
  const sock = connectUnix(path);
  let leaving: number | null = null;
  let owed: NodeJS.Timeout | undefined;
  /**
   * Ends ctl with `code` once standard output has taken everything the
   * daemon sent: on a pipe it is written asynchronously, and exiting at once
   * would cut a long reply (RULES? of a large table) short.
   */
  const leave = (code: number, message?: string): void => {
    if (leaving !== null) return;
    leaving = code;
    clearTimeout(greeting);
    clearTimeout(owed);
    if (message) writeSync(2, `vnetd: error: ${message}\n`);
    sock.destroy();
    process.stdout.write('', () => process.exit(code));
  };
  const silent = (what: string): void =>
    leave(1, `the daemon at ${path} ${what}; it may be suspended (SIGSTOP) or wedged: see its log (vnetd.log beside the socket, when vnetc started it), kill it and start it again`);
  let connected = false;
  sock.on('error', (e: NodeJS.ErrnoException) => {
    if (connected) return leave(1, `the connection to the daemon's control socket ${path} broke: ${e.message}; see the daemon's log`);
    const why = !existsSync(dir)
      ? `the state directory ${dir} does not exist (give the --state-dir the daemon was started with)`
      : e.code === 'ENOTDIR'
        ? `${dir} is not a directory (give the --state-dir the daemon was started with)`
        : e.code === 'ENOENT' || e.code === 'ECONNREFUSED'
          ? 'no vnetd is running with this state directory'
          : e.message;
    leave(1, `cannot reach the daemon's control socket ${path}: ${why}`);
  });
  // A suspended or wedged daemon's socket still accepts, and this process would outlive whoever ran it (an SSH session that gave up): the daemon's silence is bounded here too, as vnetc bounds it.
  const greeting = setTimeout(() => silent(`accepted the connection but did not greet within ${greetingMs / 1000} s`), greetingMs);
  sock.on('connect', () => {
    connected = true;
    process.stdin.pipe(sock);
    sock.pipe(process.stdout);
    sock.once('data', () => clearTimeout(greeting));
  });
  // Whoever read the replies has gone (an SSH session closed): there is no one left to tell.
  process.stdout.on('error', () => process.exit(leaving ?? 0));
  // With the input ended, the daemon owes the replies and then the end; it gets `timeout` of silence for them. Before that, a quiet daemon may only be waiting for a person to type.
  process.stdin.once('end', () => {
    if (leaving !== null) return;
    const timer = setTimeout(() => {
      // While standard output is full, ctl has stopped reading the daemon (sock.pipe): that wait is on the reader, not the daemon.
      if (process.stdout.writableNeedDrain) timer.refresh();
      else silent(`did not answer within ${timeoutS} s`);
    }, replyMs);
    owed = timer;
    sock.on('data', () => timer.refresh());
  });
  sock.on('close', () => leave(0));
}

async function main(argv: string[]): Promise<void> {
  if (argv[0] === 'ctl') return ctl(argv.slice(1));
  if (argv[0] !== undefined && !argv[0].startsWith('-')) fail(`'${argv[0]}' is not a vnetd command: vnetd takes flags, or the one command ctl${suggest(argv[0], ['ctl']) ? "; did you mean 'ctl'?" : ''}`);
  let values;
  try {
    ({ values } = parseArgs({
      args: joinValues(argv, ['--machine', '--port', '--listen', '--state-dir', '--iface', '--capture']),
      options: {
        machine: { type: 'string' },
        port: { type: 'string' },
        listen: { type: 'string', default: '0.0.0.0' },
        'state-dir': { type: 'string' },
        iface: { type: 'string', multiple: true, default: [] },
        capture: { type: 'string', multiple: true, default: [] },
        'no-fast-path': { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h' },
        version: { type: 'boolean' },
      },
      strict: true,
    }));
  } catch (e) {
    fail((e as Error).message);
  }
  if (values.help) return void process.stdout.write(USAGE);
  if (values.version) return void process.stdout.write(version() + '\n');
  const machine = values.machine ?? fail('say which machine this is: --machine NAME (as in the HOST line)');
  if (!isMachineName(machine)) fail(`'${machine}' is not a machine name`);
  const portText = values.port ?? fail('say which port to use: --port PORT (as in the HOST line)');
  const port = Number(portText);
  if (!/^\d+$/.test(portText) || port < 1 || port > 65535) fail(`--port must be 1..65535, not '${portText}'`);
  const stateDir = values['state-dir'] || fail('say where to keep state: --state-dir DIR');
  const long = tooLong(controlSocketPath(stateDir));
  if (long) fail(`--state-dir holds the control socket: ${long.message}`);
  if (net.isIP(values.listen) === 0) fail(`--listen must be an IP address of this machine (0.0.0.0 or :: for all of them), not '${values.listen}'`);
  const interfaces: Interface[] = [];
  for (const spec of values.iface) {
    try {
      interfaces.push(interfaceFromSpec(spec));
    } catch (e) {
      fail(`--iface: ${(e as Error).message}`);
    }
  }
  const names = interfaces.map((i) => i.name);
  const dup = names.find((n, i) => names.indexOf(n) !== i);
  if (dup) fail(`--iface: two interfaces are named '${dup}'`);

  // Every --capture is checked here, and no file is opened: the daemon opens them once it has started (Vnetd.start).
  const ifaceCaptures = new Map<string, PcapWriter>();
  const linkCaptures = new Map<string, PcapWriter>();
  for (const arg of values.capture) {
    const eq = arg.indexOf('=');
    const name = arg.slice(0, eq);
    if (eq <= 0 || eq === arg.length - 1) fail(`--capture: '${arg}' is not NAME=FILE or link:PEER=FILE (for example vm0=/tmp/vm0.pcap)`);
    const peer = name.startsWith('link:') ? name.slice('link:'.length) : null;
    if (peer !== null) {
      if (!isMachineName(peer) || peer === machine) fail(`--capture: '${peer}' is not another machine's name (link:PEER names the machine at the link's other end)`);
    } else if (!names.includes(name)) {
      fail(`--capture: no interface is named '${name}' (give it with --iface ${name}=KIND:PARAMS, or capture a link with link:PEER=FILE)`);
    }
    const into = peer !== null ? linkCaptures : ifaceCaptures;
    if (into.has(peer ?? name)) fail(`--capture: ${peer !== null ? `the link to '${peer}'` : `'${name}'`} is captured twice`);
    into.set(peer ?? name, new PcapWriter(arg.slice(eq + 1), log));
  }
  // The files once every option is well formed: the mistake in the words is the one to say first.
  // Compared where they really are: another name (a link, `..`) for a file still writes that file.
  // And by device and inode where the file exists: a hard link has a real path of its own.
  const stateReal = plannedDirectory(stateDir);
  const stateFiles = namesByIdentity(stateReal);
  const targets = new Map<string, string>();
  for (const [option, { file }] of [
    ...[...ifaceCaptures].map(([name, w]) => [name, w] as const),
    ...[...linkCaptures].map(([peer, w]) => [`link:${peer}`, w] as const),
  ]) {
    let target: ReturnType<typeof captureTarget>;
    try {
      target = captureTarget(file);
    } catch (e) {
      fail(`--capture: ${(e as Error).message}`);
    }
    // A pcap header over state.json would lose the daemon's links and rules.
    if (isWithin(target.path, stateReal)) fail(`--capture: ${option}=${file} is in the state directory ${stateDir}, whose files are vnetd's own; write the capture elsewhere`);
    const own = target.identity === undefined ? undefined : stateFiles.get(target.identity);
    if (own !== undefined) fail(`--capture: ${option}=${file} is another name (a hard link) for ${join(stateDir, own)}, one of vnetd's own files; write the capture elsewhere`);
    const other = targets.get(target.path) ?? (target.identity === undefined ? undefined : targets.get(target.identity));
    if (other !== undefined) fail(`--capture: ${other} and ${option}=${file} are the same file, and would overwrite each other; give each capture its own file`);
    // One map for both keys: a real path starts with '/', an identity never does.
    for (const key of [target.path, target.identity]) if (key !== undefined) targets.set(key, `${option}=${file}`);
  }

  let stop = (_why: string): void => {};
  const daemon = new Vnetd({
    machine,
    port,
    listen: values.listen,
    stateDir,
    interfaces,
    ifaceCaptures,
    linkCaptures,
    log,
    fastPath: !values['no-fast-path'],
    onShutdown: () => stop('SHUTDOWN'),
  });
  try {
    await daemon.start();
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why =
      code === 'EADDRINUSE' ? `the overlay port ${port} on ${values.listen} is in use (another vnetd or program has it; each daemon on a machine needs its own --port)`
      : code === 'EADDRNOTAVAIL' ? `--listen ${values.listen} is not an address of this machine`
      : (e as Error).message;
    fail(e instanceof StateError ? why : `cannot start: ${why}`, 1);
  }
  let stopping = false;
  stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log(`${signal}: stopping`);
    daemon.stop().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  // A daemon outlives the terminal it was started from; and there is no configuration file to reload on a hang-up.
  process.on('SIGHUP', () => log(`SIGHUP: ignored (vnetd's configuration is its state directory, ${stateDir}, changed over the control socket; SIGTERM stops it)`));
}

void main(process.argv.slice(2));
