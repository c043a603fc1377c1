import { better } from './objective.js';

/**
 * Simulated annealing over any configuration space that can make a random
 * move, score itself and take a move back. Deterministic for a given random
 * source, so a seed reproduces a run. Keeps the best configuration seen
 * (`save` is called whenever it improves), so the result is never worse than
 * the start.
 */
export interface Space {
  score(): number;
  /** Makes a random move; returns how to take it back, or undefined if no move was possible. */
  move(random: () => number): (() => void) | undefined;
  /** The current configuration is the best so far: remember it. */
  save(): void;
}

export function anneal(space: Space, iterations: number, random: () => number): number {
  let current = space.score();
  let best = current;
  space.save();
  // The starting temperature: the mean worsening of a few random moves, so
  // that early on about a third of bad moves are taken, whatever the units.
  let worse = 0;
  let seen = 0;
  for (let i = 0; i < 32; i++) {
    const undo = space.move(random);
    if (!undo) continue;
    const d = space.score() - current;
    undo();
    if (d < 0) {
      worse -= d;
      seen++;
    }
  }
  // No probe made things worse (every move is neutral or better, as when
  // dropping one slow fast path is the only move that matters): the search
  // still runs, as a descent that takes every move that does not lose.
  const t0 = seen === 0 ? 0 : worse / seen;
  const t1 = t0 * 1e-4;
  const alpha = t0 === 0 ? 1 : Math.pow(t1 / t0, 1 / Math.max(1, iterations));
  let t = t0;
  for (let i = 0; i < iterations; i++, t *= alpha) {
    const undo = space.move(random);
    if (!undo) continue;
    const s = space.score();
    const d = s - current;
    if (d >= 0 || (t > 0 && random() < Math.exp(d / t))) {
      current = s;
      if (better(s, best)) {
        best = s;
        space.save();
      }
    } else undo();
  }
  return best;
}
