/**
 * Benchmark of the overlay links: frames/s and MB/s through one link on
 * loopback, for 64-byte and 1500-byte frames, over TCP and UDP, encrypted and
 * authenticated-only, each next to a same-run baseline of the same transport
 * carrying the same frames with no session at all (raw length-prefixed TCP
 * through the same framing code; raw UDP, one frame per datagram).
 *
 *   node dist/bench/links.js                    1 s per point, about 25 s in all
 *   node dist/bench/links.js --seconds 0.5 --json
 *
 * Both ends run in this one process and thread, so each figure is the whole
 * cost of a frame, sending and receiving, and the ratio to the baseline is
 * what the links layer adds. The machines are shared and noisy: read the
 * ratios, not the absolute rates.
 *
 * Flow control, identical for every point: at most WINDOW frames in flight;
 * the receiver's progress releases more. It keeps UDP from overrunning the
 * socket buffers, so the rate is what gets through, not what was thrown at
 * the kernel. A UDP datagram lost anyway is written off after a stall.
 *
 * TCP links seal the frames sent in one event-loop turn as one record, and
 * the sender above sends in bursts. The `paced` TCP points send one frame per
 * turn instead, which defeats batching: the worst case, where every frame
 * pays a whole AEAD call, as on UDP.
 *
 * Exit status: 0 whether or not the figures please; 1 if a frame arrives
 * damaged or a link does not come up.
 */
import { randomBytes } from 'node:crypto';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { parseArgs } from 'node:util';
import { LengthPrefixReader } from '../daemon/links/framing.js';
import { LinkManager } from '../daemon/links/manager.js';
import type { LinkMode, Proto } from '../daemon/links/types.js';
import { MAX_RECORD } from '../daemon/links/wire.js';
import { aligned } from './table.js';

const WINDOW = 128;
const WARMUP_S = 0.25;
const STALL_MS = 50;
const SOCKET_BUFFER = 4 << 20;

type Variant = 'raw' | LinkMode;

interface Pipe {
  send(frame: Buffer): void;
  onFrame: (frame: Buffer) => void;
  close(): Promise<void>;
}

interface Point {
  proto: Proto;
  size: number;
  paced: boolean;
  variant: Variant;
  framesPerSec: number;
  mbPerSec: number;
  lost: number;
  ratio: number;
}

// ── the pipes ──────────────────────────────────────────────────────────────

async function linkPipe(proto: Proto, mode: LinkMode): Promise<Pipe> {
  const key = randomBytes(32);
  const opts = { port: 0, keepaliveMs: 5000 };
  const a = new LinkManager({ self: 'a', ...opts });
  const b = new LinkManager({ self: 'b', ...opts });
  await a.start();
  await b.start();
  const pipe: Pipe = {
    send: (frame) => {
      a.send('b', frame);
    },
    onFrame: () => {},
    close: async () => {
      await a.close();
      await b.close();
    },
  };
  b.on('frame', (_peer, frame) => pipe.onFrame(frame));
  const up = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${proto} ${mode} link did not come up`)), 5000);
    a.once('up', () => {
      clearTimeout(timer);
      resolve();
    });
  });
  b.add({ peer: 'a', proto, dial: false, key, mode });
  a.add({ peer: 'b', proto, dial: true, address: `127.0.0.1:${b.port}`, key, mode });
  await up;
  return pipe;
}

async function rawTcpPipe(): Promise<Pipe> {
  const reader = new LengthPrefixReader(MAX_RECORD);
  let accepted: Socket | null = null;
  const server: Server = createServer((s) => {
    accepted = s;
    s.setNoDelay(true);
    s.on('data', (chunk: Buffer) => reader.push(chunk, (r) => pipe.onFrame(r)));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const client = connect((server.address() as { port: number }).port, '127.0.0.1');
  await new Promise<void>((r) => client.once('connect', r));
  client.setNoDelay(true);
  let corked = false;
  const uncork = (): void => {
    corked = false;
    client.uncork();
  };
  const pipe: Pipe = {
    // What a link does minus the session: one buffer per frame, its length
    // in front, frames of one event-loop turn in one writev.
    send: (frame) => {
      const out = Buffer.allocUnsafe(4 + frame.length);
      out.writeUInt32BE(frame.length, 0);
      frame.copy(out, 4);
      if (!corked) {
        corked = true;
        client.cork();
        process.nextTick(uncork);
      }
      client.write(out);
    },
    onFrame: () => {},
    close: async () => {
      client.destroy();
      (accepted as Socket | null)?.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
  return pipe;
}

async function rawUdpPipe(): Promise<Pipe> {
  const bind = async (): Promise<UdpSocket> => {
    const s = createSocket('udp4');
    await new Promise<void>((r) => s.bind(0, '127.0.0.1', r));
    s.setRecvBufferSize(SOCKET_BUFFER);
    s.setSendBufferSize(SOCKET_BUFFER);
    return s;
  };
  const tx = await bind();
  const rx = await bind();
  const port = rx.address().port;
  const pipe: Pipe = {
    send: (frame) => tx.send(frame, port, '127.0.0.1'),
    onFrame: () => {},
    close: async () => {
      await new Promise<void>((r) => tx.close(() => r()));
      await new Promise<void>((r) => rx.close(() => r()));
    },
  };
  rx.on('message', (m) => pipe.onFrame(m));
  return pipe;
}

// ── the measurement ───────────────────────────────────────────────────────

async function measure(
  pipe: Pipe,
  size: number,
  seconds: number,
  paced: boolean,
): Promise<{ frames: number; elapsed: number; lost: number }> {
  const frame = randomBytes(size);
  let sent = 0;
  let received = 0;
  let lost = 0;
  let running = true;
  let damaged = false;
  const inFlight = (): number => sent - received - lost;
  let scheduled = false;
  const paceOne = (): void => {
    scheduled = false;
    if (!running || inFlight() >= WINDOW) return;
    pipe.send(frame);
    sent++;
    scheduled = true;
    setImmediate(paceOne);
  };
  const pump = (): void => {
    if (paced) {
      if (!scheduled) paceOne();
      return;
    }
    while (running && inFlight() < WINDOW) {
      pipe.send(frame);
      sent++;
    }
  };
  pipe.onFrame = (f) => {
    received++;
    if (f.length !== size || f[0] !== frame[0] || f[size - 1] !== frame[size - 1]) damaged = true;
    if (inFlight() <= WINDOW / 2) pump();
  };
  let seen = 0;
  const watchdog = setInterval(() => {
    if (received === seen && inFlight() > 0) {
      lost += inFlight();
      pump();
    }
    seen = received;
  }, STALL_MS);
  pump();
  await sleep(WARMUP_S * 1000);
  const r0 = received;
  const l0 = lost;
  const t0 = performance.now();
  await sleep(seconds * 1000);
  const frames = received - r0;
  const elapsed = (performance.now() - t0) / 1000;
  running = false;
  clearInterval(watchdog);
  await sleep(20);
  if (damaged) throw new Error(`a ${size}-byte frame arrived damaged`);
  return { frames, elapsed, lost: lost - l0 };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function point(
  proto: Proto,
  size: number,
  paced: boolean,
  variant: Variant,
  seconds: number,
): Promise<Omit<Point, 'ratio'>> {
  const pipe = variant === 'raw' ? await (proto === 'tcp' ? rawTcpPipe() : rawUdpPipe()) : await linkPipe(proto, variant);
  try {
    const m = await measure(pipe, size, seconds, paced);
    const framesPerSec = m.frames / m.elapsed;
    return { proto, size, paced, variant, framesPerSec, mbPerSec: (framesPerSec * size) / 1e6, lost: m.lost };
  } finally {
    await pipe.close();
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      seconds: { type: 'string', default: '1' },
      json: { type: 'boolean', default: false },
    },
  });
  const seconds = Math.min(5, Math.max(0.2, Number(values.seconds) || 1));
  const cases: Array<[Proto, number, boolean]> = [
    ['tcp', 64, false],
    ['tcp', 1500, false],
    ['tcp', 64, true],
    ['tcp', 1500, true],
    ['udp', 64, false],
    ['udp', 1500, false],
  ];
  const points: Point[] = [];
  for (const [proto, size, paced] of cases) {
    const raw = await point(proto, size, paced, 'raw', seconds);
    points.push({ ...raw, ratio: 1 });
    for (const variant of ['encrypt', 'auth-only'] as const) {
      const p = await point(proto, size, paced, variant, seconds);
      points.push({ ...p, ratio: p.framesPerSec / raw.framesPerSec });
    }
    if (!values.json) process.stderr.write('.');
  }
  if (values.json) {
    process.stdout.write(`${JSON.stringify({ window: WINDOW, seconds, points }, null, 2)}\n`);
    return;
  }
  process.stderr.write('\n');
  const rows = [['transport', 'frame', 'variant', 'frames/s', 'MB/s', 'vs raw', 'lost']];
  for (const p of points) {
    rows.push([
      p.paced ? `${p.proto} paced` : p.proto,
      `${p.size} B`,
      p.variant,
      Math.round(p.framesPerSec).toLocaleString('en-US'),
      p.mbPerSec.toFixed(1),
      p.ratio.toFixed(2),
      String(p.lost),
    ]);
  }
  for (const line of aligned(rows, 'lll')) console.log(line);
  console.log(`\none process, both ends; at most ${WINDOW} frames in flight; ${seconds} s per point after ${WARMUP_S} s warm-up`);
  console.log('paced: one frame per event-loop turn, so no TCP batching (the worst case)');
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? e.message : e);
  process.exitCode = 1;
});
