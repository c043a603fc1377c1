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
