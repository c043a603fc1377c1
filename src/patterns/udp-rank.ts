import dgram from 'node:dgram';
import type { HostPort } from '../wire/hostport.js';
import { Mailbox, runRank, type BspOptions, type RankResult } from './bsp.js';
import { fragmentCount, fragmentData, HEADER_BYTES, KIND_FRAGMENT, MAX_FRAGMENTS, readHeader, writeHeader } from './message.js';
import { Pacer } from './pacer.js';
import type { Step } from './topology.js';

/**
 * One rank as an ordinary process with an ordinary UDP socket, as the
 * workload runs inside a VM: each fragment is one datagram that fits a
 * 1500-byte MTU unfragmented (IPv4 and UDP headers take 28 bytes).
 */
export const DATAGRAM_ROOM = 1500 - 28 - HEADER_BYTES;

export interface UdpRankConfig {
  rank: number;
  run: number;
  /** Every rank's address, by rank; this rank binds its own. */
  peers: HostPort[];
  script: Step[];
  bsp: Omit<BspOptions, 'signal'>;
}

export class UdpRank {
  private constructor(
    private readonly socket: dgram.Socket,
    private readonly cfg: UdpRankConfig,
    private readonly mailbox: Mailbox,
  ) {}

  /** Binds this rank's address; fragments of this run addressed to it feed its mailbox from then on. */
  static async open(cfg: UdpRankConfig): Promise<UdpRank> {
    const me = cfg.peers[cfg.rank];
    if (!me) throw new RangeError(`rank ${cfg.rank} has no address among ${cfg.peers.length} peers`);
    const socket = dgram.createSocket({ type: me.host.includes(':') ? 'udp6' : 'udp4', recvBufferSize: 4 << 20, sendBufferSize: 4 << 20 });
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(me.port, me.host, () => {
        socket.off('error', reject);
        resolve();
      });
    });
    const mailbox = new Mailbox(cfg.rank, cfg.run);
    socket.on('message', (msg) => {
      const f = readHeader(msg, 0);
      if (f && f.kind === KIND_FRAGMENT && f.run === cfg.run && f.dst === cfg.rank) mailbox.fragment(f);
    });
    // An ICMP unreachable from a peer that is gone surfaces here; the wait's timeout accounts for it.
    socket.on('error', () => {});
    return new UdpRank(socket, cfg, mailbox);
  }

  run(signal?: AbortSignal): Promise<RankResult> {
    const { cfg, socket, mailbox } = this;
    const pacer = new Pacer();
    return runRank(cfg.script, mailbox, {
      send(to, iteration, size) {
        const count = fragmentCount(size, DATAGRAM_ROOM);
        if (count > MAX_FRAGMENTS) throw new RangeError(`a message of ${size} bytes needs more than ${MAX_FRAGMENTS} datagrams`);
        const peer = cfg.peers[to]!;
        return pacer.run(
          Array.from({ length: count }, (_, index) => () => {
            const d = Buffer.alloc(HEADER_BYTES + fragmentData(size, DATAGRAM_ROOM, index));
            writeHeader(d, 0, { kind: KIND_FRAGMENT, run: cfg.run, src: cfg.rank, dst: to, iteration, index, count, size });
            socket.send(d, peer.port, peer.host, () => {});
          }),
        );
      },
    }, { ...cfg.bsp, ...(signal ? { signal } : {}) });
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.socket.close(() => resolve()));
  }
}
