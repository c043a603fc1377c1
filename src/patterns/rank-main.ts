import { createInterface } from 'node:readline';
import { UdpRank, type UdpRankConfig } from './udp-rank.js';

/**
 * One rank of the patterns workload as its own process, run inside a VM (a
 * testbed namespace) by the driver (processes.ts):
 *
 *   node dist/src/patterns/rank-main.js '<UdpRankConfig as JSON>'
 *
 * It binds its socket and prints `ready`; on `go` (standard input) it runs,
 * prints its RankResult as one JSON line and exits 0. A bad configuration or
 * a socket it cannot bind: one line on standard error, exit 2.
 */
async function main(): Promise<number> {
  let cfg: UdpRankConfig;
  try {
    cfg = JSON.parse(process.argv[2] ?? '') as UdpRankConfig;
  } catch {
    process.stderr.write('rank-main: the first argument must be the rank configuration as JSON\n');
    return 2;
  }
  let rank: UdpRank;
  try {
    rank = await UdpRank.open(cfg);
  } catch (e) {
    process.stderr.write(`rank-main: rank ${cfg.rank}: cannot open its socket: ${(e as Error).message}\n`);
    return 2;
  }
  process.stdout.write('ready\n');
  const lines = createInterface({ input: process.stdin });
  for await (const line of lines) {
    if (line.trim() !== 'go') continue;
    const result = await rank.run();
    process.stdout.write(JSON.stringify(result) + '\n');
    break;
  }
  lines.close();
  await rank.close();
  return 0;
}

main().then((code) => (process.exitCode = code));
