import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chain, EXIT, INSTALL, MKDIRS } from '../../src/remote/ssh/scripts.js';

/**
 * The upload's remote scripts on a machine whose userland is BusyBox (Alpine,
 * embedded) rather than GNU's. Twice: under BusyBox's own sh, which (built
 * standalone, as Debian's busybox-static is) runs its applets whatever the
 * PATH; and under /bin/sh with nothing but BusyBox applets on the PATH and
 * an mv that takes only -f, -i and -n, as BusyBox's did before it grew GNU's
 * -T (1.26, still found on such machines) and as BSD's does.
 */

const BUSYBOX = ['/bin/busybox', '/usr/bin/busybox'].find((f) => fs.existsSync(f));
if (!BUSYBOX) console.warn('SKIPPING the BusyBox script tests: busybox is not installed (apt-get install busybox-static)');
const suite = BUSYBOX ? describe : describe.skip;

let dir = '';
let bin = '';

beforeAll(() => {
  if (!BUSYBOX) return;
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vnetc-busybox-'));
  bin = path.join(dir, 'bin');
  fs.mkdirSync(bin);
  const applets = spawnSync(BUSYBOX, ['--list'], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean);
  for (const a of applets) if (a !== 'mv') fs.symlinkSync(BUSYBOX, path.join(bin, a));
  // BusyBox 1.26's option set, and its words for one it lacks.
  fs.writeFileSync(
    path.join(bin, 'mv'),
    `#!${BUSYBOX} sh\nfor a in "$@"; do case "$a" in --) break ;; -[fin]) ;; -*) echo "mv: unrecognized option: \${a#-}" >&2; echo 'Usage: mv [-fin] SOURCE DEST' >&2; exit 1 ;; esac; done\nexec ${BUSYBOX} mv "$@"\n`,
    { mode: 0o755 },
  );
});

afterAll(() => {
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

const SHELLS = [
  ['BusyBox sh', () => [BUSYBOX!, 'sh']],
  ['/bin/sh with BusyBox applets and an mv without -T', () => ['/bin/sh']],
] as const;

/** Runs `script` as the remote side does (SHELL -c SCRIPT sh ARGS...), with only BusyBox on the PATH. */
function inShell(shell: readonly string[]) {
  return (script: string, args: string[]) => spawnSync(shell[0]!, [...shell.slice(1), '-c', script, 'sh', ...args], { encoding: 'utf8', env: { PATH: bin } });
}

let n = 0;
/** A fresh cache directory, and an uploaded tree in its scratch directory. */
function scratch(content: string) {
  const cache = path.join(dir, `cache${++n}`);
  const tmp = path.join(cache, `0.0.0-test.tmp-${n}-abc`);
  fs.mkdirSync(path.join(tmp, 'daemon'), { recursive: true });
  fs.writeFileSync(path.join(tmp, 'daemon', 'vnetd.js'), content);
  return { cache, tmp, installDir: path.join(cache, '0.0.0-test') };
}

suite('the PATH of BusyBox applets', () => {
  test('its mv refuses -T, as the old BusyBox one does', () => {
    const { tmp, installDir } = scratch('x');
    const r = inShell(['/bin/sh'])('mv -T "$1" "$2"', [tmp, installDir]);
    expect(r.stderr).toContain('mv: unrecognized option: T');
    expect(r.status).toBe(1);
  });
});

suite.each(SHELLS)('the upload scripts under %s', (_, shell) => {
  const sh = (script: string, args: string[]) => inShell(shell())(script, args);

  test('INSTALL moves the tree into place', () => {
    const { cache, tmp, installDir } = scratch('first');
    const r = sh(INSTALL, [tmp, installDir]);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(fs.readdirSync(cache)).toEqual(['0.0.0-test']);
    expect(fs.readFileSync(path.join(installDir, 'daemon', 'vnetd.js'), 'utf8')).toBe('first');
  });

  test('INSTALL after another upload got there first: success, the daemon in place untouched, nothing left inside it', () => {
    const { cache, tmp, installDir } = scratch('second');
    fs.mkdirSync(path.join(installDir, 'daemon'), { recursive: true });
    fs.writeFileSync(path.join(installDir, 'daemon', 'vnetd.js'), 'first');
    const r = sh(INSTALL, [tmp, installDir]);
    expect(r.status).toBe(0);
    expect(fs.readdirSync(cache)).toEqual(['0.0.0-test']);
    expect(fs.readdirSync(installDir)).toEqual(['daemon']);
    expect(fs.readFileSync(path.join(installDir, 'daemon', 'vnetd.js'), 'utf8')).toBe('first');
  });

  test('INSTALL over an empty directory replaces it, as mv -T did', () => {
    const { tmp, installDir } = scratch('first');
    fs.mkdirSync(installDir);
    expect(sh(INSTALL, [tmp, installDir]).status).toBe(0);
    expect(fs.readFileSync(path.join(installDir, 'daemon', 'vnetd.js'), 'utf8')).toBe('first');
  });

  test('INSTALL where something else is in the way: a failure, said, and the upload removed', () => {
    const { cache, tmp, installDir } = scratch('first');
    fs.mkdirSync(path.join(installDir, 'junk'), { recursive: true });
    const r = sh(INSTALL, [tmp, installDir]);
    expect(r.stderr).toBe(`${installDir} is in the way: a directory that holds no vnetd\n`);
    expect(r.status).toBe(1);
    expect(fs.readdirSync(cache)).toEqual(['0.0.0-test']);
    expect(fs.readdirSync(installDir)).toEqual(['junk']);
  });

  test('MKDIRS removes the day-old scratch directories and makes the new one', () => {
    const { cache, tmp } = scratch('stale');
    const old = new Date(Date.now() - 2 * 86_400_000);
    fs.utimesSync(tmp, old, old);
    const fresh = path.join(cache, '0.0.0-test.tmp-99-def');
    fs.mkdirSync(fresh);
    const next = path.join(cache, '0.0.0-test.tmp-100-0123');
    const r = sh(MKDIRS, [...chain({ dirs: [cache], root: undefined }), cache, path.join(next, 'daemon')]);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(fs.readdirSync(cache).sort()).toEqual([path.basename(fresh), path.basename(next)].sort());
  });
});

suite('the directory checks when find fails', () => {
  test('a find that fails, printing nothing, is not taken for a clean bill: the directory is refused as unsafe', () => {
    const failing = path.join(dir, 'failing-find');
    fs.mkdirSync(failing);
    for (const a of fs.readdirSync(bin)) if (a !== 'find') fs.symlinkSync(path.join(bin, a), path.join(failing, a));
    fs.writeFileSync(path.join(failing, 'find'), `#!${BUSYBOX} sh\nexit 1\n`, { mode: 0o755 });
    const cache = path.join(dir, 'checked');
    fs.mkdirSync(cache, { mode: 0o700 });
    const run = (PATH: string) => spawnSync('/bin/sh', ['-c', MKDIRS, 'sh', ...chain({ dirs: [cache], root: undefined }), cache, path.join(cache, 'new')], { encoding: 'utf8', env: { PATH } });
    const r = run(failing);
    expect(r.stdout).toContain(`unsafe=${cache}\n`);
    expect(r.status).toBe(EXIT.unsafe);
    expect(fs.existsSync(path.join(cache, 'new'))).toBe(false);
    // With a find that works, the same directory passes.
    expect(run(bin).status).toBe(0);
  });
});
