import { runKeeper } from './keeper.js';

/**
 * Entry point of a keeper process (see keeper.ts), started detached by
 * KeeperDir.spawn with its job file. It says nothing (its output goes
 * nowhere) and exits when it keeps nothing.
 */
runKeeper(process.argv[2]!).then(
  () => process.exit(0),
  () => process.exit(1),
);
