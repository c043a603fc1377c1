import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { upCommand } from '../cli/live.js';
import { CALIBRATION_ITERATIONS } from '../src/patterns/bsp.js';
import { expectNoCrash, runVnetc, SAMPLES, type Run } from './support/vnetc.js';

/**
 * How vnetc reads its command line, whatever the command: flags given twice,
 * values that are not what a flag takes, and the usage errors that say so.
 * Each test works in a fresh temporary directory with copies of samples.
 */

let tmp = '';

beforeEach(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vnetc-flags-'));
  for (const f of ['star4.vnet', 'star8.vnet', 'ring3.vgen']) fs.copyFileSync(path.join(SAMPLES, f), path.join(tmp, f));
});

afterEach(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

// An empty VNETC_HOME of its own: no test reaches a daemon the person running them has.
const vnetc = (...args: string[]): Run => runVnetc(args, { cwd: tmp, env: { VNETC_HOME: path.join(tmp, 'home') } });

/** A usage error: one message naming what was wrong, the given exit code, nothing on stdout. */
function expectUsage(r: Run, status: number, message: string): void {
  expectNoCrash(r);
  expect(r.stderr).toContain(`vnetc: error: ${message}`);
  expect(r.stdout).toBe('');
  expect(r.status).toBe(status);
}

describe('a flag that takes one value, given twice', () => {
  test('is a usage error naming the flag and both values (plan exits 1, other commands 2)', () => {
    expectUsage(vnetc('plan', 'star8.vnet', '--state', 'star4.vnet', '--proxy', 'proxy', '--proxy', 'host1'), 1, "--proxy is given 2 times ('proxy', 'host1'); give it once");
    expectUsage(vnetc('plan', 'star8.vnet', '-F', 'a', '--ssh-config', 'b'), 1, "--ssh-config (-F) is given 2 times ('a', 'b'); give it once");
    expectUsage(vnetc('plan', 'star8.vnet', '--state', 'star4.vnet', '--state', 'star4.vnet'), 1, '--state is given 2 times');
    expectUsage(vnetc('plan', 'star8.vnet', '--state', 'star4.vnet', '--out', 'a', '-o', 'b'), 1, '--out (-o) is given 2 times');
    expectUsage(vnetc('patterns', '-t', 'ring', '-t', 'bus', '-n', '2'), 2, "--topology (-t) is given 2 times ('ring', 'bus')");
    expectUsage(vnetc('patterns', '-t', 'ring', '-n', '2', '--vms', '3'), 2, '--vms (-n) is given 2 times');
    expectUsage(vnetc('infer', '--window', '1', '--window', '2'), 2, "--window is given 2 times ('1', '2')");
    expectUsage(vnetc('gen', 'ring3.vgen', '-o', 'a.vnet', '-o', 'b.vnet'), 2, '--out (-o) is given 2 times');
    expect(fs.existsSync(path.join(tmp, 'a.vnet'))).toBe(false);
  });

  test('flags meant to repeat still collect: --iface, and files', () => {
    const iface = vnetc('apply', 'missing.vnet', '--iface', 'host1=qemu-udp:listen=127.0.0.1:7001', '--iface', 'host2=qemu-udp:listen=127.0.0.1:7002');
    expect(iface.stderr).not.toContain('given 2 times');
    expect(iface.stderr).toContain("cannot read 'missing.vnet'");
    const files = vnetc('validate', 'star4.vnet', 'star8.vnet');
    expect(files.stdout).toBe('2 files valid.\n');
    expect(files.status).toBe(0);
  });

  test('a switch given twice is simply on', () => {
    const r = vnetc('plan', 'star8.vnet', '--state', 'star4.vnet', '--json', '--json');
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ format_version: expect.any(String) });
  });
});

describe('durations past what a timer can wait', () => {
  test('are refused with the limit, not silently shortened to 1 ms', () => {
    const limit = 'at most 2147483647 (about 24.8 days)';
    expectUsage(vnetc('patterns', '-t', 'ring', '-n', '2', '--timeout-ms', '1e12'), 2, `--timeout-ms takes a positive number of milliseconds, ${limit}, not 1000000000000`);
    expectUsage(vnetc('patterns', '-t', 'ring', '-n', '2', '--timeout-ms', 'Infinity'), 2, `--timeout-ms takes a positive number of milliseconds, ${limit}, not Infinity`);
    expectUsage(vnetc('patterns', '-t', 'ring', '-n', '2', '--compute-ms', '3e9'), 2, '--compute-ms takes milliseconds from 0 to 2147483647 (about 24.8 days), not 3000000000');
    expectUsage(vnetc('patterns', '-t', 'ring', '-n', '2', '--ratio', 'Infinity'), 2, '--ratio takes a compute/communicate ratio (0 or more), not Infinity');
    expectUsage(vnetc('plan', 'star4.vnet', '--ssh-persist', '1e9'), 1, '--ssh-persist must be a number of seconds from 0 to 2147483 (about 24.8 days), not 1000000000');
    const env = runVnetc(['plan', 'star4.vnet'], { cwd: tmp, env: { VNETC_SSH_PERSIST: 'Infinity' } });
    expectUsage(env, 1, 'VNETC_SSH_PERSIST must be a number of seconds from 0 to 2147483 (about 24.8 days), not Infinity');
  });
});

describe('a switch given a value', () => {
  test('other than true or false is refused, not read as false (which would turn fmt --check off)', () => {
    expectUsage(vnetc('fmt', '--check=5', 'star4.vnet'), 2, "--check is a switch: write --check alone (or --no-check), not '--check=5'");
    expectUsage(vnetc('validate', '-json=maybe', 'star4.vnet'), 2, "--json is a switch: write --json alone (or --no-json), not '--json=maybe'");
    expectUsage(vnetc('validate', '-r=1', '.'), 2, "--recursive (-r) is a switch: write -r alone (or --no-recursive), not '-r=1'");
    expectUsage(vnetc('plan', 'star4.vnet', '--color=banana'), 1, "--color is a switch: write --color alone (or --no-color), not '--color=banana'");
    expect(vnetc('validate', '--json=true', 'star4.vnet').stdout).toMatch(/^\{/);
    expect(vnetc('validate', '--json=false', 'star4.vnet').stdout).toMatch(/valid/);
  });
});

describe('a number flag given something else', () => {
  test('echoes what was typed, not NaN', () => {
    expectUsage(vnetc('plan', 'star4.vnet', '--parallelism', 'abc'), 1, "--parallelism takes a number, not 'abc'");
    expectUsage(vnetc('plan', 'star4.vnet', '-parallelism=abc'), 1, "--parallelism takes a number, not 'abc'");
    expectUsage(vnetc('plan', 'star4.vnet', '--ssh-persist', 'forever'), 1, "--ssh-persist takes a number, not 'forever'");
    expectUsage(vnetc('patterns', '-t', 'ring', '-n', 'x'), 2, "--vms (-n) takes a number, not 'x'");
    expectUsage(vnetc('adapt', '-s', 'star4.vnet', '-m', 'm.json', '--budget', 'lots'), 2, "--budget takes a number, not 'lots'");
    expectUsage(vnetc('adapt', '-s', 'star4.vnet', '-m', 'm.json', '--seed=s'), 2, "--seed takes a number, not 's'");
    expectUsage(vnetc('infer', '--rate', 'fast'), 2, "--rate takes a number, not 'fast'");
    expectUsage(vnetc('infer', '--watch', '--max-changes', 'many'), 2, "--max-changes takes a number, not 'many'");
  });

  test('with no value at all, says so rather than take the default', () => {
    expectUsage(vnetc('plan', 'star4.vnet', '--state', 'star4.vnet', '--parallelism'), 1, '--parallelism needs a number after it');
    expectUsage(vnetc('plan', 'star4.vnet', '--state', 'star4.vnet', '--parallelism', '--json'), 1, '--parallelism needs a number after it');
    expect(vnetc('plan', 'star4.vnet', '--state', 'star4.vnet', '--parallelism', '3').status).toBe(0);
  });

  test('an empty value (\'\', or nothing after =) is no value, not 0, whatever the command', () => {
    expectUsage(vnetc('patterns', '-t', 'ring', '-n', '4', '--size', ''), 2, '--size needs a number after it');
    expectUsage(vnetc('patterns', '-t', 'ring', '-n', '4', '--compute-ms='), 2, '--compute-ms needs a number after it');
    expectUsage(vnetc('patterns', '-t', 'ring', '-n', '4', '--ratio='), 2, '--ratio needs a number after it');
    expectUsage(vnetc('patterns', '-t', 'ring', '--vms='), 2, '--vms (-n) needs a number after it');
    expectUsage(vnetc('patterns', '-t', 'ring', '-n', ' '), 2, '--vms (-n) needs a number after it');
    expectUsage(vnetc('plan', 'star4.vnet', '--state', 'star4.vnet', '--parallelism', ''), 1, '--parallelism needs a number after it');
    expectUsage(vnetc('plan', 'star4.vnet', '--state', 'star4.vnet', '-parallelism='), 1, '--parallelism needs a number after it');
    expectUsage(vnetc('adapt', '-s', 'star4.vnet', '-m', 'm.json', '--seed='), 2, '--seed needs a number after it');
    expectUsage(vnetc('infer', '--rate', ''), 2, '--rate needs a number after it');
    expectUsage(vnetc('show', '--ssh-persist='), 2, '--ssh-persist needs a number after it');
  });
});

describe('a flag with choices, given another value', () => {
  test('is one line naming the flag, the value and the choices, whatever the command', () => {
    const kinds = 'ring, all-to-all, bus, mesh2d, mesh3d, torus2d, torus3d, hypercube, tree, reduction';
    for (const args of [['-t', 'rung', '-n', '4'], ['--topology=rung', '-n', '4'], ['-t', 'rung']]) {
      const r = vnetc('patterns', ...args);
      expectUsage(r, 2, `--topology (-t) takes one of ${kinds}, not 'rung'`);
      expect(r.stderr).toBe(`vnetc: error: --topology (-t) takes one of ${kinds}, not 'rung'\nRun 'vnetc patterns --help' for usage.\n`);
    }
    expectUsage(vnetc('patterns', '-t', 'ring', '-t', 'rung', '-n', '4'), 2, `--topology (-t) takes one of ${kinds}, not 'rung'`);
    expectUsage(vnetc('patterns', '-t', 'ring', '-n', '4', '--link-proto', 'sctp'), 2, "--link-proto takes one of tcp, udp, not 'sctp'");
    expectUsage(vnetc('patterns', '-t', '', '-n', '4'), 2, `--topology (-t) needs one of ${kinds} after it`);
    expectUsage(vnetc('adapt', '-s', 'star4.vnet', '-m', 'm.json', '--algorithm', 'fast'), 2, "--algorithm takes one of best, greedy, improved, optimal, not 'fast'");
    expect(vnetc('adapt', '-s', 'star4.vnet', '-m', 'm.json', '--algorithm', 'fast').stderr.split('\n')).toHaveLength(3);
  });
});

describe('a flag that names something, given nothing', () => {
  test("is a usage error, not a search for a machine or file named ''", () => {
    expectUsage(vnetc('plan', 'star4.vnet', '--state', 'star4.vnet', '--proxy', ''), 1, '--proxy needs a value after it');
    expectUsage(vnetc('plan', 'star4.vnet', '--state', 'star4.vnet', '--proxy'), 1, '--proxy needs a value after it');
    expectUsage(vnetc('gen', 'ring3.vgen', '-o', ''), 2, '--out (-o) needs a value after it');
  });
});

describe('where daemons are reached from', () => {
  test('-F naming no file is a usage error about -F, not blamed on the HOST lines', () => {
    const r = vnetc('plan', 'star4.vnet', '-F', 'no_such_config');
    expectUsage(r, 1, "cannot read --ssh-config (-F) 'no_such_config': no such file");
    expect(r.stderr).not.toContain('VN5001');
    expectUsage(vnetc('plan', 'star4.vnet', '-F', '.'), 1, "--ssh-config (-F) '.' is a directory; name an ssh_config file");
  });

  test('a VNETC_HOME that is a file is said once, not as an SSH problem at every daemon', () => {
    fs.writeFileSync(path.join(tmp, 'homefile'), '');
    const r = runVnetc(['plan', '--local', 'star4.vnet'], { cwd: tmp, env: { VNETC_HOME: path.join(tmp, 'homefile') } });
    expectUsage(r, 1, `VNETC_HOME '${path.join(tmp, 'homefile')}' is not a directory: point VNETC_HOME at a directory`);
    expect(r.stderr).not.toContain('SSH');
    // Reviewing against a file needs no daemons, so no home either.
    expect(runVnetc(['plan', 'star4.vnet', '--state', 'star4.vnet'], { cwd: tmp, env: { VNETC_HOME: path.join(tmp, 'homefile') } }).status).toBe(0);
  });

  test("a local daemon's directory that cannot be used gets a hint about that directory, not about SSH", () => {
    fs.mkdirSync(path.join(tmp, 'home', 'local'), { recursive: true });
    fs.writeFileSync(path.join(tmp, 'home', 'local', 'proxy'), '');
    const r = runVnetc(['plan', '--local', 'star4.vnet'], { cwd: tmp, env: { VNETC_HOME: path.join(tmp, 'home') } });
    expectNoCrash(r);
    expect(r.stderr).toContain('error[VN5001]: cannot reach proxy: cannot reach the local daemon of proxy');
    expect(r.stderr).toContain(`hint: it runs on this machine, with its socket and state in ${path.join(tmp, 'home', 'local', 'proxy')}`);
    expect(r.stderr).not.toContain('SSH');
    expect(r.status).toBe(1);
  });
});

describe('the command line itself', () => {
  test('a misspelt command gets a suggestion; one nothing like a command gets none', () => {
    expectUsage(vnetc('valdate', 'star4.vnet'), 2, "'valdate' is not a vnetc command; did you mean 'validate'?");
    expectUsage(vnetc('frobnicate'), 2, "'frobnicate' is not a vnetc command\nRun 'vnetc --help' for usage.");
  });

  test('an unknown flag is said as typed, with the nearest one the command takes, even where yargs took the next word as its value', () => {
    expectUsage(vnetc('validate', '--jsn', 'star4.vnet'), 2, "unknown flag '--jsn'; did you mean '--json'?");
    expectUsage(vnetc('validate', '-dxyz', 'star4.vnet'), 2, "unknown flag '-d'\n");
    // Not "'vnetc plan' needs <file>": yargs read star4.vnet as --detailed's value.
    expectUsage(vnetc('plan', '--detailed', 'star4.vnet'), 1, "unknown flag '--detailed'\n");
    expectUsage(vnetc('route', '02:00:00:00:00:01', '02:00:00:00:00:02', 'x'), 2, "unexpected argument 'x': vnetc route <src> <dst>");
  });

  test('a missing argument is named, with the command line it belongs in', () => {
    expectUsage(vnetc('plan'), 1, "'vnetc plan' needs <file>: vnetc plan <file>");
    expectUsage(vnetc('route', '02:00:00:00:00:01'), 2, "'vnetc route' needs <dst>: vnetc route <src> <dst>");
    expectUsage(vnetc('gen'), 2, "'vnetc gen' needs <file>: vnetc gen <file>");
  });

  test('messages are English whatever the locale: the parser would follow LANG mid-sentence', () => {
    const german = (...args: string[]): Run => runVnetc(args, { cwd: tmp, env: { VNETC_HOME: path.join(tmp, 'home'), LANG: 'de_DE.UTF-8', LC_ALL: 'de_DE.UTF-8' } });
    expectUsage(german('plan'), 1, "'vnetc plan' needs <file>: vnetc plan <file>");
    expectUsage(german('show', 'a', 'b'), 2, "unexpected argument 'b': vnetc show [file]");
  });

  test("a usage error points at the command's own help", () => {
    expectUsage(vnetc('plan', 'star4.vnet', '--bogus'), 1, "unknown flag '--bogus'\nRun 'vnetc plan --help' for usage.");
    expectUsage(vnetc('gen', 'ring3.vgen', '-o', 'a', '-o', 'b'), 2, "--out (-o) is given 2 times ('a', 'b'); give it once\nRun 'vnetc gen --help' for usage.");
    expectUsage(vnetc(), 2, "say which command to run\nRun 'vnetc --help' for usage.");
  });
});

describe('names the file does not have', () => {
  test('--iface for a machine the file does not declare is refused, with the closest one', () => {
    expectUsage(vnetc('apply', '--local', 'star4.vnet', '--auto-approve', '--iface', 'hots1=qemu-udp:listen=127.0.0.1:7001'), 1, "--iface names hots1, which star4.vnet does not declare; did you mean 'host1'?");
    expectUsage(vnetc('up', '--local', 'star4.vnet', '--iface', 'zed=qemu-udp:listen=127.0.0.1:7001'), 2, '--iface names zed, which star4.vnet does not declare (its machines: proxy, host1, host2, host3, host4)');
    expect(fs.existsSync(path.join(tmp, 'home', 'local'))).toBe(false);
  });

  test('route --from when no daemon runs says so, not "no such daemon among " and nothing', () => {
    expectUsage(vnetc('route', '02:00:00:00:00:01', '02:00:00:00:00:02', '--from', 'nope', '-f', 'star4.vnet', '--local'), 2, "--from nope: none of the daemons runs, so there are no tables to follow; start them with 'vnetc up --local star4.vnet'");
  });
  test('infer when no daemon runs gives the vnetc up that starts them the same way: --local kept', () => {
    expectUsage(vnetc('infer', '--local', 'star4.vnet'), 2, "no daemon runs on proxy, host1, host2, host3, host4; start them with 'vnetc up --local star4.vnet'");
  });
  test('the vnetc up of a hint keeps --local and -F, quoted for the shell where it must be', () => {
    const reach = { local: false, parallelism: 1, acceptNewHostKeys: false };
    expect(upCommand('star4.vnet', reach)).toBe('vnetc up star4.vnet');
    expect(upCommand('my net.vnet', { ...reach, local: true })).toBe("vnetc up --local 'my net.vnet'");
    expect(upCommand('star4.vnet', { ...reach, sshConfig: "lab's config" })).toBe("vnetc up -F 'lab'\\''s config' star4.vnet");
    // Without a file the daemons are the local ones.
    expect(upCommand(undefined, reach)).toBe('vnetc up --local FILE.vnet');
  });
});

describe('help', () => {
  test("patterns' list of topologies keeps a long description under itself, not at the margin", () => {
    const r = vnetc('patterns', '--help');
    expect(r.status).toBe(0);
    const lines = r.stdout.slice(r.stdout.indexOf('Topologies:')).split('\n');
    const bus = lines.findIndex((l) => l.startsWith('  bus '));
    expect(lines[bus + 1]).toMatch(/^ {14}\S/);
    for (const l of lines.slice(1, lines.indexOf(''))) expect(l).toMatch(/^ {2}/);
  });

  test("patterns --ratio says what runRank does: the first iterations measure communication, and their mean sets the compute phase", () => {
    const text = vnetc('patterns', '--help').stdout.replace(/\s+/g, ' ');
    expect(text).toContain(`the first ${CALIBRATION_ITERATIONS} iterations compute nothing; then each compute phase lasts this times their mean communication phase`);
    expect(text).not.toContain('the last communication phase');
  });

  test("adapt's example spells -k as its help lists it", () => {
    const r = vnetc('adapt', '--help');
    expect(r.stdout).toMatch(/^ {2}-k\s/m);
    expect(r.stdout).toContain('-s star8.vnet -k 4');
    expect(r.stdout).not.toContain('--k ');
  });
});
