import { jest } from '@jest/globals';
import { generateKeyPairSync } from 'node:crypto';
import fs from 'node:fs';
import dgram from 'node:dgram';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { expectNoCrash, runVnetcAsync, type Run } from './support/vnetc.js';

/**
 * show, down and their kin with the local daemons in awkward states: a
 * damaged record beside a running daemon, a daemon already stopped, a daemon
 * that does not answer. Real vnetd processes on loopback addresses, in a
 * scratch VNETC_HOME; every one started is stopped at the end.
 */

jest.setTimeout(60_000);

let dir = '';
let home = '';
const port = 20000 + Math.floor(Math.random() * 20000);
const run = (...args: string[]): Promise<Run> => runVnetcAsync(args, { cwd: dir, env: { VNETC_HOME: home } });
const write = (name: string, text: string): void => {
  fs.mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
  fs.writeFileSync(path.join(dir, name), text);
};
const spec = (...machines: string[]): string => ['BEGIN', ...machines.map((m) => `  HOST vnet AT ${m} ${port} vm0`), 'END', ''].join('\n');

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vnetc-daemons-'));
  home = path.join(dir, 'home');
});

afterEach(() => {
  // Whatever a test left running goes.
  for (const m of fs.existsSync(path.join(home, 'local')) ? fs.readdirSync(path.join(home, 'local')) : []) {
    try {
      const { pid } = JSON.parse(fs.readFileSync(path.join(home, 'local', m, 'launch.json'), 'utf8')) as { pid: number };
      process.kill(pid, 'SIGKILL');
    } catch {
      // not running, or no record
    }
  }
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('a damaged launch.json under VNETC_HOME', () => {
  test('show names it, says what to do, and shows the daemons that are fine', async () => {
    write('solo.vnet', spec('solo'));
    expect((await run('up', '--local', 'solo.vnet')).status).toBe(0);
    const damaged: [string, string, string][] = [
      ['a', '{}', 'machine: expected a string, got nothing'],
      ['b', '"x"', 'not a launch record; expected the JSON object vnetc writes'],
      ['c', '{"machine":"bogus"}', `machine: expected 'c' (the name of its directory), got "bogus"`],
    ];
    for (const [m, text] of damaged) write(`home/local/${m}/launch.json`, text);
    const r = await run('show');
    expectNoCrash(r);
    for (const [m, , why] of damaged) {
      const file = path.join(home, 'local', m, 'launch.json');
      expect(r.stderr).toContain(`${file}: warning[VN5002]: the record of the local daemon ${m} is damaged, so it is left out: ${why}`);
      expect(r.stderr).toContain(`hint: if no daemon of ${m} runs any more, remove ${path.join(home, 'local', m)}`);
    }
    expect(r.stdout).toMatch(/^solo {2}local 127\.[\d.]+, port \d+/);
    expect(r.stdout).not.toContain('undefined');
    expect(r.status).toBe(0);

    // Named in a file, the machine is unreachable, with the same advice.
    write('c.vnet', spec('c'));
    const named = await run('show', '--local', 'c.vnet');
    expectNoCrash(named);
    expect(named.stderr).toContain(`error[VN5001]: cannot reach c: ${path.join(home, 'local', 'c', 'launch.json')}: machine: expected 'c'`);
    expect(named.stderr).toContain(`hint: if no daemon of c runs any more, remove ${path.join(home, 'local', 'c')}`);
    expect(named.status).toBe(1);
    expect((await run('down', '--local', 'solo.vnet')).status).toBe(0);
  });

  test('with only damaged records, show reports them and exits 1', async () => {
    write('home/local/a/launch.json', '{');
    const r = await run('show');
    expectNoCrash(r);
    expect(r.stderr).toContain('warning[VN5002]: the record of the local daemon a is damaged, so it is left out: 1:2: not JSON');
    expect(r.stdout).toBe('');
    expect(r.status).toBe(1);
  });
});

describe('SSH to a port that is not an SSH server', () => {
  test('a server that sends garbage: the failure is reported and vnetc exits', async () => {
    // More than ssh2 takes for its identification line, and then the connection is left open.
    const garbage = net.createServer((c) => {
      c.on('error', () => {});
      c.write(Buffer.alloc(300 * 1024, 'A'));
    });
    await new Promise<void>((r) => garbage.listen(0, '127.0.0.1', r));
    try {
      const key = generateKeyPairSync('rsa', { modulusLength: 2048, privateKeyEncoding: { type: 'pkcs1', format: 'pem' }, publicKeyEncoding: { type: 'spki', format: 'pem' } });
      write('id_rsa', key.privateKey);
      fs.chmodSync(path.join(dir, 'id_rsa'), 0o600);
      const { port: sshPort } = garbage.address() as net.AddressInfo;
      write('ssh_config', `Host host1\n  HostName 127.0.0.1\n  Port ${sshPort}\n  IdentityFile ${path.join(dir, 'id_rsa')}\n  UserKnownHostsFile ${path.join(dir, 'known_hosts')}\n`);
      write('far.vnet', spec('host1'));
      // Before, the socket was left half-closed and this never returned.
      const r = await run('plan', 'far.vnet', '-F', 'ssh_config', '--ssh-persist', '0');
      expectNoCrash(r);
      expect(r.stderr).toContain(`error[VN5001]: cannot reach host1: vnet@127.0.0.1:${sshPort} (host1) is not an SSH server: it answered '${'A'.repeat(39)}…' rather than identifying as SSH`);
      expect(r.status).toBe(1);
    } finally {
      garbage.close();
    }
  });
});

describe('a local daemon whose connection breaks midway through a reply', () => {
  test('is said to have broken during the reply to what was asked (VN5003), not to be unreachable', async () => {
    write('solo.vnet', spec('solo'));
    const machineDir = path.join(home, 'local', 'solo');
    fs.mkdirSync(machineDir, { recursive: true, mode: 0o700 });
    fs.chmodSync(path.join(home, 'local'), 0o700);
    // Greets as the daemon of solo, then sends the start of the first reply and hangs up.
    const cut = net.createServer((c) => {
      c.on('error', () => {});
      c.write('OK vnetd 0.1.0 protocol 1 machine solo\n');
      c.once('data', () => c.end('* machine solo\n'));
    });
    await new Promise<void>((r) => cut.listen(path.join(machineDir, 'vnetd.sock'), r));
    try {
      const r = await run('plan', '--local', 'solo.vnet');
      expectNoCrash(r);
      expect(r.stderr).toContain('solo.vnet:2:3: error[VN5003]: the connection to the daemon of solo broke during the reply to INFO?: the daemon closed it');
      expect(r.stderr).toContain(`hint: the daemon may have exited or been restarted, or the connection to the machine was cut: see its log (${path.join(machineDir, 'vnetd.log')}), then run the command again`);
      expect(r.stderr).not.toContain('cannot reach');
      expect(r.status).toBe(1);
    } finally {
      await new Promise((r) => cut.close(r));
    }
  });
});

describe('a local daemon that does not answer', () => {
  test('show and plan name it and say what to do, rather than wait for ever', async () => {
    write('solo.vnet', spec('solo'));
    expect((await run('up', '--local', 'solo.vnet')).status).toBe(0);
    const { pid } = JSON.parse(fs.readFileSync(path.join(home, 'local', 'solo', 'launch.json'), 'utf8')) as { pid: number };
    // Suspended, its socket still accepts (the kernel queues the connection), but nothing greets.
    process.kill(pid, 'SIGSTOP');
    try {
      const [show, plan] = await Promise.all([run('show'), run('plan', '--local', 'solo.vnet')]);
      for (const r of [show, plan]) {
        expectNoCrash(r);
        expect(r.stderr).toContain('error[VN5001]: cannot reach solo: the local daemon of solo accepted the connection but did not greet within 10 s');
        expect(r.stderr).toContain(`hint: it may be suspended (SIGSTOP) or wedged: its log is ${path.join(home, 'local', 'solo', 'vnetd.log')}`);
        expect(r.status).toBe(1);
      }
    } finally {
      process.kill(pid, 'SIGCONT');
    }
    expect((await run('down', '--local', 'solo.vnet')).status).toBe(0);
  });
});

describe('down when some daemons are already stopped', () => {
  test('takes down the others and names the ones that were stopped', async () => {
    const star = ['BEGIN', ...['proxy', 'host1', 'host2'].map((m) => `  HOST vnet AT ${m} ${port} vm0`), '  ADD', '    LINK host1 proxy', '    LINK host2 proxy', '    FORWARD host1 ANY 02:00:00:00:00:01 vm0', '    FORWARD host2 ANY 02:00:00:00:00:02 vm0', 'END', ''].join('\n');
    write('star.vnet', star);
    write('host2.vnet', spec('host2'));
    expect((await run('up', '--local', 'star.vnet')).status).toBe(0);
    expect((await run('down', '--local', 'host2.vnet')).stdout).toContain('stopped 1 daemon (host2)');
    const r = await run('down', '--local', '--json', 'star.vnet');
    expectNoCrash(r);
    expect(JSON.parse(r.stdout)).toEqual({ format_version: '1.0', ok: true, removed: 3, stopped: ['host1', 'proxy'], already_stopped: ['host2'], failures: [], diagnostics: [] });
    expect(r.status).toBe(0);
    const again = await run('down', '--local', 'star.vnet');
    expect(again.stdout).toBe("Removed 0 of the file's links and rules; stopped 0 daemons. host1, host2, proxy were already stopped, and left as they were.\n");
    expect(again.status).toBe(0);
  });
});

describe('down of a file whose link a rule outside it still uses', () => {
  test('is refused before anything changes, naming the rule and the link', async () => {
    const lines = (...body: string[]) => ['BEGIN', ...['proxy', 'host1'].map((m) => `  HOST vnet AT ${m} ${port} vm0`), '  ADD', '    LINK host1 proxy', ...body.map((b) => `    ${b}`), 'END', ''].join('\n');
    write('both.vnet', lines('FORWARD host1 ANY 02:00:00:00:00:01 vm0', 'FORWARD proxy ANY ff:ff:ff:ff:ff:ff proxy host1'));
    // The same network without the Proxy's rule: down would take the link from under it.
    write('sub.vnet', lines('FORWARD host1 ANY 02:00:00:00:00:01 vm0'));
    expect((await run('up', '--local', 'both.vnet')).status).toBe(0);
    const r = await run('down', '--local', 'sub.vnet');
    expectNoCrash(r);
    expect(r.stderr).toBe(
      'vnetc: error: FORWARD proxy ANY ff:ff:ff:ff:ff:ff proxy host1 (not in sub.vnet) still sends over LINK TCP proxy host1 host1, which down removes\n' +
        'vnetc: hint: add that rule to sub.vnet, or remove it first (vnetc apply a file without it); nothing was changed\n',
    );
    expect(r.status).toBe(1);
    // Both ends still hold the link, and both daemons run: nothing was half done.
    const plan = await run('plan', '--local', 'both.vnet', '-detailed-exitcode');
    expect(plan.stdout).toContain('No changes.');
    expect(plan.status).toBe(0);
    expect((await run('down', '--local', 'both.vnet')).status).toBe(0);
  });
});

describe('a host given a new port', () => {
  test('its peers dial it at the new port: plan says so, apply does it, and the link comes back up', async () => {
    // The first machine a LINK names dials: host2 dials host1, whose port changes.
    const file = (port1: number) => ['BEGIN', `  HOST vnet AT host1 ${port1} vm0`, `  HOST vnet AT host2 ${port} vm0`, '  ADD', '    LINK host2 host1', 'END', ''].join('\n');
    write('a.vnet', file(port));
    expect((await run('up', '--local', 'a.vnet')).status).toBe(0);
    write('b.vnet', file(port + 7));
    const plan = await run('plan', '--local', 'b.vnet');
    expect(plan.stdout).toMatch(/~ HOST vnet AT host1 \d+ vm0 {2}# the daemon restarts/);
    expect(plan.stdout).toMatch(new RegExp(`~ LINK host2 host1 {2}# host2 dials host1 at [\\d.]+:${port}; it is at [\\d.]+:${port + 7} now`));
    expect(plan.stdout).toContain('Plan: 0 to add, 2 to replace, 0 to delete.');
    expect((await run('apply', '--local', '--auto-approve', 'b.vnet')).status).toBe(0);
    // Before, the dialer kept the old port: the link stayed down while plan said there was nothing to do.
    const again = await run('plan', '--local', 'b.vnet', '-detailed-exitcode');
    expect(again.stdout).toContain('No changes.');
    expect(again.status).toBe(0);
    let line = '';
    for (let i = 0; i < 50 && !/ up /.test(line); i++) {
      line = (await run('show', '--local', 'b.vnet')).stdout.split('\n').find((l) => /^ {2}link {2}host1 /.test(l)) ?? '';
      if (!/ up /.test(line)) await new Promise((r) => setTimeout(r, 100));
    }
    expect(line).toMatch(/ up /);
    expect((await run('down', '--local', 'b.vnet')).status).toBe(0);
  });
});

describe('show --vnet when a daemon does not answer', () => {
  test('what names it becomes comments, and the program still validates', async () => {
    const two = ['BEGIN', ...['host1', 'host2'].map((m) => `  HOST vnet AT ${m} ${port} vm0`), '  ADD', '    LINK host1 host2', '    FORWARD host1 ANY 02:00:00:00:00:02 host1 host2', '    FORWARD host1 ANY 02:00:00:00:00:01 vm0', 'END', ''].join('\n');
    write('two.vnet', two);
    expect((await run('up', '--local', 'two.vnet')).status).toBe(0);
    const { pid } = JSON.parse(fs.readFileSync(path.join(home, 'local', 'host2', 'launch.json'), 'utf8')) as { pid: number };
    process.kill(pid, 'SIGKILL');
    const shown = await run('show', '--local', 'two.vnet', '--vnet');
    expect(shown.status).toBe(0);
    expect(shown.stdout).toContain('#   LINK host1 host2\n#   FORWARD host1 ANY 02:00:00:00:00:02 host1 host2\n');
    expect(shown.stdout).toContain('    FORWARD host1 ANY 02:00:00:00:00:01 vm0\n');
    write('shown.vnet', shown.stdout);
    const v = await run('validate', 'shown.vnet');
    expect(v.stderr).toBe('');
    expect(v.status).toBe(0);
  });
});

describe('--json when a daemon is out of reach', () => {
  test('show, route, apply and down each print their own report, with the reason in diagnostics', async () => {
    // Nothing listens on port 1: connection refused, at once.
    write('ssh_config', `Host host1\n  HostName 127.0.0.1\n  Port 1\n  UserKnownHostsFile ${path.join(dir, 'known_hosts')}\n`);
    write('far.vnet', spec('host1'));
    const reach = ['-F', 'ssh_config', '--ssh-persist', '0'];
    const unreachable = { severity: 'error', code: 'VN5001', file: 'far.vnet', line: 2, message: expect.stringContaining('cannot reach host1') };
    const reports: [string[], Record<string, unknown>][] = [
      [['show', 'far.vnet', '--json'], { format_version: '1.0', daemons: [], drift: [] }],
      [['route', '02:00:00:00:00:01', '02:00:00:00:00:02', '-f', 'far.vnet', '--json'], { format_version: '1.0', ok: false, hops: [], endings: [] }],
      [['apply', 'far.vnet', '--json', '--auto-approve'], { format_version: '1.0', applied: false, steps: [], failures: [], started: [] }],
      [['down', 'far.vnet', '--json'], { format_version: '1.0', ok: false, removed: 0, stopped: [], already_stopped: [], failures: [] }],
    ];
    for (const [args, shape] of reports) {
      const r = await run(...args, ...reach);
      expectNoCrash(r);
      expect(JSON.parse(r.stdout)).toEqual({ ...shape, ...(args[0] === 'route' ? { src: '02:00:00:00:00:01', dst: '02:00:00:00:00:02' } : {}), diagnostics: [expect.objectContaining(unreachable)] });
      expect(r.status).toBe(1);
    }
  });

  test('apply --json carries the warnings of the file it applied', async () => {
    write('warn.vnet', spec('solo').replace('END', '  ADD\n    FORWARD solo ff:ff:ff:ff:ff:ff 02:00:00:00:00:01 vm0\nEND'));
    const r = await run('apply', '--local', 'warn.vnet', '--json', '--auto-approve');
    expectNoCrash(r);
    const j = JSON.parse(r.stdout) as { applied: boolean; diagnostics: { severity: string; code: string }[]; ms: unknown };
    expect(j.applied).toBe(true);
    // Steps were pushed, so the report says how long that took (APPLY.md).
    expect(typeof j.ms).toBe('number');
    expect(j.diagnostics).toEqual([expect.objectContaining({ severity: 'warning', code: 'VN3019' })]);
    expect((await run('down', '--local', 'warn.vnet')).status).toBe(0);
  });
});

describe('show and a link in trouble', () => {
  test('records a link refused are shown beside its traffic, and only then', async () => {
    const two = ['BEGIN', ...['host1', 'host2'].map((m) => `  HOST vnet AT ${m} ${port} vm0`), '  ADD', '    LINK UDP host1 host2', 'END', ''].join('\n');
    write('two.vnet', two);
    expect((await run('up', '--local', 'two.vnet')).status).toBe(0);
    const launch = (m: string) => JSON.parse(fs.readFileSync(path.join(home, 'local', m, 'launch.json'), 'utf8')) as { pid: number; address: string; port: number };
    const linkLine = async () => (await run('show', '--local', 'two.vnet')).stdout.split('\n').find((l) => /^ {2}link {2}host2 /.test(l)) ?? 'no link line';
    let line = '';
    for (let i = 0; i < 50 && !/ up /.test(line); i++) line = await linkLine();
    expect(line).toMatch(/ up /);
    expect(line).not.toMatch(/dropped|rejected|replayed|auth-failures/);

    // host2 stopped, a stranger takes its address and port and sends records the session never sealed. UDP has no connection to lose, so the link stays up meanwhile.
    const [h1, h2] = [launch('host1'), launch('host2')];
    process.kill(h2.pid, 'SIGKILL');
    const sock = dgram.createSocket('udp4');
    for (let i = 0; ; i++) {
      try {
        await new Promise<void>((resolve, reject) => {
          sock.once('error', reject);
          sock.bind(h2.port, h2.address, () => (sock.off('error', reject), resolve()));
        });
        break;
      } catch (e) {
        if (i === 50) throw e;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    try {
      for (let i = 0; i < 3; i++) await new Promise<void>((resolve, reject) => sock.send(Buffer.alloc(100, 0xff), h1.port, h1.address, (e) => (e ? reject(e) : resolve())));
    } finally {
      sock.close();
    }
    for (let i = 0; i < 50 && !/rejected 3/.test(line); i++) line = await linkLine();
    expect(line).toMatch(/ {2}rejected 3$/);
  });
});

describe('a daemon that cannot start', () => {
  // The failure's way forward (the log) was dropped: only the message reached the person.
  test('up says why and where its log is, in text and in --json, on one line even when vnetd said several', async () => {
    // Another program holds the overlay port on the machine's address, so vnetd exits at start.
    const tcp = net.createServer();
    const udp = dgram.createSocket('udp4');
    await new Promise<void>((r) => tcp.listen(port, '127.0.0.77', r));
    await new Promise<void>((r) => udp.bind(port, '127.0.0.77', r));
    try {
      write('f.vnet', spec('127.0.0.77'));
      const log = path.join(home, 'local', '127.0.0.77', 'vnetd.log');
      const r = await run('up', '--local', 'f.vnet');
      expectNoCrash(r);
      expect(r.status).toBe(1);
      expect(r.stderr).toMatch(new RegExp(`\\n  127\\.0\\.0\\.77: the daemon of 127\\.0\\.0\\.77 exited on start \\(code 1\\):·vnetd: error: cannot start: the overlay port ${port} on 127\\.0\\.0\\.77 is in use[^\\n]*\\n    hint: see ${log.replace(/[.]/g, '\\.')}\\n`));
      const j = await run('apply', '--json', '--local', '--auto-approve', 'f.vnet');
      expect(j.status).toBe(1);
      expect((JSON.parse(j.stdout) as { failures: unknown[] }).failures).toEqual([{ machine: '127.0.0.77', message: expect.stringMatching(/exited on start/), hint: `see ${log}` }]);
    } finally {
      tcp.close();
      udp.close();
    }
  });
});
