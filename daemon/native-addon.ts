import { createRequire } from 'node:module';

const loaded = new Map<string, unknown>();

/**
 * One of vnetd's optional native addons (the npm package `name`), loaded on
 * first use and remembered; null when it was not built (no compiler or
 * library at `npm install`, or a daemon uploaded over SSH as JavaScript).
 */
export function nativeAddon<T>(name: 'vnetd-pcap' | 'vnetd-aead'): T | null {
  if (!loaded.has(name)) {
    let addon: unknown = null;
    try {
      addon = createRequire(import.meta.url)(name);
    } catch {
      // not built: the caller says what that means
    }
    loaded.set(name, addon);
  }
  return loaded.get(name) as T | null;
}
