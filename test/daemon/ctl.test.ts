import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { ROOT } from '../support/vnetc.js';

/**
 * `vnetd ctl`, what an SSH session runs to reach a daemon, against stand-in
 * daemons whose sockets accept but then fall silent, as a suspended
 * (SIGSTOP) or wedged daemon's do: it gives up on its own, so it does not
 * outlive the session that started it, yet it never cuts off a person who
 * is only slow to type.
 */

const VNETD = path.join(ROOT, 'dist', 'daemon', 'vnetd.js');
let dir: string;
let server: net.Server;
let clients: net.Socket[];
let procs: ChildProcess[];

/** A stand-in daemon on DIR/vnetd.sock: `greet` says whether it greets; it never answers anything else, nor closes (half-open, as a suspended process holds it). */
async function standIn(greet: boolean): Promise<void> {
  server = net.createServer({ allowHalfOpen: true }, (c) => {
    clients.push(c);
    c.on('error', () => {});
    if (greet) c.write('OK vnetd stand-in protocol 1 machine h1\n');
  });
  await new Promise<void>((r) => server.listen(path.join(dir, 'vnetd.sock'), r));
}

/** Runs `vnetd ctl`; resolves with its status and output when it exits. */
function ctl(args: string[], input?: string): { proc: ChildProcess; done: Promise<{ status: number | null; stdout: string; stderr: string; ms: number }> } {
  const started = Date.now();
  const proc = spawn(process.execPath, [VNETD, 'ctl', '--state-dir', dir, ...args], { stdio: 'pipe' });
  procs.push(proc);
  let stdout = '';
  let stderr = '';
  proc.stdout!.on('data', (d: Buffer) => (stdout += d));
  proc.stderr!.on('data', (d: Buffer) => (stderr += d));
  if (input !== undefined) proc.stdin!.end(input);
  const done = new Promise<{ status: number | null; stdout: string; stderr: string; ms: number }>((r) => proc.on('exit', (status) => r({ status, stdout, stderr, ms: Date.now() - started })));
  return { proc, done };
}

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vnetd-ctl-'));
  clients = [];
  procs = [];
});
afterEach(async () => {
  for (const p of procs) p.kill('SIGKILL');
  for (const c of clients) c.destroy();
  if (server?.listening) await new Promise((r) => server.close(r));
  fs.rmSync(dir, { recursive: true, force: true });
});

test('a daemon that accepts but never greets: ctl gives up, even while its input is still open', async () => {
  await standIn(false);
  const r = await ctl(['--timeout', '1']).done;
  expect(r.status).toBe(1);
  expect(r.stderr).toBe(
    `vnetd: error: the daemon at ${path.join(dir, 'vnetd.sock')} accepted the connection but did not greet within 1 s; it may be suspended (SIGSTOP) or wedged: see its log (vnetd.log beside the socket, when vnetc started it), kill it and start it again\n`,
  );
});

test('a daemon that greets and then falls silent: once the input has ended, ctl waits --timeout for the replies, then gives up', async () => {
  await standIn(true);
  const r = await ctl(['--timeout', '1.5'], 'STATS?\n').done;
  expect(r.status).toBe(1);
  expect(r.stdout).toBe('OK vnetd stand-in protocol 1 machine h1\n');
  expect(r.stderr).toMatch(/^vnetd: error: the daemon at .*vnetd\.sock did not answer within 1\.5 s; it may be suspended \(SIGSTOP\) or wedged/);
  expect(r.ms).toBeGreaterThanOrEqual(1400);
});

test('with the input still open, a quiet daemon is not given up on: a person may be slow to type', async () => {
  await standIn(true);
  const { proc, done } = ctl(['--timeout', '0.5']);
  let exited = false;
  void done.then(() => (exited = true));
  await new Promise((r) => setTimeout(r, 2000));
  expect(exited).toBe(false);
  proc.stdin!.end();
  expect((await done).status).toBe(1);
});

test.each([
  [['--timeout', '0'], "--timeout must be seconds from 0.1 to 3600, not '0'"],
  [['--timeout', 'soon'], "--timeout must be seconds from 0.1 to 3600, not 'soon'"],
  [['--wait'], "Unknown option '--wait'"],
  [['--timeout', '-1'], "--timeout must be seconds from 0.1 to 3600, not '-1'"],
])('flags are checked: %j', (args, message) => {
  const r = spawnSync(process.execPath, [VNETD, 'ctl', '--state-dir', dir, ...args], { encoding: 'utf8', timeout: 20_000 });
  expect(r.status).toBe(2);
  expect(r.stderr).toContain(message);
  expect(r.stderr).not.toMatch(/\n\s+at /);
});

test.each([
  ['does not exist', (d: string) => path.join(d, 'nowhere'), 'does not exist (give the --state-dir the daemon was started with)'],
  ['is a file', (d: string) => (fs.writeFileSync(path.join(d, 'file'), ''), path.join(d, 'file')), 'is not a directory (give the --state-dir the daemon was started with)'],
])('a state directory that %s is said to be so, not that no daemon runs there', (_, make, message) => {
  const other = fs.mkdtempSync(path.join(os.tmpdir(), 'ctl-dir-'));
  try {
    const given = make(other);
    const r = spawnSync(process.execPath, [VNETD, 'ctl', '--state-dir', given], { encoding: 'utf8', timeout: 20_000, input: '' });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(`${given} ${message}`);
  } finally {
    fs.rmSync(other, { recursive: true, force: true });
  }
});

test.each([[['--help']], [['-h']], [['--state-dir', '/x', '--help']]])('%j prints what ctl takes, and connects nowhere', (args) => {
  const r = spawnSync(process.execPath, [VNETD, 'ctl', ...args], { encoding: 'utf8', timeout: 20_000 });
  expect(r.stderr).toBe('');
  expect(r.stdout).toMatch(/^usage: vnetd ctl --state-dir DIR \[--timeout S\]\n/);
  expect(r.stdout).toContain('--timeout');
  expect(r.status).toBe(0);
});

test.each([[[]], [['--state-dir=']], [['--state-dir', '']]])('%j: ctl needs a state directory, and an empty one is none (not a socket in the current directory)', (args) => {
  const r = spawnSync(process.execPath, [VNETD, 'ctl', ...args], { encoding: 'utf8', timeout: 20_000, cwd: dir });
  expect(r.stderr).toBe("vnetd: error: ctl needs --state-dir DIR\nRun 'vnetd --help' for usage.\n");
  expect(r.status).toBe(2);
});
