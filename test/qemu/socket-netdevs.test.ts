import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { QEMU, qemuMissing, until } from '../support/qemu.js';
import { dgramNetdev, SIZES, socketUdpNetdev, startHub, type Ends, type Form } from '../support/qemu-hub.js';

/**
 * vnetd's QEMU interfaces against real QEMU, vnetd listening: QEMU's hub
 * (test/support/qemu-hub.ts) is the only wire between two daemons, one on
 * QEMU's datagram netdev, the other on its stream netdev, which connects to
 * vnetd. The netdev options are the README's.
 */

const skip = qemuMissing();
const suite = skip ? describe.skip : describe;

const tcpIface = (e: Ends) => `q=qemu-stream:listen=127.0.0.1:${e.streamTcp}`;

const FORMS: [string, Form][] = [
  ['-netdev dgram and -netdev stream over TCP', {
    dgramNetdev,
    streamIface: tcpIface,
    streamNetdev: (e) => `stream,id=ns,server=off,addr.type=inet,addr.host=127.0.0.1,addr.port=${e.streamTcp}`,
  }],
  ['-netdev dgram and -netdev stream over a Unix socket', {
    dgramNetdev,
    streamIface: (e) => `q=qemu-stream:path=${e.streamPath}`,
    streamNetdev: (e) => `stream,id=ns,server=off,addr.type=unix,addr.path=${e.streamPath}`,
  }],
  ['the older -netdev socket,udp=…,localaddr=… and -netdev socket,connect=…', {
    dgramNetdev: socketUdpNetdev,
    streamIface: tcpIface,
    streamNetdev: (e) => `socket,id=ns,connect=127.0.0.1:${e.streamTcp}`,
  }],
];

suite(`vnetd's QEMU interfaces through real QEMU (${skip ?? QEMU})`, () => {
  let dir: string;
  beforeEach(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vnetd-qemu-'))));
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  test.each(FORMS)('%s: every size from 60 to 1514 bytes and a 9014-byte jumbo, both ways, byte for byte', async (_name, form) => {
    const hub = await startHub(dir, form.streamIface);
    try {
      expect(hub.device(hub.h2, 'q')).toMatch(/ vm=down$/);
      const qemu = hub.qemu(form.dgramNetdev(hub.ends), form.streamNetdev(hub.ends));
      await until('QEMU to connect its stream netdev to vnetd', () => hub.ifaces.h2q.connected, qemu, 15_000);
      expect(hub.device(hub.h2, 'q')).toMatch(/ vm=up$/);

      const { frames, bytes } = await hub.exchange(SIZES, qemu);
      // Every frame crossed QEMU once each way, as vnetd counted it on both sides of QEMU, and nothing else did.
      const crossed = { rxFrames: frames, rxBytes: bytes, txFrames: frames, txBytes: bytes, errors: 0 };
      for (const iface of Object.values(hub.ifaces)) expect(iface.counters).toEqual(crossed);
    } finally {
      await hub.close();
    }
  }, 60_000);
});
