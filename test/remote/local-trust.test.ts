import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { LocalTransport } from '../../src/remote/local.js';
import { ReachError } from '../../src/remote/transport.js';

/**
 * The local transport sends link keys to whatever answers on a machine's
 * socket and stops the process it names, so it trusts only a place that is
 * the user's alone, and kills only the vnetd it launched there, whatever a
 * daemon's reply says.
 */

const NOBODY = 65534;
const asRoot = process.getuid?.() === 0;
const host = { machine: 'a.localhost', user: 'root', port: 5700, iface: 'vmnet1' };

let home: string;
let transport: LocalTransport;
let dir: string;

beforeEach(() => {
  home = fs.mkdtempSync(path.join(os.tmpdir(), 'vnetc-trust-'));
  transport = new LocalTransport(home);
  dir = transport.dirOf(host.machine);
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
});

afterEach(() => {
  fs.rmSync(home, { recursive: true, force: true });
});

/** A daemon that greets as the machine, gives `pid` for its pid, and on SHUTDOWN goes away (its process, here the test's, stays). */
async function fakeDaemon(pid: number): Promise<{ server: net.Server; lines: string[] }> {
  const lines: string[] = [];
  const server = net.createServer((s) => {
    s.on('error', () => {});
    s.write(`OK vnetd 0.1.0 protocol 1 machine ${host.machine}\n`);
    let buf = '';
    s.on('data', (d) => {
      buf += d.toString();
      for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        lines.push(line);
        if (line === 'INFO?') s.write(`* machine ${host.machine}\n* pid ${pid}\nOK 2\n`);
        else if (line === 'SHUTDOWN') {
          s.end('OK stopping\n');
          server.close();
        } else s.write('OK\n');
      }
    });
  });
  await new Promise<void>((r) => server.listen(path.join(dir, 'vnetd.sock'), r));
  return { server, lines };
}

const refused = async (p: Promise<unknown>, why: RegExp) => {
  const e = await p.then(() => undefined, (x: unknown) => x);
  expect(e).toBeInstanceOf(ReachError);
  expect((e as ReachError).message).toMatch(why);
  expect((e as ReachError).hint).toMatch(/VNETC_HOME/);
};

describe('a place others could stand in for the daemon is refused', () => {
  const cases: [string, () => void, RegExp][] = [
    ['a machine directory others may write to', () => fs.chmodSync(dir, 0o777), /state directory of a\.localhost, .*, is mode 0777/],
    ['a local/ others may write to (sticky or not)', () => fs.chmodSync(transport.root, 0o1777), /local state directory, .*, is mode 1777/],
  ];
  if (asRoot) {
    cases.push(['a machine directory another user owns', () => fs.chownSync(dir, NOBODY, NOBODY), /belongs to uid 65534, not to you/]);
    cases.push(['a socket another user owns', () => fs.chownSync(path.join(dir, 'vnetd.sock'), NOBODY, NOBODY), /control socket of a\.localhost, .*, belongs to uid 65534/]);
  }

  test.each(cases)('%s: neither talked to nor started over', async (_, spoil, why) => {
    const fake = await fakeDaemon(process.pid);
    spoil();
    const session = await transport.open(host);
    try {
      await refused(session.control(), why);
      await refused(session.stop(), why);
      await refused(session.start({ host, ifaces: [] }), why);
      expect(fake.lines).toEqual([]);
      expect(fs.existsSync(path.join(dir, 'launch.json'))).toBe(false);
    } finally {
      await session.close();
      fake.server.close();
    }
  });
});

/** The signal `child` died of, after `sig` is sent to it (if it still runs). */
async function endedBy(child: ChildProcess, sig: NodeJS.Signals): Promise<string | null> {
  if (child.exitCode !== null || child.signalCode !== null) return child.signalCode;
  const ended = once(child, 'exit');
  child.kill(sig);
  return (await ended)[1] as string | null;
}

describe('stop kills only the vnetd it launched', () => {
  let victim: ChildProcess;
  beforeEach(() => {
    victim = spawn('sleep', ['1000'], { stdio: 'ignore' });
  });
  afterEach(() => {
    victim.kill('SIGKILL');
  });

  test('a daemon that names another process, even one launch.json records, does not get it killed', async () => {
    const pid = victim.pid!;
    fs.writeFileSync(path.join(dir, 'launch.json'), JSON.stringify({ machine: host.machine, address: '127.1.2.3', port: host.port, ifaces: [], pid }));
    const fake = await fakeDaemon(pid);
    const session = await transport.open(host);
    await session.stop();
    await session.close();
    expect(fake.lines).toContain('SHUTDOWN');
    // Ended by us, now, and not before: a SIGKILL from stop() would be the signal it died of.
    expect(await endedBy(victim, 'SIGTERM')).toBe('SIGTERM');
  }, 30_000);
});

// It was reached, so neither "cannot reach" advice about SSH nor a bare message: what answers, and where the log is.
test('whatever answers on the socket with lines other than the protocol is named so, with the daemon log to look at', async () => {
  const server = net.createServer((s) => {
    s.on('error', () => {});
    s.write('SSH-2.0-OpenSSH_9.2\n');
  });
  await new Promise<void>((r) => server.listen(path.join(dir, 'vnetd.sock'), r));
  try {
    const session = await transport.open(host);
    const e = await session.control().then(() => undefined, (x: unknown) => x);
    await session.close();
    expect(e).toBeInstanceOf(ReachError);
    expect((e as ReachError).message).toMatch(/^the control connection to a\.localhost sent something that is not vnetd's protocol: /);
    expect((e as ReachError).hint).toContain(`may not be vnetd: see its log (${path.join(dir, 'vnetd.log')})`);
  } finally {
    await new Promise((r) => server.close(r));
  }
});
