import type { VttifParams } from '../types.js';

/**
 * Numbers as every VTTIF renderer prints them, so the table, the DOT labels
 * and the picture agree to the digit.
 */

const RATE_UNITS = ['B/s', 'kB/s', 'MB/s', 'GB/s', 'TB/s'];

/** Bytes per second in decimal units, three significant digits: `850 B/s`, `1.25 MB/s`. */
export function formatRate(bytesPerS: number): string {
  if (!Number.isFinite(bytesPerS) || bytesPerS < 0) return '? B/s';
  if (bytesPerS === 0) return '0 B/s';
  let v = bytesPerS;
  let u = 0;
  // Compare against the rounded value, so 999.7 B/s reads 1.00 kB/s, not 1000 B/s.
  while (v >= 999.5 && u < RATE_UNITS.length - 1) {
    v /= 1000;
    u++;
  }
  const digits = v < 10 ? 2 : v < 100 ? 1 : 0;
  return `${v.toFixed(digits)} ${RATE_UNITS[u]}`;
}

/** An intensity (a fraction of the most intense pair) with two decimals, as the DOT labels and the table show it. */
export function formatIntensity(x: number): string {
  return Number.isFinite(x) ? x.toFixed(2) : '?';
}

/** A parameter as written, without float noise: 0.25, 20, 0.1. */
export function formatNumber(x: number): string {
  return Number.isFinite(x) ? String(Number(x.toPrecision(3))) : '?';
}

export function formatParams(p: VttifParams): string {
  return `update ${formatNumber(p.updateHz)} Hz, window ${formatNumber(p.windowS)} s, threshold ${formatNumber(p.threshold)}`;
}

const EIGHTHS = ['', '▏', '▎', '▍', '▌', '▋', '▊', '▉'];

/** A bar `width` cells wide, in eighths of a cell, padded with spaces so columns after it line up. */
export function intensityBar(x: number, width: number): string {
  const eighths = Math.round(Math.min(1, Math.max(0, Number.isFinite(x) ? x : 0)) * width * 8);
  const full = Math.floor(eighths / 8);
  const bar = '█'.repeat(full) + EIGHTHS[eighths % 8];
  return bar + ' '.repeat(width - [...bar].length);
}

/** Seconds from one ISO 8601 time to another, or undefined when either does not parse. */
export function secondsBetween(from: string, to: string): number | undefined {
  const a = Date.parse(from);
  const b = Date.parse(to);
  return Number.isNaN(a) || Number.isNaN(b) ? undefined : (b - a) / 1000;
}

/** "3.2 s", "4 min 5 s", "2 h 3 min": how long ago something settled. */
export function formatDuration(s: number): string {
  if (s < 60) return `${formatNumber(Math.max(0, Math.round(s * 10) / 10))} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${Math.floor(s % 60)} s`;
  const h = Math.floor(m / 60);
  return h < 48 ? `${h} h ${m % 60} min` : `${Math.floor(h / 24)} d ${h % 24} h`;
}

export const plural = (n: number, what: string): string => `${n} ${what}${n === 1 ? '' : 's'}`;
