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

/** The fingerprint a plan file was computed against, or undefined if the text is not a plan. */
export function deltaBase(text: string): string | undefined {
  return HEADER.exec(text)?.[1];
}
