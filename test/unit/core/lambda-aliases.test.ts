import fc from "fast-check";
import MnemonistLru from "mnemonist/lru-cache";
import { describe, expect, it } from "vitest";
import LruCache from "../../../functions/core/lambda-lru-cache.js";
import {
  EventStreamSerde,
  EventStreamsNotBundledError,
  eventStreamSerdeProvider,
} from "../../../functions/core/lambda-no-event-streams.js";

/** One call on a cache, as the DynamoDB client's endpoint cache makes them. */
type Op =
  | { readonly op: "get" | "peek" | "has"; readonly key: string }
  | { readonly op: "set"; readonly key: string; readonly value: number }
  | { readonly op: "clear" };

const key = fc.constantFrom("a", "b", "c", "d", "e", "f");
const ops = fc.array(
  fc.oneof(
    fc.record({ op: fc.constantFrom("get" as const, "peek" as const, "has" as const), key }),
    fc.record({ op: fc.constant("set" as const), key, value: fc.integer() }),
    fc.record({ op: fc.constant("clear" as const) }),
  ),
  { maxLength: 80 },
);

/** What the endpoint cache calls, which both implementations have. */
interface Cache {
  get(key: string): number | undefined;
  peek(key: string): number | undefined;
  has(key: string): boolean;
  set(key: string, value: number): unknown;
  clear(): void;
}

const apply = (cache: Cache, o: Op) => {
  switch (o.op) {
    case "set":
      cache.set(o.key, o.value);
      return undefined;
    case "clear":
      cache.clear();
      return undefined;
    default:
      return cache[o.op](o.key);
  }
};

describe("the Map LRU that replaces mnemonist/lru-cache in the bundles", () => {
  it("answers every get, peek, has and size exactly as mnemonist's LRUCache, including evictions", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 4 }), ops, (capacity, sequence) => {
        const ours = new LruCache<string, number>(capacity);
        const theirs = new MnemonistLru<string, number>(capacity);
        for (const o of sequence) {
          expect(apply(ours, o)).toEqual(apply(theirs, o));
          expect(ours.size).toBe(theirs.size);
        }
      }),
      { numRuns: 500 },
    );
  });

  it("evicts the least recently used key; peek does not count as a use, get does", () => {
    const cache = new LruCache<string, number>(2);
    cache.set("a", 1).set("b", 2);
    cache.peek("a");
    cache.set("c", 3);
    expect([cache.has("a"), cache.has("b"), cache.has("c")]).toEqual([false, true, true]);
    cache.get("b");
    cache.set("d", 4);
    expect([cache.has("b"), cache.has("c"), cache.has("d")]).toEqual([true, false, true]);
  });

  it("refuses a capacity that is not a positive integer, as mnemonist does", () => {
    expect(() => new LruCache(0)).toThrow(/capacity/);
    expect(() => new MnemonistLru(0)).toThrow(/capacity/);
  });
});

describe("the event-stream stand-in", () => {
  it("fails with a sentence naming the alias, whichever export the SDK reaches first", () => {
    expect(() => eventStreamSerdeProvider()).toThrow(EventStreamsNotBundledError);
    expect(() => new EventStreamSerde()).toThrow(
      /lib\/bundling\.ts aliases @smithy\/core\/event-streams away/,
    );
  });
});
