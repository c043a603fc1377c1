/**
 * The lookup cache (002 §3: "a forwarding rule cache that gives us constant
 * time lookups on average", worth 3x): results keyed by (ingress, source,
 * destination).
 *
 * A fixed-size, four-way set-associative table, like a CPU cache: memory is
 * set once, so a flood of random source MACs evicts old flows instead of
 * growing the heap, and a probe allocates nothing. Four ways, not two: with
 * two, a working set at a quarter of the capacity still lost ~9% of its
 * lookups to sets that three flows hash to. Keys sit together in one
 * Float64Array (source, destination, ingress, generation per slot), so a
 * probe reads one or two cache lines rather than one per field.
 *
 * Invalidation bumps a generation number, so a rule change costs O(1) even
 * in a batch of thousands; slots of older generations simply never match.
 */

const WAYS = 4;
const STRIDE = 4;
const INV_TWO_32 = 1 / 4294967296;

export interface CacheStats {
  /** Slots: the most flows the cache can hold. */
  readonly capacity: number;
  /** Flows currently cached (counted on demand: O(capacity)). */
  readonly entries: number;
  readonly hits: number;
  readonly misses: number;
}

export class FlowCache<V> {
  readonly capacity: number;
  hits = 0;
  misses = 0;
  /** Right shift that keeps the top bits of a 32-bit hash as the set number. */
  private readonly shift: number;
  /** Per slot: source, destination, ingress, generation. */
  private readonly keys: Float64Array;
  private readonly values: (V | undefined)[];
  /** Slots holding this generation are live; 0 marks a never-used slot. */
  private gen = 1;

  /** `capacity` is rounded up to a power of two (at least 8); 0 turns the cache off. */
  constructor(capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 0) throw new RangeError(`cache capacity must be a whole number, not ${capacity}`);
    const slots = capacity === 0 ? 0 : Math.max(2 * WAYS, 2 ** Math.ceil(Math.log2(capacity)));
    this.capacity = slots;
    this.shift = slots === 0 ? 0 : 32 - Math.log2(slots / WAYS);
    this.keys = new Float64Array(slots * STRIDE);
    this.values = new Array<V | undefined>(slots).fill(undefined);
  }

  /** The first slot of the key's set of WAYS slots, most recently used first. */
  private setOf(ingress: number, s: number, d: number): number {
    const slo = s >>> 0;
    const dlo = d >>> 0;
    const hi = (((d - dlo) * INV_TWO_32) << 16) | ((s - slo) * INV_TWO_32);
    let h = dlo ^ Math.imul(slo, 0x85ebca6b) ^ Math.imul(hi ^ (ingress << 7), 0xc2b2ae35);
    h = Math.imul(h ^ (h >>> 16), 0x9e3779b1);
    return (h >>> this.shift) * WAYS;
  }

  get(ingress: number, s: number, d: number): V | undefined {
    if (this.capacity === 0) {
      this.misses++;
      return undefined;
    }
    const first = this.setOf(ingress, s, d);
    const keys = this.keys;
    const gen = this.gen;
    // The front slot first, unrolled: a flow in steady use sits there.
    const k0 = first * STRIDE;
    if (keys[k0] === s && keys[k0 + 1] === d && keys[k0 + 2] === ingress && keys[k0 + 3] === gen) {
      this.hits++;
      return this.values[first];
    }
    for (let w = 1; w < WAYS; w++) {
      const k = (first + w) * STRIDE;
      if (keys[k] === s && keys[k + 1] === d && keys[k + 2] === ingress && keys[k + 3] === gen) {
        this.hits++;
        const value = this.values[first + w];
        // Least recently used goes first out of the set: move the hit to the front.
        this.toFront(first, w, ingress, s, d, value);
        return value;
      }
    }
    this.misses++;
    return undefined;
  }

  /** Caches a flow that `get` just missed; the set's least recently used flow makes room. */
  set(ingress: number, s: number, d: number, value: V): void {
    if (this.capacity === 0) return;
    this.toFront(this.setOf(ingress, s, d), WAYS - 1, ingress, s, d, value);
  }

  /** Forgets every flow in O(1); their values stay referenced until overwritten. */
  invalidate(): void {
    if (this.gen === 0xffff_ffff) this.clear();
    else this.gen++;
  }

  /** Forgets every flow and releases the values: O(capacity). */
  clear(): void {
    this.keys.fill(0);
    this.values.fill(undefined);
    this.gen = 1;
  }

  stats(): CacheStats {
    let entries = 0;
    for (let i = 0; i < this.capacity; i++) if (this.keys[i * STRIDE + 3] === this.gen) entries++;
    return { capacity: this.capacity, entries, hits: this.hits, misses: this.misses };
  }

  /** Shifts ways 0..way-1 of the set back by one (dropping `way`) and writes the flow at way 0. */
  private toFront(first: number, way: number, ingress: number, s: number, d: number, value: V | undefined): void {
    const keys = this.keys;
    for (let w = first + way; w > first; w--) {
      const to = w * STRIDE;
      const from = to - STRIDE;
      keys[to] = keys[from]!;
      keys[to + 1] = keys[from + 1]!;
      keys[to + 2] = keys[from + 2]!;
      keys[to + 3] = keys[from + 3]!;
      this.values[w] = this.values[w - 1];
    }
    const k = first * STRIDE;
    keys[k] = s;
    keys[k + 1] = d;
    keys[k + 2] = ingress;
    keys[k + 3] = this.gen;
    this.values[first] = value;
  }
}
