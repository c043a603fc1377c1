/**
 * A saved plan is a .vnet program of changes rather than of a whole
 * network: its DELETE statements refer to the live state it was computed
 * against. Its first line says so, and names that state by fingerprint.
 */
const HEADER = /^# vnetc plan: changes to live state (sha256:[0-9a-f]{64})[ \t]*(?:\r?\n|$)/;

export const DELTA_HEADER_PREFIX = '# vnetc plan: changes to live state ';

export function deltaHeader(fingerprint: string): string {
  return DELTA_HEADER_PREFIX + fingerprint;
}

/**
 * How a saved plan's first line starts, however damaged the rest: a file
 * that starts so and does not match HEADER is a damaged plan, never a whole
 * network (read as one, its few statements would plan to delete the rest).
 */
const LOOKS_LIKE_HEADER = /^# vnetc plan:/;

/** The first line of a file that starts as a saved plan does but whose header is not one (hash damaged or gone); undefined otherwise. */
export function damagedDeltaHeader(text: string): { start: number; end: number } | undefined {
  if (!LOOKS_LIKE_HEADER.test(text) || HEADER.test(text)) return undefined;
  const eol = text.search(/\r?\n/);
  return { start: 0, end: eol < 0 ? text.length : eol };
}

/** The fingerprint a plan file was computed against, or undefined if the text is not a plan. */
export function deltaBase(text: string): string | undefined {
  return HEADER.exec(text)?.[1];
}
