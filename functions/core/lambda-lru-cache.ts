/**
 * What the Lambda bundles use instead of `mnemonist/lru-cache` (esbuild alias, see
 * `lib/bundling.ts`). Its one importer is the DynamoDB client's endpoint-discovery cache
 * (`@aws-sdk/endpoint-cache`), which every DynamoDB client builds although discovery is off unless
 * `AWS_ENABLE_ENDPOINT_DISCOVERY` says otherwise. mnemonist's typed-array LRU and its `obliterator`
 * dependency are about 7 KB of every table function's bundle; this is the same least-recently-used
 * behaviour on a `Map` (insertion order is recency order) for the methods that cache calls:
 * `get`, `peek`, `has`, `set`, `clear` and `size`. Code run outside a bundle keeps mnemonist.
 */
export default class LruCache<K, V> {
  readonly capacity: number;
  readonly #entries = new Map<K, V>();

  constructor(capacity: number) {
    if (!Number.isInteger(capacity) || capacity <= 0)
      throw new Error("LruCache: capacity should be a positive integer.");
    this.capacity = capacity;
  }

  get size(): number {
    return this.#entries.size;
  }

  /** The value, now the most recently used. */
  get(key: K): V | undefined {
    if (!this.#entries.has(key)) return undefined;
    const value = this.#entries.get(key) as V;
    this.#entries.delete(key);
    this.#entries.set(key, value);
    return value;
  }

  /** The value, recency unchanged. */
  peek(key: K): V | undefined {
    return this.#entries.get(key);
  }

  has(key: K): boolean {
    return this.#entries.has(key);
  }

  /** Stores the value as the most recently used, evicting the least recently used when full. */
  set(key: K, value: V): this {
    if (this.#entries.has(key)) this.#entries.delete(key);
    else if (this.#entries.size >= this.capacity) {
      const oldest = this.#entries.keys().next();
      if (!oldest.done) this.#entries.delete(oldest.value);
    }
    this.#entries.set(key, value);
    return this;
  }

  clear(): void {
    this.#entries.clear();
  }
}
