/**
 * The longest delay Node's timers take (2^31 - 1 ms, about 24.8 days): a
 * longer one is set to 1 ms with only a warning, so a bound a person gives
 * is checked against it.
 */
export const MAX_TIMER_MS = 2 ** 31 - 1;
