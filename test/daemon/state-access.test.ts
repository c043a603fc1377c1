import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Vnetd } from '../../daemon/vnetd-core.js';
import { isChange, parseCommand } from '../../src/wire/control.js';
import { freePort } from '../support/sshd.js';
import { ROOT } from '../support/vnetc.js';

/**
 * A state directory vnetd may not use (files left by a daemon run as
 * another user, a directory where a file should be) stops it with one line
 * that says what to do, naming the user it runs as; and it stops before it
 * restores or dials anything. Run as root, the daemon runs as nobody, since
 * file modes do not hold root back, in a directory nobody owns (one owned by
 * another user is refused before this, by checkStateDir).
 */

const VNETD = path.join(ROOT, 'dist', 'daemon', 'vnetd.js');
const NOBODY = 65534;
const asRoot = process.getuid?.() === 0;
const uid = asRoot ? NOBODY : process.getuid!();
let base: string;
let dir: string;
let state: string;
let journal: string;

beforeEach(async () => {
  base = fs.mkdtempSync(path.join(os.tmpdir(), 'vnetd-access-'));
  fs.chmodSync(base, 0o755);
  dir = path.join(base, 'state');
  state = path.join(dir, 'state.json');
  journal = path.join(dir, 'state.journal');
  // Saved state with a link, which a daemon that got as far as restoring would dial.
  const d = new Vnetd({ machine: 'h1', port: 0, listen: '127.0.0.1', stateDir: dir, interfaces: [], log: () => {} });
  await d.start();
  const changes = [`LINK ADD h2 TCP DIAL 127.0.0.1:9 ${'ab'.repeat(32)}`, 'RULE ADD ANY ANY LINK h2'].map((l) => parseCommand(l)).filter(isChange);
  expect((await d.commit(changes)).ok).toBe(true);
  await d.stop();
  // The daemon's user's, as a daemon it started would leave them: each test then takes one permission away.
  if (asRoot) for (const p of [dir, ...fs.readdirSync(dir).map((f) => path.join(dir, f))]) fs.chownSync(p, NOBODY, NOBODY);
});

afterEach(() => {
  fs.chmodSync(dir, 0o700);
  fs.rmSync(base, { recursive: true, force: true });
});

async function vnetd(): Promise<{ status: number | null; stderr: string }> {
  const port = await freePort();
  return spawnSync(process.execPath, [VNETD, '--machine', 'h1', '--port', String(port), '--listen', '127.0.0.1', '--state-dir', dir], {
    encoding: 'utf8',
    timeout: 20_000,
    ...(asRoot ? { uid: NOBODY, gid: NOBODY } : {}),
  });
}

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
/** The one line a permission problem is said in, the error naming the file `at` (a pattern). */
const notAllowed = (at: string) =>
  new RegExp(
    `^vnetd: error: the state directory ${escape(dir)} and its files must be readable and writable by the user vnetd runs as \\(uid ${uid}\\), ` +
      `and are not \\(EACCES: permission denied, open '${at}'\\); give them to that user \\(chown -R\\), or start vnetd as their owner\\n$`,
  );

test('a state directory the daemon cannot write: said before anything is restored or dialled', async () => {
  fs.chmodSync(dir, 0o500);
  const r = await vnetd();
  // Nothing but the error: no "restored 1 links" line, no link dialled.
  expect(r.stderr).toMatch(notAllowed(`${escape(state)}\\.tmp-\\d+`));
  expect(r.status).toBe(1);
});

test('a state file the daemon cannot read, or a journal it cannot append to', async () => {
  fs.chmodSync(state, 0o000);
  let r = await vnetd();
  expect(r.stderr).toMatch(notAllowed(escape(state)));
  expect(r.status).toBe(1);
  fs.chmodSync(state, 0o600);
  fs.chmodSync(journal, 0o444);
  r = await vnetd();
  expect(r.stderr).toMatch(notAllowed(escape(journal)));
  expect(r.status).toBe(1);
});

test('a directory where state.json should be: move it out of the way', async () => {
  fs.rmSync(state);
  fs.mkdirSync(state);
  const r = await vnetd();
  expect(r.stderr).toBe(`vnetd: error: ${state} is a directory where vnetd keeps a file of its state; move that directory out of ${dir}\n`);
  expect(r.status).toBe(1);
});
