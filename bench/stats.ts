import { prng } from '../src/util/prng.js';

/** The middle of a sample (the mean of the two middle values for an even count): what every benchmark reports, robust to a noisy round. */
export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/**
 * A 90% bootstrap interval for the median of `xs`: how far the median
 * could move with other rounds on the same noisy machine. Resampled with a
 * fixed-seed generator, so a run's printout is reproducible from its data.
 */
export function medianInterval(xs: readonly number[], resamples = 2000): [number, number] {
  const next = prng(0x2545f491);
  const medians: number[] = [];
  for (let r = 0; r < resamples; r++) medians.push(median(Array.from(xs, () => xs[Math.floor(next() * xs.length)]!)));
  medians.sort((a, b) => a - b);
  return [medians[Math.floor(0.05 * resamples)]!, medians[Math.floor(0.95 * resamples)]!];
}
