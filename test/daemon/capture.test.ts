import { execFileSync, spawn, spawnSync } from 'node:child_process';
import dgram from 'node:dgram';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { CapturingInterface } from '../../daemon/capture/capturing-interface.js';
import { MAX_PENDING_BYTES, PcapWriter } from '../../daemon/capture/pcap-file.js';
import { QemuUdpInterface } from '../../daemon/interfaces/qemu-udp.js';
import { Vnetd } from '../../daemon/vnetd-core.js';
import { commitLines } from '../support/commit-lines.js';
import { freePort } from '../support/sshd.js';
import { syntheticVm } from '../support/synthetic-vm.js';
import { ROOT } from '../support/vnetc.js';

/** A reader written from the format's description, independent of the writer, to check what it wrote. */
function readPcap(file: string): { linktype: number; snaplen: number; records: { sec: number; usec: number; frame: Buffer; origLen: number }[] } {
  const b = fs.readFileSync(file);
  if (b.length < 24) throw new Error('shorter than a pcap file header');
  if (b.readUInt32LE(0) !== 0xa1b2c3d4) throw new Error(`bad magic ${b.readUInt32LE(0).toString(16)}`);
  if (b.readUInt16LE(4) !== 2 || b.readUInt16LE(6) !== 4) throw new Error('not version 2.4');
  const records = [];
  let off = 24;
  while (off < b.length) {
    if (off + 16 > b.length) throw new Error(`truncated record header at ${off}`);
    const incl = b.readUInt32LE(off + 8);
    if (off + 16 + incl > b.length) throw new Error(`truncated record at ${off}`);
    records.push({ sec: b.readUInt32LE(off), usec: b.readUInt32LE(off + 4), origLen: b.readUInt32LE(off + 12), frame: b.subarray(off + 16, off + 16 + incl) });
    off += 16 + incl;
  }
  return { linktype: b.readUInt32LE(20), snaplen: b.readUInt32LE(16), records };
}

const frame = (dst: string, src: string, n: number, size = 60): Buffer => {
  const f = Buffer.alloc(size, n);
  Buffer.from(dst, 'hex').copy(f, 0);
  Buffer.from(src, 'hex').copy(f, 6);
  f.writeUInt16BE(0x88b5, 12);
  return f;
};

const hasTcpdump = spawnSync('tcpdump', ['--version']).status === 0;

let dir: string;
beforeAll(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vnetd-capture-'))));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));


describe('pcap files', () => {
  test('frames of every size come back whole, in order, as Ethernet, with sane timestamps', async () => {
    const file = path.join(dir, 'sizes.pcap');
    const w = new PcapWriter(file);
    w.begin();
    const frames = [14, 60, 1514, 9014, 65535].map((n, i) => frame('020000000002', '020000000001', i, n));
    const t0 = Date.now();
    for (const f of frames) w.write(f);
    await w.close();
    const p = readPcap(file);
    expect(p.linktype).toBe(1);
    expect(p.snaplen).toBe(65535);
    expect(p.records.map((r) => r.frame.length)).toEqual(frames.map((f) => f.length));
    p.records.forEach((r, i) => {
      expect(r.frame.equals(frames[i]!)).toBe(true);
      expect(r.origLen).toBe(frames[i]!.length);
      expect(r.usec).toBeLessThan(1_000_000);
      expect(Math.abs(r.sec * 1000 - t0)).toBeLessThan(60_000);
    });
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
  });

  (hasTcpdump ? test : test.skip)('tcpdump reads the file (skipped when tcpdump is not installed)', async () => {
    const file = path.join(dir, 'tcpdump.pcap');
    const w = new PcapWriter(file);
    w.begin();
    w.write(frame('ffffffffffff', '020000000001', 1));
    w.write(frame('020000000001', '020000000002', 2));
    await w.close();
    const out = execFileSync('tcpdump', ['-r', file, '-n', '-e'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    const lines = out.split('\n').filter((l) => /^\d/.test(l)); // tcpdump hex-dumps unknown EtherTypes on indented lines
    expect(lines).toHaveLength(2);
    expect(lines[0]).toContain('02:00:00:00:00:01 > ff:ff:ff:ff:ff:ff');
    expect(lines[1]).toContain('02:00:00:00:00:02 > 02:00:00:00:00:01');
  });

  test('an interface wrapped for capture records both directions and behaves as before', async () => {
    const vm = dgram.createSocket('udp4');
    await new Promise<void>((r) => vm.bind(0, '127.0.0.1', () => r()));
    const port = await freePort();
    const inner = QemuUdpInterface.parse('vm0', `listen=127.0.0.1:${port},peer=127.0.0.1:${vm.address().port}`);
    const file = path.join(dir, 'both.pcap');
    const writer = new PcapWriter(file);
    writer.begin();
    const iface = new CapturingInterface(inner, writer);
    const got: Buffer[] = [];
    iface.on('frame', (f: Buffer) => got.push(f));
    const atVm: Buffer[] = [];
    vm.on('message', (m) => atVm.push(m));
    await iface.open();
    const fromVm = frame('020000000002', '020000000001', 7);
    const toVm = frame('020000000001', '020000000002', 8);
    vm.send(fromVm, port, '127.0.0.1');
    while (got.length === 0) await new Promise((r) => setTimeout(r, 5));
    expect(iface.send(toVm)).toBe(true);
    while (atVm.length === 0) await new Promise((r) => setTimeout(r, 5));
    await iface.close();
    await writer.close();
    vm.close();
    expect(iface.counters).toMatchObject({ rxFrames: 1, txFrames: 1 });
    expect(readPcap(file).records.map((r) => r.frame.toString('hex'))).toEqual([fromVm.toString('hex'), toVm.toString('hex')]);
  });
});

describe('owner-only', () => {
  test('a capture file that exists is made owner-only, as a new one is', async () => {
    const file = path.join(dir, 'was-open.pcap');
    fs.writeFileSync(file, 'an earlier capture');
    fs.chmodSync(file, 0o644);
    const w = new PcapWriter(file);
    w.claim();
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    expect(fs.readFileSync(file, 'utf8')).toBe('an earlier capture');
    w.begin();
    await w.close();
    expect(fs.statSync(file).size).toBe(24);
  });

  // Only root can leave a file another user may write but not chmod: the writer then runs as nobody.
  (process.getuid?.() === 0 ? test : test.skip)('a capture file that cannot be made owner-only is not written (root only)', () => {
    const shared = fs.mkdtempSync(path.join(os.tmpdir(), 'vnetd-capture-theirs-'));
    try {
      fs.chmodSync(shared, 0o755);
      const file = path.join(shared, 'theirs.pcap');
      fs.writeFileSync(file, "root's");
      fs.chmodSync(file, 0o666);
      const writer = pathToFileURL(path.join(ROOT, 'dist', 'daemon', 'capture', 'pcap-file.js')).href;
      const script = `import { PcapWriter } from ${JSON.stringify(writer)}; try { new PcapWriter(process.env.FILE).claim(); console.log('claimed'); } catch (e) { console.log(e.message); }`;
      const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { uid: 65534, gid: 65534, env: { FILE: file }, encoding: 'utf8' });
      expect(r.stdout).toBe(`cannot make the capture file ${file} owner-only (--capture), and it would hold what the VMs said: EPERM: operation not permitted, fchmod; remove it or name another\n`);
      expect(fs.readFileSync(file, 'utf8')).toBe("root's");
      expect(fs.statSync(file).mode & 0o777).toBe(0o666);
    } finally {
      fs.rmSync(shared, { recursive: true, force: true });
    }
  });
});

test('frames left out of a capture are said once when it falls behind, shown by DEVICES? and LINKS?, and summed up when the daemon stops', async () => {
  const said: string[] = [];
  const log = (l: string) => said.push(l);
  const files = { iface: path.join(dir, 'behind-vm0.pcap'), link: path.join(dir, 'behind-h2.pcap') };
  const writers = { iface: new PcapWriter(files.iface, log), link: new PcapWriter(files.link, log) };
  const vmPort = await freePort();
  const d = new Vnetd({
    machine: 'h1', port: 0, listen: '127.0.0.1', stateDir: path.join(dir, 'behind'), log,
    interfaces: [QemuUdpInterface.parse('vm0', `listen=127.0.0.1:${await freePort()},peer=127.0.0.1:${vmPort}`)],
    ifaceCaptures: new Map([['vm0', writers.iface]]),
    linkCaptures: new Map([['h2', writers.link]]),
  });
  await d.start();
  try {
    await commitLines(d, [`LINK ADD h2 tcp DIAL 127.0.0.1:1 ${'ab'.repeat(32)}`]);
    // Written in one turn, nothing reaches the disk meanwhile: a disk that fell behind.
    const big = frame('ffffffffffff', '020000000001', 1, 65535);
    const fit = Math.ceil(MAX_PENDING_BYTES / (big.length + 16));
    for (let i = 0; i < fit + 5; i++) writers.iface.write(big);
    writers.link.write(big);
    expect(said.filter((l) => l.startsWith('capture '))).toEqual([
      `capture ${files.iface}: the disk is 16 MiB behind; frames are left out of the file until it catches up (capture-dropped in DEVICES? and LINKS? counts them)`,
    ]);
    const devices = [...d.query('devices?')];
    expect(devices[0]).toMatch(new RegExp(`^vm0 qemu-udp:\\S+ rx=0/0 tx=0/0 errors=0 capture-frames=${fit} capture-dropped=5 capture-errors=0$`));
    const links = [...d.query('links?')];
    expect(links[0]).toMatch(/ capture-frames=1 capture-dropped=0 capture-errors=0$/);
  } finally {
    await d.stop();
  }
  expect(said.filter((l) => l.startsWith('capture of '))).toEqual([
    `capture of iface vm0 in ${files.iface}: ${Math.ceil(MAX_PENDING_BYTES / 65551)} frames, 5 left out (incomplete)`,
    `capture of link h2 in ${files.link}: 1 frame`,
  ]);
});

/** How many records a capture file holds: a write error ends it at its last whole one (readPcap throws on a record cut short, as tcpdump -r fails on it). */
function wholeRecords(file: string): number {
  if (hasTcpdump) execFileSync('tcpdump', ['-r', file], { stdio: 'ignore' });
  return readPcap(file).records.length;
}

const hasPrlimit = spawnSync('prlimit', ['--version']).status === 0;

// A disk that fails mid-write, for a regular file: a file size limit (RLIMIT_FSIZE; Node ignores SIGXFSZ, so writes past it fail with EFBIG).
(hasPrlimit ? test : test.skip)('frames lost to a write error are not counted as captured: DEVICES?, LINKS? and the stop summary give what the file holds, which ends at its last whole record (skipped without prlimit)', async () => {
  const at = fs.mkdtempSync(path.join(dir, 'efbig-'));
  const dist = (m: string) => JSON.stringify(pathToFileURL(path.join(ROOT, 'dist', m)).href);
  // A burst of 200 frames of 1000 bytes, far past the limit: most are still on their way to the disk when it fails.
  const script = `
    import { PcapWriter } from ${dist('daemon/capture/pcap-file.js')};
    import { QemuUdpInterface } from ${dist('daemon/interfaces/qemu-udp.js')};
    import { Vnetd } from ${dist('daemon/vnetd-core.js')};
    import { isChange, parseCommand } from ${dist('src/wire/control.js')};
    const at = process.env.AT;
    const said = [];
    const log = (l) => said.push(l);
    const writers = [new PcapWriter(at + '/vm0.pcap', log), new PcapWriter(at + '/h2.pcap', log)];
    const d = new Vnetd({
      machine: 'h1', port: 0, listen: '127.0.0.1', stateDir: at + '/state', log,
      interfaces: [QemuUdpInterface.parse('vm0', 'listen=127.0.0.1:' + process.env.PORT + ',peer=127.0.0.1:9')],
      ifaceCaptures: new Map([['vm0', writers[0]]]), linkCaptures: new Map([['h2', writers[1]]]),
    });
    await d.start();
    await d.commit([parseCommand('LINK ADD h2 tcp DIAL 127.0.0.1:1 ' + 'ab'.repeat(32))].filter(isChange));
    const frame = Buffer.alloc(1000, 7);
    for (const w of writers) for (let i = 0; i < 200; i++) w.write(frame);
    while (writers.some((w) => w.counters.errors === 0)) await new Promise((r) => setTimeout(r, 10));
    const devices = [...d.query('devices?')], links = [...d.query('links?')];
    await d.stop();
    console.log(JSON.stringify({ devices, links, said }));
  `;
  const r = spawnSync('prlimit', ['--fsize=65536', process.execPath, '--input-type=module', '-e', script], { env: { ...process.env, AT: at, PORT: String(await freePort()) }, encoding: 'utf8', timeout: 30_000 });
  expect(r.stderr).toBe('');
  const { devices, links, said } = JSON.parse(r.stdout) as { devices: string[]; links: string[]; said: string[] };
  const [inVm0, inH2] = [wholeRecords(path.join(at, 'vm0.pcap')), wholeRecords(path.join(at, 'h2.pcap'))];
  expect(inVm0).toBeGreaterThan(0);
  expect(inVm0).toBeLessThan(200);
  expect(devices[0]).toMatch(new RegExp(` capture-frames=${inVm0} capture-dropped=${200 - inVm0} capture-errors=1$`));
  expect(links[0]).toMatch(new RegExp(` capture-frames=${inH2} capture-dropped=${200 - inH2} capture-errors=1$`));
  // Said once per file, in whichever order the disk failed them.
  expect(said.filter((l) => l.startsWith('capture /')).sort()).toEqual([
    `capture ${path.join(at, 'h2.pcap')}: EFBIG: file too large, write; no more frames are written to it`,
    `capture ${path.join(at, 'vm0.pcap')}: EFBIG: file too large, write; no more frames are written to it`,
  ]);
  expect(said.filter((l) => l.startsWith('capture of '))).toEqual([
    `capture of iface vm0 in ${path.join(at, 'vm0.pcap')}: ${inVm0} frames, ${200 - inVm0} left out, 1 write error(s): the file ends early (incomplete)`,
    `capture of link h2 in ${path.join(at, 'h2.pcap')}: ${inH2} frames, ${200 - inH2} left out, 1 write error(s): the file ends early (incomplete)`,
  ]);
});

describe('vnetd --capture', () => {
  const VNETD = path.join(ROOT, 'dist', 'daemon', 'vnetd.js');
  const vnetd = (args: string[]) => spawnSync(process.execPath, [VNETD, '--machine', 'h1', '--port', '1', '--state-dir', path.join(dir, 'h1'), ...args], { encoding: 'utf8' });

  test.each([
    [['--capture', 'vm9=/tmp/x.pcap'], "--capture: no interface is named 'vm9' (give it with --iface vm9=KIND:PARAMS, or capture a link with link:PEER=FILE)"],
    [['--iface', 'vm0=qemu-stream:listen=127.0.0.1:9', '--capture', 'vm0'], "--capture: 'vm0' is not NAME=FILE"],
    [['--iface', 'vm0=qemu-stream:listen=127.0.0.1:9', '--capture', 'vm0=/nonexistent/dir/x.pcap'], '--capture: cannot write /nonexistent/dir/x.pcap: there is no directory /nonexistent/dir'],
    [['--capture', 'link:h1=/tmp/x.pcap'], "--capture: 'h1' is not another machine's name"],
    [['--capture', 'link:bad name=/tmp/x.pcap'], "--capture: 'bad name' is not another machine's name"],
    [['--capture', 'link:h2=/nonexistent/l1.pcap', '--capture', 'link:h2=/nonexistent/l2.pcap'], "--capture: the link to 'h2' is captured twice"],
    [['--iface', 'vm0=qemu-stream:listen=127.0.0.1:9', '--capture', 'vm0=/nonexistent/a.pcap', '--capture', 'vm0=/nonexistent/b.pcap'], "--capture: 'vm0' is captured twice"],
  ])('%j → %s', (args, message) => {
    const r = vnetd(args);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain(message);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  test('a capture file is refused (exit 2, nothing written) when another --capture writes it, or it is in the state directory, whatever name (a hard link too) reaches it', () => {
    const state = path.join(dir, 'kept-state');
    fs.mkdirSync(state, { recursive: true });
    const saved = path.join(state, 'state.json');
    fs.writeFileSync(saved, '{"saved": true}');
    fs.symlinkSync(saved, path.join(dir, 'to-state.json'));
    fs.symlinkSync(state, path.join(dir, 'state-link'));
    fs.symlinkSync(path.join(state, 'new.pcap'), path.join(dir, 'to-new-in-state.pcap'));
    fs.symlinkSync('later.pcap', path.join(dir, 'to-later.pcap'));
    fs.linkSync(saved, path.join(dir, 'hard-state.json'));
    fs.writeFileSync(path.join(dir, 'earlier.pcap'), 'an earlier capture');
    fs.linkSync(path.join(dir, 'earlier.pcap'), path.join(dir, 'hard-earlier.pcap'));
    const ifaces = ['--iface', 'vm0=qemu-stream:listen=127.0.0.1:9', '--iface', 'vm1=qemu-stream:listen=127.0.0.1:10'];
    const run = (stateDir: string, captures: string[]) =>
      spawnSync(process.execPath, [VNETD, '--machine', 'h1', '--port', '1', '--state-dir', stateDir, ...ifaces, ...captures.flatMap((c) => ['--capture', c])], { encoding: 'utf8', timeout: 20_000 });
    const inState = (option: string, stateDir = state) => `--capture: ${option} is in the state directory ${stateDir}, whose files are vnetd's own; write the capture elsewhere`;
    const same = (a: string, b: string) => `--capture: ${a} and ${b} are the same file, and would overwrite each other; give each capture its own file`;
    const cases: [string, string[], string][] = [
      [state, [`vm0=${saved}`], inState(`vm0=${saved}`)],
      [state, [`vm0=${path.join(dir, 'to-state.json')}`], inState(`vm0=${path.join(dir, 'to-state.json')}`)],
      [path.join(dir, 'state-link'), [`link:h2=${saved}`], inState(`link:h2=${saved}`, path.join(dir, 'state-link'))],
      [state, [`vm0=${path.join(dir, 'to-new-in-state.pcap')}`], inState(`vm0=${path.join(dir, 'to-new-in-state.pcap')}`)],
      [state, [`vm0=${path.join(dir, 'same.pcap')}`, `vm1=${path.join(dir, 'same.pcap')}`], same(`vm0=${path.join(dir, 'same.pcap')}`, `vm1=${path.join(dir, 'same.pcap')}`)],
      [state, [`vm0=${path.join(dir, 'later.pcap')}`, `link:h2=${path.join(dir, 'state-link', '..', 'to-later.pcap')}`],
        same(`vm0=${path.join(dir, 'later.pcap')}`, `link:h2=${path.join(dir, 'state-link', '..', 'to-later.pcap')}`)],
      [state, [`vm0=${path.join(dir, 'hard-state.json')}`],
        `--capture: vm0=${path.join(dir, 'hard-state.json')} is another name (a hard link) for ${saved}, one of vnetd's own files; write the capture elsewhere`],
      [state, [`vm0=${path.join(dir, 'earlier.pcap')}`, `link:h2=${path.join(dir, 'hard-earlier.pcap')}`],
        same(`vm0=${path.join(dir, 'earlier.pcap')}`, `link:h2=${path.join(dir, 'hard-earlier.pcap')}`)],
    ];
    for (const [stateDir, captures, message] of cases) {
      const r = run(stateDir, captures);
      expect(r.stderr).toBe(`vnetd: error: ${message}\nRun 'vnetd --help' for usage.\n`);
      expect(r.status).toBe(2);
    }
    expect(fs.readFileSync(saved, 'utf8')).toBe('{"saved": true}');
    expect(fs.readFileSync(path.join(dir, 'earlier.pcap'), 'utf8')).toBe('an earlier capture');
    expect(fs.readdirSync(state)).toEqual(['state.json']);
    for (const f of ['same.pcap', 'later.pcap']) expect(fs.existsSync(path.join(dir, f))).toBe(false);
  });

  test('a capture path that is a FIFO, a device or anything else not a regular file is refused (exit 2), never waited on, whatever name reaches it', () => {
    const fifo = path.join(dir, 'no-reader.fifo');
    execFileSync('mkfifo', [fifo]);
    fs.symlinkSync(fifo, path.join(dir, 'to-fifo.pcap'));
    const refused = (file: string, kind: string) =>
      `vnetd: error: --capture: cannot write ${file}: it is ${kind}, and captures are written to regular files only; name a regular file, or one that does not exist yet\nRun 'vnetd --help' for usage.\n`;
    for (const [file, kind] of [[fifo, 'a FIFO'], [path.join(dir, 'to-fifo.pcap'), 'a FIFO'], ['/dev/null', 'a character device']] as const) {
      // The timeout only ends a daemon that would otherwise wait for a reader for ever.
      const r = spawnSync(process.execPath, [VNETD, '--machine', 'h1', '--port', '1', '--state-dir', path.join(dir, 'h1'), '--iface', 'vm0=qemu-stream:listen=127.0.0.1:9', '--capture', `vm0=${file}`],
        { encoding: 'utf8', timeout: 20_000 });
      expect(r.stderr).toBe(refused(file, kind));
      expect(r.status).toBe(2);
    }
  });

  test('a FIFO that took a capture file\'s place after the command line was checked is refused when the daemon claims it, not waited on', () => {
    const fifo = path.join(dir, 'late.fifo');
    execFileSync('mkfifo', [fifo]);
    const writer = pathToFileURL(path.join(ROOT, 'dist', 'daemon', 'capture', 'pcap-file.js')).href;
    const script = `import { PcapWriter } from ${JSON.stringify(writer)}; try { new PcapWriter(process.env.FILE).claim(); console.log('claimed'); } catch (e) { console.log(e.message); }`;
    // The timeout only ends a claim that would otherwise wait for a reader for ever.
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { env: { ...process.env, FILE: fifo }, encoding: 'utf8', timeout: 20_000 });
    expect(r.stdout).toBe(`cannot write the capture file ${fifo} (--capture): it is a FIFO, and captures are written to regular files only; name a regular file, or one that does not exist yet\n`);
  });

  /** A vnetd with vm0 on a qemu-udp interface, captured to `file`; resolves once it has started. */
  async function running(file: string, stateDir: string, ports: { overlay: number; iface: number; vm: number }, more: string[] = []) {
    const proc = spawn(process.execPath, [VNETD, '--machine', 'h1', '--port', String(ports.overlay), '--listen', '127.0.0.1', '--state-dir', stateDir,
      '--iface', `vm0=qemu-udp:listen=127.0.0.1:${ports.iface},peer=127.0.0.1:${ports.vm}`, '--capture', `vm0=${file}`, ...more], { stdio: ['ignore', 'ignore', 'pipe'] });
    const out = { proc, log: '' };
    proc.stderr!.on('data', (b: Buffer) => (out.log += b));
    while (!out.log.includes('control ')) {
      if (proc.exitCode !== null) throw new Error(out.log);
      await new Promise((r) => setTimeout(r, 20));
    }
    return out;
  }

  test('a running daemon writes what its interface carried, readable after it stops', async () => {
    const file = path.join(dir, 'daemon.pcap');
    const [port, ifacePort] = [await freePort(), await freePort()];
    const vm = dgram.createSocket('udp4');
    await new Promise<void>((r) => vm.bind(0, '127.0.0.1', () => r()));
    const { proc } = await running(file, path.join(dir, 'run'), { overlay: port, iface: ifacePort, vm: vm.address().port });
    const f = frame('ffffffffffff', '020000000001', 3);
    vm.send(f, ifacePort, '127.0.0.1');
    // No rules: the frame is dropped by the table, but it did cross the interface.
    await new Promise((r) => setTimeout(r, 200));
    await new Promise((r) => (proc.once('exit', r), proc.kill('SIGTERM')));
    vm.close();
    expect(readPcap(file).records.map((r) => r.frame.toString('hex'))).toEqual([f.toString('hex')]);
  }, 20_000);

  test('a second daemon that cannot start (its state directory or overlay port taken) leaves the running one\'s capture whole', async () => {
    const file = path.join(dir, 'kept.pcap');
    const state = path.join(dir, 'kept');
    const vm = dgram.createSocket('udp4');
    await new Promise<void>((r) => vm.bind(0, '127.0.0.1', () => r()));
    const ports = { overlay: await freePort(), iface: await freePort(), vm: vm.address().port };
    const { proc } = await running(file, state, ports);
    const frames = [1, 2, 3].map((n) => frame('ffffffffffff', '020000000001', n));
    const cross = async (f: Buffer) => {
      const size = fs.statSync(file).size;
      vm.send(f, ports.iface, '127.0.0.1');
      while (fs.statSync(file).size === size) await new Promise((r) => setTimeout(r, 10));
    };
    try {
      await cross(frames[0]!);
      // Its own interface port: only what the first daemon holds stands in its way.
      const ifaceB = await freePort();
      const second = (stateDir: string, overlay: number) =>
        spawnSync(process.execPath, [VNETD, '--machine', 'h1', '--port', String(overlay), '--listen', '127.0.0.1', '--state-dir', stateDir,
          '--iface', `vm0=qemu-udp:listen=127.0.0.1:${ifaceB},peer=127.0.0.1:${ports.vm}`, '--capture', `vm0=${file}`], { encoding: 'utf8', timeout: 20_000 });
      const sameDir = second(state, await freePort());
      expect(sameDir.stderr).toBe(`vnetd: error: cannot start: another vnetd is running with state directory ${state}\n`);
      expect(sameDir.status).toBe(1);
      await cross(frames[1]!);
      const samePort = second(path.join(dir, 'kept-2'), ports.overlay);
      expect(samePort.stderr).toContain(`cannot start: the overlay port ${ports.overlay} on 127.0.0.1 is in use`);
      expect(samePort.status).toBe(1);
      await cross(frames[2]!);
    } finally {
      await new Promise((r) => (proc.once('exit', r), proc.kill('SIGTERM')));
      vm.close();
    }
    expect(readPcap(file).records.map((r) => r.frame.toString('hex'))).toEqual(frames.map((f) => f.toString('hex')));
  }, 30_000);
});

test('a capture that cannot be written stops the start, which leaves the others as they were and takes back the files it created, through a dangling symbolic link too', async () => {
  const at = fs.mkdtempSync(path.join(dir, 'refused-'));
  const kept = path.join(at, 'untouched.pcap');
  fs.writeFileSync(kept, 'an earlier capture');
  const dangling = path.join(at, 'to-made.pcap');
  fs.symlinkSync('made.pcap', dangling);
  const d = new Vnetd({
    machine: 'h1', port: 0, listen: '127.0.0.1', stateDir: path.join(at, 'state'), interfaces: [], log: () => {},
    linkCaptures: new Map([['h2', new PcapWriter(kept)], ['h3', new PcapWriter(dangling)], ['h4', new PcapWriter(path.join(at, 'new.pcap'))], ['h5', new PcapWriter(dir)]]),
  });
  await expect(d.start()).rejects.toThrow(`cannot write the capture file ${dir} (--capture): `);
  expect(fs.readFileSync(kept, 'utf8')).toBe('an earlier capture');
  // The link was there before the start, and stays; what the start made through it goes.
  expect(fs.readlinkSync(dangling)).toBe('made.pcap');
  // The state directory, which this start made, goes too (socket and all).
  expect(fs.readdirSync(at).sort()).toEqual(['to-made.pcap', 'untouched.pcap']);
});

describe('capturing an overlay link', () => {
  const mac = ['020000000001', '020000000002'] as const;
  test('the Ethernet frames a link carries, both ways, decrypted: what one VM sent the other and the answer', async () => {
    const vms = await Promise.all([syntheticVm(), syntheticVm()]);
    const ports = [await freePort(), await freePort()];
    const file = path.join(dir, 'link.pcap');
    const daemons = [0, 1].map((i) => new Vnetd({
      machine: `h${i + 1}`, port: 0, listen: '127.0.0.1', stateDir: path.join(dir, `link-h${i + 1}`),
      interfaces: [QemuUdpInterface.parse('vm0', `listen=127.0.0.1:${ports[i]},peer=127.0.0.1:${vms[i]!.sock.address().port}`)],
      log: () => {},
      ...(i === 0 ? { linkCaptures: new Map([['h2', new PcapWriter(file)]]) } : {}),
    }));
    const [h1, h2] = daemons as [Vnetd, Vnetd];
    const there = frame(mac[1], mac[0], 1, 200);
    const back = frame(mac[0], mac[1], 2, 300);
    try {
      for (const d of daemons) await d.start();
      const key = 'ab'.repeat(32);
      const colon = (m: string) => m.match(/../g)!.join(':');
      await commitLines(h2, ['LINK ADD h1 tcp ACCEPT - ' + key, `RULE ADD ANY ${colon(mac[0])} LINK h1`, `RULE ADD ANY ${colon(mac[1])} IFACE vm0`]);
      await commitLines(h1, [`LINK ADD h2 tcp DIAL 127.0.0.1:${h2.links.port} ${key}`, `RULE ADD ANY ${colon(mac[1])} LINK h2`, `RULE ADD ANY ${colon(mac[0])} IFACE vm0`]);
      while (!h1.links.isUp('h2')) await new Promise((r) => setTimeout(r, 10));
      vms[0]!.sock.send(there, ports[0]!, '127.0.0.1');
      while (vms[1]!.got.length === 0) await new Promise((r) => setTimeout(r, 5));
      vms[1]!.sock.send(back, ports[1]!, '127.0.0.1');
      while (vms[0]!.got.length === 0) await new Promise((r) => setTimeout(r, 5));
    } finally {
      for (const d of daemons) await d.stop();
      for (const v of vms) v.sock.close();
    }
    // h1's own VM frames are not the link's; only what went to h2 and what came back.
    expect(readPcap(file).records.map((r) => r.frame.toString('hex'))).toEqual([there.toString('hex'), back.toString('hex')]);
  });
});
