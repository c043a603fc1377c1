import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Vnetd } from '../../daemon/vnetd-core.js';
import { commitLines } from '../support/commit-lines.js';
import { ROOT } from '../support/vnetc.js';

/**
 * `vnetd ctl` as vnetc reaches it over SSH: its standard output is a pipe
 * whose reader may be slower than the daemon. A reply of several MB must
 * reach that reader whole, ending in OK, however the reader paces itself;
 * and a reader that stops for a while is not the daemon falling silent.
 */

const VNETD = path.join(ROOT, 'dist', 'daemon', 'vnetd.js');
const RULES = 100_000;

/**
 * Reads its standard input 4 KiB at a time, sleeping a millisecond between
 * reads (and `PAUSE_MS` after the first), and copies it to its standard
 * output: a pipe that is always nearly full, as behind a slow SSH session.
 */
const SLOW_READER = `
const fs = require('node:fs');
const buf = Buffer.alloc(4096);
const sleep = (ms) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
let first = true;
for (let n; (n = fs.readSync(0, buf)) > 0; ) {
  fs.writeSync(1, buf, 0, n);
  sleep(first ? Number(process.env.PAUSE_MS) : 1);
  first = false;
}`;

let dir: string;
let daemon: Vnetd;
let expected: string;

const mac = (i: number) => `02:00:00:${[16, 8, 0].map((s) => ((i >> s) & 0xff).toString(16).padStart(2, '0')).join(':')}`;

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vnetd-ctl-pipe-'));
  daemon = new Vnetd({ machine: 'h1', port: 0, listen: '127.0.0.1', stateDir: dir, interfaces: [], log: () => {} });
  await daemon.start();
  const lines = [`LINK ADD h2 TCP DIAL 127.0.0.1:9 ${'ab'.repeat(32)}`, ...Array.from({ length: RULES }, (_, i) => `RULE ADD ANY ${mac(i)} LINK h2`)];
  await commitLines(daemon, lines);
  const rules = [...daemon.query('rules?')];
  expected = `OK vnetd ${daemon.version} protocol 1 machine h1\n${rules.map((l) => `* ${l}\n`).join('')}OK ${RULES}\nOK bye\n`;
}, 60_000);

afterAll(async () => {
  await daemon?.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

/** `printf INPUT | vnetd ctl --state-dir STATEDIR … | slow-reader`; resolves with what the reader got and ctl's exit status. */
function throughSlowPipe(
  ctlArgs: string[],
  pauseMs: number,
  { stateDir = dir, input = 'RULES?\nDONE\n', onOutput }: { stateDir?: string; input?: string; onOutput?: () => void } = {},
): Promise<{ out: string; ctlStatus: string; stderr: string }> {
  const script = '{ "$NODE" "$VNETD" ctl --state-dir "$DIR" "$@"; echo $? >&3; } | "$NODE" -e "$READER"';
  const proc = spawn('/bin/sh', ['-c', script, 'sh', ...ctlArgs], {
    stdio: ['pipe', 'pipe', 'pipe', 'pipe'],
    env: { ...process.env, NODE: process.execPath, VNETD, DIR: stateDir, READER: SLOW_READER, PAUSE_MS: String(pauseMs) },
  });
  const out: Buffer[] = [];
  let ctlStatus = '';
  let stderr = '';
  proc.stdout!.on('data', (d: Buffer) => (out.push(d), onOutput?.()));
  proc.stdio[3]!.on('data', (d: Buffer) => (ctlStatus += d));
  proc.stderr!.on('data', (d: Buffer) => (stderr += d));
  proc.stdin!.end(input);
  return new Promise((resolve) => proc.on('close', () => resolve({ out: Buffer.concat(out).toString(), ctlStatus: ctlStatus.trim(), stderr })));
}

test('a reply of several MB reaches a reader that drains the pipe slowly, whole and ending in OK', async () => {
  expect(expected.length).toBeGreaterThan(4 << 20);
  const r = await throughSlowPipe([], 1);
  expect(r.stderr).toBe('');
  expect(r.out.slice(-40)).toBe(expected.slice(-40));
  expect(r.out.length).toBe(expected.length);
  expect(r.out === expected).toBe(true);
  expect(r.ctlStatus).toBe('0');
}, 60_000);

test('a reader that stops reading for longer than --timeout is waited for: the daemon is not silent, the reader is slow', async () => {
  const r = await throughSlowPipe(['--timeout', '0.5'], 2500);
  expect(r.stderr).toBe('');
  expect(r.out.slice(-40)).toBe(expected.slice(-40));
  expect(r.out === expected).toBe(true);
  expect(r.ctlStatus).toBe('0');
}, 60_000);

test('a connection that breaks after a long reply: what arrived reaches the reader before ctl exits 1', async () => {
  const standInDir = fs.mkdtempSync(path.join(os.tmpdir(), 'vnetd-ctl-pipe-'));
  const greeting = 'OK vnetd stand-in protocol 1 machine h1\n';
  const rest = '* filler line of a long reply\n'.repeat(10_000);
  // It never reads, so the command ctl sent is still unread when it goes: ctl's read ends in ECONNRESET, not an orderly end.
  let client: net.Socket | undefined;
  const server = net.createServer({ pauseOnConnect: true }, (c) => {
    c.on('error', () => {});
    c.write(greeting);
    client = c;
  });
  await new Promise<void>((r) => server.listen(path.join(standInDir, 'vnetd.sock'), r));
  // Once the greeting is through, ctl has sent its command (it does on connecting): then the reply, and the break.
  let sent = false;
  const replyAndBreak = () => {
    if (sent || !client) return;
    sent = true;
    client.write(rest, () => client!.destroy());
  };
  try {
    const r = await throughSlowPipe([], 1, { stateDir: standInDir, input: 'RULES?\n', onOutput: replyAndBreak });
    expect(r.stderr).toMatch(/^vnetd: error: the connection to the daemon's control socket .*vnetd.sock broke: read ECONNRESET; see the daemon's log\n$/);
    expect(r.out.length).toBe(greeting.length + rest.length);
    expect(r.out === greeting + rest).toBe(true);
    expect(r.ctlStatus).toBe('1');
  } finally {
    await new Promise((r) => server.close(r));
    fs.rmSync(standInDir, { recursive: true, force: true });
  }
}, 60_000);
