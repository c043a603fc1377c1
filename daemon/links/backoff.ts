import type { BackoffOptions } from './types.js';

export const DEFAULT_BACKOFF: BackoffOptions = { initialMs: 250, maxMs: 30_000, factor: 2, jitter: 0.5 };

/**
 * Delay before retry number `attempt` (0-based): exponential, capped, and
 * with its top part randomised so that daemons cut off together (a Proxy
 * restart) do not all come back in the same millisecond.
 */
export function backoffDelay(attempt: number, o: BackoffOptions, random: () => number = Math.random): number {
  const base = Math.min(o.maxMs, o.initialMs * o.factor ** Math.min(attempt, 64));
  const jitter = Math.min(1, Math.max(0, o.jitter));
  return Math.round(base * (1 - jitter * random()));
}
