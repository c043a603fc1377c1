import { InputError } from './input-error.js';

/**
 * Checks the fields of a parsed JSON file one by one, so that a wrong or
 * hand-edited file is reported at the field that is wrong
 * (`m.json: matrix[3].bytesPerS: expected a number ≥ 0, got "fast"`),
 * never half-used.
 */
export type Json = unknown;

export class JsonReader {
  constructor(private readonly name: string) {}

  /** `then`: what to do about it, when the expectation alone does not say. */
  fail(path: string, expected: string, got: Json, then?: string): never {
    throw new InputError(`${this.name}: ${path}: expected ${expected}, got ${show(got)}${then ? `; ${then}` : ''}`);
  }

  object(v: Json, path: string): Record<string, Json> {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) this.fail(path, 'an object', v);
    return v as Record<string, Json>;
  }

  /** An object with no fields but these: a misspelt field is an error, not a default silently taken. */
  only(o: Record<string, Json>, path: string, keys: readonly string[]): void {
    for (const k of Object.keys(o)) if (!keys.includes(k)) this.fail(`${path}.${k}`, `one of the fields ${keys.join(', ')}`, k);
  }

  array(v: Json, path: string): Json[] {
    if (!Array.isArray(v)) this.fail(path, 'an array', v);
    return v as Json[];
  }

  string(v: Json, path: string): string {
    if (typeof v !== 'string') this.fail(path, 'a string', v);
    return v as string;
  }

  number(v: Json, path: string, min = -Infinity, max = Infinity): number {
    if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max) {
      const range = min === -Infinity ? '' : max === Infinity ? ` ≥ ${min}` : ` from ${min} to ${max}`;
      this.fail(path, `a number${range}`, v);
    }
    return v as number;
  }

  /** A whole number from `min` to `max` (a port, a pid, a sequence number). */
  integer(v: Json, path: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
    if (typeof v === 'number' && Number.isSafeInteger(v) && v >= min && v <= max) return v;
    return this.fail(path, max === Number.MAX_SAFE_INTEGER ? `a whole number ≥ ${min}` : `a whole number from ${min} to ${max}`, v);
  }

  /** A number above 0 (or also 0, when `zeroOk`). */
  positive(v: Json, path: string, zeroOk = false): number {
    if (typeof v === 'number' && Number.isFinite(v) && (v > 0 || (zeroOk && v === 0))) return v;
    return this.fail(path, zeroOk ? 'a number ≥ 0' : 'a number > 0', v);
  }
}

function show(v: Json): string {
  if (v === undefined) return 'nothing';
  const text = JSON.stringify(v) ?? String(v);
  return text.length > 40 ? `${text.slice(0, 37)}...` : text;
}
