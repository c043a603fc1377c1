import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { applyPatch } from 'diff';
import { cleanEnv, expectNoCrash, ROOT, runVnetc, SAMPLES, VNETC, type Run, type RunOptions } from './support/vnetc.js';

/**
 * End-to-end tests of the built binary (dist/cli/vnetc.js, which `npm test`
 * builds before jest runs): exit codes, the --json report, paths and
 * directories, standard input, colour, and every mode of `fmt`. Each test
 * works in a fresh temporary directory; only samples/ is read from the repo.
 */

const PACKAGE = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string };

let tmp = '';

function vnetc(args: string[], opts: Partial<RunOptions> = {}): Run {
  return runVnetc(args, { cwd: tmp, ...opts });
}

function vnetcWithUmask(umask: string, args: string[]): Run {
  const quoted = [process.execPath, VNETC, ...args].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
  const r = spawnSync('/bin/sh', ['-c', `umask ${umask} && exec ${quoted}`], {
    cwd: tmp,
    input: '',
    env: cleanEnv(),
    encoding: 'utf8',
  });
  if (r.error) throw r.error;
  return { status: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
}

// eslint-disable-next-line no-control-regex
const ANSI = /\x1b\[/;

function write(rel: string, text: string | Buffer, mode?: number): string {
  const full = path.join(tmp, rel);
  fs.mkdirSync(path.dirname(full), { recursive: true });
  fs.writeFileSync(full, text);
  if (mode !== undefined) fs.chmodSync(full, mode);
  return full;
}

const read = (rel: string): string => fs.readFileSync(path.join(tmp, rel), 'utf8');
const modeOf = (rel: string): number => fs.statSync(path.join(tmp, rel)).mode & 0o777;

// ── fixtures ──────────────────────────────────────────────────────────────

/** Valid and canonical. */
const VALID = `# a host and the Proxy
BEGIN
  HOST vnet AT proxy 5000 eth0
  HOST vnet AT host1 5000 vmnet1

  ADD
    LINK host1 proxy
    FORWARD host1 ANY 00:50:56:00:21:01 vmnet1
    FORWARD host1 00:50:56:00:21:01 NONE host1 proxy
END
`;

/** Valid, canonical, one warning (VN3010 at 8:41-8:47). */
const WARNING_ONLY = VALID.replace('00:50:56:00:21:01 vmnet1', '00:50:56:00:21:01 vmnet2');

/**
 * One warning (VN3010: 'vmnet2', line 6, columns 41-47) and one error
 * (VN3008: a duplicate link written over lines 7-8, with a note at line 5).
 */
const ERROR_AND_WARNING = [
  'BEGIN',
  '  HOST vnet AT proxy 5000 eth0',
  '  HOST vnet AT host1 5000 vmnet1',
  '  ADD',
  '    LINK host1 proxy',
  '    FORWARD host1 ANY 00:50:56:00:21:01 vmnet2',
  '    LINK proxy',
  '      host1',
  'END',
  '',
].join('\n');

/** An undeclared machine: error VN3001 at 5:16. */
const UNDECLARED = `BEGIN
  HOST vnet AT proxy 5000 eth0
  HOST vnet AT host1 5000 vmnet1
  ADD
    LINK host1 prox
END
`;

/** A syntax error: VN2008 at 2:9. */
const SYNTAX_ERROR = 'BEGIN\n  HOST x\nEND\n';

/** Valid but not canonical, with comments in every position fmt knows. */
const UGLY = `# top comment
begin
host vnet at proxy 5000 eth0   # trailing
      HOST vnet AT host1 5000 vmnet1



add # the star
 link host1 proxy
 forward host1 any # inside a statement
   0:50:56:0:21:1 vmnet1
 forward host1 00-50-56-00-21-01 none host1 proxy
end
# tail
`;

const CANONICAL = `# top comment
BEGIN
  HOST vnet AT proxy 5000 eth0 # trailing
  HOST vnet AT host1 5000 vmnet1

  ADD # the star
    LINK host1 proxy
    # inside a statement
    FORWARD host1 ANY 00:50:56:00:21:01 vmnet1
    FORWARD host1 00:50:56:00:21:01 NONE host1 proxy
END
# tail
`;

beforeAll(() => {
  if (!fs.existsSync(VNETC)) throw new Error(`${VNETC} is missing: run 'npm run build' (npm test does) first`);
});

beforeEach(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vnetc-cli-'));
});

afterEach(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

// ── validate: exit codes ──────────────────────────────────────────────────

describe('validate exit codes', () => {
  test('0 for a valid file', () => {
    write('ok.vnet', VALID);
    const r = vnetc(['validate', 'ok.vnet']);
    expect(r.status).toBe(0);
    expect(r.stdout).toBe('1 file valid.\n');
    expect(r.stderr).toBe('');
  });

  test('0 for a file with only warnings, which are shown', () => {
    write('warn.vnet', WARNING_ONLY);
    const r = vnetc(['validate', 'warn.vnet']);
    expect(r.status).toBe(0);
    expect(r.stdout).toContain("warn.vnet:8:41: warning[VN3010]: 'vmnet2' is not the interface declared for 'host1'");
    expect(r.stdout).toMatch(/1 file valid, with 1 warning\.\n$/);
    expect(r.stderr).toBe('');
  });

  test('1 for a file with an error, with location, excerpt, caret and hint', () => {
    write('bad.vnet', UNDECLARED);
    const r = vnetc(['validate', 'bad.vnet']);
    expect(r.status).toBe(1);
    expect(r.stdout).toContain("bad.vnet:5:16: error[VN3001]: machine 'prox' is not declared by a HOST line\n");
    expect(r.stdout).toContain(' 5 |     LINK host1 prox\n   |                ^~~~\n');
    expect(r.stdout).toContain("hint: did you mean 'proxy'?");
    expect(r.stdout).toMatch(/1 error in 1 file\.\n$/);
    expectNoCrash(r);
  });

  test('1 for a syntax error', () => {
    write('syntax.vnet', SYNTAX_ERROR);
    const r = vnetc(['validate', 'syntax.vnet']);
    expect(r.status).toBe(1);
    expect(r.stdout).toContain("syntax.vnet:2:9: error[VN2008]: expected AT after 'x'");
    expectNoCrash(r);
  });

  test('2 for a missing file, which is named', () => {
    const r = vnetc(['validate', 'nope.vnet']);
    expect(r.status).toBe(2);
    expect(r.stdout).toContain("nope.vnet: error[VN1000]: cannot read 'nope.vnet': no such file");
    expectNoCrash(r);
  });

  test('2 for a missing file even when the others are checked', () => {
    write('bad.vnet', UNDECLARED);
    const r = vnetc(['validate', 'bad.vnet', 'nope.vnet']);
    expect(r.status).toBe(2);
    expect(r.stdout).toContain('error[VN3001]');
    expect(r.stdout).toContain('error[VN1000]');
    expectNoCrash(r);
  });

  test('a directory named like a .vnet file is expanded, not read', () => {
    fs.mkdirSync(path.join(tmp, 'dir.vnet'));
    write('dir.vnet/inner.vnet', VALID);
    const r = vnetc(['validate', 'dir.vnet']);
    expect(r.status).toBe(0);
    expect(r.stdout).toBe('1 file valid.\n');
  });

  test('2 for an unknown flag after the files, naming the flag', () => {
    write('ok.vnet', VALID);
    const r = vnetc(['validate', 'ok.vnet', '--bogus']);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('bogus');
    expect(r.stderr).toContain("Run 'vnetc validate --help' for usage.");
    expect(r.stdout).toBe('');
  });

  // Regression: an unknown flag before the files used to swallow the next word
  // and report "Not enough non-option arguments" instead of the flag.
  test('2 for an unknown flag before the files, naming the flag', () => {
    write('ok.vnet', VALID);
    const r = vnetc(['validate', '--bogus', 'ok.vnet']);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('bogus');
    expect(r.stdout).toBe('');
  });

  test('2 for no command, saying so', () => {
    const r = vnetc([]);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('say which command to run');
    expect(r.stdout).toBe('');
  });

  test('2 for an unknown command', () => {
    const r = vnetc(['frobnicate']);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('frobnicate');
    expect(r.stdout).toBe('');
  });

  test('2 for validate without files', () => {
    const r = vnetc(['validate']);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain("Run 'vnetc validate --help' for usage.");
    expect(r.stdout).toBe('');
  });

  // Regression: files after `--` (how to name a file that starts with `-`)
  // used to be dropped.
  test('files after -- are validated', () => {
    write('-dash.vnet', VALID);
    const r = vnetc(['validate', '--', '-dash.vnet']);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toBe('1 file valid.\n');
  });
});

// ── validate --json ───────────────────────────────────────────────────────

describe('validate --json', () => {
  test('the report for one error and one warning, exactly', () => {
    write('both.vnet', ERROR_AND_WARNING);
    const r = vnetc(['validate', '--json', 'both.vnet']);
    expect(r.status).toBe(1);
    expect(r.stderr).toBe('');
    expect(JSON.parse(r.stdout)).toStrictEqual({
      format_version: '1.0',
      valid: false,
      errorCount: 1,
      warningCount: 1,
      diagnostics: [
        {
          severity: 'warning',
          code: 'VN3010',
          message: "'vmnet2' is not the interface declared for 'host1' ('vmnet1')",
          hint: "the daemon on 'host1' must be started with an interface named 'vmnet2'",
          file: 'both.vnet',
          line: 6,
          column: 41,
          endLine: 6,
          endColumn: 47,
          related: [],
        },
        {
          severity: 'error',
          code: 'VN3008',
          message: 'link proxy–host1 already exists',
          hint: 'a pair of machines has at most one link; DELETE it first to change it',
          file: 'both.vnet',
          line: 7,
          column: 5,
          endLine: 8,
          endColumn: 12,
          related: [{ message: 'added here', line: 5, column: 5, endLine: 5, endColumn: 21 }],
        },
      ],
    });
  });

  test('positions are 1-based and the end is exclusive', () => {
    write('both.vnet', ERROR_AND_WARNING);
    const report = JSON.parse(vnetc(['validate', '--json', 'both.vnet']).stdout) as {
      diagnostics: { line: number; column: number; endLine: number; endColumn: number }[];
    };
    const lines = ERROR_AND_WARNING.split('\n');
    const slice = (l1: number, c1: number, l2: number, c2: number): string => {
      if (l1 === l2) return lines[l1 - 1]!.slice(c1 - 1, c2 - 1);
      return [lines[l1 - 1]!.slice(c1 - 1), ...lines.slice(l1, l2 - 1), lines[l2 - 1]!.slice(0, c2 - 1)].join('\n');
    };
    const [warning, error] = report.diagnostics;
    expect(slice(warning!.line, warning!.column, warning!.endLine, warning!.endColumn)).toBe('vmnet2');
    expect(slice(error!.line, error!.column, error!.endLine, error!.endColumn)).toBe('LINK proxy\n      host1');
  });

  test('a valid file', () => {
    write('ok.vnet', VALID);
    const r = vnetc(['validate', '--json', 'ok.vnet']);
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout)).toStrictEqual({
      format_version: '1.0',
      valid: true,
      errorCount: 0,
      warningCount: 0,
      diagnostics: [],
    });
  });

  test('warnings only: valid, exit 0', () => {
    write('warn.vnet', WARNING_ONLY);
    const r = vnetc(['validate', '--json', 'warn.vnet']);
    expect(r.status).toBe(0);
    const report = JSON.parse(r.stdout) as { valid: boolean; errorCount: number; warningCount: number };
    expect(report).toMatchObject({ valid: true, errorCount: 0, warningCount: 1 });
  });

  test('a missing file: a whole-file diagnostic with null positions, exit 2', () => {
    const r = vnetc(['validate', '--json', 'nope.vnet']);
    expect(r.status).toBe(2);
    expect(JSON.parse(r.stdout)).toStrictEqual({
      format_version: '1.0',
      valid: false,
      errorCount: 1,
      warningCount: 0,
      diagnostics: [
        {
          severity: 'error',
          code: 'VN1000',
          message: "cannot read 'nope.vnet': no such file",
          hint: null,
          file: 'nope.vnet',
          line: null,
          column: null,
          endLine: null,
          endColumn: null,
          related: [],
        },
      ],
    });
  });

  test('is never coloured, even with FORCE_COLOR', () => {
    write('both.vnet', ERROR_AND_WARNING);
    const r = vnetc(['validate', '--json', 'both.vnet'], { env: { FORCE_COLOR: '1' } });
    expect(r.stdout).not.toMatch(ANSI);
    expect(() => JSON.parse(r.stdout) as unknown).not.toThrow();
  });
});

// ── several files and directories ─────────────────────────────────────────

describe('several files and directories', () => {
  function project(): void {
    write('proj/b.vnet', UNDECLARED);
    write('proj/a.vnet', VALID);
    write('proj/notes.txt', 'not a program');
    write('proj/sub/c.vnet', WARNING_ONLY);
    write('proj/node_modules/d.vnet', 'garbage');
    write('proj/.hidden/e.vnet', 'garbage');
  }
  const files = (stdout: string): string[] =>
    [...new Set((JSON.parse(stdout) as { diagnostics: { file: string }[] }).diagnostics.map((d) => d.file))].sort();

  test('several files: every one is checked and counted', () => {
    write('a.vnet', VALID);
    write('b.vnet', UNDECLARED);
    write('c.vnet', WARNING_ONLY);
    const r = vnetc(['validate', 'a.vnet', 'b.vnet', 'c.vnet']);
    expect(r.status).toBe(1);
    expect(r.stdout).toContain('b.vnet:5:16: error[VN3001]');
    expect(r.stdout).toContain('c.vnet:8:41: warning[VN3010]');
    expect(r.stdout).toMatch(/1 error, 1 warning in 3 files\.\n$/);
  });

  test('a directory: its .vnet files, not those below it', () => {
    project();
    const r = vnetc(['validate', 'proj']);
    expect(r.status).toBe(1);
    expect(r.stdout).toMatch(/1 error in 2 files\.\n$/);
    expect(r.stdout).not.toContain('sub');
    const json = vnetc(['validate', '--json', 'proj']);
    expect(files(json.stdout)).toEqual([path.join('proj', 'b.vnet')]);
  });

  test('a directory with --recursive: also subdirectories, but not node_modules or hidden ones', () => {
    project();
    for (const flag of ['--recursive', '-r']) {
      const r = vnetc(['validate', flag, 'proj']);
      expect(r.status).toBe(1);
      expect(r.stdout).toMatch(/1 error, 1 warning in 3 files\.\n$/);
      const json = vnetc(['validate', '--json', flag, 'proj']);
      expect(files(json.stdout)).toEqual([path.join('proj', 'b.vnet'), path.join('proj', 'sub', 'c.vnet')]);
    }
  });

  test('a directory with no .vnet files is a usage error that suggests --recursive', () => {
    write('empty/sub/x.vnet', VALID);
    write('empty/readme.txt', 'hi');
    const r = vnetc(['validate', 'empty']);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain("no .vnet files in 'empty' (1 in its subdirectories: add --recursive to check them)");
    expect(r.stdout).toBe('');
    const rec = vnetc(['validate', '-r', 'empty']);
    expect(rec.status).toBe(0);
    expect(rec.stdout).toBe('1 file valid.\n');
  });

  test('a file named twice, or also through its directory, is checked and counted once', () => {
    write('twice/a.vnet', VALID);
    const r = vnetc(['validate', 'twice/a.vnet', './twice/a.vnet', 'twice']);
    expect(r.status).toBe(0);
    expect(r.stdout).toBe('1 file valid.\n');
  });

  test('an empty directory is a usage error, with --json too', () => {
    fs.mkdirSync(path.join(tmp, 'nothing'));
    for (const args of [['validate', 'nothing'], ['validate', '--json', '-r', 'nothing']]) {
      const r = vnetc(args);
      expect(r.status).toBe(2);
      expect(r.stderr).toContain("no .vnet files in 'nothing'\n");
      expectNoCrash(r);
    }
  });

  test('files and directories together', () => {
    project();
    write('top.vnet', VALID);
    const r = vnetc(['validate', 'top.vnet', 'proj']);
    expect(r.status).toBe(1);
    expect(r.stdout).toMatch(/1 error in 3 files\.\n$/);
  });
});

// ── standard input ────────────────────────────────────────────────────────

describe('validate reads standard input from -', () => {
  test('a valid program', () => {
    const r = vnetc(['validate', '-'], { input: VALID });
    expect(r.status).toBe(0);
    expect(r.stdout).toBe('1 file valid.\n');
  });

  test('errors are reported against <stdin>', () => {
    const r = vnetc(['validate', '-'], { input: UNDECLARED });
    expect(r.status).toBe(1);
    expect(r.stdout).toContain('<stdin>:5:16: error[VN3001]');
  });

  test('--json', () => {
    const r = vnetc(['validate', '--json', '-'], { input: ERROR_AND_WARNING });
    expect(r.status).toBe(1);
    const report = JSON.parse(r.stdout) as { diagnostics: { file: string; code: string }[] };
    expect(report.diagnostics.map((d) => [d.file, d.code])).toEqual([
      ['<stdin>', 'VN3010'],
      ['<stdin>', 'VN3008'],
    ]);
  });

  test('stdin alongside files', () => {
    write('ok.vnet', VALID);
    const r = vnetc(['validate', 'ok.vnet', '-'], { input: UNDECLARED });
    expect(r.status).toBe(1);
    expect(r.stdout).toMatch(/1 error in 2 files\.\n$/);
  });
});

// ── colour ────────────────────────────────────────────────────────────────

describe('colour', () => {
  beforeEach(() => {
    write('both.vnet', ERROR_AND_WARNING);
    write('syntax.vnet', SYNTAX_ERROR);
    write('ugly.vnet', UGLY);
  });

  test('none when stdout is a pipe', () => {
    const v = vnetc(['validate', 'both.vnet']);
    expect(v.stdout).toContain('error[VN3008]');
    expect(v.stdout).not.toMatch(ANSI);
    expect(v.stderr).not.toMatch(ANSI);
    const f = vnetc(['fmt', 'syntax.vnet', 'ugly.vnet', '--diff']);
    expect(f.stderr).toContain('error[VN2008]');
    expect(f.stdout).toContain('+BEGIN');
    expect(f.stdout).not.toMatch(ANSI);
    expect(f.stderr).not.toMatch(ANSI);
  });

  test('ANSI with FORCE_COLOR=1', () => {
    const v = vnetc(['validate', 'both.vnet'], { env: { FORCE_COLOR: '1' } });
    expect(v.status).toBe(1);
    expect(v.stdout).toMatch(ANSI);
    const f = vnetc(['fmt', 'syntax.vnet', 'ugly.vnet', '--diff'], { env: { FORCE_COLOR: '1' } });
    expect(f.stdout).toMatch(ANSI);
    expect(f.stderr).toMatch(ANSI);
  });

  test('ANSI with --color into a pipe, even with NO_COLOR=1', () => {
    const v = vnetc(['validate', '--color', 'both.vnet'], { env: { NO_COLOR: '1' } });
    expect(v.status).toBe(1);
    expect(v.stdout).toMatch(ANSI);
    const f = vnetc(['fmt', '--color', 'syntax.vnet', 'ugly.vnet', '--diff']);
    expect(f.stdout).toMatch(ANSI);
    expect(f.stderr).toMatch(ANSI);
  });

  test('none with FORCE_COLOR=1 and NO_COLOR=1', () => {
    const env = { FORCE_COLOR: '1', NO_COLOR: '1' };
    const v = vnetc(['validate', 'both.vnet'], { env });
    expect(v.stdout).toContain('error[VN3008]');
    expect(v.stdout).not.toMatch(ANSI);
    const f = vnetc(['fmt', 'syntax.vnet', 'ugly.vnet', '--diff'], { env });
    expect(f.stdout).not.toMatch(ANSI);
    expect(f.stderr).not.toMatch(ANSI);
  });

  test('none with --no-color, even with FORCE_COLOR=1', () => {
    const env = { FORCE_COLOR: '1' };
    const v = vnetc(['validate', '--no-color', 'both.vnet'], { env });
    expect(v.stdout).toContain('error[VN3008]');
    expect(v.stdout).not.toMatch(ANSI);
    const f = vnetc(['fmt', '--no-color', 'syntax.vnet', 'ugly.vnet', '--diff'], { env });
    expect(f.stdout).not.toMatch(ANSI);
    expect(f.stderr).not.toMatch(ANSI);
  });

  test('the coloured and plain outputs say the same thing', () => {
    const plain = vnetc(['validate', 'both.vnet']).stdout;
    // eslint-disable-next-line no-control-regex
    const coloured = vnetc(['validate', 'both.vnet'], { env: { FORCE_COLOR: '1' } }).stdout.replace(/\x1b\[[0-9;]*m/g, '');
    expect(coloured).toBe(plain);
  });
});

// ── fmt ───────────────────────────────────────────────────────────────────

describe('fmt', () => {
  test('prints the canonical form, keeping every comment, and leaves the file alone', () => {
    write('ugly.vnet', UGLY);
    const r = vnetc(['fmt', 'ugly.vnet']);
    expect(r.status).toBe(0);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe(CANONICAL);
    expect(read('ugly.vnet')).toBe(UGLY);
  });

  test('is idempotent', () => {
    write('ugly.vnet', UGLY);
    const once = vnetc(['fmt', 'ugly.vnet']).stdout;
    write('once.vnet', once);
    const twice = vnetc(['fmt', 'once.vnet']);
    expect(twice.status).toBe(0);
    expect(twice.stdout).toBe(once);
  });

  test('several files are printed one after the other; no argument means the current directory', () => {
    write('a.vnet', UGLY);
    write('b.vnet', VALID);
    expect(vnetc(['fmt', 'a.vnet', 'b.vnet']).stdout).toBe(CANONICAL + VALID);
    const r = vnetc(['fmt']);
    expect(r.status).toBe(0);
    expect(r.stdout).toBe(CANONICAL + VALID);
  });

  test('- reads standard input', () => {
    const r = vnetc(['fmt', '-'], { input: UGLY });
    expect(r.status).toBe(0);
    expect(r.stdout).toBe(CANONICAL);
  });

  test('a parse error: exit 1, the diagnostic on stderr, nothing on stdout', () => {
    write('syntax.vnet', SYNTAX_ERROR);
    const r = vnetc(['fmt', 'syntax.vnet']);
    expect(r.status).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain("syntax.vnet:2:9: error[VN2008]: expected AT after 'x'");
    expectNoCrash(r);
  });

  test('a missing file: exit 2', () => {
    const r = vnetc(['fmt', 'nope.vnet']);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain("cannot read 'nope.vnet': no such file");
    expectNoCrash(r);
  });

  test('a directory without .vnet files: exit 2', () => {
    fs.mkdirSync(path.join(tmp, 'nothing'));
    const r = vnetc(['fmt', 'nothing']);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain("no .vnet files in 'nothing'");
  });

  // Regression (a bug in commit a93b9d8, fixed in the working tree since): a
  // comment inside a multi-line statement, below the statement's first line,
  // was moved above the statement with a blank line the source did not have:
  //   "  ADD\n    LINK host1\n      # inside\n      proxy\n" formatted as
  //   "  ADD\n\n    # inside\n    LINK host1 proxy\n".
  test('a comment moved out of a multi-line statement brings no blank line with it', () => {
    const source = [
      'BEGIN',
      '  HOST vnet AT proxy 5000 eth0',
      '  HOST vnet AT host1 5000 vmnet1',
      '  ADD',
      '    LINK host1',
      '      # first in the block',
      '      proxy',
      '    FORWARD host1 ANY',
      '      # after another statement',
      '      00:50:56:00:21:01 vmnet1',
      'END',
      '',
    ].join('\n');
    write('c.vnet', source);
    const r = vnetc(['fmt', 'c.vnet']);
    expect(r.status).toBe(0);
    expect(r.stdout).toBe(
      [
        'BEGIN',
        '  HOST vnet AT proxy 5000 eth0',
        '  HOST vnet AT host1 5000 vmnet1',
        '  ADD',
        '    # first in the block',
        '    LINK host1 proxy',
        '    # after another statement',
        '    FORWARD host1 ANY 00:50:56:00:21:01 vmnet1',
        'END',
        '',
      ].join('\n'),
    );
  });
});

describe('fmt --check', () => {
  test('0 and no output when already canonical', () => {
    write('ok.vnet', VALID);
    const r = vnetc(['fmt', '--check', 'ok.vnet']);
    expect(r.status).toBe(0);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe('');
  });

  test('3 when not, listing only the files to format', () => {
    write('d/ok.vnet', VALID);
    write('d/ugly.vnet', UGLY);
    const r = vnetc(['fmt', '--check', 'd']);
    expect(r.status).toBe(3);
    expect(r.stdout).toBe(`${path.join('d', 'ugly.vnet')}\n`);
    expect(read('d/ugly.vnet')).toBe(UGLY);
  });

  test('1 on a parse error, with the diagnostic on stderr (even when another file needs formatting)', () => {
    write('syntax.vnet', SYNTAX_ERROR);
    write('ugly.vnet', UGLY);
    const r = vnetc(['fmt', '--check', 'syntax.vnet', 'ugly.vnet']);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain("syntax.vnet:2:9: error[VN2008]: expected AT after 'x'");
    expect(r.stderr).toContain(' 2 |   HOST x\n   |         ^');
    expect(r.stdout).toBe('ugly.vnet\n');
    expectNoCrash(r);
  });

  test('standard input: 3 and <stdin> when not canonical, 0 when it is', () => {
    const r = vnetc(['fmt', '--check', '-'], { input: UGLY });
    expect(r.status).toBe(3);
    expect(r.stdout).toBe('<stdin>\n');
    expect(vnetc(['fmt', '--check', '-'], { input: CANONICAL }).status).toBe(0);
  });
});

describe('fmt --diff', () => {
  test('prints a unified diff that turns the file into its canonical form, and touches no file', () => {
    const file = write('ugly.vnet', UGLY);
    const past = new Date('2020-01-01T00:00:00Z');
    fs.utimesSync(file, past, past);
    const r = vnetc(['fmt', '--diff', 'ugly.vnet']);
    expect(r.status).toBe(0);
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/^--- ugly\.vnet\b.*\n\+\+\+ ugly\.vnet\b.*\n@@ -1,\d+ \+1,\d+ @@\n/m);
    expect(r.stdout).toContain('\n-begin\n');
    expect(r.stdout).toContain('\n+BEGIN\n');
    expect(r.stdout).toContain('\n # top comment\n');
    expect(applyPatch(UGLY, r.stdout)).toBe(CANONICAL);
    expect(read('ugly.vnet')).toBe(UGLY);
    expect(fs.statSync(file).mtimeMs).toBe(past.getTime());
    expect(fs.readdirSync(tmp)).toEqual(['ugly.vnet']);
  });

  test('prints nothing for a canonical file', () => {
    write('ok.vnet', VALID);
    const r = vnetc(['fmt', '--diff', 'ok.vnet']);
    expect(r.status).toBe(0);
    expect(r.stdout).toBe('');
  });

  // A minimal diff costs time quadratic in the changes: half an hour for a 100,000-line file that fmt reindents throughout.
  test('past 2,000 changed lines, one hunk of the whole file, which still applies', () => {
    const mac = (i: number) => `00:50:56:00:${(i >> 8).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`;
    const rule = (i: number) => `    FORWARD proxy ANY ${mac(i)} eth0`;
    // Every other rule already canonical: a minimal diff would keep those as context.
    const rules = (ugly: boolean) => Array.from({ length: 3000 }, (_, i) => (ugly && i % 2 ? `forward proxy any ${mac(i)} eth0` : rule(i))).join('\n');
    const canonical = `BEGIN\n  HOST vnet AT proxy 5000 eth0\n  ADD\n${rules(false)}\nEND\n`;
    const ugly = canonical.replace(rules(false), rules(true));
    // Without a final newline too: the hunk must say so, or the patch would add one.
    for (const before of [ugly, ugly.slice(0, -1)]) {
      write('big.vnet', before);
      const r = vnetc(['fmt', '--diff', 'big.vnet']);
      expect(r.status).toBe(0);
      const lines = r.stdout.split('\n');
      expect(lines.slice(0, 5)).toEqual(['Index: big.vnet', '='.repeat(67), '--- big.vnet', '+++ big.vnet', '@@ -1,3004 +1,3004 @@']);
      expect(lines.filter((l) => l.startsWith(' '))).toEqual([]);
      expect(applyPatch(before, r.stdout)).toBe(canonical);
    }
  });

  test('with --check: the diff, and exit 3', () => {
    write('ugly.vnet', UGLY);
    const r = vnetc(['fmt', '--diff', '--check', 'ugly.vnet']);
    expect(r.status).toBe(3);
    expect(applyPatch(UGLY, r.stdout)).toBe(CANONICAL);
    expect(read('ugly.vnet')).toBe(UGLY);
  });
});

describe('fmt --write', () => {
  test('rewrites only the files that change, lists them, keeps their mode, leaves no temporary files', () => {
    write('d/ugly.vnet', UGLY, 0o640);
    const ok = write('d/ok.vnet', VALID, 0o600);
    write('d/syntax.vnet', SYNTAX_ERROR);
    const past = new Date('2020-01-01T00:00:00Z');
    fs.utimesSync(ok, past, past);
    const inode = fs.statSync(ok).ino;

    const r = vnetc(['fmt', '--write', 'd']);
    expect(r.status).toBe(1); // syntax.vnet does not parse
    expect(r.stdout).toBe(`${path.join('d', 'ugly.vnet')}\n`);
    expect(r.stderr).toContain('error[VN2008]');

    expect(read('d/ugly.vnet')).toBe(CANONICAL);
    expect(modeOf('d/ugly.vnet')).toBe(0o640);
    expect(read('d/ok.vnet')).toBe(VALID);
    expect(fs.statSync(ok).mtimeMs).toBe(past.getTime());
    expect(fs.statSync(ok).ino).toBe(inode);
    expect(read('d/syntax.vnet')).toBe(SYNTAX_ERROR);
    expect(fs.readdirSync(path.join(tmp, 'd')).sort()).toEqual(['ok.vnet', 'syntax.vnet', 'ugly.vnet']);
  });

  test('-w, and a second run changes nothing', () => {
    write('ugly.vnet', UGLY);
    const first = vnetc(['fmt', '-w', 'ugly.vnet']);
    expect(first.status).toBe(0);
    expect(first.stdout).toBe('ugly.vnet\n');
    expect(read('ugly.vnet')).toBe(CANONICAL);
    const second = vnetc(['fmt', '-w', 'ugly.vnet']);
    expect(second.status).toBe(0);
    expect(second.stdout).toBe('');
    expect(fs.readdirSync(tmp)).toEqual(['ugly.vnet']);
  });

  test('keeps modes 0600, 0640 and 0755', () => {
    for (const mode of [0o600, 0o640, 0o755]) {
      write(`m${mode.toString(8)}.vnet`, UGLY, mode);
    }
    const r = vnetcWithUmask('022', ['fmt', '-w', '.']);
    expect(r.status).toBe(0);
    for (const mode of [0o600, 0o640, 0o755]) {
      expect([mode.toString(8), modeOf(`m${mode.toString(8)}.vnet`).toString(8)]).toEqual([mode.toString(8), mode.toString(8)]);
    }
  });

  // Regression: --write used to lose permission bits the umask masks
  // (0664 became 0644 under umask 022).
  test('keeps a group-writable mode (0664) under umask 022', () => {
    write('shared.vnet', UGLY, 0o664);
    const r = vnetcWithUmask('022', ['fmt', '-w', 'shared.vnet']);
    expect(r.status).toBe(0);
    expect(read('shared.vnet')).toBe(CANONICAL);
    expect(modeOf('shared.vnet').toString(8)).toBe('664');
  });

  // Regression: --write used to replace a symbolic link with a regular file;
  // like gofmt -w and terraform fmt, it writes through the link.
  test('writes through a symbolic link instead of replacing it', () => {
    write('real.vnet', UGLY);
    fs.symlinkSync('real.vnet', path.join(tmp, 'link.vnet'));
    const r = vnetc(['fmt', '-w', 'link.vnet']);
    expect(r.status).toBe(0);
    expect(fs.lstatSync(path.join(tmp, 'link.vnet')).isSymbolicLink()).toBe(true);
    expect(read('real.vnet')).toBe(CANONICAL);
  });

  test('refuses -w - and --write --check with exit 2, touching nothing', () => {
    write('ugly.vnet', UGLY);
    const stdin = vnetc(['fmt', '-w', '-'], { input: UGLY });
    expect(stdin.status).toBe(2);
    expect(stdin.stderr).toContain('--write cannot rewrite standard input');
    expect(stdin.stdout).toBe('');
    const both = vnetc(['fmt', '--write', '--check', 'ugly.vnet']);
    expect(both.status).toBe(2);
    expect(both.stderr).toContain('--write and --check do not go together');
    expect(both.stdout).toBe('');
    expect(read('ugly.vnet')).toBe(UGLY);
    expect(fs.readdirSync(tmp)).toEqual(['ugly.vnet']);
  });

  // Regression: `vnetc fmt -w -- sub/b.vnet` used to drop the file and fall
  // back to the current directory, rewriting every .vnet file there.
  test('-w -- <file> rewrites that file and nothing else', () => {
    write('here.vnet', UGLY);
    write('sub/b.vnet', UGLY);
    const r = vnetc(['fmt', '-w', '--', path.join('sub', 'b.vnet')]);
    expect(read('here.vnet')).toBe(UGLY);
    expect(read('sub/b.vnet')).toBe(CANONICAL);
    expect(r.status).toBe(0);
    expect(r.stdout).toBe(`${path.join('sub', 'b.vnet')}\n`);
  });
});

// ── version and help ──────────────────────────────────────────────────────

describe('--version and --help', () => {
  test("--version prints package.json's version", () => {
    const r = vnetc(['--version']);
    expect(r.status).toBe(0);
    expect(r.stdout.trim()).toBe(PACKAGE.version);
    expect(r.stderr).toBe('');
  });

  test('--help and -h exit 0 and list the commands', () => {
    for (const flag of ['--help', '-h']) {
      const r = vnetc([flag]);
      expect(r.status).toBe(0);
      expect(r.stdout).toContain('validate');
      expect(r.stdout).toContain('fmt');
      expect(r.stderr).toBe('');
    }
  });

  test("each command's --help exits 0 and lists its options", () => {
    const v = vnetc(['validate', '--help']);
    expect(v.status).toBe(0);
    expect(v.stdout).toContain('--json');
    expect(v.stdout).toContain('--recursive');
    const f = vnetc(['fmt', '--help']);
    expect(f.status).toBe(0);
    for (const opt of ['--write', '--check', '--diff']) expect(f.stdout).toContain(opt);
  });
});

// ── the samples ───────────────────────────────────────────────────────────

describe('samples/', () => {
  const count = fs.readdirSync(SAMPLES).filter((f) => f.endsWith('.vnet')).length;

  test('validate samples/ is clean: no errors, no warnings', () => {
    const r = vnetc(['validate', 'samples/'], { cwd: ROOT });
    expect(r.status).toBe(0);
    expect(r.stdout).toBe(`${count} files valid.\n`);
    const json = vnetc(['validate', '--json', 'samples/'], { cwd: ROOT });
    expect(JSON.parse(json.stdout)).toMatchObject({ valid: true, errorCount: 0, warningCount: 0, diagnostics: [] });
  });

  test('fmt --check samples/ exits 0', () => {
    const r = vnetc(['fmt', '--check', 'samples/'], { cwd: ROOT });
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('');
    expect(r.status).toBe(0);
  });
});
