import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { QEMU, qemuMissing, until, type Qemu } from '../support/qemu.js';
import { dgramNetdev, SIZES, socketUdpNetdev, startHub, type Ends, type Form, type Hub } from '../support/qemu-hub.js';

/**
 * vnetd dialling a QEMU that listens (`qemu-stream:connect=` and
 * `connect-path=`), against real QEMU: its hub (test/support/qemu-hub.ts) is
 * the only wire between two daemons, and QEMU's stream netdev is the
 * listening side (`server=on`, or the older `socket,listen=`). Then what
 * QEMU 7.2's own dialling side cannot do: QEMU is killed and started again,
 * and vnetd reconnects by itself; vnetd restarts under a running QEMU; and
 * vnetd starts before QEMU listens. The netdev options are the README's.
 */

const skip = qemuMissing();
const suite = skip ? describe.skip : describe;

const tcpIface = (e: Ends) => `q=qemu-stream:connect=127.0.0.1:${e.streamTcp}`;
const STREAM_TCP: Form = {
  dgramNetdev,
  streamIface: tcpIface,
  streamNetdev: (e) => `stream,id=ns,server=on,addr.type=inet,addr.host=127.0.0.1,addr.port=${e.streamTcp}`,
};
const STREAM_UNIX: Form = {
  dgramNetdev,
  streamIface: (e) => `q=qemu-stream:connect-path=${e.streamPath}`,
  streamNetdev: (e) => `stream,id=ns,server=on,addr.type=unix,addr.path=${e.streamPath}`,
};
const SOCKET_LISTEN: Form = {
  dgramNetdev: socketUdpNetdev,
  streamIface: tcpIface,
  streamNetdev: (e) => `socket,id=ns,listen=127.0.0.1:${e.streamTcp}`,
};
const FORMS: [string, Form][] = [
  ['-netdev stream,server=on over TCP', STREAM_TCP],
  ['-netdev stream,server=on over a Unix socket', STREAM_UNIX],
  ['the older -netdev socket,listen=', SOCKET_LISTEN],
];

/** A few sizes, short to jumbo, for the phases of the restart tests (the full sweep is the first test's). */
const SOME = [60, 61, 64, 128, 577, 1000, 1499, 1500, 1513, 1514, 9014];

suite(`vnetd connects to a listening QEMU (${skip ?? QEMU})`, () => {
  let dir: string;
  let hub: Hub | undefined;
  beforeEach(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vnetd-qemu-dial-'))));
  afterEach(async () => {
    await hub?.close();
    hub = undefined;
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const started = async (form: Form): Promise<{ hub: Hub; qemu: Qemu }> => {
    hub = await startHub(dir, form.streamIface);
    const qemu = hub.qemu(form.dgramNetdev(hub.ends), form.streamNetdev(hub.ends));
    await until('vnetd to connect to QEMU', () => hub!.ifaces.h2q.connected, qemu, 30_000);
    return { hub, qemu };
  };
  const counted = (c: { frames: number; bytes: number }) => ({ rxFrames: c.frames, rxBytes: c.bytes, txFrames: c.frames, txBytes: c.bytes, errors: 0 });
  const logged = (h: Hub, text: string) => h.h2log.filter((l) => l.includes(text));

  test.each(FORMS)('%s: every size from 60 to 1514 bytes and a 9014-byte jumbo, both ways, byte for byte', async (_name, form) => {
    const { hub, qemu } = await started(form);
    expect(hub.device(hub.h2, 'q')).toMatch(/ vm=up$/);
    const crossed = counted(await hub.exchange(SIZES, qemu));
    for (const iface of Object.values(hub.ifaces)) expect(iface.counters).toEqual(crossed);
  }, 60_000);

  test.each([FORMS[0]!, FORMS[1]!])('%s: QEMU killed and started again, then vnetd restarted; frames flow after each', async (_name, form) => {
    const { hub, qemu } = await started(form);
    const before = await hub.exchange(SOME, qemu);

    // QEMU dies without closing anything (its Unix socket file stays behind), and comes back on the same address.
    qemu.proc.kill('SIGKILL');
    await until('vnetd to see QEMU gone', () => !hub.ifaces.h2q.connected);
    expect(hub.device(hub.h2, 'q')).toMatch(/ vm=down$/);
    const again = hub.qemu(form.dgramNetdev(hub.ends), form.streamNetdev(hub.ends));
    await until('vnetd to reconnect to the new QEMU by itself', () => hub.ifaces.h2q.connected, again, 30_000);
    expect(hub.device(hub.h2, 'q')).toMatch(/ vm=up$/);
    const after = await hub.exchange(SOME, again);
    const both = { frames: before.frames + after.frames, bytes: before.bytes + after.bytes };
    for (const iface of Object.values(hub.ifaces)) expect(iface.counters).toEqual(counted(both));
    expect(logged(hub, 'connected to QEMU')).toHaveLength(2);
    expect(logged(hub, 'reconnecting')).toHaveLength(1);

    // vnetd goes and comes back under the same QEMU, which accepts it again.
    await hub.restartH2();
    await until('the restarted vnetd to connect to QEMU', () => hub.ifaces.h2q.connected, again, 30_000);
    const third = await hub.exchange(SOME, again);
    expect(hub.ifaces.h2q.counters).toEqual(counted(third));
    expect(hub.ifaces.h2vm.counters).toEqual(counted(third));
  }, 90_000);

  test('vnetd started before QEMU listens connects once QEMU is up, having said so once', async () => {
    hub = await startHub(dir, STREAM_TCP.streamIface);
    await until('vnetd to report QEMU missing', () => logged(hub!, 'QEMU is not listening').length > 0);
    expect(hub.device(hub.h2, 'q')).toBe(`q qemu-stream:connect=127.0.0.1:${hub.ends.streamTcp} rx=0/0 tx=0/0 errors=0 vm=down`);
    // Let it retry a few times (250 ms, then 500 ms, ...) before QEMU appears; none of them is logged again.
    await new Promise((r) => setTimeout(r, 1500));
    const qemu = hub.qemu(STREAM_TCP.dgramNetdev(hub.ends), STREAM_TCP.streamNetdev(hub.ends));
    await until('vnetd to connect to the QEMU that came up', () => hub!.ifaces.h2q.connected, qemu, 30_000);
    const crossed = counted(await hub.exchange(SOME, qemu));
    for (const iface of Object.values(hub.ifaces)) expect(iface.counters).toEqual(crossed);
    expect(logged(hub, 'QEMU is not listening')).toHaveLength(1);
    expect(logged(hub, 'connected to QEMU')).toHaveLength(1);
  }, 60_000);
});
