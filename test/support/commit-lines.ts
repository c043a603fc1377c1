import type { Vnetd } from '../../daemon/vnetd-core.js';
import { isChange, parseCommand } from '../../src/wire/control.js';

/** Control lines (`LINK ADD …`, `RULE ADD …`) committed to an in-process daemon as one batch, which it must accept. */
export async function commitLines(d: Vnetd, lines: string[]): Promise<void> {
  expect((await d.commit(lines.map((l) => parseCommand(l)).filter(isChange))).ok).toBe(true);
}
