import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { ControlClient } from '../../src/remote/control-client.js';
import { freePort } from '../support/sshd.js';
import { ROOT } from '../support/vnetc.js';

/**
 * vnetd refusing to start: each mistake a person makes on its command line
 * or a machine makes for it (a port taken, a file where the state directory
 * should be) is said in one line that names what to change, with no stack
 * trace, and the exit status says which kind it was (2: the command line;
 * 1: the machine).
 */

const VNETD = path.join(ROOT, 'dist', 'daemon', 'vnetd.js');
let dir: string;
let taken: net.Server;
let busy: number;

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vnetd-start-'));
  fs.writeFileSync(path.join(dir, 'a-file'), '');
  taken = net.createServer();
  await new Promise<void>((r) => taken.listen(0, '127.0.0.1', () => r()));
  busy = (taken.address() as net.AddressInfo).port;
});
afterAll(async () => {
  await new Promise((r) => taken.close(r));
  fs.rmSync(dir, { recursive: true, force: true });
});

const vnetd = (args: string[]) => spawnSync(process.execPath, [VNETD, '--machine', 'h1', ...args], { encoding: 'utf8', timeout: 20_000 });

test.each([
  ['ctrl', "'ctrl' is not a vnetd command: vnetd takes flags, or the one command ctl; did you mean 'ctl'?"],
  ['start', "'start' is not a vnetd command: vnetd takes flags, or the one command ctl\n"],
])('%s: a word where vnetd wants flags is named, with the command it may have meant', (word, message) => {
  const r = spawnSync(process.execPath, [VNETD, word, '--port', '1'], { encoding: 'utf8', timeout: 20_000 });
  expect(r.status).toBe(2);
  expect(r.stderr).toContain(message);
});

test.each([
  [['--port', '1', '--state-dir', ''], 2, 'say where to keep state: --state-dir DIR'],
  // A negative number is the flag's value, checked as such (parseArgs alone calls it ambiguous).
  [['--port', '-5', '--state-dir', 'x'], 2, "--port must be 1..65535, not '-5'"],
  [['--port', '1', '--state-dir', 'x', '--listen', '999.1.1.1'], 2, "--listen must be an IP address of this machine (0.0.0.0 or :: for all of them), not '999.1.1.1'"],
  [['--port', '1', '--state-dir', 'x', '--listen', ''], 2, "--listen must be an IP address of this machine (0.0.0.0 or :: for all of them), not ''"],
  [['--port', '1', '--state-dir', 'x', '--iface', 'vm0=qemu-udp:listen=abc,peer=127.0.0.1:1'], 2, "--iface: qemu-udp: listen 'abc' is not HOST:PORT with a port 1-65535"],
  [['--port', '1', '--state-dir', 'x', '--iface', 'vm0=qemu-udp:listen=127.0.0.1:99999,peer=127.0.0.1:1'], 2, "qemu-udp: listen '127.0.0.1:99999' is not HOST:PORT"],
  [['--port', '1', '--state-dir', 'x', '--iface', 'vm0=qemu-udp:peer=127.0.0.1:1'], 2, 'qemu-udp needs listen=HOST:PORT'],
  // Socket paths the kernel cannot hold: libuv would bind or dial a shorter one, where nobody looks.
  [['--port', '1', '--state-dir', `/tmp/${'d'.repeat(100)}`], 2, `--state-dir holds the control socket: the socket path /tmp/${'d'.repeat(100)}/vnetd.sock is 116 bytes long, and a Unix socket's can be at most 107: use a shorter directory`],
  [['--port', '1', '--state-dir', 'x', '--iface', `vm0=qemu-stream:connect-path=/run/${'q'.repeat(120)}`], 2, `--iface: qemu-stream: connect-path: the socket path /run/${'q'.repeat(120)} is 125 bytes long`],
])('%j: exit %d, %s', (args, status, message) => {
  const r = vnetd(args);
  expect(r.stderr).toContain(message);
  expect(r.status).toBe(status);
  expect(r.stderr).not.toMatch(/\n\s+at /);
});

test('what the machine refuses is said as what to change: a file for a state directory, a port taken, an address not here', async () => {
  const free = await freePort();
  const cases: [string[], string][] = [
    [['--port', String(free), '--listen', '127.0.0.1', '--state-dir', path.join(dir, 'a-file')], `the state directory ${path.join(dir, 'a-file')} is not a directory; name another (--state-dir)`],
    [['--port', String(busy), '--listen', '127.0.0.1', '--state-dir', path.join(dir, 'p')], `cannot start: the overlay port ${busy} on 127.0.0.1 is in use (another vnetd or program has it; each daemon on a machine needs its own --port)`],
    [['--port', String(free), '--listen', '127.0.0.1', '--state-dir', path.join(dir, 's'), '--iface', `vm0=qemu-stream:listen=127.0.0.1:${busy}`],
      `cannot start: interface vm0 (qemu-stream listen=127.0.0.1:${busy}): the address is in use (another daemon or VM on this port?)`],
    // TEST-NET-1 (RFC 5737): never an address of a test machine.
    [['--port', String(free), '--listen', '192.0.2.1', '--state-dir', path.join(dir, 'l')], 'cannot start: --listen 192.0.2.1 is not an address of this machine'],
  ];
  for (const [args, message] of cases) {
    const r = vnetd(args);
    expect(r.stderr).toBe(`vnetd: error: ${message}\n`);
    expect(r.status).toBe(1);
  }
});

describe('a start that fails leaves the state directory as it found it', () => {
  const busyPort = () => ['--port', String(busy), '--listen', '127.0.0.1'];

  test('one it made, with the parents it made: gone, up to the directory that was there', () => {
    const there = path.join(dir, 'there');
    fs.mkdirSync(there);
    const state = path.join(there, 'new', 'deeper', 'state');
    const r = vnetd([...busyPort(), '--state-dir', state]);
    expect(r.stderr).toMatch(/overlay port \d+ on 127\.0\.0\.1 is in use/);
    expect(r.status).toBe(1);
    expect(fs.readdirSync(there)).toEqual([]);
  });

  test('one that was there, even empty: kept', () => {
    const state = path.join(dir, 'was-there');
    fs.mkdirSync(state, { mode: 0o700 });
    expect(vnetd([...busyPort(), '--state-dir', state]).status).toBe(1);
    expect(fs.statSync(state).isDirectory()).toBe(true);
  });

  /** A daemon in-process on `stateDir` whose start fails after its state files are written: its link capture is a directory. */
  async function failingLate(stateDir: string, log: (line: string) => void = () => {}) {
    const { Vnetd } = await import('../../daemon/vnetd-core.js');
    const { PcapWriter } = await import('../../daemon/capture/pcap-file.js');
    const capture = fs.mkdtempSync(path.join(dir, 'capture-'));
    const d = new Vnetd({ machine: 'h1', port: 0, listen: '127.0.0.1', stateDir, interfaces: [], linkCaptures: new Map([['h2', new PcapWriter(capture)]]), log });
    const e = await d.start().then(() => d.stop().then(() => undefined), (x: Error) => x);
    expect(e?.message).toMatch(/capture/);
  }

  test('one it made, failing after its state files and socket were written: gone with them', async () => {
    const state = path.join(dir, 'late', 'state');
    // What it had written by then: the next test sees them, kept.
    await failingLate(state);
    expect(fs.existsSync(path.join(dir, 'late'))).toBe(false);
  });

  test('one it made, where something else appeared meanwhile: kept, with what is in it', async () => {
    const state = path.join(dir, 'crowded', 'state');
    await failingLate(state, (line) => {
      // Said once the links listen: the state directory is there and locked.
      if (line.includes('listening')) fs.writeFileSync(path.join(state, 'notes.txt'), 'mine\n');
    });
    expect(fs.readdirSync(state).sort()).toEqual(['notes.txt', 'state.journal', 'state.json', 'vnetd.lock']);
    expect(fs.readFileSync(path.join(state, 'notes.txt'), 'utf8')).toBe('mine\n');
  });
});

describe('who may reach the daemon through its state directory', () => {
  test('a state directory others can write to, or that another user owns, is refused before anything starts', async () => {
    const open = path.join(dir, 'open');
    fs.mkdirSync(open);
    fs.chmodSync(open, 0o777);
    const port = String(await freePort());
    let r = vnetd(['--port', port, '--listen', '127.0.0.1', '--state-dir', open]);
    expect(r.stderr).toBe(`vnetd: error: the state directory ${open} is mode 0777, so others can write to it and replace its socket or files; chmod go-w it (vnetd makes a new one 0700), or name another --state-dir\n`);
    expect(r.status).toBe(1);
    expect(fs.readdirSync(open)).toEqual([]);
    if (process.getuid?.() !== 0) return; // only root can give a directory away
    const theirs = path.join(dir, 'theirs');
    fs.mkdirSync(theirs, { mode: 0o700 });
    fs.chownSync(theirs, 65534, 65534);
    r = vnetd(['--port', port, '--listen', '127.0.0.1', '--state-dir', theirs]);
    expect(r.stderr).toBe(`vnetd: error: the state directory ${theirs} belongs to uid 65534, not to this daemon's user (uid 0), who could then have its files replaced; chown 0 it, or name another --state-dir\n`);
    expect(r.status).toBe(1);
  });

  test('the control socket is its owner\'s alone, whatever the umask', async () => {
    const { Vnetd, controlSocketPath } = await import('../../daemon/vnetd-core.js');
    const stateDir = path.join(dir, 'umask');
    const d = new Vnetd({ machine: 'h1', port: 0, listen: '127.0.0.1', stateDir, interfaces: [], log: () => {} });
    const mask = process.umask(0);
    try {
      await d.start();
    } finally {
      process.umask(mask);
    }
    try {
      expect((fs.statSync(controlSocketPath(stateDir)).mode & 0o777).toString(8)).toBe('600');
    } finally {
      await d.stop();
    }
  });
});

describe('one daemon per state directory', () => {
  type Started = { proc: ChildProcess; running: boolean; status: number | null; stderr: string };

  /** Starts vnetd on `stateDir`; resolves once it runs (it logs its control socket) or has exited. */
  async function launch(stateDir: string): Promise<Started> {
    const port = await freePort();
    const proc = spawn(process.execPath, [VNETD, '--machine', 'h1', '--port', String(port), '--listen', '127.0.0.1', '--state-dir', stateDir], { stdio: ['ignore', 'ignore', 'pipe'] });
    return new Promise((resolve) => {
      let stderr = '';
      proc.stderr!.on('data', (b: Buffer) => {
        stderr += b;
        if (stderr.includes(', control ')) resolve({ proc, running: true, status: null, stderr });
      });
      proc.once('close', (status) => resolve({ proc, running: false, status, stderr }));
    });
  }

  const killed = (proc: ChildProcess) => new Promise((r) => (proc.once('exit', r), proc.kill('SIGKILL')));

  test('of daemons started together on one state directory, exactly one runs and each other says why; round after round, over the last round\'s SIGKILLed daemon', async () => {
    const state = path.join(dir, 'contended');
    for (let round = 0; round < 5; round++) {
      const started = await Promise.all([0, 1, 2, 3].map(() => launch(state)));
      try {
        expect(started.filter((s) => s.running)).toHaveLength(1);
        for (const s of started.filter((x) => !x.running)) {
          expect(s.stderr).toBe(`vnetd: error: cannot start: another vnetd is running with state directory ${state}\n`);
          expect(s.status).toBe(1);
        }
      } finally {
        for (const s of started.filter((x) => x.running)) await killed(s.proc);
      }
    }
  }, 120_000);

  test('without flock(1) to lock its state directory, vnetd says what to install', () => {
    const r = spawnSync(process.execPath, [VNETD, '--machine', 'h1', '--port', '1', '--listen', '127.0.0.1', '--state-dir', path.join(dir, 'no-flock')],
      { encoding: 'utf8', timeout: 20_000, env: { ...process.env, PATH: path.join(dir, 'nowhere') } });
    expect(r.stderr).toBe('vnetd: error: cannot start: vnetd locks its state directory with flock(1), which is not installed here; install util-linux (or BusyBox)\n');
    expect(r.status).toBe(1);
  });

  test('a daemon killed with SIGKILL does not keep the next one from starting on its state directory', async () => {
    const state = path.join(dir, 'killed');
    const first = await launch(state);
    expect(first.running).toBe(true);
    await killed(first.proc);
    expect(fs.existsSync(path.join(state, 'vnetd.sock'))).toBe(true);
    const next = await launch(state);
    try {
      expect(next.running).toBe(true);
      const ctl = await ControlClient.connect(path.join(state, 'vnetd.sock'));
      expect((await ctl.request('INFO?')).data).toContain(`pid ${next.proc.pid}`);
      ctl.close();
    } finally {
      if (next.running) await killed(next.proc);
    }
  }, 60_000);
});
