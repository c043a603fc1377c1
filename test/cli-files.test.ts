import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { cleanEnv, expectNoCrash, runVnetc, SAMPLES, VNETC, type Run } from './support/vnetc.js';

/**
 * The files vnetc is told to read and write: outputs that cannot be written
 * are refused before any work is done, failures are said in words (never
 * Node's errno text with vnetc's temporary paths), and inputs that are not
 * files are refused rather than read. Each test works in a fresh temporary
 * directory, with an empty VNETC_HOME, so no daemon is ever reached.
 */

let tmp = '';

beforeEach(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vnetc-files-'));
  fs.mkdirSync(path.join(tmp, 'home'));
  for (const f of ['star4.vnet', 'star8.vnet', 'ring3.vgen']) fs.copyFileSync(path.join(SAMPLES, f), path.join(tmp, f));
});

afterEach(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

const vnetc = (...args: string[]): Run => runVnetc(args, { cwd: tmp, env: { VNETC_HOME: path.join(tmp, 'home') } });

describe('infer --svg', () => {
  test('a path that cannot be written is refused before any daemon is asked (exit 2)', () => {
    fs.mkdirSync(path.join(tmp, 'pictures'));
    const dir = vnetc('infer', '--svg', 'pictures');
    expectNoCrash(dir);
    expect(dir.stderr).toContain("vnetc: error: cannot write --svg 'pictures': it is a directory; name a file in it");
    expect(dir.stderr).not.toContain('no local daemons');
    expect(dir.status).toBe(2);
    const missing = vnetc('infer', '--svg', 'nowhere/x.svg');
    expectNoCrash(missing);
    expect(missing.stderr).toContain("cannot write --svg 'nowhere/x.svg': there is no directory 'nowhere'; create it, or name a file elsewhere");
    expect(missing.status).toBe(2);
    const through = vnetc('infer', '--svg', 'star4.vnet/x.svg');
    expect(through.stderr).toContain("cannot write --svg 'star4.vnet/x.svg': a part of the path is not a directory");
    // A path that can be written goes on to the daemons (none here).
    expect(vnetc('infer', '--svg', 'x.svg').stderr).toContain('no local daemons');
  });
});

describe('inputs that are not regular files', () => {
  test('a device is refused, not read (it would never end)', () => {
    const r = vnetc('validate', '/dev/zero');
    expectNoCrash(r);
    expect(r.stdout).toContain("/dev/zero: error[VN1000]: cannot read '/dev/zero': it is a device, not a file (for standard input, pass -)");
    expect(r.status).toBe(2);
  });

  test('a FIFO (size 0 to stat) is read for what it holds', () => {
    const fifo = path.join(tmp, 'pipe.vnet');
    spawnSync('mkfifo', [fifo]);
    const r = spawnSync('/bin/sh', ['-c', `cat star4.vnet > pipe.vnet & exec "$0" "$1" validate pipe.vnet`, process.execPath, VNETC], { cwd: tmp, env: cleanEnv(), encoding: 'utf8' });
    expect(r.stdout).toBe('1 file valid.\n');
    expect(r.status).toBe(0);
  });

  test('endless standard input is read only as far as the size limit', async () => {
    const r = await new Promise<Run>((resolve, reject) => {
      const child = spawn('/bin/sh', ['-c', 'yes BEGIN | "$0" "$1" validate -', process.execPath, VNETC], { cwd: tmp, env: cleanEnv() });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
      child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
      child.on('error', reject);
      child.on('close', (status, signal) => resolve({ status, signal, stdout, stderr }));
    });
    expectNoCrash(r);
    expect(r.stdout).toContain('<stdin>: error[VN1005]: the file is more than 268435456 bytes; vnetc reads programs of at most 268435456 bytes');
    expect(r.status).toBe(1);
  });
});

describe('an output that is also an input', () => {
  const before = (): string => fs.readFileSync(path.join(tmp, 'star4.vnet'), 'utf8');

  test('is refused, by any path to it, and the input is left as it was', () => {
    const original = before();
    fs.symlinkSync('star4.vnet', path.join(tmp, 'link.vnet'));
    fs.writeFileSync(path.join(tmp, 'm.json'), '{}');
    const cases: [string[], number, string][] = [
      [['plan', 'star4.vnet', '--state', 'star8.vnet', '--out', 'star4.vnet'], 1, "cannot write --out 'star4.vnet': it is the same file as the desired state 'star4.vnet', which writing would destroy; name another file"],
      [['plan', 'star8.vnet', '--state', 'star4.vnet', '--out', './star4.vnet'], 1, "cannot write --out './star4.vnet': it is the same file as --state 'star4.vnet'"],
      [['plan', 'star8.vnet', '--state', 'star4.vnet', '-o', 'link.vnet'], 1, "cannot write --out 'link.vnet': it is the same file as --state 'star4.vnet'"],
      [['gen', 'ring3.vgen', '-o', 'ring3.vgen'], 2, "cannot write --out 'ring3.vgen': it is the same file as the requirements file 'ring3.vgen'"],
      [['adapt', '-m', 'm.json', '-s', 'star4.vnet', '-o', 'star4.vnet'], 2, "cannot write --out 'star4.vnet': it is the same file as --spec 'star4.vnet'"],
      [['adapt', '-m', 'm.json', '-s', 'star8.vnet', '-o', 'm.json'], 2, "cannot write --out 'm.json': it is the same file as --matrix 'm.json'"],
    ];
    for (const [args, status, message] of cases) {
      const r = vnetc(...args);
      expectNoCrash(r);
      expect(r.stderr).toContain(`vnetc: error: ${message}`);
      expect(r.stdout).toBe('');
      expect(r.status).toBe(status);
    }
    expect(before()).toBe(original);
    expect(fs.readFileSync(path.join(tmp, 'm.json'), 'utf8')).toBe('{}');
    expect(fs.existsSync(path.join(tmp, 'ring3.vgen'))).toBe(true);
  });

  test('plan --out a directory is refused before the plan is computed', () => {
    fs.mkdirSync(path.join(tmp, 'plans'));
    const r = vnetc('plan', 'star8.vnet', '--state', 'star4.vnet', '--out', 'plans');
    expectNoCrash(r);
    expect(r.stderr).toContain("vnetc: error: cannot write --out 'plans': it is a directory; name a file in it");
    expect(r.stderr).not.toContain('vnetc-tmp');
    expect(r.stdout).toBe('');
    expect(r.status).toBe(1);
  });
});

describe('symbolic links in a directory', () => {
  test('validate and fmt take a linked .vnet file, and report a dangling or looping link rather than skip it', () => {
    fs.mkdirSync(path.join(tmp, 'd'));
    fs.symlinkSync('../star4.vnet', path.join(tmp, 'd', 'good.vnet'));
    fs.symlinkSync('nowhere.vnet', path.join(tmp, 'd', 'dangling.vnet'));
    fs.symlinkSync('loop.vnet', path.join(tmp, 'd', 'loop.vnet'));
    const dangling = "d/dangling.vnet: error[VN1000]: cannot read 'd/dangling.vnet': a symbolic link to 'nowhere.vnet', which does not exist";
    const loop = "d/loop.vnet: error[VN1000]: cannot read 'd/loop.vnet': too many symbolic links (a link that leads back to itself?)";
    const v = vnetc('validate', 'd');
    expectNoCrash(v);
    expect(v.stdout).toContain(dangling);
    expect(v.stdout).toContain(loop);
    expect(v.stdout).toContain('2 errors in 3 files.');
    expect(v.status).toBe(2);
    const f = vnetc('fmt', '--check', 'd');
    expectNoCrash(f);
    expect(f.stderr).toContain(dangling);
    expect(f.stderr).toContain(loop);
    expect(f.status).toBe(2);
    fs.rmSync(path.join(tmp, 'd', 'dangling.vnet'));
    fs.rmSync(path.join(tmp, 'd', 'loop.vnet'));
    expect(vnetc('validate', 'd').stdout).toBe('1 file valid.\n');
  });
});

describe('standard input', () => {
  test('plan - --state - is refused: standard input can be read only once', () => {
    const r = runVnetc(['plan', '-', '--state', '-'], { cwd: tmp, input: fs.readFileSync(path.join(tmp, 'star4.vnet')) });
    expectNoCrash(r);
    expect(r.stderr).toContain('vnetc: error: standard input (-) can be read only once: give the desired state or --state as a file');
    expect(r.stdout).toBe('');
    expect(r.status).toBe(1);
    const one = runVnetc(['plan', '-', '--state', 'star4.vnet'], { cwd: tmp, input: fs.readFileSync(path.join(tmp, 'star4.vnet')) });
    expect(one.stdout).toBe('No changes. The daemons hold what the file describes.\n');
  });
});

describe('a write that fails', () => {
  /** Runs vnetc as the shell's own process, after making its temporary file's name a directory: the write then fails, whoever runs it. */
  function blocked(target: string, args: string[]): Run {
    const r = spawnSync('/bin/sh', ['-c', `mkdir "$1.vnetc-tmp-$$" && shift && exec "$@"`, 'sh', target, process.execPath, VNETC, ...args], {
      cwd: tmp,
      env: cleanEnv({ VNETC_HOME: path.join(tmp, 'home') }),
      encoding: 'utf8',
    });
    return { status: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
  }

  test('is said in words, without errno text or vnetc\'s temporary file, and the file is left as it was', () => {
    fs.writeFileSync(path.join(tmp, 'ugly.vnet'), 'begin\nhost vnet at a 5000 e\nend\n');
    const cases: [string, string[], number][] = [
      ['ugly.vnet', ['fmt', '-w', 'ugly.vnet'], 2],
      ['out.vnet', ['plan', 'star8.vnet', '--state', 'star4.vnet', '--out', 'out.vnet'], 1],
      ['ring3.vnet', ['gen', 'ring3.vgen', '-o', 'ring3.vnet'], 2],
    ];
    for (const [target, args, status] of cases) {
      const r = blocked(path.join(tmp, target), args);
      expectNoCrash(r);
      expect(r.stderr).toMatch(new RegExp(`vnetc: error: cannot write (the plan to )?'${target.replace('.', '\\.')}': cannot create a temporary file beside it \\(it is a directory\\)`));
      expect(r.stderr).not.toMatch(/vnetc-tmp|EISDIR|rename/);
      expect(r.status).toBe(status);
    }
    expect(fs.readFileSync(path.join(tmp, 'ugly.vnet'), 'utf8')).toBe('begin\nhost vnet at a 5000 e\nend\n');
    expect(fs.existsSync(path.join(tmp, 'out.vnet'))).toBe(false);
  });
});

describe('gen reads its requirements as load() reads a program', () => {
  test('binary, non-UTF-8 and device inputs are named, not quoted back to the terminal', () => {
    fs.writeFileSync(path.join(tmp, 'garbage.bin'), Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x1b, 0x5b, 0x32, 0x4a]));
    fs.writeFileSync(path.join(tmp, 'latin1.vgen'), Buffer.from('proxy caf\xe9\n', 'latin1'));
    const binary = vnetc('gen', 'garbage.bin');
    expectNoCrash(binary);
    expect(binary.stderr).toBe('vnetc: error: garbage.bin: this looks like a binary file (NUL byte at offset 8); expected a requirements file (docs/GEN.md)\n');
    expect(binary.status).toBe(1);
    const nul = runVnetc(['gen', '-'], { cwd: tmp, input: 'proxy p\0\n' });
    expect(nul.stderr).toBe('vnetc: error: <stdin>: this looks like a binary file (NUL byte at offset 7); expected a requirements file (docs/GEN.md)\n');
    expect(vnetc('gen', 'latin1.vgen').stderr).toContain('latin1.vgen: the file is not valid UTF-8 (bad byte 0xE9 at offset 9)');
    const device = vnetc('gen', '/dev/zero');
    expect(device.stderr).toContain("vnetc: error: cannot read the requirements '/dev/zero': it is a device, not a file");
    expect(device.status).toBe(2);
    expect(vnetc('gen', 'ring3.vgen').status).toBe(0);
  });
});
