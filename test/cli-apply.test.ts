import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { toolMissing } from './support/tools.js';
import { cleanEnv, expectNoCrash, runVnetc, SAMPLES, VNETC, type Run } from './support/vnetc.js';

/**
 * apply at a terminal, as a person runs it: under script(1), which gives it a
 * pseudo-terminal. VNETC_HOME is empty, so the plan is to start the file's
 * daemons with --local, and the question comes before anything is started.
 */

const noScript = toolMissing('script', ['--version'], 'bsdutils');

let tmp = '';

beforeEach(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vnetc-apply-tty-'));
  fs.mkdirSync(path.join(tmp, 'home'));
  fs.copyFileSync(path.join(SAMPLES, 'star4.vnet'), path.join(tmp, 'star4.vnet'));
});

afterEach(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

/** Runs vnetc on a terminal; when its output first contains `when`, types `keys`. */
function onTerminal(args: string[], when: string, keys: string): Promise<Run> {
  const quoted = [process.execPath, VNETC, ...args].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
  return new Promise((resolve, reject) => {
    const child = spawn('script', ['-qec', quoted, '/dev/null'], { cwd: tmp, env: cleanEnv({ VNETC_HOME: path.join(tmp, 'home'), TERM: 'dumb' }) });
    let out = '';
    let typed = false;
    child.stdout.on('data', (b: Buffer) => {
      out += b.toString('utf8');
      if (!typed && out.includes(when)) {
        typed = true;
        child.stdin.write(keys);
      }
    });
    child.on('error', reject);
    child.on('close', (status, signal) => resolve({ status, signal, stdout: out, stderr: '' }));
  });
}

const started = (): string[] => (fs.existsSync(path.join(tmp, 'home', 'local')) ? fs.readdirSync(path.join(tmp, 'home', 'local')) : []);

const PROMPT = "Only 'yes' goes ahead:";

(noScript ? describe.skip : describe)('apply asks on a terminal', () => {
  test.each([
    ['Ctrl-D', '\x04'],
    ['Ctrl-C', '\x03'],
    ['no', 'no\r'],
  ])('%s at the question cancels: nothing changed, exit 1', async (_what, keys) => {
    const r = await onTerminal(['apply', '--local', 'star4.vnet'], PROMPT, keys);
    expectNoCrash(r);
    expect(r.stdout).toContain('Apply cancelled; nothing was changed.');
    expect(r.status).toBe(1);
    expect(started()).toEqual([]);
  });
});

describe('apply --json', () => {
  const refusal = 'vnetc: error: --json needs --auto-approve, or a plan saved with plan --out';

  (noScript ? test.skip : test)('on a terminal, without --auto-approve, is refused rather than ask with no plan shown', async () => {
    const r = await onTerminal(['apply', '--json', '--local', 'star4.vnet'], PROMPT, 'yes\r');
    expectNoCrash(r);
    expect(r.stdout).toContain(refusal);
    expect(r.stdout).not.toContain(PROMPT);
    expect(r.status).toBe(1);
    expect(started()).toEqual([]);
  });

  test('without a terminal, the same', () => {
    const r = runVnetc(['apply', '--json', '--local', 'star4.vnet'], { cwd: tmp, env: { VNETC_HOME: path.join(tmp, 'home') } });
    expectNoCrash(r);
    expect(r.stderr).toContain(refusal);
    expect(r.stdout).toBe('');
    expect(r.status).toBe(1);
    expect(started()).toEqual([]);
  });
});
