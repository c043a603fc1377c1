import { isMachineName } from '../model/names.js';
import { clipWord } from '../wire/clip-word.js';
import type { VttifParams } from './types.js';

/**
 * A daemon's VTTIF settings: where its reports go, and the three parameters
 * of 000 §2.2. Every daemon of a deployment holds the same settings; the
 * window and threshold matter only on the collector. Written on the wire
 * (the VTTIF command, PROTOCOL.md) and in the state file as `key=value`
 * words, one codec for both.
 */
export interface VttifSettings extends VttifParams {
  /** The machine whose daemon aggregates (the Proxy), or null: sample, but report to no one. */
  collector: string | null;
  /** Off: no per-frame counting at all (what the overhead benchmark compares against). */
  sampling: boolean;
  /**
   * Count one frame in this many, at random, and scale (sFlow's packet
   * sampling): 1 counts every frame exactly; more costs less per frame and
   * estimates, which is plenty for intense pairs and blurs faint ones.
   */
  sampleEvery: number;
}

export const MAX_UPDATE_HZ = 20;
export const MAX_WINDOW_S = 3600;
/** A window holds at least one update interval, so the slowest rate is one report per longest window. */
export const MIN_UPDATE_HZ = 1 / MAX_WINDOW_S;

export const DEFAULT_SETTINGS: VttifSettings = {
  collector: null,
  sampling: true,
  sampleEvery: 1,
  updateHz: 5,
  windowS: 1,
  threshold: 0.2,
};

const KEYS = ['collector', 'sampling', 'sample-every', 'update-hz', 'window-s', 'threshold'] as const;
export const MAX_SAMPLE_EVERY = 65536;

/** The settings as `VTTIF?` lists them: one `key value` line each, in formatSettings' order. */
export function settingsLines(s: VttifSettings): string[] {
  return formatSettings(s)
    .split(' ')
    .map((w) => w.replace('=', ' '));
}

/** Reads the settings back out of `VTTIF?` lines (other lines are skipped); throws RangeError as applySettingWords does. */
export function settingsFromLines(lines: readonly string[]): VttifSettings {
  const words: string[] = [];
  for (const line of lines) {
    const sp = line.indexOf(' ');
    if (sp > 0 && (KEYS as readonly string[]).includes(line.slice(0, sp))) words.push(`${line.slice(0, sp)}=${line.slice(sp + 1)}`);
  }
  return applySettingWords(DEFAULT_SETTINGS, words);
}

/** The words for `s`, in a fixed order. */
export function formatSettings(s: VttifSettings): string {
  return `collector=${s.collector ?? '-'} sampling=${s.sampling ? 'on' : 'off'} sample-every=${s.sampleEvery} update-hz=${s.updateHz} window-s=${s.windowS} threshold=${s.threshold}`;
}

/**
 * `base` with the given `key=value` words applied; a key not given keeps its
 * value. Throws RangeError naming the word and what would be accepted. The
 * words are checked one by one; whether the result holds together is
 * `settingsProblem`'s to say.
 */
export function applySettingWords(base: VttifSettings, words: readonly string[]): VttifSettings {
  const s = { ...base };
  for (const word of words) {
    const eq = word.indexOf('=');
    const key = eq < 0 ? word : word.slice(0, eq);
    const value = eq < 0 ? '' : word.slice(eq + 1);
    switch (key) {
      case 'collector':
        if (value === '-') s.collector = null;
        else if (isMachineName(value)) s.collector = value;
        else throw new RangeError(`collector '${clipWord(value)}' is not a machine name (or '-' for none)`);
        break;
      case 'sampling':
        if (value !== 'on' && value !== 'off') throw new RangeError(`sampling must be 'on' or 'off', not '${clipWord(value)}'`);
        s.sampling = value === 'on';
        break;
      case 'sample-every':
        s.sampleEvery = number(key, value, (n) => Number.isInteger(n) && n >= 1 && n <= MAX_SAMPLE_EVERY, `a whole number from 1 to ${MAX_SAMPLE_EVERY}`);
        break;
      case 'update-hz':
        s.updateHz = number(key, value, (n) => n >= MIN_UPDATE_HZ && n <= MAX_UPDATE_HZ, `a rate from ${MIN_UPDATE_HZ.toPrecision(3)} (one report per ${MAX_WINDOW_S} s, the longest window) to ${MAX_UPDATE_HZ}`);
        break;
      case 'window-s':
        s.windowS = number(key, value, (n) => n > 0 && n <= MAX_WINDOW_S, `seconds above 0 and at most ${MAX_WINDOW_S}`);
        break;
      case 'threshold':
        s.threshold = number(key, value, (n) => n >= 0 && n < 1, 'a fraction from 0 up to (not including) 1');
        break;
      default:
        throw new RangeError(`unknown VTTIF setting '${clipWord(key)}' (known: ${KEYS.join(', ')})`);
    }
  }
  return s;
}

/**
 * A window shorter than one update interval would hold no report most of the
 * time, and the collector would see traffic flicker on and off.
 */
export function settingsProblem(p: VttifParams): string | null {
  const interval = 1 / p.updateHz;
  if (p.windowS < interval - 1e-9) {
    return `the window (${p.windowS} s) must be at least one update interval (${round(interval)} s at ${p.updateHz} Hz); raise window-s or update-hz`;
  }
  return null;
}

function number(key: string, value: string, ok: (n: number) => boolean, what: string): number {
  const n = /^[0-9]*\.?[0-9]+(e-?[0-9]+)?$/i.test(value) ? Number(value) : NaN;
  if (!Number.isFinite(n) || !ok(n)) throw new RangeError(`${key}=${clipWord(value)}: expected ${what}`);
  return n;
}

const round = (n: number): number => Math.round(n * 1000) / 1000;

export function paramsOf(s: VttifSettings): VttifParams {
  return { updateHz: s.updateHz, windowS: s.windowS, threshold: s.threshold };
}
