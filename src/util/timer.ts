/**
 * The longest delay Node's timers take (2^31 - 1 ms, about 24.8 days): a
 * longer one is set to 1 ms with only a warning, so a bound a person gives
 * is checked against it.
 */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** `work`'s outcome, or `late()`'s error once `ms` have passed first (after `onLate`, which lets go of the work). */
export function deadline<T>(work: Promise<T>, ms: number, late: () => Error, onLate?: () => void): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const over = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      onLate?.();
      reject(late());
    }, ms);
  });
  return Promise.race([work, over]).finally(() => clearTimeout(timer));
}
