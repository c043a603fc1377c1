/**
 * Who was seen where is learnt from source MACs, which anyone on a local
 * interface can make up: a flood of random sources must cost a bounded
 * amount of memory. A Map keeps insertion order, so moving a key to the end
 * when it is seen again makes the first key the least recently seen, and
 * that one goes when the map is full.
 */
export const MAX_REMEMBERED = 1 << 16;

export function remember<K, V>(map: Map<K, V>, key: K, value: V, max = MAX_REMEMBERED): void {
  map.delete(key);
  map.set(key, value);
  if (map.size > max) map.delete(map.keys().next().value as K);
}
