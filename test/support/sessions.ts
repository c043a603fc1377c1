import { ReachError, type Session, type Transport } from '../../src/remote/transport.js';
import type { Host } from '../../src/model/state.js';

/** The ReachError a promise rejects with; anything else (or success) fails the test. */
export async function reachError(p: Promise<unknown>): Promise<ReachError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof ReachError) return e;
    throw e;
  }
  throw new Error('expected a ReachError');
}

/**
 * `open` for tests: sessions still open when a test ends, failed or not,
 * are closed after it (an open socket would keep jest waiting).
 */
export function closingSessions(): (t: Pick<Transport, 'open'>, h: Host) => Promise<Session> {
  const sessions: Session[] = [];
  afterEach(async () => {
    for (const s of sessions.splice(0)) await s.close();
  });
  return async (t, h) => {
    const s = await t.open(h);
    sessions.push(s);
    return s;
  };
}
